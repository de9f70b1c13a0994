/**
 * Commands: the device's command model (set properties, toggle, report now), parsing of JSON
 * requests into it with errors that carry a code and say what is wrong, and applying a command to
 * the device to get the reply. Nothing here throws on bad input.
 *
 * Codes (HTTP-like): 200 done, 400 bad JSON or shape, 403 read-only property, 404 unknown command
 * or property, 413 payload too large, 422 wrong type or out of range.
 */
import { parseJson } from "../util/json"
import { Device, PropValue, checkValue, findProperty, propertyNames, quoted } from "./properties"
import { words } from "../util/words"

/** Largest command payload accepted, bytes (checked before parsing). */
export const MAX_COMMAND_BYTES = 2048
/** Names of the commands, as used in `commands/{name}` topics. */
export const COMMAND_NAMES = words("set toggle report", " ")

/** A parameter of a set command: a converted value, or "toggle" for a boolean property. */
export type ParamValue = PropValue | string

/** Set one or more writable properties at once (all or none). */
export interface SetCommand {
    kind: "set"
    id: string
    params: { [name: string]: ParamValue }
    /** platform-specific reply context (request id, method), opaque to the application */
    ctx?: string
}
/** Invert a boolean property (default "led"). */
export interface ToggleCommand {
    kind: "toggle"
    id: string
    name: string
    ctx?: string
}
/** Send a report now, outside the schedule. */
export interface ReportCommand {
    kind: "report"
    id: string
    ctx?: string
}
/** A request that could not be turned into a command; still gets a reply. */
export interface CommandError {
    kind: "error"
    id: string
    code: number
    message: string
    ctx?: string
}
/** A valid command. */
export type Command = SetCommand | ToggleCommand | ReportCommand
/** What parsing a request yields. */
export type Parsed = Command | CommandError

/** The answer to one command. */
export interface Reply {
    id: string
    code: number
    message?: string
    data?: { [name: string]: PropValue }
}

/** What applying a command did. */
export interface Outcome {
    reply: Reply
    /** names of properties whose value changed */
    changed: string[]
    /** true when a report should go out now (report command, or state changed) */
    report: boolean
}

/** A CommandError value. */
export function commandError(id: string, code: number, message: string, ctx?: string): CommandError {
    return { kind: "error", id, code, message, ctx }
}

function kindOf(v: any): string {
    // (one test a case: fewer bytes than a || chain and ternaries)
    if (v === null) return "null"
    if (v === undefined) return "nothing"
    if (Array.isArray(v)) return "an array"
    const t = typeof v
    if (t === "object") return "an object"
    return "a " + t
}

/** A request body: its id and the JSON object, or an error. */
export interface Request {
    id: string
    body: any
    error?: CommandError
}

/**
 * Decodes a JSON request payload: size cap (413), UTF-8, JSON syntax and nesting (400), an object
 * with an optional id under `idKey` (string or number, at most 64 characters). An empty payload
 * is `{}` when `allowEmpty`, else 400.
 */
export function decodeRequest(payload: Buffer, allowEmpty: boolean, ctx?: string, idKey = "id"): Request {
    const len = payload ? payload.length : 0
    let body: any = {}
    let error: string
    let code = 400
    // blank: nothing but spaces, tabs and line ends (looked for once the size is known to be fine)
    let blank = true
    if (len > MAX_COMMAND_BYTES) {
        code = 413
        error = `payload is ${len} bytes, at most ${MAX_COMMAND_BYTES} allowed`
    } else
        for (let i = 0; i < len; i++)
            if (" \t\r\n".indexOf(String.fromCharCode(payload[i])) < 0) {
                blank = false
                break
            }
    if (error) {
        // (too large)
    } else if (blank) {
        if (!allowEmpty) error = 'payload is empty; expected JSON like {"id":"1","params":{"led":true}}'
    } else {
        try {
            body = parseJson(payload)
            if (body === null || typeof body !== "object" || Array.isArray(body))
                error = 'payload must be a JSON object like {"id":"1","params":{"led":true}}, got ' + kindOf(body)
        } catch (e: any) {
            error = `payload is not valid JSON (${e.message})`
        }
    }
    let id = ""
    if (!error) {
        const rawId = body[idKey]
        const t = typeof rawId
        if (t === "string" || t === "number") id = "" + rawId
        else if (rawId !== undefined && rawId !== null) error = `${idKey} must be a string or a number, got ${kindOf(rawId)}`
        if (id.length > 64) error = `${idKey} is ${id.length} characters long, at most 64 allowed`
    }
    if (error) return { id: "", body: undefined, error: commandError("", code, error, ctx) }
    return { id, body }
}

/**
 * Validates set parameters against the device model: every name must be a writable property and
 * every value fit it ("toggle" is allowed for booleans). Returns the converted command or the
 * error (the first error's code; the message lists every problem).
 */
