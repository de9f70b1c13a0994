/**
 * VM tests of the platform profiles (src/cloud/{alibaba,onenet,azure,thingspeak,huawei,tencent}.ts),
 * their settings (src/config.ts) and createProfile (src/cloud/index.ts): topics, payload shapes,
 * command parsing (valid, invalid, garbage: an error reply with a code, never a throw), reply
 * shapes and token expiry. Credentials are printed as `##CRED {json}` lines (test identities
 * only) for test/node/clouds.test.ts to verify with the independent Node verifiers.
 */
import * as ds from "@devicescript/core"
import { Parsed, applyCommand } from "../../src/model/commands"
import { parseJson, toJson } from "../../src/util/json"
import { Device, Snapshot } from "../../src/model/properties"
import { AlibabaProfile } from "../../src/cloud/alibaba"
import { AzureProfile } from "../../src/cloud/azure"
import { GenericProfile } from "../../src/cloud/generic"
import { HuaweiProfile } from "../../src/cloud/huawei"
import { PLATFORMS, createProfile } from "../../src/cloud/index"
import { parsePropNames } from "../../src/cloud/settings"
import { parseTsFields } from "../../src/cloud/thingspeak"
import { OneNetProfile } from "../../src/cloud/onenet"
import { CloudProfile, Message } from "../../src/cloud/profile"
import { TencentProfile } from "../../src/cloud/tencent"
import { ThingSpeakProfile } from "../../src/cloud/thingspeak"
import { utf8ErrorAt } from "../../src/util/utf8"
import { Config, ConfigError, MAX_KEY_LENGTH, describeConfig, loadConfig } from "../../src/config"
import { describe, noise, test } from "./harness"
import { eq, has, lacks, ok } from "./asserts"

// ---- helpers ----

function buf(s: string): Buffer {
    return Buffer.from(s)
}
/** True when `s` is `min`..`max` characters, each in `alphabet`. */
function only(s: string, alphabet: string, min: number, max: number): boolean {
    if (typeof s !== "string" || s.length < min || s.length > max) return false
    for (let i = 0; i < s.length; i++) if (alphabet.indexOf(s.charAt(i)) < 0) return false
    return true
}
const DIGITS = "0123456789"
const HEXL = "0123456789abcdef"
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
/** `n` copies of the ASCII character `ch` (one buffer: an array of strings would eat the heap). */
function rep(ch: string, n: number): string {
    const b = Buffer.alloc(n)
    b.fillAt(0, n, ch.charCodeAt(0))
    return b.toString()
}

/** Keys of an object, sorted and joined (for shape checks). */
/** True when `a` sorts after `b` (code units; the runtime's `>` does not compare strings). */
function after(a: string, b: string): boolean {
    const n = a.length < b.length ? a.length : b.length
    for (let i = 0; i < n; i++) {
        const d = a.charCodeAt(i) - b.charCodeAt(i)
        if (d) return d > 0
    }
    return a.length > b.length
}
function keys(o: any): string {
    const k = Object.keys(o)
    for (let i = 1; i < k.length; i++) {
        const x = k[i]
        let j = i - 1
        while (j >= 0 && after(k[j], x)) {
            k[j + 1] = k[j]
            j--
        }
        k[j + 1] = x
    }
    return k.join(",")
}

/** A settings reader over a plain object; records the keys read in `seen`. */
function reader(values: any, seen?: string[]) {
    return async (key: string) => {
        if (seen) seen.push(key)
        return values[key]
    }
}
function merge(a: any, b?: any): any {
    const o: any = {}
    for (const k of Object.keys(a)) o[k] = a[k]
    if (b) for (const k of Object.keys(b)) o[k] = b[k]
    return o
}

