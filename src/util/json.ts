/**
 * JSON helpers that work around two runtime limits: `JSON.stringify` escapes each UTF-8 byte of a
 * non-ASCII character as its own `\u00XX` (so "°C" comes out as mojibake), and `JSON.parse` on
 * deeply nested input runs the VM out of memory or stack (a crash, not an exception).
 */
import { utf8ErrorAt } from "./utf8"

/** Deepest nesting `parseJson` accepts; our payloads need 3, the runtime crashes somewhere past 300. */
export const MAX_JSON_DEPTH = 8

// four lower-case hex digits of a UTF-16 code unit
function hex4(n: number): string {
    return Buffer.from([n >> 8, n & 255]).toString("hex")
}

/** A JSON string literal for `s`, with every non-ASCII character escaped as `\uXXXX`. */
export function jsonString(s: string): string {
    // the runtime's own escaping is right for ASCII (quotes, backslashes, control characters):
    // a string of ASCII below 0x7f (as many UTF-8 bytes as characters, no DEL) goes to it whole, in a
    // few VM steps (the loop below takes ~10 a character: a report's strings cost ~1,900 steps);
    // otherwise it takes each run of ASCII, and the characters past 0x7e are escaped here
    if (Buffer.from(s).length === s.length && s.indexOf("\u007f") < 0) return JSON.stringify(s)
    let out = '"'
    let start = 0
    const n = s.length
    for (let i = 0; i <= n; i++) {
        const c = i < n ? s.charCodeAt(i) : 0
        if (c < 0x7f && i < n) continue
        const run = JSON.stringify(s.slice(start, i))
        out += run.slice(1, run.length - 1)
        start = i + 1
        if (c > 0xffff) {
            const v = c - 0x10000
            out += "\\u" + hex4(0xd800 + (v >> 10)) + "\\u" + hex4(0xdc00 + (v & 0x3ff))
        } else if (c) out += "\\u" + hex4(c)
    }
    return out + '"'
}

/**
 * Serializes plain data (objects, arrays, strings, finite numbers, booleans, null) to JSON text
 * that is correct for non-ASCII strings; `undefined` members are left out, NaN/Infinity become null.
 */
export function toJson(v: any): string {
    // the runtime's JSON.stringify writes the same text in a few VM steps (a command's reply took
    // ~500 steps, ~2 ms of an RP2040's core, below) except where its text shows one of three
    // cases, each sent to the walk below: a non-ASCII character (each UTF-8 byte comes out as
    // `\u0080`..`\u00ff`; a control character's escape is `\u0000`..`\u001f`), DEL (escaped
    // below) and `undefined` in an array (null below). A false alarm (the text `\u00e9` or
    // `undefined` inside a string) only costs the walk.
    const s = JSON.stringify(v)
    if (typeof s === "string" && s.indexOf("undefined") < 0 && s.indexOf("\u007f") < 0) {
        let k = s.indexOf("\\u00")
        while (k >= 0 && s.charCodeAt(k + 4) < 0x38) k = s.indexOf("\\u00", k + 4)
        if (k < 0) return s
    }
    return walkJson(v)
}

/** toJson's own walk: every string through jsonString. */
function walkJson(v: any): string {
    if (v === null || v === undefined) return "null"
    const t = typeof v
    if (t === "string") return jsonString(v)
    if (t === "number") {
        // v - v is 0 for every finite number, NaN for NaN and the infinities
        if (v - v === 0) return JSON.stringify(v)
        return "null"
    }
    if (t === "boolean") return v ? "true" : "false"
    if (Array.isArray(v)) {
        const items: string[] = []
        // (undefined is null here, as walkJson(undefined) says)
        for (const x of v) items.push(walkJson(x))
        return "[" + items.join(",") + "]"
    }
    if (t === "object") {
        const items: string[] = []
        for (const k of Object.keys(v)) {
            const x = v[k]
            if (x === undefined) continue
            items.push(jsonString(k) + ":" + walkJson(x))
        }
        return "{" + items.join(",") + "}"
    }
    return "null"
}

function countByte(b: Buffer, byte: number, limit: number): number {
    let n = 0
    let i = b.indexOf(byte)
    while (i >= 0 && n <= limit) {
        n++
        i = b.indexOf(byte, i + 1)
    }
    return n
}

/**
 * Deepest nesting of `{`/`[` in JSON text (bytes or string), ignoring brackets inside strings;
 * stops counting once it passes `stopAbove` (a hostile 2 KB payload must not eat the VM's step budget).
 */
export function jsonDepth(text: Buffer | string, stopAbove = 0x7fffffff): number {
    const b = typeof text === "string" ? Buffer.from(text as string) : (text as Buffer)
    let depth = 0
    let max = 0
    let inStr = false
    for (let i = 0; i < b.length; i++) {
        const c = b[i]
        if (inStr) {
            if (c === 0x5c) i++
            else if (c === 0x22) inStr = false
        } else if (c === 0x22) inStr = true
        else if (c === 0x7b || c === 0x5b) {
            depth++
            if (depth > max) {
                max = depth
                if (max > stopAbove) return max
            }
        } else if (c === 0x7d || c === 0x5d) depth--
    }
    return max
}

/**
 * Parses JSON text (bytes or string) safely: returns the value, or throws an Error whose message
 * says what is wrong (syntax, or nesting deeper than `maxDepth`). Costs one native pass unless
 * the text holds more than `maxDepth` opening brackets.
 */
export function parseJson(text: Buffer | string, maxDepth = MAX_JSON_DEPTH): any {
    const b = typeof text === "string" ? Buffer.from(text as string) : (text as Buffer)
    // invalid UTF-8 makes JSON.parse's error text crash the VM as soon as it is used
    const bad = utf8ErrorAt(b)
    if (bad >= 0) throw new Error(`invalid JSON: not valid UTF-8 (byte ${bad})`)
    if (countByte(b, 0x7b, maxDepth) + countByte(b, 0x5b, maxDepth) > maxDepth) {
        if (jsonDepth(b, maxDepth) > maxDepth) throw new Error(`JSON nested more than ${maxDepth} levels deep`)
    }
    try {
        return JSON.parse(b.toString())
    } catch (e: any) {
        throw new Error(`invalid JSON: ${e && e.message !== undefined ? e.message : e}`)
    }
}
