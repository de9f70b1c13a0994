/**
 * Huawei Cloud IoTDA device credentials (secret authentication, HMAC-SHA256), as described in
 * docs/platforms.md.
 */
import { hmac } from "@devicescript/crypto"
import { MqttCredentials, checkTime, requireText } from "./credentials"

/** Setting names the Huawei identity comes from (used in error messages). */
export const HUAWEI_SETTINGS = {
    deviceId: "HUAWEI_DEVICE",
    secret: "HUAWEI_SECRET",
}

/** An IoTDA device with its secret. */
export interface HuaweiIdentity {
    deviceId: string
    secret: string
    /** ask the platform to check the timestamp against its clock (sign type 1); default false */
    checkTimestamp?: boolean
}

export function pad2(n: number): string {
    if (n < 10) return "0" + n
    return "" + n
}

/** The UTC hour of `ms` (Unix ms) as `YYYYMMDDHH`, for years 1970..9999. */
export function utcHourStamp(ms: number): string {
    const hours = Math.floor(ms / 3600000)
    // civil date from a day count (proleptic Gregorian; eras of 400 years = 146097 days)
    const z = Math.floor(hours / 24) + 719468
    const era = Math.floor(z / 146097)
    const doe = z - era * 146097
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
    const mp = Math.floor((5 * doy + 2) / 153)
    const day = doy - Math.floor((153 * mp + 2) / 5) + 1
    // (plain assignments: fewer bytes than ternaries)
    let month = mp + 3
    if (mp >= 10) month = mp - 9
    let year = yoe + era * 400
    if (month <= 2) year = year + 1
    return `${year}${pad2(month)}${pad2(day)}${pad2(hours % 24)}`
}

/**
 * Mints IoTDA MQTT credentials for the UTC hour of `nowMs` (Unix ms). With `checkTimestamp`
 * off the platform accepts them whatever the hour, so a device without a clock can pass 0.
 */
export function signHuawei(id: HuaweiIdentity, nowMs: number): MqttCredentials {
    const P = "huawei"
    const S = HUAWEI_SETTINGS
    requireText(P, S.deviceId, id.deviceId)
    requireText(P, S.secret, id.secret)
    const hour = utcHourStamp(checkTime(P, nowMs))
    return {
        clientId: `${id.deviceId}_0_${id.checkTimestamp ? 1 : 0}_${hour}`,
        username: id.deviceId,
        password: hmac(hour, "sha256", id.secret).toString("hex"),
    }
}