// test identities (the reference vectors' where there is one); never real secrets
const ALI = { CLOUD: "alibaba", ALI_PK: "a1X2bEnP82z", ALI_DN: "example1", ALI_SECRET: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" }
const ONENET = { CLOUD: "onenet", ONENET_PID: "123123", ONENET_DEV: "mydev", ONENET_KEY: "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw=" }
const AZURE = { CLOUD: "azure", AZURE_HOST: "myiothub.azure-devices.net", AZURE_DEVICE: "my_device", AZURE_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }
const TS = { CLOUD: "thingspeak", TS_CHANNEL: 1234567, TS_CLIENT: "MRoXDjcfBTgdOCIxDiIMMDA", TS_PASS: "tspass-secret-1" }
const HUAWEI = { CLOUD: "huawei", HUAWEI_DEVICE: "65a1b2c3_dev1", HUAWEI_SECRET: "huawei-secret-1", HUAWEI_HOST: "abc123.st1.iotda-device.cn-north-4.myhuaweicloud.com" }
const TENCENT = { CLOUD: "tencent", TENCENT_PID: "ABCDEFGHIJ", TENCENT_DEV: "dev1", TENCENT_PSK: "MDEyMzQ1Njc4OWFiY2RlZg==" }
const SECRETS = ["ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe", "KuF3NT/jUBJ62LNBB", "MDEyMzQ1Njc4OWFiY2RlZjAx", "tspass-secret-1", "huawei-secret-1", "MDEyMzQ1Njc4OWFiY2RlZg=="]

/** 2030-01-01T00:00:00Z plus a bit, Unix ms. */
const NOW = 1893456000123

/** The common configuration, after the platform's `create` has read its settings (it fills the default host). */
async function cfgOf(values: any, extra?: any): Promise<Config> {
    const rd = reader(merge(values, extra))
    const c = await loadConfig(rd)
    await createProfile(c, m => {}, rd)
    return c
}
/** The profile of `values` (CLOUD picks the platform), logging to `log`. */
async function profOf(values: any, extra?: any, log?: (m: string) => void): Promise<CloudProfile> {
    const rd = reader(merge(values, extra))
    return await createProfile(await loadConfig(rd), log || (m => {}), rd)
}
/** What the platform's `create` logs for `values`. */
async function notesOf(values: any, extra?: any): Promise<string[]> {
    const lines: string[] = []
    await profOf(values, extra, m => lines.push(m))
    return lines
}
async function configError(values: any): Promise<string> {
    try {
        await profOf(values)
    } catch (e: any) {
        ok(e instanceof ConfigError, "expected a ConfigError, got " + e)
        return e.message
    }
    throw new Error("expected loadConfig and create to fail for " + toJson(values))
}

const SNAP: Snapshot = { temperature: 25, humidity: 48.75, led: true, interval: 5000, uptime: 42 }

function json(m: Message, what: string): any {
    ok(!!m, what + ": no message")
    try {
        return parseJson(m.payload)
    } catch (e: any) {
        throw new Error(`${what}: payload is not JSON: ${m.payload}`)
    }
}

/** Parses a command and checks it is an error with `code` whose message contains `part`. */
function parseErr(p: CloudProfile, topic: string, payload: string, code: number, part: string, id?: string): Parsed {
    const c = p.parseCommand(topic, buf(payload))
    ok(!!c, `${p.name} ${topic} ${payload}: not taken as a command`)
    if (c.kind !== "error") throw new Error(`${p.name} ${payload}: expected error ${code}, got ${c.kind}`)
    eq(c.code, code, `${p.name} ${payload}: code (${c.message})`)
    has(c.message, part, `${p.name} ${payload}: message`)
    if (id !== undefined) eq(c.id, id, `${p.name} ${payload}: id`)
    return c
}

/** Parses a command expecting `kind`. */
function parseOk(p: CloudProfile, topic: string, payload: string, kind: string, id: string): Parsed {
    const c = p.parseCommand(topic, buf(payload))
    ok(!!c, `${p.name} ${topic}: not taken as a command`)
    if (c.kind === "error") throw new Error(`${p.name} ${payload}: unexpected error ${c.code} ${c.message}`)
    eq(c.kind, kind, `${p.name} ${payload}: kind`)
    eq(c.id, id, `${p.name} ${payload}: id`)
    return c
}

/** Applies a command to a fresh device and returns the platform reply message. */
function replyFor(p: CloudProfile, c: Parsed, dev?: Device): Message {
    const d = dev || new Device(0, 5000)
    const out = applyCommand(d, c)
    return p.reply(c, out.reply)
}


function filled(n: number, byte: number): Buffer {
    const b = Buffer.alloc(n)
    b.fillAt(0, n, byte)
    return b
}

/** Feeds garbage to every command topic of `p`: parseCommand and reply must never throw. */
async function garbage(p: CloudProfile, topics: string[]) {
    const bodies: Buffer[] = [
        buf(""),
        buf("null"),
        buf("[]"),
        buf("{"),
        buf('{"id":'),
        buf('{"id":{"x":1}}'),
        buf('{"id":"1","params":null}'),
        buf('{"id":"1","params":[1,2]}'),
        buf('{"id":"1","params":{"led":{"a":[1,{"b":2}]}}}'),
        buf('{"method":7,"clientToken":[],"services":"x","command_name":5,"paras":"p"}'),
        buf('{"services":[null,1,{"properties":[]}]}'),
        buf("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
        filled(3000, 0x7b),
    ]
    for (let s = 1; s < 8; s++) bodies.push(noise(s * 37, s))
    for (const t of topics) {
        for (const b of bodies) {
            const c = p.parseCommand(t, b)
            if (c) {
                ok(c.kind === "error" || c.kind === "set" || c.kind === "toggle" || c.kind === "report", `${p.name}: odd kind ${c.kind}`)
                const m = replyFor(p, c)
                if (m) ok(typeof m.topic === "string" && typeof m.payload === "string", `${p.name}: reply shape`)
            }
            await ds_yield()
        }
    }
}

async function ds_yield() {
    await ds.sleep(0)
}

/**
 * Prints the credentials of `p` at `nowMs` for the Node side to verify, one `##CRED label|field|json`
 * line per field (console lines are cut at about 250 characters).
 */
function printCred(label: string, p: CloudProfile, nowMs: number, extra?: any) {
    const cp = p.connectParams(nowMs)
    const o: any = { platform: p.name, clientId: cp.clientId, username: cp.username, password: cp.password, expiresAtMs: cp.expiresAtMs, tls: cp.tls, nowMs }
    if (extra) for (const k of Object.keys(extra)) o[k] = extra[k]
    for (const k of Object.keys(o)) console.log("##CRED " + label + "|" + k + "|" + toJson(o[k]))
}

// ---- config ----

describe("cloud settings", () => {
    test("each platform loads with its identity and default endpoint", async () => {
        const a = await cfgOf(ALI)
        eq(a.cloud, "alibaba", "cloud")
        eq(((await profOf(ALI)) as any).id.productKey, "a1X2bEnP82z", "pk")
        has(a.mqttHost, ".cn-shanghai.", "region default")
        eq(a.mqttHost, "a1X2bEnP82z.iot-as-mqtt.cn-shanghai.aliyuncs.com", "alibaba legacy host")
        eq(a.mqttPort, 1883, "alibaba port")
        eq(a.mqttTls, false, "alibaba tls")
        eq((await cfgOf(ALI, { ALI_REGION: "ap-southeast-1" })).mqttHost, "a1X2bEnP82z.iot-as-mqtt.ap-southeast-1.aliyuncs.com", "region")
        eq((await cfgOf(ALI, { ALI_INSTANCE: "iot-06z00ax1o4qyvz9" })).mqttHost, "iot-06z00ax1o4qyvz9.mqtt.iothub.aliyuncs.com", "instance host")
        eq((await cfgOf(ALI, { ALI_HOST: "ali.example.com", ALI_INSTANCE: "iot-1" })).mqttHost, "ali.example.com", "ALI_HOST wins")
        const o = await cfgOf(ONENET)
        eq(o.mqttHost, "mqtts.heclouds.com", "onenet host")
        const op: any = await profOf(ONENET)
        eq(op.id.productId, "123123", "pid")
        eq(op.id.keyScope, "device", "scope")
        eq(op.ttlS, 3600, "ttl default")
        eq((await cfgOf(ONENET, { MQTT_TLS: true })).mqttHost, "mqttstls.heclouds.com", "onenet tls host")
        eq((await cfgOf(ONENET, { MQTT_TLS: true })).mqttPort, 8883, "onenet tls port")
        const z = await cfgOf(AZURE)
        eq(z.mqttHost, "myiothub.azure-devices.net", "azure host")
        eq(z.mqttTls, true, "azure tls by default")
        eq(z.mqttPort, 8883, "azure port")
        const t = await cfgOf(TS)
        eq(t.mqttHost, "mqtt3.thingspeak.com", "thingspeak host")
        const tp: any = await profOf(TS)
        eq(tp.id.channel, "1234567", "channel as text")
        eq(tp.id.username, "MRoXDjcfBTgdOCIxDiIMMDA", "user defaults to client id")
        eq(tp.id.fields.join(","), "temperature,humidity,led,interval,uptime", "fields default")
        const h = await cfgOf(HUAWEI)
        eq(h.mqttHost, HUAWEI.HUAWEI_HOST, "huawei host")
        const hp: any = await profOf(HUAWEI)
        eq(hp.id.serviceId, "Sensor", "service default")
        eq(hp.id.checkTimestamp, false, "tschk default")
        const c = await cfgOf(TENCENT)
        eq(c.mqttHost, "ABCDEFGHIJ.iotcloud.tencentdevices.com", "tencent host")
    })

    test("MQTT_HOST, MQTT_PORT and MQTT_TLS override the platform's endpoint", async () => {
        for (const v of [ALI, ONENET, AZURE, TS, HUAWEI, TENCENT]) {
            const c = await cfgOf(v, { MQTT_HOST: "127.0.0.1", MQTT_PORT: 18830, MQTT_TLS: false })
            eq(c.mqttHost, "127.0.0.1", v.CLOUD + " host")
            eq(c.mqttPort, 18830, v.CLOUD + " port")
            eq(c.mqttTls, false, v.CLOUD + " tls")
        }
        const h = await cfgOf(merge(HUAWEI, { HUAWEI_HOST: undefined }), { MQTT_HOST: "127.0.0.1" })
        eq(h.mqttHost, "127.0.0.1", "huawei without HUAWEI_HOST but with MQTT_HOST")
    })

    test("missing identity settings are named, all at once", async () => {
        const ali = await configError({ CLOUD: "alibaba" })
        has(ali, "config: ALI_PK must be set for CLOUD=alibaba (the ProductKey from the console), got nothing")
        has(ali, "config: ALI_DN must be set for CLOUD=alibaba")
        has(ali, "config: ALI_SECRET must be set for CLOUD=alibaba")
        eq(ali.split("\n").length, 3, "three problems: " + ali)
        const on = await configError({ CLOUD: "onenet", ONENET_PID: "1" })
        has(on, "ONENET_DEV must be set")
        has(on, "ONENET_KEY must be set")
        lacks(on, "ONENET_PID")
        has(await configError({ CLOUD: "azure" }), "AZURE_HOST must be set for CLOUD=azure")
        has(await configError({ CLOUD: "azure" }), "AZURE_KEY must be set")
        has(await configError({ CLOUD: "thingspeak", TS_CLIENT: "x", TS_PASS: "y" }), "TS_CHANNEL must be set for CLOUD=thingspeak")
        has(await configError({ CLOUD: "huawei", HUAWEI_DEVICE: "d", HUAWEI_SECRET: "s" }), "HUAWEI_HOST must be set for CLOUD=huawei")
        has(await configError({ CLOUD: "tencent", TENCENT_PID: "P", TENCENT_DEV: "d" }), "TENCENT_PSK must be set")
    })

    test("bad identity values name the key and hide secrets", async () => {
        const m = await configError(merge(ONENET, { ONENET_KEY: "not base64!" }))
        eq(m, "config: ONENET_KEY must be base64 text (the key as the console shows it), got (hidden)")
        eq(await configError(merge(AZURE, { AZURE_KEY: "abc" })), "config: AZURE_KEY must be base64 text (the key as the console shows it), got (hidden)")
        has(await configError(merge(TENCENT, { TENCENT_PSK: "%%%%" })), "TENCENT_PSK must be base64")
        has(await configError(merge(ONENET, { ONENET_PID: "12/3" })), 'config: ONENET_PID must be letters, digits')
        has(await configError(merge(AZURE, { AZURE_HOST: "https://hub" })), "config: AZURE_HOST must be a host name")
        has(await configError(merge(TS, { TS_CHANNEL: "abc" })), 'config: TS_CHANNEL must be the channel id (digits), got "abc"')
        has(await configError(merge(ALI, { ALI_CLIENT_ID: "a|b" })), "config: ALI_CLIENT_ID must be at most 64 characters without '|' or ','")
        has(await configError(merge(ALI, { ALI_SECRET: { x: 1 } })), "config: ALI_SECRET must be the DeviceSecret, got (hidden)")
        has(await configError(merge(ONENET, { ONENET_SCOPE: "group" })), "config: ONENET_SCOPE must be one of device|product")
    })

    test("TOKEN_TTL, CLOUD_PROPS and TS_FIELDS", async () => {
        eq(((await profOf(ONENET, { TOKEN_TTL: 60 })) as any).ttlS, 60, "ttl")
        eq(await configError(merge(ONENET, { TOKEN_TTL: 5 })), "config: TOKEN_TTL must be an integer 10..31536000, got 5")
        const c: any = await profOf(ALI, { CLOUD_PROPS: "temperature:Temp, uptime:-" })
        eq(c.props["temperature"], "Temp", "mapped")
        eq(c.props["uptime"], "-", "left out")
        has(await configError(merge(ALI, { CLOUD_PROPS: "temp:x" })), 'config: CLOUD_PROPS must be name:identifier pairs separated by commas ("temp" is not a property of the device)')
        has(await configError(merge(ALI, { CLOUD_PROPS: "led" })), '"led" is not name:identifier')
        has(await configError(merge(ALI, { CLOUD_PROPS: "led:a,interval:a" })), "identifier a is used twice")
        has(await configError(merge(ALI, { CLOUD_PROPS: "led:9x" })), '"9x" is not an identifier')
        eq(parsePropNames("") !== undefined, true, "empty map")
        eq(((await profOf(TS, { TS_FIELDS: "humidity,,temperature" })) as any).id.fields.join(","), "humidity,,temperature", "gap")
        has(await configError(merge(TS, { TS_FIELDS: "a,b" })), 'config: TS_FIELDS must be property names separated by commas, position n = field n ("a" is not a property of the device)')
        has(parseTsFields("temperature,temperature").error, "listed twice")
        has(parseTsFields("1,2,3,4,5,6,7,8,9").error, "9 fields listed")
        has(parseTsFields(",-,").error, "no field is mapped")
    })

    test("only the chosen platform's keys are read, and every key fits 13 characters", async () => {
        const seen: string[] = []
        await createProfile(await loadConfig(reader({ MQTT_HOST: "h" }, seen)), m => {}, reader({ MQTT_HOST: "h" }, seen))
        for (const k of seen) ok(k.indexOf("ALI_") < 0 && k.indexOf("ONENET") < 0 && k !== "TOKEN_TTL" && k !== "CLOUD_PROPS", "generic read " + k)
        for (const v of [ALI, ONENET, AZURE, TS, HUAWEI, TENCENT]) {
            const s: string[] = []
            const rd = reader(v, s)
            await createProfile(await loadConfig(rd), m => {}, rd)
            for (const k of s) ok(k.length <= MAX_KEY_LENGTH, `key ${k} is longer than ${MAX_KEY_LENGTH}`)
            // tokens are minted on OneNET, Azure and Tencent; ThingSpeak maps fields with TS_FIELDS
            const tokens = v.CLOUD === "onenet" || v.CLOUD === "azure" || v.CLOUD === "tencent"
            eq(s.indexOf("TOKEN_TTL") >= 0, tokens, v.CLOUD + " reads TOKEN_TTL")
            eq(s.indexOf("CLOUD_PROPS") >= 0, v.CLOUD !== "thingspeak", v.CLOUD + " reads CLOUD_PROPS")
        }
        // every platform is reachable and names its kind
        eq(PLATFORMS.map(p => p.kind).join(","), "generic,alibaba,onenet,azure,thingspeak,huawei,tencent", "platforms")
    })

    test("the platform logs its identity but never a secret; describeConfig is one line without secrets", async () => {
        for (const v of [ALI, ONENET, AZURE, TS, HUAWEI, TENCENT]) {
            const lines = await notesOf(v)
            const d = describeConfig(await cfgOf(v)) + "\n" + lines.join("\n")
            for (const s of SECRETS) lacks(d, s, v.CLOUD)
            has(lines.join("\n"), "(set)", v.CLOUD)
            has(d, "cloud=" + v.CLOUD, v.CLOUD)
            eq(describeConfig(await cfgOf(v)).indexOf("\n"), -1, "one line")
        }
        has((await notesOf(ALI)).join("\n"), "ALI_PK=a1X2bEnP82z ALI_DN=example1 ALI_SECRET=(set)")
    })
})

describe("createProfile", () => {
    test("picks the profile named by CLOUD", async () => {
        const quiet = (m: string) => {}
        eq((await profOf({ MQTT_HOST: "h" }, undefined, quiet)) instanceof GenericProfile, true, "generic")
        eq((await profOf(ALI, undefined, quiet)) instanceof AlibabaProfile, true, "alibaba")
        eq((await profOf(ONENET, undefined, quiet)) instanceof OneNetProfile, true, "onenet")
        eq((await profOf(AZURE, undefined, quiet)) instanceof AzureProfile, true, "azure")
        eq((await profOf(TS, undefined, quiet)) instanceof ThingSpeakProfile, true, "thingspeak")
        eq((await profOf(HUAWEI, undefined, quiet)) instanceof HuaweiProfile, true, "huawei")
        eq((await profOf(TENCENT, undefined, quiet)) instanceof TencentProfile, true, "tencent")
        const c = await cfgOf(ALI)
        ;(c as any).cloud = "aws"
        let msg = ""
        try {
            await createProfile(c, quiet)
        } catch (e: any) {
            msg = e.message
        }
        has(msg, 'unknown CLOUD "aws"')
    })

    test("platform flags: TLS and time", async () => {
        const flags: string[] = []
        for (const v of [ALI, ONENET, AZURE, TS, HUAWEI, TENCENT]) {
            const p = (await profOf(v, undefined, m => {}))
            flags.push(`${p.name}:${p.requiresTls ? "tls" : "-"}:${p.needsTime ? "time" : "-"}`)
        }
        eq(flags.join(" "), "alibaba:-:- onenet:-:time azure:tls:time thingspeak:-:- huawei:-:- tencent:-:time", "flags")
        eq((await profOf(HUAWEI, { HUAWEI_TSCHK: true }, m => {})).needsTime, true, "huawei with timestamp check")
    })

    test("notes: ThingSpeak takes no commands, Azure without TLS, Alibaba plain", async () => {
        const lines: string[] = []
        await profOf(TS, { REPORT_MS: 5000 }, m => lines.push(m))
        has(lines.join("\n"), "ThingSpeak has no command channel, so the device takes no commands")
        has(lines.join("\n"), "REPORT_MS=5000 is below the 15000 ms")
        has(lines.join("\n"), "field1=temperature field2=humidity")
        has((await notesOf(AZURE, { MQTT_TLS: false })).join("\n"), "IoT Hub accepts TLS connections only")
        lacks((await notesOf(AZURE)).join("\n"), "TLS connections only", "azure with TLS: nothing to warn about")
        has((await notesOf(ALI)).join("\n"), "securemode=3")
        has((await notesOf(ALI, { MQTT_KEEPALV: 10 })).join("\n"), "clamped")
    })

    test("no profile publishes a status, will or discovery message", async () => {
        for (const v of [ALI, ONENET, AZURE, TS, HUAWEI, TENCENT]) {
            const p = (await profOf(v, undefined, m => {}))
            eq(p.status(true), undefined, v.CLOUD + " status")
            eq(p.discovery(0), undefined, v.CLOUD + " discovery")
            eq(p.connectParams(NOW).will, undefined, v.CLOUD + " will")
        }
    })

    test("connectParams without an identity throws naming the setting", async () => {
        const base = await cfgOf({ MQTT_HOST: "h" })
        const cases: any[] = [
            [new AlibabaProfile(base, { productKey: "", deviceName: "", deviceSecret: "", clientId: "" }), "ALI_PK"],
            [new OneNetProfile(base, { productId: "", deviceName: "", key: "", keyScope: "device" }), "ONENET_PID"],
            [new AzureProfile(base, { hubHost: "", deviceId: "", deviceKey: "" }), "AZURE_HOST"],
            [new ThingSpeakProfile(base, { channel: "", clientId: "", username: "", password: "", fields: [] }), "TS_CHANNEL"],
            [new HuaweiProfile(base, { deviceId: "", secret: "", serviceId: "Sensor", checkTimestamp: false }), "HUAWEI_DEVICE"],
            [new TencentProfile(base, { productId: "", deviceName: "", psk: "" }), "TENCENT_PID"],
        ]
        for (const c of cases) {
            let msg = ""
            try {
                ;(c[0] as CloudProfile).connectParams(NOW)
            } catch (e: any) {
                msg = e.message
            }
            has(msg, c[1], (c[0] as CloudProfile).name)
        }
    })
})

// ---- UTF-8 ----

describe("utf8", () => {
    test("valid UTF-8 passes, every kind of invalid sequence is found", async () => {
        const valid = ["", "616263", "c3a9", "e282ac", "f09f9880", "7bc3a97d", "efbfbf", "f48fbfbf"]
        for (const h of valid) eq(utf8ErrorAt(Buffer.from(h, "hex")), -1, "valid " + h)
        const invalid: any[] = [
            ["80", 0], // lone continuation
            ["c080", 0], // overlong
            ["c1bf", 0], // overlong
            ["e08080", 0], // overlong
            ["eda080", 0], // surrogate
            ["f4908080", 0], // above U+10FFFF
            ["f5808080", 0], // not a lead byte
            ["ff", 0],
            ["61c3", 1], // truncated
            ["e282", 0], // truncated
            ["c328", 0], // bad continuation
            ["6162e228a1", 2],
        ]
        for (const c of invalid) eq(utf8ErrorAt(Buffer.from(c[0], "hex")), c[1], "invalid " + c[0])
    })

    test("invalid UTF-8 in a command is a 400 reply on every platform, not a VM crash", async () => {
        const bad = Buffer.from("7b226964223a2231222c22706172616d73223a7b226c6564223a22c6"+"7e227d7d", "hex")
        const cases: any[] = [
            [ALI, "/sys/a1X2bEnP82z/example1/thing/service/property/set"],
            [ONENET, "$sys/123123/mydev/thing/property/set"],
            [AZURE, "$iothub/methods/POST/set/?$rid=1"],
            [AZURE, "devices/my_device/messages/devicebound/"],
            [HUAWEI, "$oc/devices/65a1b2c3_dev1/sys/commands/request_id=1"],
            [TENCENT, "$thing/down/property/ABCDEFGHIJ/dev1"],
        ]
        for (const c of cases) {
            const p = (await profOf(c[0], undefined, m => {}))
            const r = p.parseCommand(c[1], bad)
            ok(r && r.kind === "error", p.name + ": an error")
            eq((r as any).code, 400, p.name + " code")
            has((r as any).message, "not valid UTF-8 (byte 27)", p.name)
            const m = replyFor(p, r)
            ok(!!m && m.payload.length > 0, p.name + ": answered")
        }
    })
})

// ---- Alibaba ----

describe("alibaba profile", () => {
    test("connect parameters", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        const cp = p.connectParams(NOW)
        eq(cp.clientId, "a1X2bEnP82z.example1|securemode=3,signmethod=hmacsha256|", "client id")
        eq(cp.username, "example1&a1X2bEnP82z", "user")
        eq(cp.password.length, 64, "hex password")
        eq(cp.expiresAtMs, 0, "never expires")
        eq(cp.tls, false, "tls")
        eq(cp.keepAliveS, 60, "keepalive")
        eq(cp.cleanSession, true, "clean")
        eq((await profOf(ALI, { MQTT_TLS: true }, m => {})).connectParams(NOW).clientId, "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256|", "tls mode")
        eq((await profOf(ALI, { MQTT_KEEPALV: 3600 }, m => {})).connectParams(NOW).keepAliveS, 1200, "keepalive clamped")
        printCred("alibaba plain", p, NOW, { tlsConn: false })
        printCred("alibaba own client id", (await profOf(ALI, { ALI_CLIENT_ID: "my-dev.1", MQTT_TLS: true }, m => {})), NOW, { tlsConn: true })
    })

    test("subscriptions and report", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        eq(toJson(p.subscriptions()), '[{"filter":"/sys/a1X2bEnP82z/example1/thing/service/property/set","qos":1},{"filter":"/sys/a1X2bEnP82z/example1/thing/service/+","qos":1}]', "subs")
        const m = p.report(SNAP, NOW)
        eq(m.topic, "/sys/a1X2bEnP82z/example1/thing/event/property/post", "topic")
        eq(m.qos, 1, "qos")
        const j = json(m, "report")
        eq(keys(j), "id,method,params,version", "keys")
        ok(only(j.id, DIGITS, 1, 10), "decimal string id: " + j.id)
        eq(j.version, "1.0", "version")
        eq(j.method, "thing.event.property.post", "method")
        eq(keys(j.params), "CurrentHumidity,CurrentTemperature,LightSwitch,ReportInterval,Uptime", "identifiers")
        // the sample's own time per property (Alink {"value":...,"time":...})
        eq(j.params.LightSwitch.value, 1, "bool as 1")
        eq(j.params.LightSwitch.time, NOW, "the sample's time")
        eq(j.params.CurrentHumidity.value, 48.75, "humidity")
        has(m.payload, '"CurrentTemperature":{"value":25.0,"time":' + NOW + "}", "float keeps its decimal point")
        has(m.payload, '"ReportInterval":{"value":5000,', "int stays int")
        const j2 = json(p.report(SNAP, 0), "second report")
        eq(parseInt(j2.id), parseInt(j.id) + 1, "ids count up")
        eq(j2.params.LightSwitch, 1, "time unknown: bare values")
        has(p.report(SNAP, 0).payload, '"CurrentTemperature":25.0,', "float keeps its decimal point")
    })

    test("CLOUD_PROPS renames and leaves out", async () => {
        const p = (await profOf(ALI, { CLOUD_PROPS: "temperature:Temp,uptime:-,led:Light" }, m => {}))
        const j = json(p.report(SNAP, NOW), "report")
        eq(keys(j.params), "CurrentHumidity,Light,ReportInterval,Temp", "renamed")
        const c = parseOk(p, "/sys/a1X2bEnP82z/example1/thing/service/property/set", '{"id":"5","params":{"Light":0}}', "set", "5")
        eq(toJson((c as any).params), '{"led":false}', "mapped back")
        parseErr(p, "/sys/a1X2bEnP82z/example1/thing/service/property/set", '{"id":"6","params":{"LightSwitch":0}}', 404, 'unknown property "LightSwitch"')
    })

    test("property set and its reply", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        const t = "/sys/a1X2bEnP82z/example1/thing/service/property/set"
        const c = parseOk(p, t, '{"id":"7","version":"1.0","params":{"LightSwitch":1,"ReportInterval":2000},"method":"thing.service.property.set"}', "set", "7")
        eq(toJson((c as any).params), '{"led":true,"interval":2000}', "params")
        const dev = new Device(0, 5000)
        const r = replyFor(p, c, dev)
        eq(r.topic, t + "_reply", "reply topic")
        eq(r.payload, '{"id":"7","code":200,"data":{}}', "reply")
        eq(dev.ledOn(), true, "applied")
        const n = parseOk(p, t, '{"id":123,"params":{"LightSwitch":0}}', "set", "123")
        eq(json(replyFor(p, n), "numeric id").id, "123", "numeric id echoed as a string")
    })

    test("service calls and their replies", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        const t = "/sys/a1X2bEnP82z/example1/thing/service/toggle"
        const c = parseOk(p, t, '{"id":"8","version":"1.0","params":{},"method":"thing.service.toggle"}', "toggle", "8")
        const r = replyFor(p, c)
        eq(r.topic, t + "_reply", "topic")
        eq(r.payload, '{"id":"8","code":200,"data":{"LightSwitch":1}}', "toggle reply")
        const c2 = parseOk(p, t, '{"id":"9","params":{"name":"LightSwitch"}}', "toggle", "9")
        eq((c2 as any).name, "led", "toggle target mapped")
        parseOk(p, "/sys/a1X2bEnP82z/example1/thing/service/report", '{"id":"10"}', "report", "10")
        const s = parseOk(p, "/sys/a1X2bEnP82z/example1/thing/service/set", '{"id":"11","params":{"ReportInterval":"3000"}}', "set", "11")
        eq(json(replyFor(p, s), "set reply").data.ReportInterval, 3000, "service reply carries the output")
    })

    test("invalid commands get error replies with codes", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        const set = "/sys/a1X2bEnP82z/example1/thing/service/property/set"
        const bad = parseErr(p, set, "{not json", 400, "not valid JSON")
        const r = replyFor(p, bad)
        eq(r.topic, set + "_reply", "bad JSON still answered on the reply topic")
        const rj = json(r, "error reply")
        eq(rj.code, 400, "code")
        has(rj.message, "not valid JSON")
        eq(keys(rj), "code,data,id,message", "error reply keys")
        parseErr(p, set, '{"params":{"LightSwitch":1}}', 400, "id is missing", "")
        parseErr(p, set, '{"id":"1","params":{"LightSwitch":"maybe"}}', 422, "led must be a boolean", "1")
        parseErr(p, set, '{"id":"1","params":{"CurrentTemperature":20}}', 403, "temperature is read-only", "1")
        parseErr(p, set, '{"id":"1","params":{"ReportInterval":10}}', 422, "out of range", "1")
        parseErr(p, set, '{"id":"1","params":[]}', 400, "params must be an object", "1")
        parseErr(p, set, '{"id":"1"}', 400, "params must be an object", "1")
        parseErr(p, "/sys/a1X2bEnP82z/example1/thing/service/reboot", '{"id":"2"}', 404, 'unknown command "reboot"', "2")
        parseErr(p, "/sys/a1X2bEnP82z/example1/thing/service/toggle", '{"id":"3","method":"thing.service.x"}', 400, 'method must be "thing.service.toggle"', "3")
        const big = parseErr(p, set, '{"id":"1","params":{"x":"' + rep("a", 2100) + '"}}', 413, "at most 2048")
        eq(json(replyFor(p, big), "413").code, 413, "413 reply")
    })

    test("topics that are not commands are ignored", async () => {
        const p = (await profOf(ALI, undefined, m => {}))
        eq(p.parseCommand("/sys/a1X2bEnP82z/example1/thing/service/toggle_reply", buf('{"id":"1","code":200}')), undefined, "our reply")
        eq(p.parseCommand("/sys/a1X2bEnP82z/example1/thing/service/property/set_reply", buf("{}")), undefined, "set_reply")
        eq(p.parseCommand("/sys/a1X2bEnP82z/example1/thing/event/property/post_reply", buf("{}")), undefined, "post_reply")
        eq(p.parseCommand("/sys/other/dev/thing/service/property/set", buf("{}")), undefined, "another device")
        eq(p.parseCommand("", buf("{}")), undefined, "empty topic")
        eq(p.reply({ kind: "report", id: "1" }, { id: "1", code: 200 }), undefined, "no context, no reply")
        await garbage(p, ["/sys/a1X2bEnP82z/example1/thing/service/property/set", "/sys/a1X2bEnP82z/example1/thing/service/toggle"])
    })
})

