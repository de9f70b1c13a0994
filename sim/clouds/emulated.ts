/**
 * Emulated IoT clouds for tests and the simulator: an aedes broker on 127.0.0.1 whose
 * `authenticate` hook checks a device's CONNECT the way the platform does (sim/clouds/verify.ts,
 * Node's crypto; wrong credentials -> the platform's CONNACK code), plus a cloud-side mqtt.js
 * client that watches the device's uplinks (checking each report's topic and payload shape),
 * sends the platform's commands and collects and checks the replies.
 *
 * Like the real platforms, the broker does not echo a client's own messages back to it, records
 * subscriptions and publishes outside the device's own topics as problems, answers reports the
 * way the platform does (OneNET post/reply, Tencent report_reply, Azure twin responses), and
 * Azure drops a connection when its SAS token expires.
 */
import { randomBytes } from "node:crypto"
import mqtt from "mqtt"
import { startAedes, type AedesBroker } from "../brokers.ts"
import { topicMatches } from "../dashboard/topics.ts"
import type { Settings } from "../hostlink.ts"
import {
    type AlibabaDevice,
    type AzureDevice,
    type ConnectFields,
    type HuaweiDevice,
    type TencentDevice,
    type Verdict,
    mintAlibaba,
    mintAzure,
    mintHuawei,
    mintOneNet,
    mintTencent,
    verifyAlibaba,
    verifyAzure,
    verifyHuawei,
    verifyOneNet,
    verifyTencent,
} from "./verify.ts"

/** The platforms that have an emulation. */
export type CloudPlatform = "alibaba" | "onenet" | "azure" | "thingspeak" | "huawei" | "tencent"
export const CLOUD_PLATFORMS: CloudPlatform[] = ["alibaba", "onenet", "azure", "thingspeak", "huawei", "tencent"]

/** A OneNET device registered with its device key. */
export interface OneNetIdentity {
    productId: string
    deviceName: string
    /** base64 device key */
    deviceKey: string
}

/** A ThingSpeak MQTT device and its channel. */
export interface ThingSpeakIdentity {
    channel: string
    clientId: string
    username: string
    password: string
}

/** The identity type of each platform. */
export interface Identities {
    alibaba: AlibabaDevice
    onenet: OneNetIdentity
    azure: AzureDevice
    thingspeak: ThingSpeakIdentity
    huawei: HuaweiDevice
    tencent: TencentDevice
}
export type AnyIdentity = Identities[CloudPlatform]

