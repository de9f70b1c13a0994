/**
 * The firmware's configuration: DeviceScript settings (`.env.defaults`, `.env.local`, or the
 * simulator runner's host link) read into one typed, validated `Config`. Every bad key is reported
 * with its value and what was expected; secrets are never echoed.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "@devicescript/settings"
import { toJson } from "./app/json"
import { INTERVAL_MAX, INTERVAL_MIN } from "./app/properties"

/** Reads one setting; resolves to `undefined` when it is not set. */
export type ReadSetting = (key: string) => Promise<any>

/** Longest setting name the runtime accepts. */
export const MAX_KEY_LENGTH = 13

/** Cloud platform profiles (only "generic" is implemented so far). */
export type CloudKind = "generic" | "alibaba" | "onenet" | "azure" | "thingspeak" | "huawei" | "tencent"
/** Where temperature and humidity come from. */
export type SensorKind = "auto" | "sim" | "fixed" | "aht20" | "sht30"
/** Which network stack carries the traffic ("auto": host sockets in the simulator, W5500 on a board). */
export type NetKind = "auto" | "host" | "w5500"
/** Console verbosity. */
export type LogLevel = "error" | "warn" | "info" | "debug"

/** All cloud kinds, in documentation order. */
export const CLOUD_KINDS: CloudKind[] = ["generic", "alibaba", "onenet", "azure", "thingspeak", "huawei", "tencent"]
/** All sensor kinds. */
export const SENSOR_KINDS: SensorKind[] = ["auto", "sim", "fixed", "aht20", "sht30"]
/** All network kinds. */
export const NET_KINDS: NetKind[] = ["auto", "host", "w5500"]
/** All log levels, least verbose first. */
export const LOG_LEVELS: LogLevel[] = ["error", "warn", "info", "debug"]

/** The validated configuration. Strings are trimmed; unset optional strings are "". */
export interface Config {
    /** DEVICE_ID: topic-safe device name; default `w55-` + the 16-hex-digit device identifier */
    deviceId: string
    /** CLOUD */
    cloud: CloudKind
    /** MQTT_HOST: broker host name or IP address (required for the generic profile) */
    mqttHost: string
    /** MQTT_PORT: 1..65535; default 1883, or 8883 with TLS */
    mqttPort: number
    /** MQTT_TLS */
    mqttTls: boolean
    /** MQTT_USER ("" = none) */
    mqttUser: string
    /** MQTT_PASS ("" = none); secret */
    mqttPass: string
    /** MQTT_KEEPALV: MQTT keepalive in seconds, 5..3600 (MQTT_KEEPALIVE is one character too long) */
    keepAliveS: number
    /** REPORT_MS: report interval in ms, INTERVAL_MIN..INTERVAL_MAX */
    reportMs: number
    /** TOPIC_PREFIX: first topic levels of the generic profile, e.g. "devices" */
    topicPrefix: string
    /** HA_DISCOVERY: publish Home Assistant discovery messages */
    haDiscovery: boolean
    /** HA_PREFIX: Home Assistant discovery prefix */
    haPrefix: string
    /** SENSOR */
    sensor: SensorKind
    /** NET */
    net: NetKind
    /** LOG_LEVEL */
    logLevel: LogLevel
}

/** Thrown by `loadConfig` with every problem found; `message` has one `config: ...` line each. */
export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(problems.map(p => "config: " + p).join("\n"))
        this.name = "ConfigError"
    }
}

/** How a bad value is shown in an error: quoted strings, plain numbers, "(hidden)" for secrets. */
export function showValue(v: any, secret = false): string {
    if (secret) return "(hidden)"
    const s = toJson(v)
    return s.length > 48 ? s.slice(0, 45) + "..." : s
}

function isDigits(s: string, from: number): boolean {
    if (from >= s.length) return false
    for (let i = from; i < s.length; i++) {
        const c = s.charCodeAt(i)
        if (c < 0x30 || c > 0x39) return false
    }
    return true
}

function charsIn(s: string, extra: string): boolean {
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i)
        const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        if (!alnum && extra.indexOf(s.charAt(i)) < 0) return false
    }
    return true
}

