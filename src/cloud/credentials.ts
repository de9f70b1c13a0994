/**
 * What every platform signer returns (the three MQTT CONNECT strings), and the input checks
 * the signers share. Check errors name the platform and the setting, never a secret's value.
 */
import { base64Decode } from "./encoding"

/** The user-facing credentials of one MQTT CONNECT. */
export interface MqttCredentials {
    clientId: string
    username: string
    password: string
    /** Unix seconds after which the platform refuses this password; undefined when it does not expire */
    expires?: number
}

/** Latest time the signers accept (ms); keeps every timestamp an exactly printable integer. */
const MAX_TIME_MS = 1e14

/** Throws unless `value` is a non-empty string of at most `maxLen` characters. */
export function requireText(platform: string, setting: string, value: string, maxLen?: number) {
    if (typeof value !== "string") throw new TypeError(`${platform}: ${setting} must be a string`)
    if (!value.length) throw new Error(`${platform}: ${setting} is empty`)
    if (maxLen)
        if (value.length > maxLen)
            throw new Error(`${platform}: ${setting} is ${value.length} characters long, at most ${maxLen} allowed`)
}

/** Throws when `value` contains `ch`, which would break the field it is packed into. */
export function forbidChar(platform: string, setting: string, value: string, ch: string) {
    if (value.indexOf(ch) >= 0) throw new Error(`${platform}: ${setting} must not contain "${ch}"`)
}

/** Decodes a base64 key, or throws `<platform>: <setting> is not valid base64 (<why>)`. */
export function decodeKey(platform: string, setting: string, value: string): Buffer {
    requireText(platform, setting, value)
    let key: Buffer
    try {
        key = base64Decode(value)
    } catch (e: any) {
        // the decoder's message holds a position only, never the text
        throw new Error(`${platform}: ${setting} is not valid base64 (${e.message})`)
    }
    if (!key.length) throw new Error(`${platform}: ${setting} decodes to no bytes`)
    return key
}

/** Checks a Unix time in ms and returns it as a whole number of ms. */
export function checkTime(platform: string, nowMs: number): number {
    // (nested ifs: fewer bytes than && and || chains)
    let ok = false
    if (typeof nowMs === "number") if (nowMs >= 0) if (nowMs < MAX_TIME_MS) ok = true
    if (!ok)
        throw new RangeError(`${platform}: the time must be Unix milliseconds from 0 to 1e14, got ${nowMs}`)
    return Math.floor(nowMs)
}

/** Expiry in Unix seconds: `nowMs` plus `lifetimeSec` (a whole number of seconds, at least 1). */
export function expiry(platform: string, nowMs: number, lifetimeSec: number): number {
    const now = checkTime(platform, nowMs)
    let ok = false
    if (typeof lifetimeSec === "number") if (lifetimeSec >= 1) if (lifetimeSec < MAX_TIME_MS / 1000) ok = true
    if (!ok)
        throw new RangeError(`${platform}: token lifetime must be at least 1 s, got ${lifetimeSec}`)
    return Math.floor(now / 1000) + Math.floor(lifetimeSec)
}
