/**
 * What the platform profiles share about thing models: the mapping between the device's property
 * names and a platform's identifiers (defaults per platform, CLOUD_PROPS overrides), value
 * encoding in reports and replies (booleans as 0/1 where the platform's bool type is an integer,
 * floats that keep a decimal point), message ids, and turning a platform request into the app's
 * command model with the app's own validation (src/app/commands.ts).
 */
import { Parsed, Reply, Request, checkParams, commandError, decodeRequest, parseCommand } from "../app/commands"
import { jsonString, toJson } from "../app/json"
import { PROPERTIES, PropValue, PropertyDesc, Snapshot, findProperty } from "../app/properties"
import { Config } from "../config"
import { utf8ErrorAt } from "../util/utf8"
import { MqttCredentials } from "./credentials"
import { ConnectParams } from "./profile"

/** How a platform wants values written. */
export interface ValueStyle {
    /** booleans as 1/0 (Alibaba, Tencent, ThingSpeak) instead of true/false */
    boolAsInt?: boolean
    /** "number" properties always with a decimal point (25.0), as Alibaba's float type asks */
    floatPoint?: boolean
}

/** The model names' identifiers on one platform; `"-"` leaves a property out. */
export class PropertyMap {
    private ids: { [name: string]: string } = {}

    /**
     * @param defaults the platform's identifiers by model name (missing names keep the model name)
     * @param overrides CLOUD_PROPS (already validated by the config)
     */
    constructor(defaults?: { [name: string]: string }, overrides?: { [name: string]: string }) {
        for (const p of PROPERTIES) {
            let id = p.name
            if (defaults && defaults[p.name] !== undefined) id = defaults[p.name]
            if (overrides && overrides[p.name] !== undefined) id = overrides[p.name]
            this.ids[p.name] = id
        }
    }

    /** The platform identifier of model property `name`, or undefined when it is left out. */
    id(name: string): string {
        const id = this.ids[name]
        return id === "-" ? undefined : id
    }

    /** The model name of platform identifier `id`, or undefined. */
    name(id: string): string {
        for (const p of PROPERTIES) if (this.ids[p.name] === id) return p.name
        return undefined
    }

    /**
     * Platform parameters renamed to model names. Identifiers that are not mapped keep their name
     * (so the app's validation reports them as unknown); non-objects are returned as they are.
     */
    paramsIn(params: any): any {
        if (params === null || typeof params !== "object" || Array.isArray(params)) return params
        const out: { [name: string]: any } = {}
        for (const k of Object.keys(params)) {
            const n = this.name(k)
            out[n !== undefined ? n : k] = params[k]
        }
        return out
    }
}

/** A value as JSON text in the platform's style. */
export function valueJson(p: PropertyDesc, v: PropValue, style: ValueStyle): string {
    if (typeof v === "boolean") return style.boolAsInt ? (v ? "1" : "0") : v ? "true" : "false"
    const s = toJson(v)
    if (style.floatPoint && p.type === "number" && s !== "null" && s.indexOf(".") < 0 && s.indexOf("e") < 0) return s + ".0"
    return s
}

/**
 * The JSON object text `{"id1":v1,...}` of a snapshot in platform identifiers (left-out
 * properties skipped). With `wrapTime` each value becomes `{"value":v,"time":wrapTime}`
 * (OneNET); `wrapTime` 0 wraps without a time.
 */
export function paramsJson(snapshot: Snapshot, map: PropertyMap, style: ValueStyle, wrapTime?: number): string {
    const parts: string[] = []
    for (const p of PROPERTIES) {
        const id = map.id(p.name)
        const v = snapshot[p.name]
        if (id === undefined || v === undefined) continue
        let text = valueJson(p, v, style)
        if (wrapTime !== undefined) text = '{"value":' + text + (wrapTime > 0 ? ',"time":' + toJson(wrapTime) : "") + "}"
        parts.push(jsonString(id) + ":" + text)
    }
    return "{" + parts.join(",") + "}"
}

/** A reply's `data` (model names) as a JSON object text in platform identifiers; "{}" when none. */
export function dataJson(reply: Reply, map: PropertyMap, style: ValueStyle): string {
    const data = reply.data
    if (!data) return "{}"
    const parts: string[] = []
    for (const name of Object.keys(data)) {
        const p = findProperty(name)
        const id = map.id(name)
        if (!p || id === undefined) continue
        parts.push(jsonString(id) + ":" + valueJson(p, data[name], style))
    }
    return "{" + parts.join(",") + "}"
}

