/**
 * What the emulated clouds have in common (sim/clouds/emulated.ts runs them; one file per
 * platform, sim/clouds/<platform>.ts, holds each one's knowledge): the shape of a platform's
 * emulation, the uplinks and commands, and the checks of reported values and replies.
 */
import type { Settings } from "../hostlink.ts"
import type { ConnectFields, Verdict } from "./verify.ts"

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
export interface CommandSpec {
    name: string
    topic: string
    payload: string
    /** true for the uplink that answers this command */
    isReply(u: Uplink): boolean
    /** problems with the reply (empty when right) */
    check(u: Uplink): string[]
}

export function isObject(v: unknown): v is Record<string, any> {
    return v !== null && typeof v === "object" && !Array.isArray(v)
}

/** Matches the uplink on `topic` whose JSON carries `id` (a reply to the command of that id). */
export function replyTo(topic: string, id: string): (u: Uplink) => boolean {
    return u => u.topic === topic && isObject(u.json) && u.json.id === id
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
export function propsProblems(params: unknown, names: Record<string, string>, boolAsInt: boolean, nowMs: number, wrapped = false): string[] {
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
export function idProblem(id: unknown, digits: number, max: number): string {
    if (typeof id !== "string" || !/^[0-9]+$/.test(id) || id.length > digits || +id > max)
        return `id must be a decimal string 0..${max}, got ${JSON.stringify(id)}`
    return ""
}

/** The per-platform knowledge of the emulation. */
export interface PlatformRules {
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
export function replyCode(u: Uplink, key: string, success: number, want: number | "error"): string[] {
    const j = u.json
    if (!isObject(j)) return [`reply is not a JSON object: ${u.text}`]
    const code = j[key]
    if (typeof code !== "number") return [`reply has no numeric ${key}: ${u.text}`]
    if (want === "error") return code === success ? [`expected an error ${key}, got ${code}`] : []
    return code === want ? [] : [`expected ${key} ${want}, got ${code}: ${u.text}`]
}

/** What a platform's minter is handed (sim/clouds/emulated.ts mintFor). */
export interface MintOptions {
    nowMs: number
    /** Unix seconds when a token expires */
    exp: number
    tls?: boolean
    /** the secret as signed: itself, or corrupted for a wrong-credentials test */
    secret(s: string): string
}

/** One platform's emulation, with identity type `I`. */
export interface Emulation<I> {
    /** the test identity (made-up secrets, the reference vectors' identity where there is one) */
    testIdentity: I
    /** the CONNACK return code bad credentials are refused with */
    refusalCode: number
    /** the model identifiers the platform's default property mapping uses (src/cloud/*.ts) */
    names: Record<string, string>
    /** the credentials a correct device sends */
    mint(d: I, o: MintOptions): { clientId: string; username: string; password: string }
    /** the platform's own firmware settings for identity `d` (CLOUD and MQTT_* are added by the caller) */
    settings(d: I): Settings
    rules(d: I, names: Record<string, string>): PlatformRules
}
