/**
 * The firmware's common configuration: DeviceScript settings (`.env.defaults`, `.env.local`, or
 * the simulator runner's host link) read into one typed, validated `Config`. Each cloud platform
 * reads its own keys (src/cloud/<kind>.ts, `platform.create`) with the same reader, so an image
 * links only its platform's settings code. Every bad key is reported with its value and what was
 * expected; secrets are never echoed.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "@devicescript/settings"
import { toJson } from "./util/json"
import { words } from "./util/words"

/** Shortest report interval, ms (REPORT_MS and the interval property). */
export const INTERVAL_MIN = 1000
/** Longest report interval, ms (one hour). */
export const INTERVAL_MAX = 3600000

/** Reads one setting; resolves to `undefined` when it is not set. */
export type ReadSetting = (key: string) => Promise<any>

/** Longest setting name the runtime accepts. */
export const MAX_KEY_LENGTH = 13

/** Cloud platform profiles. */
export type CloudKind = "generic" | "alibaba" | "onenet" | "azure" | "thingspeak" | "huawei" | "tencent"
/** Where temperature and humidity come from. */
export type SensorKind = "auto" | "sim" | "fixed" | "aht20" | "sht30"
/** Which network stack carries the traffic ("auto": host sockets in the simulator, W5500 on a board). */
export type NetKind = "auto" | "host" | "w5500"
/** Console verbosity. */
export type LogLevel = "error" | "warn" | "info" | "debug"

/** All cloud kinds, in documentation order. */
export const CLOUD_KINDS = words("generic alibaba onenet azure thingspeak huawei tencent", " ") as CloudKind[]
/** All sensor kinds. */
export const SENSOR_KINDS = words("auto sim fixed aht20 sht30", " ") as SensorKind[]
/** All network kinds. */
export const NET_KINDS = words("auto host w5500", " ") as NetKind[]
/** All log levels, least verbose first. */
export const LOG_LEVELS = words("error warn info debug", " ") as LogLevel[]

/** The validated common configuration. Strings are trimmed; unset optional strings are "". */
export interface Config {
    /** DEVICE_ID: topic-safe device name; default `w55-` + the 16-hex-digit device identifier */
    deviceId: string
    /** CLOUD (the image checks it names its platform) */
    cloud: CloudKind
    /** MQTT_HOST: broker host name or IP address (required for generic; `platform.create` fills a cloud's endpoint) */
    mqttHost: string
    /** MQTT_PORT: 1..65535; default 1883, or 8883 with TLS */
    mqttPort: number
    /** MQTT_TLS: default false, true for CLOUD=azure (IoT Hub takes TLS only) */
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
    /** NET_IP: static IPv4 address of the W5500; "" = DHCP */
    netIp: string
    /** NET_MASK: subnet mask with NET_IP; default 255.255.255.0 */
    netMask: string
    /** NET_GATEWAY: default gateway with NET_IP; "" = none */
    netGateway: string
    /** NET_DNS: IPv4 DNS servers tried before the ones DHCP gives; default none */
    netDns: string[]
    /** NTP_SERVERS: SNTP server names or addresses; default pool.ntp.org; "none" = no SNTP */
    ntpServers: string[]
    /**
     * DHCP_WAIT_MS: with NET_IP, how long to try DHCP before using NET_IP (DHCP goes on in the
     * background); 0 = NET_IP at once; refused without NET_IP
     */
    dhcpWaitMs: number
    /** NET_MAC: the W5500's MAC address `02:12:34:56:78:9a`; "" = derived from the device id */
    netMac: string
}

/** Thrown when settings are bad, with every problem found; `message` has one `config: ...` line each. */
export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super("config: " + problems.join("\nconfig: "))
        this.name = "ConfigError"
    }
}

/** One pass of reading settings: the store and the problems found so far. */
export interface Settings {
    read: ReadSetting
    problems: string[]
}

/** A settings pass over `read` (default: the device's settings store). */
export function settings(read?: ReadSetting): Settings {
    return { read: read || (async (key: string) => await readSetting(key)), problems: [] }
}

/** Throws a ConfigError listing every problem of `s`, if there is any. */
export function checkSettings(s: Settings) {
    if (s.problems.length) throw new ConfigError(s.problems)
}

/**
 * Reads `key`. Unset (missing, null, blank text) gives `def`, or, with `missing` (e.g.
 * "CLOUD=alibaba (the DeviceName)"), the problem `KEY must be set for <missing>, got nothing`.
 * A number or boolean is taken as its text; `conv` turns the trimmed text into the value, or
 * undefined (or throws an Error saying why) when it is not acceptable: then the problem is
 * `KEY must be <expected> (<why>), got <value>` (secrets shown as "(hidden)").
 */
