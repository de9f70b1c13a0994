/** Small assertion helpers for VM suites (the runtime's `expect` has only `toBe`); messages show values as JSON. */
import { toJson } from "../../src/util/json"

/** Throws unless `actual === expected`. */
export function eq(actual: any, expected: any, what = "value") {
    if (actual !== expected) throw new Error(`${what}: expected ${toJson(expected)}, got ${toJson(actual)}`)
}
/** Throws `what` unless `cond`. */
export function ok(cond: boolean, what: string) {
    if (!cond) throw new Error(what)
}
/** Throws unless `s` contains `part`. */
export function has(s: string, part: string, what = "text") {
    if (typeof s !== "string" || s.indexOf(part) < 0) throw new Error(`${what}: ${toJson(s)} does not contain ${toJson(part)}`)
}
/** Throws if `s` contains `part`. */
export function lacks(s: string, part: string, what = "text") {
    if (typeof s === "string" && s.indexOf(part) >= 0) throw new Error(`${what}: ${toJson(s)} must not contain ${toJson(part)}`)
}
