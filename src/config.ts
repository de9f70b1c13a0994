/**
 * The firmware's configuration: DeviceScript settings (`.env.defaults`, `.env.local`, or the
 * simulator runner's host link) read into one typed, validated `Config`. Every bad key is reported
 * with its value and what was expected; secrets are never echoed.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "@devicescript/settings"
import { toJson } from "./app/json"
import { INTERVAL_MAX, INTERVAL_MIN, findProperty } from "./app/properties"
import { base64Decode } from "./cloud/encoding"

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
    /** MQTT_HOST: broker host name or IP address (required for generic; a cloud's endpoint by default, see platformHost) */
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
    /** TOKEN_TTL: lifetime of minted tokens in seconds (OneNET, Azure, Tencent), TOKEN_TTL_MIN..TOKEN_TTL_MAX; default 3600 */
    tokenTtlS?: number
    /** CLOUD_PROPS: platform identifiers that replace the profile's defaults, model name -> identifier ("-" = leave out) */
    propNames?: { [name: string]: string }
    /** identity of CLOUD=alibaba */
    alibaba?: AlibabaConfig
    /** identity of CLOUD=onenet */
    onenet?: OneNetConfig
    /** identity of CLOUD=azure */
    azure?: AzureConfig
    /** identity of CLOUD=thingspeak */
    thingspeak?: ThingSpeakConfig
    /** identity of CLOUD=huawei */
    huawei?: HuaweiConfig
    /** identity of CLOUD=tencent */
    tencent?: TencentConfig
}

/** Alibaba Cloud IoT device certificate and endpoint. */
export interface AlibabaConfig {
    /** ALI_PK: ProductKey */
    productKey: string
    /** ALI_DN: DeviceName */
    deviceName: string
    /** ALI_SECRET: DeviceSecret; secret */
    deviceSecret: string
    /** ALI_CLIENT_ID: id before the `|` parameters ("" = `{ProductKey}.{DeviceName}`) */
    clientId: string
    /** ALI_REGION: region of a legacy public instance, default cn-shanghai */
    region: string
    /** ALI_INSTANCE: instance id of a new public or enterprise instance ("" = legacy endpoint) */
    instance: string
}

/** China Mobile OneNET device. */
export interface OneNetConfig {
    /** ONENET_PID: product id */
    productId: string
    /** ONENET_DEV: device name */
    deviceName: string
    /** ONENET_KEY: base64 access key (device key, or product key with ONENET_SCOPE=product); secret */
    key: string
    /** ONENET_SCOPE: which key ONENET_KEY is; default "device" */
    keyScope: "device" | "product"
}

/** Azure IoT Hub device with a symmetric key. */
export interface AzureConfig {
    /** AZURE_HOST: the hub's host name, e.g. `myhub.azure-devices.net` */
    hubHost: string
    /** AZURE_DEVICE: device id */
    deviceId: string
    /** AZURE_KEY: base64 device key; secret */
    deviceKey: string
}

/** ThingSpeak channel and MQTT device. */
export interface ThingSpeakConfig {
    /** TS_CHANNEL: channel id */
    channel: string
    /** TS_CLIENT: the MQTT device's client id */
    clientId: string
    /** TS_USER: the MQTT device's user name (default TS_CLIENT) */
    username: string
    /** TS_PASS: the MQTT device's password; secret */
    password: string
    /** TS_FIELDS: model property reported in field1..field8 ("" = field not sent) */
    fields: string[]
}

/** Huawei Cloud IoTDA device. */
export interface HuaweiConfig {
    /** HUAWEI_DEVICE: device id */
    deviceId: string
    /** HUAWEI_SECRET: device secret; secret */
    secret: string
    /** HUAWEI_SVC: service id of the product model holding the properties, default "Sensor" */
    serviceId: string
    /** HUAWEI_TSCHK: ask the platform to check the connect timestamp (needs the real time); default false */
    checkTimestamp: boolean
}