export async function setting(
    s: Settings,
    key: string,
    def: any,
    expected = "text",
    conv?: (text: string) => any,
    secret?: boolean,
    missing?: string
): Promise<any> {
    let v: any
    try {
        v = await s.read(key)
    } catch (e: any) {
        s.problems.push(`${key} could not be read: ${e.message}`)
        return def
    }
    const t = typeof v
    // (plain assignments: fewer bytes than nested ternaries)
    let text: string
    if (t === "string") text = (v as string).trim()
    else if (t === "number" || t === "boolean") text = "" + v
    if (v === null || v === undefined || text === "") {
        if (missing) s.problems.push(`${key} must be set for ${missing}, got nothing`)
        return def
    }
    let out: any
    let why = ""
    try {
        if (text !== undefined) out = conv ? conv(text) : text
    } catch (e: any) {
        why = ` (${e.message})`
    }
    if (out === undefined) {
        let shown = "(hidden)"
        if (!secret) {
            shown = toJson(v)
            if (shown.length > 48) shown = shown.slice(0, 45) + "..."
        }
        s.problems.push(`${key} must be ${expected}${why}, got ${shown}`)
        return def
    }
    return out
}

/** An integer setting within min..max. */
export async function intSetting(s: Settings, key: string, def: number, min: number, max: number): Promise<number> {
    return await setting(s, key, def, `an integer ${min}..${max}`, t => {
        // (plain assignments and nested ifs: fewer bytes than ternaries and a && chain)
        let digits = t
        if (t.charAt(0) === "-") digits = t.slice(1)
        if (isChars(digits, "", true)) {
            const n = parseInt(t)
            if (n >= min) if (n <= max) return n
        }
        return undefined
    })
}

/** A flag: true/false, 1/0, "on"/"off", "yes"/"no". */
export async function boolSetting(s: Settings, key: string, def: boolean): Promise<boolean> {
    return await setting(s, key, def, 'true or false (also 1/0, "on"/"off", "yes"/"no")', t => {
        const i = words("false true 0 1 off on no yes", " ").indexOf(t.toLowerCase())
        if (i >= 0) return (i & 1) === 1
        return undefined
    })
}

/** One of `options` (case-insensitive; the result is the option as listed). */
export async function choiceSetting(s: Settings, key: string, def: string, options: string[]): Promise<any> {
    return await setting(s, key, def, "one of " + options.join("|"), t => options[options.indexOf(t.toLowerCase())])
}

/**
 * True for non-empty `s` (at most `max` characters when given) made of letters and digits (only
 * digits with `digitsOnly`) and the characters in `extra`.
 */
export function isChars(s: string, extra: string, digitsOnly?: boolean, max?: number): boolean {
    if (!s.length || (max && s.length > max)) return false
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i) | (digitsOnly ? 0 : 0x20)
        if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a && !digitsOnly) || extra.indexOf(s.charAt(i)) >= 0)) return false
    }
    return true
}

/** `s` when it is MQTT topic levels without wildcards or empty levels, e.g. `home/devices` (at most 64 characters), else undefined. */
export function asTopicPrefix(s: string): string {
    if (s.length > 64 || s.charAt(0) === "$") return undefined
    for (const level of words(s, "/")) if (!isChars(level, "_-.")) return undefined
    return s
}

/** `s` when it is a plausible host name or IP address (no scheme, port or spaces), else undefined. */
export function asHost(s: string): string {
    return isChars(s, ".-_:", false, 253) ? s : undefined
}

/** `s` when it is a dotted IPv4 address, else undefined. */
export function asIpv4(s: string): string {
    const parts = words(s, ".")
    if (parts.length !== 4) return undefined
    for (const p of parts) if (!isChars(p, "", true, 3) || parseInt(p) > 255) return undefined
    return s
}

/** `s` when it is a unicast MAC address written `02:12:34:56:78:9a`, else undefined. */
export function asMac(s: string): string {
    const parts = words(s, ":")
    if (parts.length !== 6) return undefined
    for (const p of parts) if (p.length !== 2 || !isChars(p, "abcdefABCDEF", true)) return undefined
    // the group bit (bit 0 of the first byte) must be clear
    return "13579bdfBDF".indexOf(parts[0].charAt(1)) < 0 ? s : undefined
}

/** A comma-separated list whose every item passes `ok` (trimmed; `ok` gives it back, else undefined), or undefined. */
function listOf(text: string, ok: (s: string) => string): string[] {
    const out: string[] = []
    for (const part of words(text, ",")) {
        const item = part.trim()
        if (!ok(item)) return undefined
        out.push(item)
    }
    return out
}