// ---- OneNET ----

describe("onenet profile", () => {
    const BASE = "$sys/123123/mydev/thing/"

    test("connect parameters and token expiry", async () => {
        const p = (await profOf(ONENET, { TOKEN_TTL: 600 }, m => {}))
        const cp = p.connectParams(NOW)
        eq(cp.clientId, "mydev", "client id")
        eq(cp.username, "123123", "user")
        const et = Math.floor(NOW / 1000) + 600
        has(cp.password, `version=2018-10-31&res=products%2F123123%2Fdevices%2Fmydev&et=${et}&method=sha256&sign=`, "token")
        eq(cp.expiresAtMs, et * 1000, "expires at et")
        eq(cp.host, "mqtts.heclouds.com", "host")
        ok(p.connectParams(NOW + 60000).expiresAtMs === cp.expiresAtMs + 60000, "a later call renews the expiry")
        printCred("onenet device key", p, NOW)
        printCred("onenet product key", (await profOf(ONENET, { ONENET_SCOPE: "product", ONENET_KEY: "MDEyMzQ1Njc4OWFiY2RlZg==" }, m => {})), NOW, { scope: "product" })
    })

    test("subscriptions and report", async () => {
        const p = (await profOf(ONENET, undefined, m => {}))
        eq(toJson(p.subscriptions()), '[{"filter":"$sys/123123/mydev/thing/#","qos":1}]', "subs")
        const m = p.report(SNAP, NOW)
        eq(m.topic, BASE + "property/post", "topic")
        const j = json(m, "report")
        eq(keys(j), "id,params,version", "keys")
        ok(only(j.id, DIGITS, 1, 13), "id: decimal string of at most 13 digits: " + j.id)
        eq(keys(j.params), "humi,interval,led,temp,uptime", "identifiers")
        eq(j.params.temp.value, 25, "value")
        eq(j.params.temp.time, NOW, "time")
        eq(j.params.led.value, true, "bool stays bool")
        eq(keys(j.params.humi), "time,value", "value and time")
        eq(keys(json(p.report(SNAP, 0), "no time").params.temp), "value", "no time while unknown")
    })

    test("property set, service invoke and replies", async () => {
        const p = (await profOf(ONENET, undefined, m => {}))
        const c = parseOk(p, BASE + "property/set", '{"id":"9","version":"1.0","params":{"led":true,"interval":"2500"}}', "set", "9")
        eq(toJson((c as any).params), '{"led":true,"interval":2500}', "params")
        const r = replyFor(p, c)
        eq(r.topic, BASE + "property/set_reply", "reply topic (underscore)")
        eq(r.payload, '{"id":"9","code":200,"msg":"success"}', "reply")
        const s = parseOk(p, BASE + "service/toggle/invoke", '{"id":"10","version":"1.0","params":{}}', "toggle", "10")
        const sr = replyFor(p, s)
        eq(sr.topic, BASE + "service/toggle/invoke_reply", "invoke reply topic")
        eq(sr.payload, '{"id":"10","code":200,"msg":"success","data":{"led":true}}', "invoke reply")
    })

    test("invalid commands get error replies with codes", async () => {
        const p = (await profOf(ONENET, undefined, m => {}))
        const t = BASE + "property/set"
        const e = parseErr(p, t, "garbage", 400, "not valid JSON")
        const j = json(replyFor(p, e), "error reply")
        eq(keys(j), "code,id,msg", "error reply keys")
        has(j.msg, "not valid JSON")
        parseErr(p, t, '{"version":"1.0","params":{"led":true}}', 400, "id is missing")
        parseErr(p, t, '{"id":"1","params":{"led":"dim"}}', 422, "led must be a boolean")
        parseErr(p, t, '{"id":"1","params":{"temp":30}}', 403, "temperature is read-only")
        parseErr(p, t, '{"id":"1","params":{"colour":1}}', 404, 'unknown property "colour"')
        parseErr(p, BASE + "service/reboot/invoke", '{"id":"2"}', 404, 'unknown command "reboot"')
        eq(json(replyFor(p, parseErr(p, t, '{"id":"3","params":{"led":5}}', 422, "boolean")), "422").code, 422, "422 reply")
    })

    test("replies to our posts and other topics are ignored", async () => {
        const p = (await profOf(ONENET, undefined, m => {}))
        eq(p.parseCommand(BASE + "property/post/reply", buf('{"id":"1","code":200,"msg":"success"}')), undefined, "post/reply")
        eq(p.parseCommand(BASE + "property/set_reply", buf("{}")), undefined, "our set_reply")
        eq(p.parseCommand(BASE + "service/toggle/invoke_reply", buf("{}")), undefined, "our invoke_reply")
        eq(p.parseCommand(BASE + "service/invoke", buf("{}")), undefined, "no identifier")
        eq(p.parseCommand("$sys/1/other/thing/property/set", buf("{}")), undefined, "other device")
        await garbage(p, [BASE + "property/set", BASE + "service/toggle/invoke"])
    })
})

