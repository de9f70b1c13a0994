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
 *
 * This file runs an emulation; each platform's knowledge (test identity, credentials, settings,
 * topics, report checks, answers and commands) is in sim/clouds/<platform>.ts, the common part in
 * sim/clouds/common.ts.
 */
import { randomBytes } from "node:crypto"
import mqtt from "mqtt"
import { startAedes, type AedesBroker } from "../brokers.ts"
import { topicMatches } from "../dashboard/topics.ts"
import type { Settings } from "../hostlink.ts"
import { alibaba } from "./alibaba.ts"
import { azure } from "./azure.ts"
import type { Emulation, Uplink } from "./common.ts"
import { huawei } from "./huawei.ts"
import { onenet, type OneNetIdentity } from "./onenet.ts"
import { tencent } from "./tencent.ts"
import { thingspeak, type ThingSpeakIdentity } from "./thingspeak.ts"
import type { AlibabaDevice, AzureDevice, HuaweiDevice, TencentDevice } from "./verify.ts"

export type { Uplink } from "./common.ts"
export type { OneNetIdentity } from "./onenet.ts"
export type { ThingSpeakIdentity } from "./thingspeak.ts"

/** The platforms that have an emulation. */
export type CloudPlatform = "alibaba" | "onenet" | "azure" | "thingspeak" | "huawei" | "tencent"

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

/** Each platform's emulation (sim/clouds/<platform>.ts). */
const EMULATIONS: { [P in CloudPlatform]: Emulation<Identities[P]> } = { alibaba, onenet, azure, thingspeak, huawei, tencent }

const emulation = (p: CloudPlatform) => EMULATIONS[p] as Emulation<AnyIdentity>
const byPlatform = <T>(f: (e: Emulation<AnyIdentity>) => T) =>
    Object.fromEntries(CLOUD_PLATFORMS.map(p => [p, f(emulation(p))])) as Record<CloudPlatform, T>

export const CLOUD_PLATFORMS = Object.keys(EMULATIONS) as CloudPlatform[]

/** Test identities (made-up secrets, the reference vectors' identities where there is one). */
export const TEST_IDENTITIES = byPlatform(e => e.testIdentity) as Identities

/**
 * The CONNACK return code each emulation refuses bad credentials with: 4 "bad user name or
 * password" where the platforms' documentation lists it for a failed signature check; 5 "not
 * authorized" for IoT Hub (its documented answer) and ThingSpeak (what its broker sends).
 */
export const REFUSAL_CODES: Record<CloudPlatform, number> = byPlatform(e => e.refusalCode)

/** The model identifiers each platform's default property mapping uses (src/cloud/*.ts). */
export const DEFAULT_NAMES: Record<CloudPlatform, Record<string, string>> = byPlatform(e => e.names)

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
    return emulation(platform).mint(id, { nowMs, exp, tls: opts.tls, secret: s => (w ? corrupt(s) : s) })
}

/** The firmware settings that point a device with identity `id` at an emulated cloud on `port`. */
export function cloudSettings(platform: CloudPlatform, id: AnyIdentity, port: number): Settings {
    const s: Settings = { CLOUD: platform, MQTT_HOST: "127.0.0.1", MQTT_PORT: port, MQTT_TLS: false }
    return { ...s, ...emulation(platform).settings(id) }
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

function parseJsonText(text: string): any {
    try {
        return JSON.parse(text)
    } catch {
        return undefined
    }
}

/** Starts an emulated `platform` cloud on 127.0.0.1. */
export async function startEmulatedCloud(platform: CloudPlatform, opts: EmulatedCloudOptions = {}): Promise<EmulatedCloud> {
    const identity = opts.identity ?? TEST_IDENTITIES[platform]
    const names = opts.names ?? DEFAULT_NAMES[platform]
    const now = opts.nowMs ?? (() => Date.now())
    const rules = emulation(platform).rules(identity, names)
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