/** Tencent Cloud IoT Explorer device with key authentication. */
export interface TencentConfig {
    /** TENCENT_PID: product id */
    productId: string
    /** TENCENT_DEV: device name */
    deviceName: string
    /** TENCENT_PSK: base64 device secret; secret */
    psk: string
}

/** Shortest and longest TOKEN_TTL, seconds (10 s is for tests of token renewal). */
export const TOKEN_TTL_MIN = 10
export const TOKEN_TTL_MAX = 31536000
/** Default TOKEN_TTL, seconds. */
export const TOKEN_TTL_DEFAULT = 3600
/** Default TS_FIELDS: field1..field5 in model order. */
export const TS_FIELDS_DEFAULT = "temperature,humidity,led,interval,uptime"
/** Default ALI_REGION. */
export const ALI_REGION_DEFAULT = "cn-shanghai"
/** Default HUAWEI_SVC. */
export const HUAWEI_SVC_DEFAULT = "Sensor"

/** The broker host of a platform when MQTT_HOST is not set ("" when the platform has none to compute). */
export function platformHost(cfg: Config): string {
    const tls = cfg.mqttTls
    if (cfg.cloud === "alibaba" && cfg.alibaba) {
        const a = cfg.alibaba
        if (a.instance) return `${a.instance}.mqtt.iothub.aliyuncs.com`
        return `${a.productKey}.iot-as-mqtt.${a.region}.aliyuncs.com`
    }
    if (cfg.cloud === "onenet") return tls ? "mqttstls.heclouds.com" : "mqtts.heclouds.com"
    if (cfg.cloud === "azure" && cfg.azure) return cfg.azure.hubHost
    if (cfg.cloud === "thingspeak") return "mqtt3.thingspeak.com"
    if (cfg.cloud === "tencent" && cfg.tencent) return `${cfg.tencent.productId}.iotcloud.tencentdevices.com`
    return ""
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
    const hostText = "a host name or IP address (no scheme, no port)"
    const mqttHost = await r.str("MQTT_HOST", "", hostText, isHost)
    // IoT Hub accepts TLS only: TLS by default there (MQTT_TLS=false is for emulated hubs)
    const mqttTls = await r.bool("MQTT_TLS", cloud === "azure")
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
    const platform = cloud === "generic" ? undefined : await readPlatform(r, cloud, !!mqttHost)
    r.check()
    const cfg: Config = {
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
    if (platform) {
        cfg.tokenTtlS = platform.tokenTtlS
        cfg.propNames = platform.propNames
        cfg.alibaba = platform.alibaba
        cfg.onenet = platform.onenet
        cfg.azure = platform.azure
        cfg.thingspeak = platform.thingspeak
        cfg.huawei = platform.huawei
        cfg.tencent = platform.tencent
        // MQTT_HOST, else the platform's host setting (ALI_HOST, HUAWEI_HOST), else the computed endpoint
        if (!cfg.mqttHost) cfg.mqttHost = platform.host || platformHost(cfg)
    }
    return cfg
}

/** What readPlatform found (the Config's platform members, plus hosts that only feed the default). */
interface PlatformPart {
    tokenTtlS: number
    propNames?: { [name: string]: string }
    alibaba?: AlibabaConfig
    onenet?: OneNetConfig
    azure?: AzureConfig
    thingspeak?: ThingSpeakConfig
    huawei?: HuaweiConfig
    tencent?: TencentConfig
    /** the platform's own host setting (ALI_HOST, HUAWEI_HOST), "" when unset */
    host: string
}

/** A required setting of the chosen platform: its text, or "" with a problem naming the key. */
async function need(r: SettingsReader, cloud: string, key: string, what: string, secret = false, check?: (s: string) => boolean, expected?: string): Promise<string> {
    if ((await r.raw(key)) === undefined) {
        r.problems.push(`${key} must be set for CLOUD=${cloud} (${what}), got nothing`)
        return ""
    }
    return await r.str(key, "", expected || what, check, secret)
}

/** True for text made of letters, digits and the characters in `extra`. */
export function isIdText(s: string, extra: string): boolean {
    return s.length > 0 && charsIn(s, extra)
}

/** True for standard padded base64 that decodes to at least one byte. */
export function isBase64(s: string): boolean {
    try {
        return base64Decode(s).length > 0
    } catch (e) {
        return false
    }
}

/** True for a thing-model identifier: a letter or `_`, then letters, digits or `_` (at most 50). */
export function isIdentifier(s: string): boolean {
    if (!s.length || s.length > 50 || !charsIn(s, "_")) return false
    const c = s.charCodeAt(0)
    return !(c >= 0x30 && c <= 0x39)
}

/**
 * Parses CLOUD_PROPS, `name:identifier` pairs separated by commas (`temperature:temp,uptime:-`);
 * returns the map, or a description of the first problem.
 */
export function parsePropNames(text: string): { names?: { [name: string]: string }; error?: string } {
    const names: { [name: string]: string } = {}
    const used: string[] = []
    for (const part of text.split(",")) {
        const item = part.trim()
        if (!item.length) continue
        const colon = item.indexOf(":")
        if (colon < 0) return { error: `${JSON.stringify(item)} is not name:identifier` }
        const name = item.slice(0, colon).trim()
        const id = item.slice(colon + 1).trim()
        if (!findProperty(name)) return { error: `${JSON.stringify(name)} is not a property of the device` }
        if (names[name] !== undefined) return { error: `${name} is mapped twice` }
        if (id !== "-") {
            if (!isIdentifier(id)) return { error: `${JSON.stringify(id)} is not an identifier (letters, digits, '_', at most 50)` }
            if (used.indexOf(id) >= 0) return { error: `identifier ${id} is used twice` }
            used.push(id)
        }
        names[name] = id
    }
    return { names }
}

/**
 * Parses TS_FIELDS: up to 8 model property names separated by commas, position n = field n;
 * an empty position or "-" leaves that field out. Returns the list, or a description of the problem.
 */
export function parseTsFields(text: string): { fields?: string[]; error?: string } {
    const parts = text.split(",")
    if (parts.length > 8) return { error: `${parts.length} fields listed, ThingSpeak has 8` }
    const fields: string[] = []
    let any = false
    for (const part of parts) {
        const name = part.trim()
        if (!name.length || name === "-") {
            fields.push("")
            continue
        }
        if (!findProperty(name)) return { error: `${JSON.stringify(name)} is not a property of the device` }
        if (fields.indexOf(name) >= 0) return { error: `${name} is listed twice` }
        fields.push(name)
        any = true
    }
    if (!any) return { error: "no field is mapped" }
    return { fields }
}

/** Reads and checks the settings of `cloud` (only the chosen platform's keys are read). */
async function readPlatform(r: SettingsReader, cloud: CloudKind, hostSet: boolean): Promise<PlatformPart> {
    const out: PlatformPart = { tokenTtlS: await r.int("TOKEN_TTL", TOKEN_TTL_DEFAULT, TOKEN_TTL_MIN, TOKEN_TTL_MAX), host: "" }
    const propsText = await r.str("CLOUD_PROPS", "")
    if (propsText) {
        const p = parsePropNames(propsText)
        if (p.error) r.fail("CLOUD_PROPS", "name:identifier pairs separated by commas (" + p.error + ")", propsText)
        else out.propNames = p.names
    }
    const idChars = "_-.@:"
    const idOk = (s: string) => isIdText(s, idChars) && s.length <= 128
    const idText = "letters, digits, '_', '-', '.', '@' or ':'"
    const b64Text = "base64 text (the key as the console shows it)"
    const hostText = "a host name (no scheme, no port)"
    if (cloud === "alibaba") {
        const productKey = await need(r, cloud, "ALI_PK", "the ProductKey from the console", false, idOk, idText)
        const deviceName = await need(r, cloud, "ALI_DN", "the DeviceName", false, idOk, idText)
        const deviceSecret = await need(r, cloud, "ALI_SECRET", "the DeviceSecret", true)
        const clientId = await r.str("ALI_CLIENT_ID", "", "at most 64 characters without '|' or ','", s => s.length <= 64 && s.indexOf("|") < 0 && s.indexOf(",") < 0)
        const region = await r.str("ALI_REGION", ALI_REGION_DEFAULT, "a region id like cn-shanghai", s => isIdText(s, "-"))
        const instance = await r.str("ALI_INSTANCE", "", "an instance id like iot-06z00ax1o4qyvz9", s => isIdText(s, "-_"))
        const host = await r.str("ALI_HOST", "", hostText, isHost)
        out.alibaba = { productKey, deviceName, deviceSecret, clientId, region, instance }
        out.host = host
    } else if (cloud === "onenet") {
        const productId = await need(r, cloud, "ONENET_PID", "the product id", false, s => idOk(s) && s.indexOf("/") < 0, idText)
        const deviceName = await need(r, cloud, "ONENET_DEV", "the device name", false, s => idOk(s) && s.indexOf("/") < 0, idText)
        const key = await need(r, cloud, "ONENET_KEY", "the access key", true, isBase64, b64Text)
        const keyScope = await r.choice<"device" | "product">("ONENET_SCOPE", "device", ["device", "product"])
        out.onenet = { productId, deviceName, key, keyScope }
    } else if (cloud === "azure") {
        const hubHost = await need(r, cloud, "AZURE_HOST", "the hub's host name, e.g. myhub.azure-devices.net", false, s => isHost(s) && s.indexOf(":") < 0, hostText)
        const deviceId = await need(r, cloud, "AZURE_DEVICE", "the device id", false, s => idOk(s), idText)
        const deviceKey = await need(r, cloud, "AZURE_KEY", "the device's primary key", true, isBase64, b64Text)
        out.azure = { hubHost, deviceId, deviceKey }
    } else if (cloud === "thingspeak") {
        const channel = await need(r, cloud, "TS_CHANNEL", "the channel id", false, s => isDigits(s, 0), "the channel id (digits)")
        const clientId = await need(r, cloud, "TS_CLIENT", "the MQTT device's client id", false, s => isIdText(s, "_-.") && s.length <= 64, idText)
        const username = await r.str("TS_USER", clientId)
        const password = await need(r, cloud, "TS_PASS", "the MQTT device's password", true)
        const fieldsText = await r.str("TS_FIELDS", TS_FIELDS_DEFAULT)
        const f = parseTsFields(fieldsText)
        if (f.error) r.fail("TS_FIELDS", "property names separated by commas, position n = field n (" + f.error + ")", fieldsText)
        out.thingspeak = { channel, clientId, username, password, fields: f.fields || [] }
    } else if (cloud === "huawei") {
        const deviceId = await need(r, cloud, "HUAWEI_DEVICE", "the device id", false, s => idOk(s), idText)
        const secret = await need(r, cloud, "HUAWEI_SECRET", "the device secret", true)
        const serviceId = await r.str("HUAWEI_SVC", HUAWEI_SVC_DEFAULT, "a service id of the product model", s => isIdText(s, "_-") && s.length <= 64)
        const checkTimestamp = await r.bool("HUAWEI_TSCHK", false)
        const host = await r.str("HUAWEI_HOST", "", hostText, isHost)
        if (!host && !hostSet)
            r.problems.push("HUAWEI_HOST must be set for CLOUD=huawei (the MQTT access address from the IoTDA console), got nothing")
        out.huawei = { deviceId, secret, serviceId, checkTimestamp }
        out.host = host
    } else if (cloud === "tencent") {
        const productId = await need(r, cloud, "TENCENT_PID", "the product id", false, s => isIdText(s, "") && s.length <= 32, "letters and digits")
        const deviceName = await need(r, cloud, "TENCENT_DEV", "the device name", false, s => isIdText(s, "_-.:@") && s.length <= 48, idText)
        const psk = await need(r, cloud, "TENCENT_PSK", "the device secret", true, isBase64, b64Text)
        out.tencent = { productId, deviceName, psk }
    }
    return out
}

function setOrNone(v: string): string {
    return v ? "(set)" : "(none)"
}

/** The chosen platform's identity for describeConfig, secrets shown as "(set)"; "" for generic. */
export function describePlatform(cfg: Config): string {
    let s = ""
    if (cfg.cloud === "alibaba" && cfg.alibaba) {
        const a = cfg.alibaba
        s = ` ALI_PK=${a.productKey} ALI_DN=${a.deviceName} ALI_SECRET=${setOrNone(a.deviceSecret)}`
        if (a.clientId) s += ` ALI_CLIENT_ID=${a.clientId}`
    } else if (cfg.cloud === "onenet" && cfg.onenet) {
        const o = cfg.onenet
        s = ` ONENET_PID=${o.productId} ONENET_DEV=${o.deviceName} ONENET_KEY=${setOrNone(o.key)} ONENET_SCOPE=${o.keyScope}`
    } else if (cfg.cloud === "azure" && cfg.azure) {
        const z = cfg.azure
        s = ` AZURE_HOST=${z.hubHost} AZURE_DEVICE=${z.deviceId} AZURE_KEY=${setOrNone(z.deviceKey)}`
    } else if (cfg.cloud === "thingspeak" && cfg.thingspeak) {
        const t = cfg.thingspeak
        s = ` TS_CHANNEL=${t.channel} TS_CLIENT=${t.clientId} TS_USER=${t.username} TS_PASS=${setOrNone(t.password)} TS_FIELDS=${t.fields.join(",")}`
    } else if (cfg.cloud === "huawei" && cfg.huawei) {
        const h = cfg.huawei
        s = ` HUAWEI_DEVICE=${h.deviceId} HUAWEI_SECRET=${setOrNone(h.secret)} HUAWEI_SVC=${h.serviceId} HUAWEI_TSCHK=${h.checkTimestamp}`
    } else if (cfg.cloud === "tencent" && cfg.tencent) {
        const t = cfg.tencent
        s = ` TENCENT_PID=${t.productId} TENCENT_DEV=${t.deviceName} TENCENT_PSK=${setOrNone(t.psk)}`
    }
    const tokens = cfg.cloud === "onenet" || cfg.cloud === "azure" || cfg.cloud === "tencent"
    if (tokens && cfg.tokenTtlS) s += ` TOKEN_TTL=${cfg.tokenTtlS}s`
    if (s && cfg.propNames) {
        const pairs: string[] = []
        for (const k of Object.keys(cfg.propNames)) pairs.push(k + ":" + cfg.propNames[k])
        s += " CLOUD_PROPS=" + pairs.join(",")
    }
    return s
}

/** One log line describing `cfg` with secrets shown only as "(set)" or "(none)". */
export function describeConfig(cfg: Config): string {
    const scheme = cfg.mqttTls ? "mqtts" : "mqtt"
    return (
        `device=${cfg.deviceId} cloud=${cfg.cloud} broker=${scheme}://${cfg.mqttHost}:${cfg.mqttPort}` +
        ` user=${cfg.mqttUser ? cfg.mqttUser : "(none)"} pass=${setOrNone(cfg.mqttPass)}` +
        ` keepalive=${cfg.keepAliveS}s report=${cfg.reportMs}ms prefix=${cfg.topicPrefix}` +
        ` ha=${cfg.haDiscovery ? cfg.haPrefix : "off"} sensor=${cfg.sensor} net=${cfg.net} log=${cfg.logLevel}` +
        describePlatform(cfg)
    )
}