// ---- Azure ----

describe("azure profile", () => {
    test("connect parameters and SAS expiry", async () => {
        const p = (await profOf(AZURE, { TOKEN_TTL: 900 }, m => {}))
        const cp = p.connectParams(NOW)
        eq(cp.clientId, "my_device", "client id")
        eq(cp.username, "myiothub.azure-devices.net/my_device/?api-version=2021-04-12", "user")
        const se = Math.floor(NOW / 1000) + 900
        has(cp.password, "SharedAccessSignature sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device&sig=", "SAS")
        has(cp.password, "&se=" + se, "se")
        eq(cp.expiresAtMs, se * 1000, "expiry")
        eq(cp.tls, true, "TLS")
        eq(cp.port, 8883, "port")
        printCred("azure", p, NOW)
    })

    test("subscriptions and telemetry", async () => {
        const p = (await profOf(AZURE, undefined, m => {}))
        const subs = p.subscriptions().map(s => s.filter).join(" ")
        eq(subs, "devices/my_device/messages/devicebound/# $iothub/methods/POST/# $iothub/twin/PATCH/properties/desired/# $iothub/twin/res/#", "subs")
        const m = p.report(SNAP, NOW)
        eq(m.topic, "devices/my_device/messages/events/$.ct=application%2Fjson&$.ce=utf-8", "topic")
        const j = json(m, "telemetry")
        eq(keys(j), "humidity,interval,led,temperature,ts,uptime", "keys")
        eq(j.ts, NOW, "ts")
        eq(j.led, true, "led")
        eq(keys(json(p.report(SNAP, 0), "no ts")), "humidity,interval,led,temperature,uptime", "no ts while unknown")
        const q = (await profOf(AZURE, { CLOUD_PROPS: "temperature:-,humidity:-,led:-,interval:-,uptime:-" }, m => {}))
        eq(q.report(SNAP, NOW).payload, '{"ts":' + NOW + "}", "everything left out: still JSON")
        eq(q.report(SNAP, 0).payload, "{}", "nothing at all")
    })

    test("direct methods and their responses", async () => {
        const p = (await profOf(AZURE, undefined, m => {}))
        const c = parseOk(p, "$iothub/methods/POST/set/?$rid=42", '{"led":true,"interval":1500}', "set", "42")
        const dev = new Device(0, 5000)
        const r = replyFor(p, c, dev)
        eq(r.topic, "$iothub/methods/res/200/?$rid=42", "response topic")
        eq(r.payload, '{"code":200,"data":{"led":true,"interval":1500}}', "response")
        eq(dev.intervalMs(), 1500, "applied")
        const t = parseOk(p, "$iothub/methods/POST/toggle/?$rid=43", "null", "toggle", "43")
        eq(json(replyFor(p, t), "toggle").data.led, true, "toggle result")
        parseOk(p, "$iothub/methods/POST/toggle/?$rid=44", "", "toggle", "44")
        parseOk(p, "$iothub/methods/POST/report/?$rid=45", "{}", "report", "45")
        const bad = parseErr(p, "$iothub/methods/POST/reboot/?$rid=46", "{}", 404, 'unknown command "reboot"', "46")
        const br = replyFor(p, bad)
        eq(br.topic, "$iothub/methods/res/404/?$rid=46", "404 topic")
        has(json(br, "404").message, "unknown command")
        const wrong = parseErr(p, "$iothub/methods/POST/set/?$rid=47", '{"led":"dim"}', 422, "led must be a boolean", "47")
        eq(replyFor(p, wrong).topic, "$iothub/methods/res/422/?$rid=47", "422 topic")
        const js = parseErr(p, "$iothub/methods/POST/set/?$rid=48", "{{", 400, "not valid JSON", "48")
        eq(replyFor(p, js).topic, "$iothub/methods/res/400/?$rid=48", "400 topic")
        const norid = p.parseCommand("$iothub/methods/POST/set/", buf("{}"))
        ok(norid && norid.kind === "error", "no rid: an error")
        eq(replyFor(p, norid), undefined, "no rid: nobody to answer")
    })

    test("cloud-to-device messages answered as telemetry", async () => {
        const p = (await profOf(AZURE, undefined, m => {}))
        const pre = "devices/my_device/messages/devicebound/"
        const c = parseOk(p, pre + "%24.to=%2Fdevices%2Fmy_device%2Fmessages%2FdeviceBound", '{"id":"c1","params":{"led":true}}', "set", "c1")
        const r = replyFor(p, c)
        eq(r.topic, "devices/my_device/messages/events/$.ct=application%2Fjson&$.ce=utf-8&type=reply", "reply topic")
        eq(r.payload, '{"id":"c1","code":200,"data":{"led":true}}', "reply")
        parseOk(p, pre, '{"id":"c2","method":"toggle"}', "toggle", "c2")
        parseOk(p, pre + "%24.mid=1&method=report", '{"id":"c3"}', "report", "c3")
        const u = parseErr(p, pre, '{"id":"c4","method":"explode"}', 404, 'unknown command "explode"', "c4")
        eq(json(replyFor(p, u), "c2d error").code, 404, "error reply")
        parseErr(p, pre, '{"id":"c5","method":5}', 400, "method must be a command name", "c5")
        parseErr(p, pre, "", 400, "payload is empty")
    })

    test("desired twin patches are answered with reported properties", async () => {
        const p = (await profOf(AZURE, undefined, m => {}))
        const c = parseOk(p, "$iothub/twin/PATCH/properties/desired/?$version=7", '{"interval":2000,"$version":7}', "set", "7")
        const r = replyFor(p, c)
        ok(r.topic.startsWith("$iothub/twin/PATCH/properties/reported/?$rid="), "reported topic: " + r.topic)
        eq(r.payload, '{"interval":2000}', "reported values")
        const r2 = replyFor(p, c)
        ok(r2.topic !== r.topic, "a new $rid per patch")
        const e = parseErr(p, "$iothub/twin/PATCH/properties/desired/?$version=8", '{"interval":1,"$version":8}', 422, "out of range")
        eq(keys(json(replyFor(p, e), "twin error").lastError), "code,message", "lastError")
        eq(p.parseCommand("$iothub/twin/PATCH/properties/desired/?$version=9", buf('{"$version":9}')), undefined, "nothing of ours")
        eq(p.parseCommand("$iothub/twin/res/204/?$rid=1&$version=3", buf("")), undefined, "twin responses are not commands")
        eq(p.parseCommand("devices/other/messages/devicebound/", buf("{}")), undefined, "other device")
        await garbage(p, ["$iothub/methods/POST/set/?$rid=1", "devices/my_device/messages/devicebound/", "$iothub/twin/PATCH/properties/desired/?$version=1"])
    })
})

