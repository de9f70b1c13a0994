/**
 * The device model: its properties declared once (name, type, unit, range, writable), used for the
 * report payload, command validation and discovery, and `Device`, the current values.
 */

import { INTERVAL_MAX, INTERVAL_MIN } from "../config"
import { millis } from "../util/rt"

/** Value types of properties. */
export type PropType = "number" | "int" | "bool"
/** A property value. */
export type PropValue = number | boolean


/** Declaration of one property. */
export interface PropertyDesc {
    name: string
    /** human name for dashboards (Home Assistant entity names) */
    label: string
    type: PropType
    /** unit in plain ASCII ("C", "%RH", "ms", "s") */
    unit?: string
    min?: number
    max?: number
    /** whether commands may set it */
    writable: boolean
    description: string
}

// One declaration (a call costs less bytecode than an object literal with every field).
function prop(name: string, label: string, type: PropType, unit: string, min: number, max: number, writable: boolean, description: string): PropertyDesc {
    return { name, label, type, unit, min, max, writable, description }
}

/** Every property of the device, in report order. */
export const PROPERTIES: PropertyDesc[] = [
    prop("temperature", "Temperature", "number", "C", -40, 125, false, "air temperature"),
    prop("humidity", "Humidity", "number", "%RH", 0, 100, false, "relative humidity"),
    prop("led", "LED", "bool", undefined, undefined, undefined, true, "the status LED (on/off)"),
    prop("interval", "Report interval", "int", "ms", INTERVAL_MIN, INTERVAL_MAX, true, "time between reports"),
    prop("uptime", "Uptime", "int", "s", 0, undefined, false, "seconds since boot"),
]

/** The declaration of property `name`, or undefined. */
export function findProperty(name: string): PropertyDesc {
    for (const p of PROPERTIES) if (p.name === name) return p
    return undefined
}

/** Names of all properties, comma separated (for error messages). */
export function propertyNames(writableOnly = false): string {
    const names: string[] = []
    for (const p of PROPERTIES) if (!writableOnly || p.writable) names.push(p.name)
    return names.join(", ")
}

/** A failed check or write: an HTTP-like code (404, 403, 422) and a message naming the problem. */
export interface PropError {
    code: number
    message: string
}

/** Result of `checkValue`: the converted value, or an error. */
export interface Checked {
    value?: PropValue
    error?: PropError
}

/** `s` as a JSON string, cut to `max` characters (the last 3 of them "...") when it is longer. */
export function quoted(s: string, max: number): string {
    if (s.length > max) s = s.slice(0, max - 3) + "..."
    return JSON.stringify(s)
}

function show(v: any): string {
    if (typeof v === "string") return quoted(v as string, 40)
    // null and undefined as their names, like numbers and booleans
    if (v !== null && typeof v === "object") {
        if (Array.isArray(v)) return "an array"
        return "an object"
    }
    return "" + v
}

/**
 * Converts `raw` to a value of property `p`: booleans accept true/false, 1/0, "on"/"off",
 * "true"/"false"; numbers accept JSON numbers and numeric strings. 422 when the type or range is wrong.
 */
export function checkValue(p: PropertyDesc, raw: any): Checked {
    let why: string
    if (p.type === "bool") {
        const s = typeof raw === "string" ? (raw as string).trim().toLowerCase() : raw
        const i = [true, false, 1, 0, "on", "off", "true", "false", "1", "0"].indexOf(s)
        if (i >= 0) return { value: !(i & 1) }
        why = ` must be a boolean (true/false, 1/0, "on"/"off"), got ${show(raw)}`
    } else {
        let n = NaN
        if (typeof raw === "number") n = raw
        else if (typeof raw === "string" && isNumeric((raw as string).trim())) n = parseFloat((raw as string).trim())
        const lo = p.min !== undefined
        const hi = p.max !== undefined
        // (nested ifs and plain assignments: fewer bytes than a chain of ternaries)
        let range = ""
        if (lo) {
            if (hi) range = ` ${p.min}..${p.max}`
            else range = ` >= ${p.min}`
        } else if (hi) range = ` <= ${p.max}`
        why = ` must be ${p.type === "int" ? "an integer" : "a number"}${range}${p.unit ? " " + p.unit : ""}, got ${show(raw)}`
        // n - n is 0 for every finite number, NaN for NaN and the infinities
        if (!(n - n === 0) || (p.type === "int" && n !== Math.floor(n))) {
            // not a value of the type: `why` as it is
        } else if ((lo && n < p.min) || (hi && n > p.max)) why += " (out of range)"
        else return { value: n }
    }
    return { error: { code: 422, message: p.name + why } }
}

/** True for decimal number text: optional sign, digits, optional fraction and exponent. */
export function isNumeric(s: string): boolean {
    const n = s.length
    let i = "+-".indexOf(s.charAt(0)) >= 0 && n ? 1 : 0
    // the mantissa: digits with at most one "." among them, at least one digit
    let digits = 0
    let dot = false
    for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x30 && c <= 0x39) digits++
        else if (c === 0x2e && !dot) dot = true
        else break
    }
    if (!digits) return false
    if (i < n && (s.charAt(i) === "e" || s.charAt(i) === "E")) {
        if ("+-".indexOf(s.charAt(++i)) >= 0 && i < n) i++
        const e0 = i
        while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++
        if (i === e0) return false
    }
    return i === n
}

/** The values of every property at one moment, keyed by property name. */
export type Snapshot = { [name: string]: PropValue }

/** The device's current state: property values with validated writes. */
export class Device {
    private values: { [name: string]: PropValue }

    /**
     * @param bootMs the `millis()` reading at boot (uptime counts from it)
     * @param intervalMs the initial report interval (from REPORT_MS)
     */
    constructor(readonly bootMs = 0, intervalMs = 5000) {
        this.values = { temperature: 0, humidity: 0, led: false, interval: intervalMs }
    }

    /** Current value of property `name` (uptime needs `nowMs`); undefined for unknown names. */
    get(name: string, nowMs = 0): PropValue {
        if (name === "uptime") return this.uptime(nowMs)
        return this.values[name]
    }

    /** Whole seconds since boot at `nowMs`. */
    uptime(nowMs: number): number {
        const s = Math.floor((nowMs - this.bootMs) / 1000)
        return s < 0 ? 0 : s
    }

    /** The LED state. */
    ledOn(): boolean {
        return this.values["led"] === true
    }

    /** The report interval, ms. */
    intervalMs(): number {
        return this.values["interval"] as number
    }

    /**
     * A write from outside (a command): checks that the property exists (404), is writable (403)
     * and that the value fits (422). Returns undefined on success, else the error.
     */
    set(name: string, raw: any): PropError {
        const p = findProperty(name)
        if (!p) return { code: 404, message: `unknown property "${name}" (known: ${propertyNames()})` }
        if (!p.writable) return { code: 403, message: `${name} is read-only (writable: ${propertyNames(true)})` }
        const c = checkValue(p, raw)
        if (c.error) return c.error
        this.values[name] = c.value
        return undefined
    }

    /** Updates a measured value (temperature, humidity) from the device itself; no range check. */
    measure(temperature: number, humidity: number) {
        this.values["temperature"] = temperature
        this.values["humidity"] = humidity
    }

    /** All property values at `nowMs`, in report order (numbers rounded to 2 decimals). */
    snapshot(nowMs: number): Snapshot {
        const s: Snapshot = {}
        for (const p of PROPERTIES) {
            const v = this.get(p.name, nowMs)
            s[p.name] = p.type === "number" ? Math.round((v as number) * 100) / 100 : v
        }
        return s
    }
}
