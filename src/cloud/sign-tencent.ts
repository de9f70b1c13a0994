/**
 * Tencent Cloud IoT Explorer device credentials (key authentication, HMAC-SHA256), as described
 * in docs/platforms.md.
 */
import { hmac, randomBuffer } from "@devicescript/crypto"
import { MqttCredentials, decodeKey, expiry, requireText } from "./credentials"

/** Setting names the Tencent identity comes from (used in error messages). */
export const TENCENT_SETTINGS = {
    productId: "TENCENT_PID",
    deviceName: "TENCENT_DEV",
    psk: "TENCENT_PSK",
}

/** A Tencent device with its pre-shared key. */
export interface TencentIdentity {
    productId: string
    deviceName: string
    /** the device secret shown by the console: base64 of the PSK */
    psk: string
}

/** The SDK application id every key-authenticated username carries. */
const SDK_APPID = "12010126"
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/** A fresh random 5-character connection id for `signTencent`. */
export function tencentConnId(): string {
    const b = randomBuffer(5)
    for (let i = 0; i < 5; i++) b[i] = ALNUM.charCodeAt(b[i] % 62)
    return b.toString()
}

/**
 * Mints Tencent MQTT credentials whose username expires `lifetimeSec` after `nowMs` (Unix ms);
 * `connId` is 1 to 5 letters or digits (see `tencentConnId`).
 */
export function signTencent(id: TencentIdentity, connId: string, nowMs: number, lifetimeSec = 3600): MqttCredentials {
    const P = "tencent"
    const S = TENCENT_SETTINGS
    requireText(P, S.productId, id.productId)
    requireText(P, S.deviceName, id.deviceName)
    const key = decodeKey(P, S.psk, id.psk)
    requireText(P, "connection id", connId, 5)
    for (let i = 0; i < connId.length; i++)
        if (ALNUM.indexOf(connId[i]) < 0) throw new Error(`tencent: connection id must be letters and digits`)
    const exp = expiry(P, nowMs, lifetimeSec)
    const clientId = id.productId + id.deviceName
    const username = `${clientId};${SDK_APPID};${connId};${exp}`
    return {
        clientId,
        username,
        password: hmac(key, "sha256", username).toString("hex") + ";hmacsha256",
        expires: exp,
    }
}