// ---- ThingSpeak ----

describe("thingspeak profile", () => {
    test("connect parameters, fields and QoS 0; no commands", async () => {
        const p = (await profOf(TS, { TS_USER: "user1" }, m => {}))
        const cp = p.connectParams(NOW)
        eq(cp.clientId, "MRoXDjcfBTgdOCIxDiIMMDA", "client id")
        eq(cp.username, "user1", "user")
        eq(cp.password, "tspass-secret-1", "password")
        eq(cp.expiresAtMs, 0, "no expiry")
        eq(p.subscriptions().length, 0, "no subscriptions")
        const m = p.report(SNAP, NOW)
        eq(m.topic, "channels/1234567/publish", "topic")
        eq(m.qos, 0, "QoS 0 only")
        eq(m.payload, "field1=25&field2=48.75&field3=1&field4=5000&field5=42", "fields")
        const q = (await profOf(TS, { TS_FIELDS: "humidity,,led" }, m => {}))
        eq(q.report(SNAP, NOW).payload, "field1=48.75&field3=1", "custom mapping with a gap")
        eq(p.parseCommand("channels/1234567/subscribe", buf('{"field1":"1"}')), undefined, "no commands")
        eq(p.reply({ kind: "report", id: "1", ctx: "x" }, { id: "1", code: 200 }), undefined, "no replies")
    })
})

