/**
 * China Mobile OneNET device credentials: a token of version 2018-10-31 signed with sha256,
 * as described in docs/platforms.md.
 */
import { hmac } from "@devicescript/crypto"
import { MqttCredentials, decodeKey, expiry, forbidChar, requireText } from "./credentials"
import { base64Encode, oneNetEncode } from "./encoding"

/** Setting names the OneNET identity comes from (used in error messages). */
export const ONENET_SETTINGS = {
    productId: "ONENET_PID",
    deviceName: "ONENET_DEV",
    key: "ONENET_KEY",
}

/** A OneNET device with the key it signs with. */
export interface OneNetIdentity {
    productId: string
    deviceName: string
    /** base64 access key: the device's key, or the product's key when `keyScope` is "product" */
    key: string
    /** which key `key` is; default "device" */
    keyScope?: "device" | "product"
}

const VERSION = "2018-10-31"

/** Mints OneNET MQTT credentials whose token expires `lifetimeSec` after `nowMs` (Unix ms). */
export function signOneNet(id: OneNetIdentity, nowMs: number, lifetimeSec = 3600): MqttCredentials {
    const P = "onenet"
    const S = ONENET_SETTINGS
    requireText(P, S.productId, id.productId)
    requireText(P, S.deviceName, id.deviceName)
    forbidChar(P, S.productId, id.productId, "/")
    forbidChar(P, S.deviceName, id.deviceName, "/")
    const key = decodeKey(P, S.key, id.key)
    const et = expiry(P, nowMs, lifetimeSec)
    // the product's resource, or the device's under it (a plain assignment: fewer bytes than a ternary)
    let res = "products/" + id.productId
    if (id.keyScope !== "product") res += "/devices/" + id.deviceName
    const sign = base64Encode(hmac(key, "sha256", `${et}`, "\nsha256\n", res, "\n" + VERSION))
    return {
        clientId: id.deviceName,
        username: id.productId,
        password: `version=${VERSION}&res=${oneNetEncode(res)}&et=${et}&method=sha256&sign=${oneNetEncode(sign)}`,
        expires: et,
    }
}
