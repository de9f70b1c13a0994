/**
 * Alibaba Cloud IoT Platform device credentials ("unique certificate per device",
 * signmethod hmacsha256), as described in docs/platforms.md.
 */
import { hmac } from "@devicescript/crypto"
import { MqttCredentials, checkTime, forbidChar, requireText } from "./credentials"

/** Setting names the Alibaba identity comes from (used in error messages). */
export const ALIBABA_SETTINGS = {
    productKey: "ALI_PK",
    deviceName: "ALI_DN",
    deviceSecret: "ALI_SECRET",
    clientId: "ALI_CLIENT_ID",
}

/** An Alibaba device certificate (ProductKey, DeviceName, DeviceSecret). */
export interface AlibabaIdentity {
    productKey: string
    deviceName: string
    deviceSecret: string
    /** the id before the `|` parameters; default `${productKey}.${deviceName}` */
    clientId?: string
    /** true when the connection is TLS (securemode=2), false for plain TCP (securemode=3) */
    tls: boolean
}

/**
 * Mints Alibaba MQTT credentials. `nowMs` (Unix ms) goes out as the signed timestamp; without it
 * no timestamp is sent or signed. Alibaba's SDK sends a fixed date in 2050, so the platform does
 * not check it against its clock; the password never expires.
 */
export function signAlibaba(id: AlibabaIdentity, nowMs?: number): MqttCredentials {
    const P = "alibaba"
    const S = ALIBABA_SETTINGS
    requireText(P, S.productKey, id.productKey)
    requireText(P, S.deviceName, id.deviceName)
    requireText(P, S.deviceSecret, id.deviceSecret)
    forbidChar(P, S.productKey, id.productKey, "&")
    // (plain assignments and one test a line: fewer bytes than ternaries and && chains)
    let cid = id.clientId
    if (cid === undefined) cid = ""
    if (cid === "") {
        cid = `${id.productKey}.${id.deviceName}`
        if (cid.length > 64)
            throw new Error(`alibaba: the default client id ${S.productKey}.${S.deviceName} is ${cid.length} characters long, at most 64 allowed: set ${S.clientId}`)
    }
    requireText(P, S.clientId, cid, 64)
    forbidChar(P, S.clientId, cid, "|")
    forbidChar(P, S.clientId, cid, ",")
    // the timestamp, when given, in the client id's parameters and in the signed content
    let tsParam = ""
    let tsContent = ""
    if (nowMs !== undefined) {
        const ts = `${checkTime(P, nowMs)}`
        tsParam = ",timestamp=" + ts
        tsContent = "timestamp" + ts
    }
    let mode = 3
    if (id.tls) mode = 2
    const params = `securemode=${mode},signmethod=hmacsha256${tsParam}`
    // signed parameters sorted by name, concatenated as name+value without separators
    const content = `clientId${cid}deviceName${id.deviceName}productKey${id.productKey}${tsContent}`
    const mac = hmac(id.deviceSecret, "sha256", content)
    return {
        clientId: `${cid}|${params}|`,
        username: `${id.deviceName}&${id.productKey}`,
        password: mac.toString("hex"),
    }
}