// ---- Huawei ----

describe("huawei profile", () => {
    const BASE = "$oc/devices/65a1b2c3_dev1/sys/"

    test("connect parameters", async () => {
        const p = (await profOf(HUAWEI, undefined, m => {}))
        const cp = p.connectParams(NOW)
        eq(cp.clientId, "65a1b2c3_dev1_0_0_2030010100", "client id with the UTC hour")
        eq(cp.username, "65a1b2c3_dev1", "user")
        ok(only(cp.password, HEXL, 64, 64), "lower-case hex password")
        eq(cp.expiresAtMs, 0, "no expiry")
        eq((await profOf(HUAWEI, { HUAWEI_TSCHK: true }, m => {})).connectParams(NOW).clientId, "65a1b2c3_dev1_0_1_2030010100", "checked timestamp")
        ok(p.connectParams(5000).clientId.endsWith("_1970010100"), "any clock works unchecked")
        printCred("huawei", p, NOW)
        printCred("huawei checked", (await profOf(HUAWEI, { HUAWEI_TSCHK: true }, m => {})), NOW)
    })

    test("subscriptions and report", async () => {
        const p = (await profOf(HUAWEI, { HUAWEI_SVC: "Env" }, m => {}))
        eq(p.subscriptions().map(s => s.filter).join(" "), BASE + "commands/# " + BASE + "properties/set/#", "subs")
        const m = p.report(SNAP, NOW)
        eq(m.topic, BASE + "properties/report", "topic")
        const j = json(m, "report")
        eq(keys(j), "services", "keys")
        eq(j.services.length, 1, "one service")
        eq(j.services[0].service_id, "Env", "service id")
        eq(keys(j.services[0].properties), "humidity,interval,led,temperature,uptime", "properties")
        // the sample's own time, yyyyMMddTHHmmssZ (UTC)
        eq(j.services[0].event_time, "20300101T000000Z", "event_time")
        eq(json(p.report(SNAP, NOW + 3723000), "later").services[0].event_time, "20300101T010203Z", "event_time 01:02:03")
        eq(json(p.report(SNAP, 0), "no time").services[0].event_time, undefined, "no event_time while the time is unknown")
    })

    test("commands and their responses", async () => {
        const p = (await profOf(HUAWEI, undefined, m => {}))
        const c = parseOk(p, BASE + "commands/request_id=abc-1", '{"object_device_id":"65a1b2c3_dev1","service_id":"Sensor","command_name":"toggle","paras":{}}', "toggle", "abc-1")
        const r = replyFor(p, c)
        eq(r.topic, BASE + "commands/response/request_id=abc-1", "response topic")
        eq(r.payload, '{"result_code":0,"response_name":"toggle","paras":{"led":true}}', "response")
        parseOk(p, BASE + "commands/request_id=2", '{"command_name":"set","paras":{"interval":9000}}', "set", "2")
        parseOk(p, BASE + "commands/request_id=3", '{"command_name":"report"}', "report", "3")
        const e = parseErr(p, BASE + "commands/request_id=4", '{"command_name":"reboot"}', 404, 'unknown command "reboot"', "4")
        const er = replyFor(p, e)
        eq(er.topic, BASE + "commands/response/request_id=4", "error topic")
        eq(keys(json(er, "error")), "paras,result_code", "error keys")
        eq(json(er, "error").result_code, 404, "error code")
        parseErr(p, BASE + "commands/request_id=5", '{"paras":{}}', 400, "command_name must be a command name", "5")
        parseErr(p, BASE + "commands/request_id=6", "[", 400, "not valid JSON", "6")
        parseErr(p, BASE + "commands/request_id=7", '{"command_name":"set","paras":{"led":"x"}}', 422, "led must be a boolean", "7")
    })

    test("property set and its response", async () => {
        const p = (await profOf(HUAWEI, undefined, m => {}))
        const c = parseOk(p, BASE + "properties/set/request_id=p1", '{"object_device_id":"65a1b2c3_dev1","services":[{"service_id":"Sensor","properties":{"led":true}}]}', "set", "p1")
        const r = replyFor(p, c)
        eq(r.topic, BASE + "properties/set/response/request_id=p1", "topic")
        eq(r.payload, '{"result_code":0,"result_desc":"success"}', "response")
        const e = parseErr(p, BASE + "properties/set/request_id=p2", '{"services":[{"service_id":"Sensor","properties":{"humidity":3}}]}', 403, "read-only", "p2")
        has(json(replyFor(p, e), "err").result_desc, "humidity is read-only")
        parseErr(p, BASE + "properties/set/request_id=p3", '{"services":{}}', 400, "services must be a non-empty array", "p3")
        parseErr(p, BASE + "properties/set/request_id=p4", '{"services":[{"service_id":"Sensor"}]}', 400, "properties object", "p4")
    })

    test("responses and other topics are ignored", async () => {
        const p = (await profOf(HUAWEI, undefined, m => {}))
        eq(p.parseCommand(BASE + "commands/response/request_id=1", buf("{}")), undefined, "our response")
        eq(p.parseCommand(BASE + "properties/set/response/request_id=1", buf("{}")), undefined, "our set response")
        eq(p.parseCommand(BASE + "commands/", buf("{}")), undefined, "no request id")
        eq(p.parseCommand("$oc/devices/other/sys/commands/request_id=1", buf("{}")), undefined, "other device")
        await garbage(p, [BASE + "commands/request_id=g", BASE + "properties/set/request_id=g"])
    })
})