export function checkParams(id: string, params: any, ctx?: string): Parsed {
    if (params === null || typeof params !== "object" || Array.isArray(params))
        return commandError(id, 400, `params must be an object of property values like {"led":true}, got ${kindOf(params)}`, ctx)
    const names = Object.keys(params)
    if (!names.length) return commandError(id, 400, `params is empty; set at least one of: ${propertyNames(true)}`, ctx)
    const out: { [name: string]: ParamValue } = {}
    const problems: string[] = []
    let code = 0
    for (const name of names) {
        const p = findProperty(name)
        let err: string = undefined
        let c = 0
        if (!p) {
            c = 404
            err = `unknown property ${quoted(name, 32)} (writable: ${propertyNames(true)})`
        } else if (!p.writable) {
            c = 403
            err = `${name} is read-only (writable: ${propertyNames(true)})`
        } else {
            const raw = params[name]
            if (p.type === "bool" && typeof raw === "string" && (raw as string).trim().toLowerCase() === "toggle") out[name] = "toggle"
            else {
                const r = checkValue(p, raw)
                if (r.error) {
                    c = r.error.code
                    err = r.error.message
                } else out[name] = r.value
            }
        }
        if (err !== undefined) {
            if (!code) code = c
            problems.push(err)
        }
    }
    if (problems.length) return commandError(id, code, problems.join("; "), ctx)
    return { kind: "set", id, params: out, ctx }
}

/**
 * Parses command `name` (set, toggle, report) with a JSON payload:
 * set `{"id":"1","params":{"led":true}}`; toggle `{"id":"2"}` or `{"id":"2","params":{"name":"led"}}`;
 * report `{"id":"3"}` (toggle and report accept an empty payload).
 */
export function parseCommand(name: string, payload: Buffer, ctx?: string): Parsed {
    // only set needs a body; an unknown command with an empty payload is still a 404
    const req = decodeRequest(payload, name !== "set", ctx)
    if (req.error) return req.error
    return commandOf(name, req, ctx)
}

/** The command `name` of a decoded request (see `parseCommand`). */
export function commandOf(name: string, req: Request, ctx?: string): Parsed {
    const id = req.id
    if (typeof name !== "string") name = ""
    if (COMMAND_NAMES.indexOf(name) < 0) {
        return commandError(id, 404, `unknown command ${quoted(name, 32)} (known: ${COMMAND_NAMES.join(", ")})`, ctx)
    }
    const params = req.body["params"]
    if (name === "set") return checkParams(id, params, ctx)
    if (name === "report") return { kind: "report", id, ctx }
    // toggle
    let target = "led"
    if (params !== undefined && params !== null) {
        if (typeof params !== "object" || Array.isArray(params))
            return commandError(id, 400, `params must be an object like {"name":"led"}, got ${kindOf(params)}`, ctx)
        const n = params["name"]
        if (n !== undefined) {
            if (typeof n !== "string") return commandError(id, 400, `params.name must be a property name, got ${kindOf(n)}`, ctx)
            target = n as string
        }
    }
    const p = findProperty(target)
    if (p && p.writable && p.type !== "bool")
        return commandError(id, 422, `toggle needs a boolean property; ${target} is ${p.type === "int" ? "an integer" : "a number"}`, ctx)
    // an unknown or read-only property: the errors of a set
    const one: { [name: string]: ParamValue } = {}
    one[target] = "toggle"
    const c = checkParams(id, one, ctx)
    if (c.kind === "error") return c
    return { kind: "toggle", id, name: target, ctx }
}

/**
 * Applies a parsed command to the device and returns the reply (id echoed, code, message on
 * errors, the new values in `data`), which properties changed and whether to report now.
 * Never throws; a set is all-or-nothing.
 */
export function applyCommand(device: Device, cmd: Parsed): Outcome {
    const changed: string[] = []
    const reply: Reply = { id: "", code: 200 }
    let err: { code: number; message: string }
    let report = false
    // (one test of cmd and plain assignments: fewer bytes than a ternary and a && per use)
    if (!cmd) err = { code: 400, message: "no command" }
    else {
        reply.id = cmd.id
        if (cmd.kind === "error") err = cmd
        else if (cmd.kind === "report") report = true
    }
    if (!err && !report) {
        let params: { [name: string]: ParamValue } = {}
        if (cmd.kind === "toggle") params[(cmd as ToggleCommand).name] = "toggle"
        else params = (cmd as SetCommand).params
        // validate again: the command may come from a platform parser that did not
        const checked = checkParams(cmd.id, params)
        if (checked.kind === "error") err = checked
        else {
            const ok = (checked as SetCommand).params
            const data: { [name: string]: PropValue } = {}
            for (const name of Object.keys(ok)) {
                const before = device.get(name)
                err = device.set(name, ok[name] === "toggle" ? !before : ok[name])
                if (err) break
                const after = device.get(name)
                data[name] = after
                if (after !== before) changed.push(name)
            }
            if (!err) reply.data = data
        }
    }
    if (err) {
        reply.code = err.code
        reply.message = err.message
    }
    return { reply, changed, report: report || changed.length > 0 }
}
