/**
 * MQTT topic names and topic filters (spec 4.7): validation and matching.
 */
import { words } from "../util/words"

/**
 * Returns an error message when `topic` is not a valid topic name to publish to (or, with
 * `filter`, not a valid topic filter), else undefined.
 */
export function topicNameError(topic: string, filter?: boolean): string {
    let what = "topic"
    if (filter) what = "topic filter"
    if (typeof topic !== "string" || !topic.length) return `${what} must be a non-empty string`
    if (topic.indexOf("\u0000") >= 0) return `${what} must not contain NUL`
    const wild = topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0
    if (!filter) {
        if (wild) return `topic "${topic}" must not contain wildcards (+ or #)`
        return undefined
    }
    // a + or # fills a whole level, and # is the last level
    const levels = words(topic, "/")
    const n = levels.length
    for (let i = 0; i < n; i++) {
        const l = levels[i]
        if (l.length > 1 && (l.indexOf("+") >= 0 || l.indexOf("#") >= 0)) return `topic filter "${topic}": a wildcard must occupy a whole level`
        if (l === "#") {
            if (i < n - 1) return `topic filter "${topic}": # must be the last level`
        }
    }
    return undefined
}

/** Returns an error message when `filter` is not a valid topic filter, else undefined. */
export function topicFilterError(filter: string): string {
    return topicNameError(filter, true)
}

/**
 * True when `topic` matches `filter`: `+` matches one level, `#` the parent level and every level
 * below it, and filters starting with a wildcard do not match topics starting with `$`.
 */
export function topicMatches(filter: string, topic: string): boolean {
    if (topic[0] === "$") {
        if (filter[0] === "+" || filter[0] === "#") return false
    }
    let f = 0
    let t = 0
    // one level at a time: filter[f..fe) against topic[t..te)
    for (;;) {
        let fe = filter.indexOf("/", f)
        if (fe < 0) fe = filter.length
        let te = topic.indexOf("/", t)
        if (te < 0) te = topic.length
        const level = filter.slice(f, fe)
        if (level === "#") return true // the rest, including the parent ("a/#" matches "a")
        if (t > topic.length || (level !== "+" && level !== topic.slice(t, te))) return false
        if (fe >= filter.length) return te >= topic.length
        f = fe + 1
        t = te + 1
    }
}