// ---- Tencent ----

describe("tencent profile", () => {
    const DOWN = "$thing/down/property/ABCDEFGHIJ/dev1"
    const UP = "$thing/up/property/ABCDEFGHIJ/dev1"

    test("connect parameters and expiry", async () => {
        const p = (await profOf(TENCENT, { TOKEN_TTL: 120 }, m => {}))
        const cp = p.connectParams(NOW)
        const exp = Math.floor(NOW / 1000) + 120
        eq(cp.clientId, "ABCDEFGHIJdev1", "client id")
        const u = cp.username.split(";")
        eq(u.length, 4, "user fields: " + cp.username)
        eq(u[0] + ";" + u[1] + ";" + u[3], "ABCDEFGHIJdev1;12010126;" + exp, "user")
        ok(only(u[2], ALNUM, 5, 5), "connection id: " + u[2])
        ok(only(cp.password.slice(0, 64), HEXL, 64, 64) && cp.password.slice(64) === ";hmacsha256", "password")
        eq(cp.expiresAtMs, exp * 1000, "expiry")
        ok(p.connectParams(NOW).username !== cp.username, "a fresh connection id each time")
        printCred("tencent", p, NOW)
    })

    test("subscriptions and report", async () => {
        const p = (await profOf(TENCENT, undefined, m => {}))
        eq(p.subscriptions().map(s => s.filter).join(" "), DOWN + " $thing/down/action/ABCDEFGHIJ/dev1", "subs")
        const m = p.report(SNAP, NOW)
        eq(m.topic, UP, "topic")
        const j = json(m, "report")
        eq(keys(j), "clientToken,method,params,timestamp", "keys")
        eq(j.timestamp, NOW, "the sample's own time, Unix ms")
        eq(keys(json(p.report(SNAP, 0), "no time")), "clientToken,method,params", "no timestamp while the time is unknown")
        eq(j.method, "report", "method")
        ok(typeof j.clientToken === "string" && j.clientToken.length > 0, "client token")
        eq(j.params.led, 1, "bool as 1")
        eq(keys(j.params), "humidity,interval,led,temperature,uptime", "params")
    })

    test("control and actions with their replies", async () => {
        const p = (await profOf(TENCENT, undefined, m => {}))
        const c = parseOk(p, DOWN, '{"method":"control","clientToken":"x-1","params":{"led":1,"interval":4000}}', "set", "x-1")
        eq(toJson((c as any).params), '{"led":true,"interval":4000}', "params")
        const r = replyFor(p, c)
        eq(r.topic, UP, "reply on the up topic")
        eq(r.payload, '{"method":"control_reply","clientToken":"x-1","code":0,"status":"success"}', "control_reply")
        const a = parseOk(p, "$thing/down/action/ABCDEFGHIJ/dev1", '{"method":"action","clientToken":"a-1","actionId":"toggle","timestamp":1,"params":{}}', "toggle", "a-1")
        const ar = replyFor(p, a)
        eq(ar.topic, "$thing/up/action/ABCDEFGHIJ/dev1", "action reply topic")
        eq(ar.payload, '{"method":"action_reply","clientToken":"a-1","code":0,"status":"success","response":{"led":1}}', "action_reply")
    })

    test("invalid control messages get error replies; platform replies are ignored", async () => {
        const p = (await profOf(TENCENT, undefined, m => {}))
        const e = parseErr(p, DOWN, '{"method":"control","clientToken":"x-2","params":{"led":"dim"}}', 422, "led must be a boolean", "x-2")
        const j = json(replyFor(p, e), "error reply")
        eq(j.code, 422, "code")
        eq(j.clientToken, "x-2", "token echoed")
        has(j.status, "led must be a boolean")
        parseErr(p, DOWN, '{"method":"control","params":{"led":1}}', 400, "clientToken is missing")
        parseErr(p, DOWN, '{"method":"explode","clientToken":"x-3"}', 404, 'unknown method "explode"', "x-3")
        parseErr(p, DOWN, "not json", 400, "not valid JSON")
        parseErr(p, "$thing/down/action/ABCDEFGHIJ/dev1", '{"method":"action","clientToken":"a-2","actionId":"reboot"}', 404, 'unknown command "reboot"', "a-2")
        parseErr(p, "$thing/down/action/ABCDEFGHIJ/dev1", '{"method":"action","clientToken":"a-3"}', 400, "actionId must be", "a-3")
        eq(p.parseCommand(DOWN, buf('{"method":"report_reply","clientToken":"1","code":0}')), undefined, "report_reply")
        eq(p.parseCommand(UP, buf("{}")), undefined, "our own up topic")
        await garbage(p, [DOWN, "$thing/down/action/ABCDEFGHIJ/dev1"])
    })
})
