/**
 * MQTT topic names and topic filters (spec 4.7): validation and matching.
 */

/** Returns an error message when `topic` is not a valid topic name to publish to, else undefined. */
export function topicNameError(topic: string): string {
    if (typeof topic !== "string" || topic.length === 0) return "topic must be a non-empty string"
    if (topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0) return `topic "${topic}" must not contain wildcards (+ or #)`
    if (topic.indexOf("\u0000") >= 0) return "topic must not contain NUL"
    return undefined
}

/** Returns an error message when `filter` is not a valid topic filter, else undefined. */
export function topicFilterError(filter: string): string {
    if (typeof filter !== "string" || filter.length === 0) return "topic filter must be a non-empty string"
    if (filter.indexOf("\u0000") >= 0) return "topic filter must not contain NUL"
    const n = filter.length
    for (let i = 0; i < n; i++) {
        const c = filter.charCodeAt(i)
        if (c !== 0x23 && c !== 0x2b) continue // not # or +
        const alone = (i === 0 || filter.charCodeAt(i - 1) === 0x2f) && (i === n - 1 || filter.charCodeAt(i + 1) === 0x2f)
        if (!alone) return `topic filter "${filter}": a wildcard must occupy a whole level`
        if (c === 0x23 && i !== n - 1) return `topic filter "${filter}": # must be the last level`
    }
    return undefined
}

/**
 * True when `topic` matches `filter`: `+` matches one level, `#` the parent level and every level
 * below it, and filters starting with a wildcard do not match topics starting with `$`.
 */
export function topicMatches(filter: string, topic: string): boolean {
    const fl = filter.length
    const tl = topic.length
    if (tl > 0 && topic.charCodeAt(0) === 0x24 && fl > 0) {
        const f0 = filter.charCodeAt(0)
        if (f0 === 0x2b || f0 === 0x23) return false
    }
    let f = 0
    let t = 0
    while (f < fl) {
        const c = filter.charCodeAt(f)
        if (c === 0x23) return true // "#": matches the rest, including the parent ("a/#" ~ "a")
        if (c === 0x2b) {
            // "+": skip one topic level
            while (t < tl && topic.charCodeAt(t) !== 0x2f) t++
            f++
        } else {
            // literal level: compare up to the next "/"
            while (f < fl && filter.charCodeAt(f) !== 0x2f) {
                if (t >= tl || topic.charCodeAt(t) !== filter.charCodeAt(f)) return false
                f++
                t++
            }
            if (t < tl && topic.charCodeAt(t) !== 0x2f) return false
        }
        // both at a level end
        if (f >= fl) return t >= tl
        // filter has "/": the topic must too, unless the rest of the filter is "/#" (parent match)
        if (t >= tl) return f + 2 === fl && filter.charCodeAt(f + 1) === 0x23
        f++
        t++
    }
    return t >= tl
}