/** True for a name made of letters, digits, `_` and `-` (safe in a topic level and as an HA id). */
export function isSafeId(s: string): boolean {
    return s.length > 0 && charsIn(s, "_-")
}

/** True for MQTT topic levels without wildcards or empty levels, e.g. `home/devices`. */
export function isTopicPrefix(s: string): boolean {
    if (!s.length || s.charAt(0) === "$") return false
    for (const level of s.split("/")) if (!level.length || !charsIn(level, "_-.")) return false
    return true
}

/** True for a plausible host name or IP address (no scheme, port or spaces). */
export function isHost(s: string): boolean {
    return s.length > 0 && s.length <= 253 && charsIn(s, ".-_:")
}

/**
 * Reads settings one key at a time, converting the types the `.env` parser may produce (a number
 * may arrive as 1883 or "1883", a flag as true, 1 or "on") and collecting every problem.
 */
export class SettingsReader {
    /** Problems found so far, each `KEY must be ..., got VALUE`. */
    readonly problems: string[] = []

    constructor(private read: ReadSetting) {}

    /** Records a problem with `key`. */
    fail(key: string, expected: string, value: any, secret = false) {
        this.problems.push(`${key} must be ${expected}, got ${showValue(value, secret)}`)
    }

    /** The raw value of `key`, or undefined when unset (null and "" count as unset). */
    async raw(key: string): Promise<any> {
        if (!key || key.length > MAX_KEY_LENGTH) {
            this.problems.push(`setting name ${showValue(key)} is longer than ${MAX_KEY_LENGTH} characters`)
            return undefined
        }
        let v: any
        try {
            v = await this.read(key)
        } catch (e: any) {
            this.problems.push(`${key} could not be read: ${e && e.message !== undefined ? e.message : e}`)
            return undefined
        }
        if (v === null || v === undefined) return undefined
        if (typeof v === "string" && v.trim() === "") return undefined
        return v
    }

    /**
     * A string setting (numbers and booleans are taken as their text). `check` returns true for
     * acceptable values; `expected` describes them for the error.
     */
    async str(key: string, def: string, expected = "text", check?: (s: string) => boolean, secret = false): Promise<string> {
        const v = await this.raw(key)
        if (v === undefined) return def
        const t = typeof v
        if (t !== "string" && t !== "number" && t !== "boolean") {
            this.fail(key, expected, v, secret)
            return def
        }
        const s = t === "string" ? (v as string).trim() : "" + v
        if (check && !check(s)) {
            this.fail(key, expected, v, secret)
            return def
        }
        return s
    }

    /** An integer setting within min..max. */
    async int(key: string, def: number, min: number, max: number): Promise<number> {
        const v = await this.raw(key)
        if (v === undefined) return def
        let n = NaN
        if (typeof v === "number") n = v
        else if (typeof v === "string") {
            const s = (v as string).trim()
            if (isDigits(s, s.charAt(0) === "-" ? 1 : 0)) n = parseInt(s)
        }
        if (isNaN(n) || n !== Math.floor(n) || n < min || n > max) {
            this.fail(key, `an integer ${min}..${max}`, v)
            return def
        }
        return n
    }

    /** A flag: true/false, 1/0, "on"/"off", "yes"/"no". */
    async bool(key: string, def: boolean): Promise<boolean> {
        const v = await this.raw(key)
        if (v === undefined) return def
        const b = toBool(v)
        if (b === undefined) {
            this.fail(key, 'true or false (also 1/0, "on"/"off", "yes"/"no")', v)
            return def
        }
        return b
    }

    /** One of `options` (case-insensitive; the result is the option as listed). */
    async choice<T extends string>(key: string, def: T, options: T[]): Promise<T> {
        const v = await this.raw(key)
        if (v === undefined) return def
        if (typeof v === "string") {
            const s = (v as string).trim().toLowerCase()
            for (const o of options) if (o === s) return o
        }
        this.fail(key, "one of " + options.join("|"), v)
        return def
    }

    /** Throws a ConfigError listing every problem, if there is any. */
    check() {
        if (this.problems.length) throw new ConfigError(this.problems)
    }
}