/** Test identities (made-up secrets, the reference vectors' identities where there is one). */
export const TEST_IDENTITIES: Identities = {
    alibaba: { productKey: "a1X2bEnP82z", deviceName: "example1", deviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" },
    onenet: { productId: "123123", deviceName: "mydev", deviceKey: "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw=" },
    azure: { hubHost: "myiothub.azure-devices.net", deviceId: "my_device", deviceKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" },
    thingspeak: { channel: "1234567", clientId: "MRoXDjcfBTgdOCIxDiIMMDA", username: "MRoXDjcfBTgdOCIxDiIMMDA", password: "tspass-secret-1" },
    huawei: { deviceId: "65a1b2c3_dev1", secret: "huawei-secret-1" },
    tencent: { productId: "ABCDEFGHIJ", deviceName: "dev1", psk: "MDEyMzQ1Njc4OWFiY2RlZg==" },
}

/**
 * The CONNACK return code each emulation refuses bad credentials with: 4 "bad user name or
 * password" where the platforms' documentation lists it for a failed signature check; 5 "not
 * authorized" for IoT Hub (its documented answer) and ThingSpeak (what its broker sends).
 */
export const REFUSAL_CODES: Record<CloudPlatform, number> = {
    alibaba: 4,
    onenet: 4,
    azure: 5,
    thingspeak: 5,
    huawei: 4,
    tencent: 4,
}

/** The model identifiers each platform's default property mapping uses (src/cloud/*.ts). */
export const DEFAULT_NAMES: Record<CloudPlatform, Record<string, string>> = {
    alibaba: { temperature: "CurrentTemperature", humidity: "CurrentHumidity", led: "LightSwitch", interval: "ReportInterval", uptime: "Uptime" },
    onenet: { temperature: "temp", humidity: "humi", led: "led", interval: "interval", uptime: "uptime" },
    azure: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
    thingspeak: { temperature: "field1", humidity: "field2", led: "field3", interval: "field4", uptime: "field5" },
    huawei: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
    tencent: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
}

/** Changes one character of a secret so it stays well-formed (base64 stays base64). */
function corrupt(secret: string): string {
    const c = secret[0] === "A" ? "B" : "A"
    return c + secret.slice(1)
}

/**
 * Credentials a correct device would send at `nowMs`, minted with the reference minters
 * (`wrongSecret`: signed with a corrupted secret; `lifetimeSec` for tokens, default 3600).
 */
export function mintFor(
    platform: CloudPlatform,
    id: AnyIdentity,
    nowMs: number,
    opts: { wrongSecret?: boolean; lifetimeSec?: number; tls?: boolean } = {}
): { clientId: string; username: string; password: string } {
    const life = opts.lifetimeSec ?? 3600
    const exp = Math.floor(nowMs / 1000) + life
    const w = opts.wrongSecret === true
    switch (platform) {
        case "alibaba": {
            const d = id as AlibabaDevice
            return mintAlibaba({ ...d, deviceSecret: w ? corrupt(d.deviceSecret) : d.deviceSecret }, { tls: opts.tls ?? false, timestamp: nowMs })
        }
        case "onenet": {
            const d = id as OneNetIdentity
            return mintOneNet({ productId: d.productId, deviceName: d.deviceName, key: w ? corrupt(d.deviceKey) : d.deviceKey }, exp)
        }
        case "azure": {
            const d = id as AzureDevice
            return mintAzure({ ...d, deviceKey: w ? corrupt(d.deviceKey) : d.deviceKey }, exp)
        }
        case "thingspeak": {
            const d = id as ThingSpeakIdentity
            return { clientId: d.clientId, username: d.username, password: w ? corrupt(d.password) : d.password }
        }
        case "huawei": {
            const d = id as HuaweiDevice
            return mintHuawei({ ...d, secret: w ? corrupt(d.secret) : d.secret }, nowMs)
        }
        case "tencent": {
            const d = id as TencentDevice
            return mintTencent({ ...d, psk: w ? corrupt(d.psk) : d.psk }, "a1B2c", exp)
        }
    }
}

/** The firmware settings that point a device with identity `id` at an emulated cloud on `port`. */
export function cloudSettings(platform: CloudPlatform, id: AnyIdentity, port: number): Settings {
    const s: Settings = { CLOUD: platform, MQTT_HOST: "127.0.0.1", MQTT_PORT: port, MQTT_TLS: false }
    switch (platform) {
        case "alibaba": {
            const d = id as AlibabaDevice
            return { ...s, ALI_PK: d.productKey, ALI_DN: d.deviceName, ALI_SECRET: d.deviceSecret }
        }
        case "onenet": {
            const d = id as OneNetIdentity
            return { ...s, ONENET_PID: d.productId, ONENET_DEV: d.deviceName, ONENET_KEY: d.deviceKey }
        }
        case "azure": {
            const d = id as AzureDevice
            return { ...s, AZURE_HOST: d.hubHost, AZURE_DEVICE: d.deviceId, AZURE_KEY: d.deviceKey }
        }
        case "thingspeak": {
            const d = id as ThingSpeakIdentity
            return { ...s, TS_CHANNEL: d.channel, TS_CLIENT: d.clientId, TS_USER: d.username, TS_PASS: d.password }
        }
        case "huawei": {
            const d = id as HuaweiDevice
            return { ...s, HUAWEI_DEVICE: d.deviceId, HUAWEI_SECRET: d.secret, HUAWEI_HOST: "127.0.0.1" }
        }
        case "tencent": {
            const d = id as TencentDevice
            return { ...s, TENCENT_PID: d.productId, TENCENT_DEV: d.deviceName, TENCENT_PSK: d.psk }
        }
    }
}

/** One CONNECT the emulation judged (no secrets). */
export interface ConnectAttempt {
    clientId: string
    username?: string
    ok: boolean
    /** CONNACK return code sent */
    code: number
    /** why it was refused ("" when accepted) */
    reason: string
    at: number
}

/** One message the device published, as the cloud side saw it. */
export interface Uplink {
    topic: string
    text: string
    /** the payload parsed as JSON, or undefined */
    json: any
    qos: number
    at: number
    kind: "report" | "reply" | "other"
    /** for reports: what is wrong with the topic or payload shape (empty when right) */
    problems: string[]
}

/** A command the cloud side can send, and how its reply is recognised and checked. */
interface CommandSpec {
    name: string
    topic: string
    payload: string
    /** true for the uplink that answers this command */
    isReply(u: Uplink): boolean
    /** problems with the reply (empty when right) */
    check(u: Uplink): string[]
}

/** The outcome of one command. */
export interface CommandResult {
    name: string
    topic: string
    payload: string
    reply?: Uplink
    /** empty when the reply came and was right */
    problems: string[]
}

/** A running emulated cloud. */
export interface EmulatedCloud {
    readonly platform: CloudPlatform
    readonly identity: AnyIdentity
    readonly port: number
    /** mqtt://127.0.0.1:port */
    readonly url: string
    readonly broker: AedesBroker
    /** every device CONNECT, accepted or not */
    readonly connects: ConnectAttempt[]
    /** every filter a device subscribed to */
    readonly subscriptions: string[]
    /** everything the device published */
    readonly uplinks: Uplink[]
    /** protocol problems seen (subscriptions or publishes outside the device's topics) */
    readonly problems: string[]
    /** connections the emulation dropped because their token expired (Azure) */
    readonly expiredDrops: number
    /** the names of the commands `send` knows for this platform */
    readonly commands: string[]
    /** the settings that point the firmware at this cloud (CLOUD, identity, MQTT_HOST/PORT/TLS) */
    settings(): Settings
    /** The reports received so far. */
    reports(): Uplink[]
    /** The first uplink (from index `from`) that matches, waiting up to `timeoutMs`; throws naming `what`. */
    waitFor(what: string, pred: (u: Uplink) => boolean, timeoutMs: number, from?: number): Promise<Uplink>
    /** The next report (after `from`, default: any). */
    waitReport(timeoutMs: number, from?: number): Promise<Uplink>
    /** Sends command `name` and waits up to `timeoutMs` for its reply; never throws for a missing reply. */
    send(name: string, timeoutMs: number): Promise<CommandResult>
    close(): Promise<void>
}

export interface EmulatedCloudOptions {
    /** default TEST_IDENTITIES[platform] */
    identity?: AnyIdentity
    /** default 0 (any free port) */
    port?: number
    /** the platform's clock (token expiry checks), default Date.now */
    nowMs?: () => number
    /** expected identifiers by model name (default DEFAULT_NAMES[platform]; CLOUD_PROPS changes them) */
    names?: Record<string, string>
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

function isObject(v: unknown): v is Record<string, any> {
    return v !== null && typeof v === "object" && !Array.isArray(v)
}

function parseJsonText(text: string): any {
    try {
        return JSON.parse(text)
    } catch {
        return undefined
    }
}

/** Checks a value against the model property it stands for; returns a problem or "". */
function valueProblem(model: string, id: string, v: unknown, boolAsInt: boolean): string {
    if (model === "led") {
        if (boolAsInt ? v === 0 || v === 1 : typeof v === "boolean") return ""
        return `${id} must be ${boolAsInt ? "0 or 1" : "a boolean"}, got ${JSON.stringify(v)}`
    }
    if (typeof v !== "number" || !Number.isFinite(v)) return `${id} must be a number, got ${JSON.stringify(v)}`
    if ((model === "interval" || model === "uptime") && !Number.isInteger(v)) return `${id} must be an integer, got ${v}`
    return ""
}

/** Checks an object of properties in platform identifiers; `wrapped`: OneNET {value,time}. */
function propsProblems(params: unknown, names: Record<string, string>, boolAsInt: boolean, nowMs: number, wrapped = false): string[] {
    const out: string[] = []
    if (!isObject(params)) return [`params must be an object, got ${JSON.stringify(params)}`]
    const byId = new Map(Object.entries(names).map(([model, id]) => [id, model]))
    if (Object.keys(params).length === 0) out.push("no properties reported")
    for (const [id, raw] of Object.entries(params)) {
        const model = byId.get(id)
        if (!model) {
            out.push(`unknown identifier ${id}`)
            continue
        }
        let v = raw
        if (wrapped) {
            if (!isObject(raw) || !("value" in raw)) {
                out.push(`${id} must be {"value":...,"time":...}`)
                continue
            }
            v = raw.value
            // a sample's own time: forwarded after an outage it may be old, never in the future
            if (raw.time !== undefined && !(Number.isInteger(raw.time) && raw.time < nowMs + 600000 && raw.time > nowMs - 86400000))
                out.push(`${id}.time must be the Unix time in ms, got ${JSON.stringify(raw.time)}`)
            for (const k of Object.keys(raw)) if (k !== "value" && k !== "time") out.push(`${id} has an unexpected member ${k}`)
        }
        const p = valueProblem(model, id, v, boolAsInt)
        if (p) out.push(p)
    }
    return out
}

/** Checks a message id: a decimal string of at most `digits` digits within `max`. */
function idProblem(id: unknown, digits: number, max: number): string {
    if (typeof id !== "string" || !/^[0-9]+$/.test(id) || id.length > digits || +id > max)
        return `id must be a decimal string 0..${max}, got ${JSON.stringify(id)}`
    return ""
}

/** The per-platform knowledge of the emulation. */
interface PlatformRules {
    /** topic filters of everything the device may publish (the cloud client subscribes to them) */
    upFilters: string[]
    /** topic prefixes the device may subscribe under */
    downPrefixes: string[]
    clientId: string
    verify(c: ConnectFields, nowMs: number): Verdict
    /** classify and check one uplink */
    classify(topic: string, text: string, json: any, qos: number, nowMs: number): { kind: Uplink["kind"]; problems: string[] }
    /** what the platform publishes in answer to an uplink (post/reply...) */
    autoReply?(u: Uplink): { topic: string; payload: string } | undefined
    commands(seq: () => number): CommandSpec[]
    /** Unix seconds when a connection with these credentials must be dropped (Azure), or undefined */
    dropAt?(c: ConnectFields): number | undefined
}

/** The result of `check` for a reply: code `want` (or any non-success when `want` is "error") and the id. */
function replyCode(u: Uplink, key: string, success: number, want: number | "error"): string[] {
    const j = u.json
    if (!isObject(j)) return [`reply is not a JSON object: ${u.text}`]
    const code = j[key]
    if (typeof code !== "number") return [`reply has no numeric ${key}: ${u.text}`]
    if (want === "error") return code === success ? [`expected an error ${key}, got ${code}`] : []
    return code === want ? [] : [`expected ${key} ${want}, got ${code}: ${u.text}`]
}

function rulesFor(platform: CloudPlatform, id: AnyIdentity, names: Record<string, string>): PlatformRules {
    switch (platform) {
        case "alibaba": {
            const d = id as AlibabaDevice
            const base = `/sys/${d.productKey}/${d.deviceName}/thing/`
            const report = base + "event/property/post"
            const svc = base + "service/"
            const idNum = (n: number) => String(n)
            return {
                upFilters: [base + "event/#", svc + "#"],
                downPrefixes: [base],
                clientId: `${d.productKey}.${d.deviceName}`,
                verify: c => verifyAlibaba(c, d, { tls: false }),
                classify(topic, text, j, qos, now) {
                    if (topic === report) {
                        const p: string[] = []
                        if (!isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                        const ip = idProblem(j.id, 10, 4294967295)
                        if (ip) p.push(ip)
                        if (j.version !== "1.0") p.push(`version must be "1.0", got ${JSON.stringify(j.version)}`)
                        if (j.method !== "thing.event.property.post") p.push(`method must be thing.event.property.post, got ${JSON.stringify(j.method)}`)
                        // {"value":...,"time":...} per property carries the sample's own time (Alink)
                        const wrapped = isObject(j.params) && Object.values(j.params).some(isObject)
                        p.push(...propsProblems(j.params, names, true, now, wrapped))
                        for (const m of ["temperature", "humidity"]) {
                            const idn = names[m]
                            if (isObject(j.params) && idn in j.params && !new RegExp(`"${idn}":(\\{"value":)?-?[0-9]+\\.[0-9]`).test(text))
                                p.push(`${idn} is a float: it must keep a decimal point`)
                        }
                        return { kind: "report", problems: p }
                    }
                    if (topic.startsWith(svc) && topic.endsWith("_reply")) return { kind: "reply", problems: [] }
                    return { kind: "other", problems: [] }
                },
                autoReply: u =>
                    u.kind === "report" && isObject(u.json)
                        ? { topic: report + "_reply", payload: JSON.stringify({ id: u.json.id, code: 200, data: {}, method: "thing.event.property.post" }) }
                        : undefined,
                commands(seq) {
                    const set = svc + "property/set"
                    const byId = (topic: string, n: string) => (u: Uplink) => u.topic === topic && isObject(u.json) && u.json.id === n
                    const a = idNum(seq()), b = idNum(seq()), c = idNum(seq())
                    return [
                        {
                            name: "property set",
                            topic: set,
                            payload: JSON.stringify({ id: a, version: "1.0", params: { [names.led]: 1 }, method: "thing.service.property.set" }),
                            isReply: byId(set + "_reply", a),
                            check: u => [...replyCode(u, "code", 200, 200), ...(isObject(u.json?.data) ? [] : ["reply has no data object"])],
                        },
                        {
                            name: "service toggle",
                            topic: svc + "toggle",
                            payload: JSON.stringify({ id: b, version: "1.0", params: {}, method: "thing.service.toggle" }),
                            isReply: byId(svc + "toggle_reply", b),
                            check: u => {
                                const p = replyCode(u, "code", 200, 200)
                                const v = u.json?.data?.[names.led]
                                if (v !== 0 && v !== 1) p.push(`toggle reply data.${names.led} must be 0 or 1, got ${JSON.stringify(v)}`)
                                return p
                            },
                        },
                        {
                            name: "bad property set",
                            topic: set,
                            payload: JSON.stringify({ id: c, version: "1.0", params: { [names.led]: "maybe" }, method: "thing.service.property.set" }),
                            isReply: byId(set + "_reply", c),
                            check: u => [...replyCode(u, "code", 200, 422), ...(typeof u.json?.message === "string" ? [] : ["error reply has no message"])],
                        },
                    ]
                },
            }
        }
        case "onenet": {
            const d = id as OneNetIdentity
            const base = `$sys/${d.productId}/${d.deviceName}/thing/`
            const report = base + "property/post"
            return {
                upFilters: [base + "#"],
                downPrefixes: [base],
                clientId: d.deviceName,
                verify: (c, now) => verifyOneNet(c, { productId: d.productId, deviceName: d.deviceName, deviceKey: d.deviceKey }, { nowMs: now }),
                classify(topic, text, j, qos, now) {
                    if (topic === report) {
                        if (!isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                        const p: string[] = []
                        const ip = idProblem(j.id, 13, 9999999999999)
                        if (ip) p.push(ip)
                        if (j.version !== undefined && j.version !== "1.0") p.push(`version must be "1.0", got ${JSON.stringify(j.version)}`)
                        p.push(...propsProblems(j.params, names, false, now, true))
                        return { kind: "report", problems: p }
                    }
                    if (topic.endsWith("_reply")) return { kind: "reply", problems: [] }
                    return { kind: "other", problems: [] }
                },
                autoReply: u =>
                    u.kind === "report" && isObject(u.json) ? { topic: report + "/reply", payload: JSON.stringify({ id: u.json.id, code: 200, msg: "success" }) } : undefined,
                commands(seq) {
                    const set = base + "property/set"
                    const inv = base + "service/toggle/invoke"
                    const byId = (topic: string, n: string) => (u: Uplink) => u.topic === topic && isObject(u.json) && u.json.id === n
                    const a = String(seq()), b = String(seq()), c = String(seq())
                    return [
                        {
                            name: "property set",
                            topic: set,
                            payload: JSON.stringify({ id: a, version: "1.0", params: { [names.led]: true } }),
                            isReply: byId(set + "_reply", a),
                            check: u => [...replyCode(u, "code", 200, 200), ...(typeof u.json?.msg === "string" ? [] : ["reply has no msg"])],
                        },
                        {
                            name: "service toggle",
                            topic: inv,
                            payload: JSON.stringify({ id: b, version: "1.0", params: {} }),
                            isReply: byId(inv + "_reply", b),
                            check: u => {
                                const p = replyCode(u, "code", 200, 200)
                                if (typeof u.json?.data?.[names.led] !== "boolean") p.push(`invoke reply data.${names.led} must be a boolean`)
                                return p
                            },
                        },
                        {
                            name: "bad property set",
                            topic: set,
                            payload: JSON.stringify({ id: c, version: "1.0", params: { [names.temperature]: 30 } }),
                            isReply: byId(set + "_reply", c),
                            check: u => replyCode(u, "code", 200, 403),
                        },
                    ]
                },
            }
        }
        case "azure": {
            const d = id as AzureDevice
            const events = `devices/${d.deviceId}/messages/events/`
            const c2d = `devices/${d.deviceId}/messages/devicebound/`
            const reported = "$iothub/twin/PATCH/properties/reported/"
            let twinVersion = 1
            return {
                upFilters: [events + "#", "$iothub/methods/res/#", reported + "#", "$iothub/twin/GET/#"],
                downPrefixes: [c2d, "$iothub/methods/POST/", "$iothub/twin/"],
                clientId: d.deviceId,
                verify: (c, now) => verifyAzure(c, d, { nowMs: now }),
                dropAt(c) {
                    const m = /&se=(\d+)/.exec(typeof c.password === "string" ? c.password : c.password?.toString("utf8") ?? "")
                    return m ? +m[1] : undefined
                },
                classify(topic, text, j, qos, now) {
                    if (topic.startsWith(events)) {
                        const bag = new URLSearchParams(topic.slice(events.length))
                        if (bag.get("type") === "reply") return { kind: "reply", problems: [] }
                        if (!isObject(j)) return { kind: "report", problems: [`telemetry is not a JSON object: ${text}`] }
                        const p: string[] = []
                        const { ts, ...props } = j
                        if (ts !== undefined && !(Number.isInteger(ts) && Math.abs(ts - now) < 600000)) p.push(`ts must be the Unix time in ms, got ${JSON.stringify(ts)}`)
                        p.push(...propsProblems(props, names, false, now))
                        if (bag.get("$.ct") !== "application/json") p.push("telemetry should declare $.ct=application/json")
                        return { kind: "report", problems: p }
                    }
                    if (topic.startsWith("$iothub/methods/res/") || topic.startsWith(reported)) return { kind: "reply", problems: [] }
                    return { kind: "other", problems: [] }
                },
                autoReply(u) {
                    const m = /\?\$rid=([^&]+)/.exec(u.topic)
                    if (u.topic.startsWith(reported) && m) return { topic: `$iothub/twin/res/204/?$rid=${m[1]}&$version=${++twinVersion}`, payload: "" }
                    return undefined
                },
                commands(seq) {
                    const a = seq(), b = seq(), c = seq(), e = seq()
                    const cid = `c2d-${a}`
                    return [
                        {
                            name: "c2d",
                            topic: `${c2d}%24.to=%2Fdevices%2F${d.deviceId}%2Fmessages%2FdeviceBound&method=set`,
                            payload: JSON.stringify({ id: cid, params: { [names.led]: true } }),
                            isReply: u => u.kind === "reply" && u.topic.startsWith(events) && isObject(u.json) && u.json.id === cid,
                            check: u => replyCode(u, "code", 200, 200),
                        },
                        {
                            name: "direct method",
                            topic: `$iothub/methods/POST/toggle/?$rid=${b}`,
                            payload: "{}",
                            isReply: u => u.topic.startsWith("$iothub/methods/res/") && u.topic.endsWith(`/?$rid=${b}`),
                            check: u => {
                                const p = u.topic === `$iothub/methods/res/200/?$rid=${b}` ? [] : [`expected status 200 in ${u.topic}`]
                                p.push(...replyCode(u, "code", 200, 200))
                                if (typeof u.json?.data?.[names.led] !== "boolean") p.push(`method response data.${names.led} must be a boolean`)
                                return p
                            },
                        },
                        {
                            name: "desired twin",
                            topic: `$iothub/twin/PATCH/properties/desired/?$version=${c}`,
                            payload: JSON.stringify({ [names.interval]: 2000, $version: c }),
                            isReply: u => u.topic.startsWith(reported + "?$rid=") && isObject(u.json) && names.interval in u.json,
                            check: u => (u.json[names.interval] === 2000 ? [] : [`reported ${names.interval} must be 2000: ${u.text}`]),
                        },
                        {
                            name: "bad direct method",
                            topic: `$iothub/methods/POST/reboot/?$rid=${e}`,
                            payload: "{}",
                            isReply: u => u.topic.startsWith("$iothub/methods/res/") && u.topic.endsWith(`/?$rid=${e}`),
                            check: u => (u.topic === `$iothub/methods/res/404/?$rid=${e}` ? [] : [`expected status 404 in ${u.topic}`]),
                        },
                    ]
                },
            }
        }
        case "thingspeak": {
            const d = id as ThingSpeakIdentity
            const topic0 = `channels/${d.channel}/publish`
            return {
                upFilters: [topic0, topic0 + "/#"],
                downPrefixes: [`channels/${d.channel}/subscribe`],
                clientId: d.clientId,
                verify(c) {
                    if (c.clientId !== d.clientId) return { ok: false, reason: "unknown client id" }
                    if (c.username !== d.username) return { ok: false, reason: "wrong user name" }
                    const pw = typeof c.password === "string" ? c.password : c.password?.toString("utf8")
                    if (pw !== d.password) return { ok: false, reason: "wrong password" }
                    return { ok: true }
                },
                classify(topic, text, j, qos) {
                    if (topic !== topic0) return { kind: "other", problems: [] }
                    const p: string[] = []
                    if (qos !== 0) p.push(`ThingSpeak takes QoS 0 only, got QoS ${qos}`)
                    if (!text.length) p.push("empty update")
                    for (const kv of text.split("&")) {
                        const m = /^(field[1-8]|status)=(.*)$/.exec(kv)
                        if (!m) p.push(`"${kv}" is not fieldN=value`)
                        else if (m[1] !== "status" && !/^-?[0-9]+(\.[0-9]+)?$/.test(m[2])) p.push(`${m[1]} must be a number, got "${m[2]}"`)
                    }
                    return { kind: "report", problems: p }
                },
                commands: () => [],
            }
        }
        case "huawei": {
            const d = id as HuaweiDevice
            const base = `$oc/devices/${d.deviceId}/sys/`
            return {
                upFilters: [base + "#"],
                downPrefixes: [base],
                clientId: d.deviceId,
                verify: (c, now) => verifyHuawei(c, d, { nowMs: now }),
                classify(topic, text, j, qos, now) {
                    if (topic === base + "properties/report") {
                        if (!isObject(j) || !Array.isArray(j.services) || !j.services.length)
                            return { kind: "report", problems: [`report must be {"services":[...]}: ${text}`] }
                        const p: string[] = []
                        for (const s of j.services) {
                            if (!isObject(s) || typeof s.service_id !== "string" || !s.service_id) p.push("each service needs a service_id")
                            else p.push(...propsProblems(s.properties, names, false, now))
                            if (isObject(s) && s.event_time !== undefined && !/^[0-9]{8}T[0-9]{6}Z$/.test(String(s.event_time)))
                                p.push(`event_time must be yyyyMMddTHHmmssZ (UTC), got ${JSON.stringify(s.event_time)}`)
                        }
                        return { kind: "report", problems: p }
                    }
                    if (topic.includes("/response/request_id=")) return { kind: "reply", problems: [] }
                    return { kind: "other", problems: [] }
                },
                commands(seq) {
                    const a = `cmd-${seq()}`, b = `set-${seq()}`, c = `cmd-${seq()}`
                    return [
                        {
                            name: "command",
                            topic: `${base}commands/request_id=${a}`,
                            payload: JSON.stringify({ object_device_id: d.deviceId, service_id: "Sensor", command_name: "toggle", paras: {} }),
                            isReply: u => u.topic === `${base}commands/response/request_id=${a}`,
                            check: u => replyCode(u, "result_code", 0, 0),
                        },
                        {
                            name: "property set",
                            topic: `${base}properties/set/request_id=${b}`,
                            payload: JSON.stringify({ object_device_id: d.deviceId, services: [{ service_id: "Sensor", properties: { [names.led]: true } }] }),
                            isReply: u => u.topic === `${base}properties/set/response/request_id=${b}`,
                            check: u => replyCode(u, "result_code", 0, 0),
                        },
                        {
                            name: "bad command",
                            topic: `${base}commands/request_id=${c}`,
                            payload: JSON.stringify({ object_device_id: d.deviceId, service_id: "Sensor", command_name: "reboot", paras: {} }),
                            isReply: u => u.topic === `${base}commands/response/request_id=${c}`,
                            check: u => replyCode(u, "result_code", 0, "error"),
                        },
                    ]
                },
            }
        }
        case "tencent": {
            const d = id as TencentDevice
            const pd = `${d.productId}/${d.deviceName}`
            const up = `$thing/up/property/${pd}`
            const upAction = `$thing/up/action/${pd}`
            return {
                upFilters: [`$thing/up/+/${pd}`],
                downPrefixes: [`$thing/down/`],
                clientId: d.productId + d.deviceName,
                verify: (c, now) => verifyTencent(c, d, { nowMs: now }),
                classify(topic, text, j, qos, now) {
                    if (topic === up && isObject(j) && j.method === "report") {
                        const p: string[] = []
                        if (typeof j.clientToken !== "string" || !j.clientToken) p.push("clientToken must be a non-empty string")
                        if (j.timestamp !== undefined && !(Number.isInteger(j.timestamp) && j.timestamp < now + 600000 && j.timestamp > now - 86400000))
                            p.push(`timestamp must be the sample's Unix time in ms, got ${JSON.stringify(j.timestamp)}`)
                        p.push(...propsProblems(j.params, names, true, now))
                        return { kind: "report", problems: p }
                    }
                    if (topic === up && !isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                    if ((topic === up || topic === upAction) && isObject(j) && typeof j.method === "string" && j.method.endsWith("_reply"))
                        return { kind: "reply", problems: [] }
                    return { kind: "other", problems: [] }
                },
                autoReply: u =>
                    u.kind === "report" && isObject(u.json)
                        ? { topic: `$thing/down/property/${pd}`, payload: JSON.stringify({ method: "report_reply", clientToken: u.json.clientToken, code: 0, status: "success" }) }
                        : undefined,
                commands(seq) {
                    const a = `ct-${seq()}`, b = `at-${seq()}`, c = `ct-${seq()}`
                    const byToken = (topic: string, method: string, t: string) => (u: Uplink) =>
                        u.topic === topic && isObject(u.json) && u.json.method === method && u.json.clientToken === t
                    return [
                        {
                            name: "control",
                            topic: `$thing/down/property/${pd}`,
                            payload: JSON.stringify({ method: "control", clientToken: a, params: { [names.led]: 1 } }),
                            isReply: byToken(up, "control_reply", a),
                            check: u => replyCode(u, "code", 0, 0),
                        },
                        {
                            name: "action toggle",
                            topic: `$thing/down/action/${pd}`,
                            payload: JSON.stringify({ method: "action", clientToken: b, actionId: "toggle", timestamp: Math.floor(Date.now() / 1000), params: {} }),
                            isReply: byToken(upAction, "action_reply", b),
                            check: u => {
                                const p = replyCode(u, "code", 0, 0)
                                const v = u.json?.response?.[names.led]
                                if (v !== 0 && v !== 1) p.push(`action_reply response.${names.led} must be 0 or 1`)
                                return p
                            },
                        },
                        {
                            name: "bad control",
                            topic: `$thing/down/property/${pd}`,
                            payload: JSON.stringify({ method: "control", clientToken: c, params: { [names.led]: "dim" } }),
                            isReply: byToken(up, "control_reply", c),
                            check: u => [...replyCode(u, "code", 0, "error"), ...(typeof u.json?.status === "string" ? [] : ["error reply has no status"])],
                        },
                    ]
                },
            }
        }
    }
}

/** Starts an emulated `platform` cloud on 127.0.0.1. */
export async function startEmulatedCloud(platform: CloudPlatform, opts: EmulatedCloudOptions = {}): Promise<EmulatedCloud> {
    const identity = opts.identity ?? TEST_IDENTITIES[platform]
    const names = opts.names ?? DEFAULT_NAMES[platform]
    const now = opts.nowMs ?? (() => Date.now())
    const rules = rulesFor(platform, identity, names)
    const cloudId = "emulated-cloud-" + randomBytes(4).toString("hex")
    const cloudPass = randomBytes(16).toString("hex")
    const connects: ConnectAttempt[] = []
    const subscriptions: string[] = []
    const uplinks: Uplink[] = []
    const problems: string[] = []
    const expiryByClient = new Map<string, number>()
    const dropTimers = new Map<object, NodeJS.Timeout>()
    let expiredDrops = 0
    let seqN = 0
    const seq = () => ++seqN

    const broker = await startAedes({
        port: opts.port ?? 0,
        authenticate(clientId, username, password) {
            if (clientId === cloudId) return password?.toString("utf8") === cloudPass ? 0 : 5
            const v = rules.verify({ clientId, username, password }, now())
            const code = v.ok ? 0 : REFUSAL_CODES[platform]
            connects.push({ clientId, username, ok: v.ok, code, reason: v.ok ? "" : v.reason, at: Date.now() })
            if (v.ok && rules.dropAt) {
                const se = rules.dropAt({ clientId, username, password })
                if (se !== undefined) expiryByClient.set(clientId, se)
            }
            return code
        },
        options: {
            // like the platforms: a client never gets its own messages back
            authorizeForward: (client, packet) => ((packet as any).clientId === client.id ? null : packet),
            authorizeSubscribe(client, sub, done) {
                if (client.id !== cloudId) {
                    subscriptions.push(sub.topic)
                    if (!rules.downPrefixes.some(p => sub.topic.startsWith(p))) problems.push(`device subscribed outside its topics: ${sub.topic}`)
                }
                done(null, sub)
            },
            authorizePublish(client, packet, done) {
                if (client && client.id !== cloudId && !rules.upFilters.some(f => topicMatches(f, packet.topic)))
                    problems.push(`device published outside its topics: ${packet.topic}`)
                done(null)
            },
        },
    })

    // Azure drops a connection when its SAS expires
    if (rules.dropAt) {
        broker.aedes.on("clientReady", client => {
            const se = expiryByClient.get(client.id)
            if (client.id === cloudId || se === undefined) return
            const t = setTimeout(() => {
                dropTimers.delete(client)
                if (!client.closed) {
                    expiredDrops++
                    client.close()
                }
            }, Math.max(0, se * 1000 - now()))
            dropTimers.set(client, t)
        })
        broker.aedes.on("clientDisconnect", client => {
            clearTimeout(dropTimers.get(client))
            dropTimers.delete(client)
        })
    }

    const cloud = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        clientId: cloudId,
        username: "cloud",
        password: cloudPass,
        reconnectPeriod: 200,
        protocolVersion: 4,
    })
    cloud.on("error", () => {})
    cloud.on("message", (topic, payload, packet) => {
        const text = payload.toString("utf8")
        const json = parseJsonText(text)
        const c = rules.classify(topic, text, json, packet.qos, now())
        const u: Uplink = { topic, text, json, qos: packet.qos, at: Date.now(), kind: c.kind, problems: c.problems }
        uplinks.push(u)
        const r = rules.autoReply?.(u)
        if (r) cloud.publish(r.topic, r.payload, { qos: 0 })
    })
    await cloud.subscribeAsync(Object.fromEntries(rules.upFilters.map(f => [f, { qos: 1 as const }])))

    const waitFor = async (what: string, pred: (u: Uplink) => boolean, timeoutMs: number, from = 0): Promise<Uplink> => {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            for (let i = from; i < uplinks.length; i++) if (pred(uplinks[i])) return uplinks[i]
            if (Date.now() > deadline) throw new Error(`${platform} cloud: waiting for ${what}: nothing after ${timeoutMs} ms`)
            await sleep(20)
        }
    }

    return {
        platform,
        identity,
        get port() {
            return broker.port
        },
        get url() {
            return broker.url
        },
        broker,
        connects,
        subscriptions,
        uplinks,
        problems,
        get expiredDrops() {
            return expiredDrops
        },
        commands: rules.commands(() => 0).map(c => c.name),
        settings: () => cloudSettings(platform, identity, broker.port),
        reports: () => uplinks.filter(u => u.kind === "report"),
        waitFor,
        waitReport: (timeoutMs, from = 0) => waitFor("a report", u => u.kind === "report", timeoutMs, from),
        async send(name, timeoutMs) {
            const spec = rules.commands(seq).find(c => c.name === name)
            if (!spec) throw new Error(`${platform} cloud: no command "${name}" (known: ${rules.commands(() => 0).map(c => c.name).join(", ")})`)
            const from = uplinks.length
            await cloud.publishAsync(spec.topic, spec.payload, { qos: 1 })
            const result: CommandResult = { name, topic: spec.topic, payload: spec.payload, problems: [] }
            try {
                result.reply = await waitFor(`the reply to ${name}`, spec.isReply, timeoutMs, from)
                result.problems = spec.check(result.reply)
            } catch (e) {
                result.problems = [`no reply to ${name} within ${timeoutMs} ms`]
            }
            return result
        },
        async close() {
            for (const t of dropTimers.values()) clearTimeout(t)
            await cloud.endAsync(true).catch(() => {})
            await broker.close()
        },
    }
}