/** Decimal message ids that count up from a random start and wrap below `limit`. */
export class IdCounter {
    private n: number

    constructor(readonly limit = 4294967295) {
        this.n = Math.floor(Math.random() * Math.min(limit, 1000000000))
    }

    /** The next id as a decimal string. */
    next(): string {
        this.n = this.n >= this.limit ? 1 : this.n + 1
        return "" + this.n
    }
}

/**
 * The app command for a platform request: `name` (set, toggle, report), the request id, the
 * parameters in platform identifiers, and the reply context. Validation is the app's: set goes
 * through `checkParams`, the others through `parseCommand` (unknown names get a 404).
 */
export function platformCommand(name: string, id: string, params: any, map: PropertyMap, ctx: string): Parsed {
    const mapped = map.paramsIn(params)
    if (name === "set") return checkParams(id, mapped, ctx)
    if (name === "toggle" && mapped !== null && typeof mapped === "object" && !Array.isArray(mapped)) {
        const target = mapped["name"]
        if (typeof target === "string") {
            const n = map.name(target as string)
            if (n !== undefined) mapped["name"] = n
        }
    }
    const body: { [k: string]: any } = { id }
    if (mapped !== undefined && mapped !== null) body["params"] = mapped
    return parseCommand(name, Buffer.from(toJson(body)), ctx)
}

/**
 * `decodeRequest` (size cap, JSON, an object with an optional id) after checking the payload is
 * valid UTF-8 (400 otherwise: invalid bytes would crash the VM once they become text).
 */
export function decodeBody(payload: Buffer, allowEmpty: boolean, ctx: string): Request {
    const bad = payload ? utf8ErrorAt(payload) : -1
    if (bad >= 0) return { id: "", body: undefined, error: commandError("", 400, `payload is not valid UTF-8 (byte ${bad})`, ctx) }
    return decodeRequest(payload, allowEmpty, ctx)
}

/**
 * The mandatory request id under `idKey` of a decoded request body (a string or a number, at
 * most 64 characters), or the error to reply with (`example` shows the expected shape).
 */
export function requiredId(body: any, idKey: string, ctx: string, example: string): { id: string; error?: Parsed } {
    const raw = body[idKey]
    let id = ""
    if (typeof raw === "string") id = raw as string
    else if (typeof raw === "number") id = "" + raw
    else if (raw !== undefined && raw !== null)
        return { id: "", error: commandError("", 400, `${idKey} must be a string or a number; expected ${example}`, ctx) }
    if (id.length > 64) return { id: "", error: commandError("", 400, `${idKey} is ${id.length} characters long, at most 64 allowed`, ctx) }
    if (!id.length) return { id: "", error: commandError("", 400, `${idKey} is missing; expected ${example}`, ctx) }
    return { id }
}

/**
 * Decodes a platform request body (size, JSON, object; see `decodeRequest`) whose id under
 * `idKey` is mandatory. Returns the id and body, or the error to reply with.
 */
export function requestWithId(payload: Buffer, idKey: string, ctx: string, example: string): { id: string; body?: any; error?: Parsed } {
    const req = decodeBody(payload, false, ctx)
    if (req.error) return { id: "", error: req.error }
    const r = requiredId(req.body, idKey, ctx, example)
    if (r.error) return r
    return { id: r.id, body: req.body }
}

/** The body text of a JSON request as an object, treating "", blanks and `null` as `{}` (direct methods). */
export function optionalBody(payload: Buffer, ctx: string, id: string): { body?: any; error?: Parsed } {
    if (payload && payload.length <= 8 && utf8ErrorAt(payload) < 0) {
        const t = payload.toString().trim()
        if (t === "null" || t === "") return { body: {} }
    }
    const req = decodeBody(payload, true, ctx)
    if (req.error) return { error: commandError(id, req.error.code, req.error.message, ctx) }
    return { body: req.body }
}

/**
 * Session parameters of a platform: the broker from the settings, the credentials just minted
 * (they expire when `cr.expires`, Unix seconds, is set), a clean session.
 */
export function sessionParams(cfg: Config, cr: MqttCredentials, keepAliveS?: number): ConnectParams {
    return {
        host: cfg.mqttHost,
        port: cfg.mqttPort,
        tls: cfg.mqttTls,
        clientId: cr.clientId,
        username: cr.username,
        password: cr.password,
        keepAliveS: keepAliveS > 0 ? keepAliveS : cfg.keepAliveS,
        cleanSession: true,
        expiresAtMs: cr.expires > 0 ? cr.expires * 1000 : 0,
    }
}