/** Converts the usual spellings of a flag; undefined when `v` is not one. */
export function toBool(v: any): boolean {
    if (v === true || v === 1) return true
    if (v === false || v === 0) return false
    if (typeof v === "string") {
        const s = (v as string).trim().toLowerCase()
        if (s === "true" || s === "1" || s === "on" || s === "yes") return true
        if (s === "false" || s === "0" || s === "off" || s === "no") return false
    }
    return undefined
}

/** The default DEVICE_ID: `w55-` and this device's 64-bit identifier in hex. */
export function defaultDeviceId(): string {
    return "w55-" + ds.deviceIdentifier("self")
}

/**
 * Reads and validates the configuration. `read` defaults to the device's settings store; tests
 * pass their own. Throws a ConfigError naming every bad key, its value and what was expected.
 */
export async function loadConfig(read?: ReadSetting): Promise<Config> {
    const r = new SettingsReader(read || (async key => await readSetting(key)))
    const idText = "1..64 letters, digits, '_' or '-'"
    const deviceId = await r.str("DEVICE_ID", "", idText, s => isSafeId(s) && s.length <= 64)
    const cloud = await r.choice<CloudKind>("CLOUD", "generic", CLOUD_KINDS)
    const mqttHost = await r.str("MQTT_HOST", "", "a host name or IP address (no scheme, no port)", isHost)
    const mqttTls = await r.bool("MQTT_TLS", false)
    const mqttPort = await r.int("MQTT_PORT", mqttTls ? 8883 : 1883, 1, 65535)
    const mqttUser = await r.str("MQTT_USER", "")
    const mqttPass = await r.str("MQTT_PASS", "", "text", undefined, true)
    const keepAliveS = await r.int("MQTT_KEEPALV", 60, 5, 3600)
    const reportMs = await r.int("REPORT_MS", 5000, INTERVAL_MIN, INTERVAL_MAX)
    const prefixText = "topic levels of letters, digits, '_', '-' or '.' separated by '/' (no wildcards)"
    const topicPrefix = await r.str("TOPIC_PREFIX", "devices", prefixText, s => isTopicPrefix(s) && s.length <= 64)
    const haDiscovery = await r.bool("HA_DISCOVERY", true)
    const haPrefix = await r.str("HA_PREFIX", "homeassistant", prefixText, s => isTopicPrefix(s) && s.length <= 64)
    const sensor = await r.choice<SensorKind>("SENSOR", "auto", SENSOR_KINDS)
    const net = await r.choice<NetKind>("NET", "auto", NET_KINDS)
    const logLevel = await r.choice<LogLevel>("LOG_LEVEL", "info", LOG_LEVELS)
    if (cloud === "generic" && !mqttHost && (await r.raw("MQTT_HOST")) === undefined)
        r.problems.push("MQTT_HOST must be set for CLOUD=generic (the broker's host name or IP address), got nothing")
    r.check()
    return {
        deviceId: deviceId || defaultDeviceId(),
        cloud,
        mqttHost,
        mqttPort,
        mqttTls,
        mqttUser,
        mqttPass,
        keepAliveS,
        reportMs,
        topicPrefix,
        haDiscovery,
        haPrefix,
        sensor,
        net,
        logLevel,
    }
}

/** One log line describing `cfg` with secrets shown only as "(set)" or "(none)". */
export function describeConfig(cfg: Config): string {
    const scheme = cfg.mqttTls ? "mqtts" : "mqtt"
    return (
        `device=${cfg.deviceId} cloud=${cfg.cloud} broker=${scheme}://${cfg.mqttHost}:${cfg.mqttPort}` +
        ` user=${cfg.mqttUser ? cfg.mqttUser : "(none)"} pass=${cfg.mqttPass ? "(set)" : "(none)"}` +
        ` keepalive=${cfg.keepAliveS}s report=${cfg.reportMs}ms prefix=${cfg.topicPrefix}` +
        ` ha=${cfg.haDiscovery ? cfg.haPrefix : "off"} sensor=${cfg.sensor} net=${cfg.net} log=${cfg.logLevel}`
    )
}
