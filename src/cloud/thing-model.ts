/**
 * What the platform profiles share about thing models: the mapping between the device's property
 * names and a platform's identifiers (defaults per platform, CLOUD_PROPS overrides), value
 * encoding in reports and replies (booleans as 0/1 where the platform's bool type is an integer,
 * floats that keep a decimal point), message ids, and turning a platform request into the app's
 * command model with the app's own validation (src/model/commands.ts).
 */
import { Parsed, Request, checkParams, commandError, commandOf, decodeRequest } from "../model/commands"
import { jsonString, toJson } from "../util/json"
import { PROPERTIES } from "../model/properties"
import { Config } from "../config"
import { MqttCredentials } from "./credentials"
import { ConnectParams } from "./profile"

/** Model property name -> platform identifier; `"-"` leaves a property out. */
export type PropertyMap = { [name: string]: string }

/** Value styles (bits): booleans as 1/0 (Alibaba, Tencent, ThingSpeak) instead of true/false. */
export const BOOL_AS_INT = 1
/** "number" properties always with a decimal point (25.0), as Alibaba's float type asks. */
export const FLOAT_POINT = 2

/**
 * The identifiers of every model property: `overrides` (CLOUD_PROPS, already validated), else
 * `defaults` (the platform's names), else the model name.
 */
export function propertyMap(defaults?: { [name: string]: string }, overrides?: { [name: string]: string }): PropertyMap {
    const m: PropertyMap = {}
    for (const p of PROPERTIES) {
        const n = p.name
        // (plain assignments: fewer bytes than a chain of && and ||)
        let id = n
        if (defaults) id = defaults[n] || id
        if (overrides) id = overrides[n] || id
        m[n] = id
    }
    return m
}

/** The model name of platform identifier `id`, or undefined. */
export function modelName(map: PropertyMap, id: string): string {
    for (const p of PROPERTIES) if (map[p.name] === id) return p.name
    return undefined
}

/**
 * The JSON object text `{"id1":v1,...}` of property values (model names, e.g. a snapshot or a
 * reply's data) in platform identifiers and model order; left-out and missing properties are
 * skipped, "{}" when `values` is undefined. With `wrapTime` each value becomes
 * `{"value":v,"time":wrapTime}` (OneNET); `wrapTime` 0 wraps without a time.
 */
export function valuesJson(values: { [name: string]: any }, map: PropertyMap, style: number, wrapTime?: number): string {
    const parts: string[] = []
    for (const p of PROPERTIES) {
        const id = map[p.name]
        // (nested ifs and plain assignments: fewer bytes than && chains and ternaries)
        let v: any = undefined
        if (values) v = values[p.name]
        if (id === "-") continue
        if (v === undefined) continue
        let text = toJson(v)
        if (typeof v === "boolean")
            if (style & BOOL_AS_INT) {
                if (v) text = "1"
                else text = "0"
            }
        if (style & FLOAT_POINT)
            if (p.type === "number")
                if (text.indexOf(".") < 0)
                    if (text.indexOf("e") < 0)
                        if (text !== "null") text += ".0"
        if (wrapTime !== undefined) {
            let time = ""
            if (wrapTime > 0) time = ',"time":' + toJson(wrapTime)
            text = '{"value":' + text + time + "}"
        }
        parts.push(jsonString(id) + ":" + text)
    }
    return "{" + parts.join(",") + "}"
}

let lastId = -1

/** The next message id: decimal, counting up from a random start, wrapping below `limit`. */
export function nextId(limit = 4294967295): string {
    if (lastId < 0) lastId = Math.floor(Math.random() * 1000000000)
    // (plain assignments: fewer bytes than a ternary)
    if (lastId >= limit) lastId = 1
    else lastId = lastId + 1
    return "" + lastId
}

/**
 * The app command for a platform request: `name` (set, toggle, report), the request id, the
 * parameters in platform identifiers, and the reply context. Validation is the app's: set goes
 * through `checkParams`, the others through `commandOf` (unknown names get a 404).
 */
export function platformCommand(name: string, id: string, params: any, map: PropertyMap, ctx: string): Parsed {
    let mapped = params
    // (nested ifs: fewer bytes than && chains)
    if (params !== null)
        if (typeof params === "object")
            if (!Array.isArray(params)) {
                // identifiers that are not mapped keep their name, so the app's validation reports them
                mapped = {}
                for (const k of Object.keys(params)) mapped[modelName(map, k) || k] = params[k]
                const target = mapped["name"]
                if (name === "toggle")
                    if (typeof target === "string") mapped["name"] = modelName(map, target) || target
            }
    if (name === "set") return checkParams(id, mapped, ctx)
    // (commandOf treats params null as absent, as it does undefined)
    return commandOf(name, { id, body: { params: mapped } }, ctx)
}

/**
 * Decodes a platform request (size, UTF-8, JSON, object; see `decodeRequest`) whose id under
 * `idKey` (a string or a number, at most 64 characters) is mandatory: `example` shows the
 * expected shape in the error.
 */
export function requestWithId(payload: Buffer, idKey: string, ctx: string, example: string): Request {
    const req = decodeRequest(payload, false, ctx, idKey)
    if (!req.error)
        if (!req.id.length) req.error = commandError("", 400, `${idKey} is missing; expected ${example}`, ctx)
    return req
}

/**
 * Session parameters of a platform: the broker from the settings, the credentials just minted
 * (they expire when `cr.expires`, Unix seconds, is set), a clean session.
 */
export function sessionParams(cfg: Config, cr: MqttCredentials, keepAliveS?: number): ConnectParams {
    // (a plain assignment: fewer bytes than a ternary)
    let expiresAtMs = 0
    if (cr.expires > 0) expiresAtMs = cr.expires * 1000
    return {
        host: cfg.mqttHost,
        port: cfg.mqttPort,
        tls: cfg.mqttTls,
        clientId: cr.clientId,
        username: cr.username,
        password: cr.password,
        keepAliveS: keepAliveS || cfg.keepAliveS,
        cleanSession: true,
        expiresAtMs,
    }
}