/**
 * Reads and validates the common configuration (the platform's own keys are read by its
 * `platform.create`). `read` defaults to the device's settings store; tests pass their own.
 * Throws a ConfigError naming every bad key, its value and what was expected.
 */
export async function loadConfig(read?: ReadSetting): Promise<Config> {
    const r = settings(read)
    const hostText = "a host name or IP address (no scheme, no port)"
    const prefixText = "topic levels of letters, digits, '_', '-' or '.' separated by '/' (no wildcards)"
    const ipText = "an IPv4 address like 192.168.1.20"
    const deviceId = await setting(r, "DEVICE_ID", "w55-" + ds.deviceIdentifier("self"), "1..64 letters, digits, '_' or '-'", t =>
        isChars(t, "_-", false, 64) ? t : undefined
    )
    const cloud = await choiceSetting(r, "CLOUD", "generic", CLOUD_KINDS)
    const mqttHost = await setting(r, "MQTT_HOST", "", hostText, asHost, false,
        cloud === "generic" ? "CLOUD=generic (the broker's host name or IP address)" : undefined)
    // IoT Hub accepts TLS only: TLS by default there (MQTT_TLS=false is for emulated hubs)
    const mqttTls = await boolSetting(r, "MQTT_TLS", cloud === "azure")
    const cfg: Config = {
        deviceId,
        cloud,
        mqttHost,
        mqttTls,
        mqttPort: await intSetting(r, "MQTT_PORT", mqttTls ? 8883 : 1883, 1, 65535),
        mqttUser: await setting(r, "MQTT_USER", ""),
        mqttPass: await setting(r, "MQTT_PASS", "", "text", undefined, true),
        keepAliveS: await intSetting(r, "MQTT_KEEPALV", 60, 5, 3600),
        reportMs: await intSetting(r, "REPORT_MS", 5000, INTERVAL_MIN, INTERVAL_MAX),
        topicPrefix: await setting(r, "TOPIC_PREFIX", "devices", prefixText, asTopicPrefix),
        haDiscovery: await boolSetting(r, "HA_DISCOVERY", true),
        haPrefix: await setting(r, "HA_PREFIX", "homeassistant", prefixText, asTopicPrefix),
        sensor: await choiceSetting(r, "SENSOR", "auto", SENSOR_KINDS),
        net: await choiceSetting(r, "NET", "auto", NET_KINDS),
        logLevel: await choiceSetting(r, "LOG_LEVEL", "info", LOG_LEVELS),
        netIp: await setting(r, "NET_IP", "", ipText + " (unset: DHCP)", asIpv4),
        netMask: await setting(r, "NET_MASK", "255.255.255.0", "a subnet mask like 255.255.255.0", asIpv4),
        netGateway: await setting(r, "NET_GATEWAY", "", ipText, asIpv4),
        netDns: await setting(r, "NET_DNS", [], "IPv4 addresses separated by commas, like 1.1.1.1,8.8.8.8", t => listOf(t, asIpv4)),
        ntpServers: await setting(r, "NTP_SERVERS", ["pool.ntp.org"], 'host names or addresses separated by commas, or "none"', t =>
            t.toLowerCase() === "none" ? [] : listOf(t, asHost)
        ),
        dhcpWaitMs: await intSetting(r, "DHCP_WAIT_MS", 0, 0, 600000),
        netMac: await setting(r, "NET_MAC", "", "a unicast MAC address like 02:12:34:56:78:9a", asMac),
    }
    const wait = cfg.dhcpWaitMs
    if (wait && !cfg.netIp) r.problems.push(`DHCP_WAIT_MS (${wait}) needs NET_IP, the static address to fall back to; got no NET_IP (without it the device uses DHCP only)`)
    checkSettings(r)
    return cfg
}

/** One log line describing `cfg`; secrets shown only as "(set)" or "(none)". */
export function describeConfig(cfg: Config): string {
    return (
        `device=${cfg.deviceId} cloud=${cfg.cloud} broker=${cfg.mqttTls ? "mqtts" : "mqtt"}://${cfg.mqttHost}:${cfg.mqttPort}` +
        ` user=${cfg.mqttUser || "(none)"} pass=${cfg.mqttPass ? "(set)" : "(none)"} keepalive=${cfg.keepAliveS}s report=${cfg.reportMs}ms` +
        ` sensor=${cfg.sensor} net=${cfg.net} ip=${cfg.netIp || "dhcp"} log=${cfg.logLevel}`
    )
}
