/**
 * DNS stub resolver (RFC 1035, A records only): query builder, response parser (compression
 * pointers, CNAME chains), a TTL cache and a poll-driven resolver that retries over several
 * servers. No I/O here: the caller sends what `DnsResolver.poll` asks for (UDP to port 53) and
 * feeds back what arrives.
 */
import { utf8ErrorAt } from "../util/utf8"
import { action, Datagram, formatIp, getU16, getU32, isIp, setU16 } from "./ip"
import { words } from "../util/words"

/** UDP port of DNS servers. */
export const DNS_PORT = 53

const MAX_JUMPS = 16
const MAX_CHAIN = 8

/** Lower-cases `name` and drops one trailing dot. */
export function normalizeName(name: string) {
    const n = name.toLowerCase()
    if (n.length) if (n.charCodeAt(n.length - 1) === 46) return n.slice(0, n.length - 1)
    return n
}

// the characters a name may hold besides "."
const NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"

/** Why `name` cannot be looked up ("" when it can): labels of 1..63 letters, digits, "-" or "_", 253 characters in all. */
export function nameError(name: string): string {
    const n = typeof name === "string" ? normalizeName(name) : ""
    let why = ""
    if (!n) why = "is empty"
    if (n.length > 253) why = `is ${n.length} characters long (at most 253)`
    let label = 0
    for (let i = 0; i <= n.length; i++) {
        if (why) break
        // (past the last character: the dot that ends the last label)
        const c = n.slice(i, i + 1) || "."
        if (c === ".") {
            if (!label) why = `has an empty label at position ${i}`
            label = 0
        } else if (++label > 63) why = `has a label longer than 63 characters at position ${i - 63}`
        else if (NAME_CHARS.indexOf(c) < 0)
            why = `has a bad character "${c}" at position ${i} (expected letters, digits, "-", "_" or ".")`
    }
    if (why) return `dns: name "${name}" ${why}`
    return ""
}

/** Builds a recursive query for the A records of `name`; throws an Error when the name is invalid. */
export function buildQuery(id: number, name: string): Buffer {
    const err = nameError(name)
    if (err) throw new Error(err)
    const n = normalizeName(name)
    // header 12, the name (n.length + 2 with its first length byte and the root), type and class 4
    const b = Buffer.alloc(n.length + 18)
    setU16(b, 0, id)
    b[2] = 1 // RD
    b[5] = 1 // QDCOUNT
    // the name at 13, a dot before it; then from the end, each dot becomes the length of the label after it
    b.blitAt(13, n, 0, n.length)
    b[12] = 46
    let len = 0
    for (let i = 12 + n.length; i >= 12; i--) {
        if (b[i] === 46) {
            b[i] = len
            len = 0
        } else len++
    }
    const end = n.length + 18
    b[end - 3] = 1 // QTYPE A
    b[end - 1] = 1 // QCLASS IN
    return b
}

/** Kinds of failure, from the parser and the resolver. */
export type DnsErrorKind =
    | "format" // malformed message
    | "id" // not the id we sent
    | "notResponse" // QR bit clear
    | "question" // answers another question
    | "nxdomain" // RCODE 3: no such name
    | "rcode" // another error RCODE (see rcode)
    | "truncated" // TC bit: the answer did not fit in UDP
    | "noAddress" // the name exists but has no A record
    | "name" // invalid name asked for
    | "timeout" // no server answered
    | "noServer" // no DNS server configured

/**
 * Result of `parseResponse` and of a resolver lookup: `ok` with the addresses, or an error kind
 * and a message naming the name and the reason.
 */
export interface DnsResult {
    ok: boolean
    /** IPv4 addresses, in the order the server gave them */
    addresses?: string[]
    /** seconds: the smallest TTL along the CNAME chain and the A records used */
    ttl?: number
    error?: DnsErrorKind
    message?: string
    /** RCODE for "rcode" and "nxdomain" */
    rcode?: number
}

const RCODES = words(",FORMERR,SERVFAIL,NXDOMAIN,NOTIMP,REFUSED", ",")

function fail(error: DnsErrorKind, message: string, rcode?: number): DnsResult {
    return { ok: false, error, message, rcode }
}

const MAX_LABELS = 256
let nameEnd = 0
let labelBudget = 0
const scratch = Buffer.alloc(256)

// Decodes the (possibly compressed) name at `off` in lower case; sets nameEnd past it; throws on
// garbage. Labels read per message are capped (labelBudget) so that pointers cannot make a small
// message cost the VM more than a few thousand steps.
function readName(b: Buffer, off: number): string {
    const n = b.length
    let p = off
    let jumps = 0
    let len = 0
    nameEnd = -1
    for (;;) {
        if (p >= n) throw new Error(`name at ${off} runs past the end`)
        const l = b[p]
        if (--labelBudget < 0) throw new Error(`more than ${MAX_LABELS} labels in the message`)
        if ((l & 0xc0) === 0xc0) {
            if (p + 1 >= n) throw new Error(`pointer at ${p} runs past the end`)
            const ptr = ((l & 0x3f) << 8) | b[p + 1]
            if (nameEnd < 0) nameEnd = p + 2
            if (++jumps > MAX_JUMPS) throw new Error(`name at ${off} has more than ${MAX_JUMPS} compression pointers (a loop?)`)
            if (ptr >= n) throw new Error(`pointer at ${p} to ${ptr} is outside the ${n}-byte message`)
            p = ptr
            continue
        }
        if (l & 0xc0) throw new Error(`label length byte ${l} at ${p} uses the reserved top bits 01/10`)
        if (!l) break
        if (p + 1 + l > n) throw new Error(`label at ${p} runs past the end`)
        if (len + l + 1 > 254) throw new Error(`name at ${off} is longer than 255 bytes`)
        if (len) scratch[len - 1] = 46
        scratch.blitAt(len, b, p + 1, l)
        len += l + 1
        p += 1 + l
    }
    if (nameEnd < 0) nameEnd = p + 1
    // a string of invalid UTF-8 would crash the VM when logged or compared
    if (len) if (utf8ErrorAt(scratch, 0, len - 1) >= 0) throw new Error(`name at ${off} is not valid UTF-8`)
    if (!len) return ""
    return scratch.slice(0, len - 1).toString().toLowerCase()
}

/**
 * Parses the response to query `id` for the A records of `name`: checks id, QR, RCODE, TC and the
 * question, follows CNAMEs from `name`, and keeps only A records owned by a name on that chain.
 */
export function parseResponse(b: Buffer, id: number, name: string): DnsResult {
    const n = b.length
    const q = normalizeName(name)
    if (n < 12) return fail("format", `dns: response for ${q} is ${n} bytes, shorter than the 12-byte header`)
    const rid = getU16(b, 0)
    if (rid !== (id & 0xffff)) return fail("id", `dns: response id ${rid} is not our query's (${id & 0xffff})`)
    const f = b[2]
    if (!(f & 0x80)) return fail("notResponse", `dns: message ${rid} is a query, not a response`)
    const rc = b[3] & 15
    const qd = getU16(b, 4)
    // errors may come without the question; anything else must echo ours
    if (qd !== 1) if (qd || !rc) return fail("question", `dns: response has ${qd} questions, expected 1`)
    labelBudget = MAX_LABELS
    // the A and CNAME records of the answer section
    const recs: DnsRecord[] = []
    try {
        let p = 12
        if (qd) {
            const qn = readName(b, 12)
            p = nameEnd
            if (p + 4 > n) throw new Error("question runs past the end")
            // type A (1), class IN (1)
            if (qn !== q || getU32(b, p) !== 0x10001)
                return fail("question", `dns: response is for "${qn}" type ${getU16(b, p)}, we asked for "${q}" A`)
            p += 4
        }
        if (rc === 3) return fail("nxdomain", `dns: ${q} does not exist (NXDOMAIN)`, 3)
        if (rc) return fail("rcode", `dns: server answered ${RCODES[rc] || "error"} (RCODE ${rc}) for ${q}`, rc)
        if (f & 2) return fail("truncated", `dns: response for ${q} is truncated (TC): too large for UDP`)
        const an = getU16(b, 6)
        for (let i = 0; i < an; i++) {
            const owner = readName(b, p)
            p = nameEnd
            // (bytes past the end read as 0)
            const tc = getU32(b, p) // type and class
            const type = tc >> 16
            let ttl = getU32(b, p + 4)
            const rd = p + 10
            p = getU16(b, p + 8) + rd
            if (p > n) throw new Error(`answer ${i}: header or data runs past the end`)
            // only A and CNAME records of class IN
            if (tc !== 0x10001) if (tc !== 0x50001) continue
            let data: string
            if (type === 1) {
                if (p - rd !== 4) throw new Error(`A record ${i} has ${p - rd} bytes of data, expected 4`)
                data = formatIp(b, rd)
            } else {
                data = readName(b, rd)
                if (nameEnd > p) throw new Error(`CNAME ${i} runs past its data`)
            }
            // RFC 2181: a TTL with the top bit set means 0
            if (ttl >= 0x80000000) ttl = 0
            recs.push({ owner, type, ttl, data })
        }
    } catch (e: any) {
        return fail("format", `dns: malformed response for ${q}: ${e.message}`)
    }
    // follow the CNAME chain from the question (rescanning after each hop: any order)
    const chain = [q]
    let ttl = 0x7fffffff
    for (let k = 0; k < recs.length; k++) {
        const r = recs[k]
        if (r.type === 5) if (r.owner === chain[chain.length - 1]) if (chain.length <= MAX_CHAIN) {
            chain.push(r.data)
            ttl = Math.min(ttl, r.ttl)
            k = -1
        }
    }
    const addresses: string[] = []
    for (const r of recs)
        if (r.type === 1) if (chain.indexOf(r.owner) >= 0) {
            addresses.push(r.data)
            ttl = Math.min(ttl, r.ttl)
        }
    if (!addresses.length)
        return fail("noAddress", `dns: no A record for ${chain.join(" -> ")} (${recs.length} usable answers)`)
    return { ok: true, addresses, ttl }
}

interface DnsRecord {
    owner: string
    /** 1 (A) or 5 (CNAME) */
    type: number
    ttl: number
    /** the address or the canonical name */
    data: string
}

/** A bounded cache of lookups (`dnsCache`, `cacheGet`, `cachePut`), each kept for its TTL (capped at `maxTtl` seconds). */
export interface DnsCache {
    entries: { name: string; addresses: string[]; expires: number }[]
    /** at most this many entries */
    size: number
    maxTtl: number
}

/** An empty cache of `size` entries. */
export function dnsCache(size = 8, maxTtl = 86400): DnsCache {
    return { entries: [], size, maxTtl }
}

/** The cached addresses for `name` at time `now` (ms), or undefined; drops the entry once expired. */
export function cacheGet(c: DnsCache, name: string, now: number): string[] {
    const n = normalizeName(name)
    const es = c.entries
    for (let i = 0; i < es.length; i++) {
        const e = es[i]
        if (e.name === n) {
            if (now < e.expires) return e.addresses
            es.insert(i, -1)
            break
        }
    }
    return undefined
}

/** Stores `addresses` for `ttl` seconds from `now` (not at all for 0); evicts the entry that expires first when full. */
export function cachePut(c: DnsCache, name: string, addresses: string[], ttl: number, now: number) {
    const es = c.entries
    // a time after every expiry drops any entry for the name
    cacheGet(c, name, 1e300)
    if (ttl <= 0) return
    if (c.size <= 0) return
    if (es.length >= c.size) {
        let victim = 0
        for (let i = 1; i < es.length; i++) if (es[i].expires < es[victim].expires) victim = i
        es.insert(victim, -1)
    }
    es.push({ name: normalizeName(name), addresses, expires: Math.min(ttl, c.maxTtl) * 1000 + now })
}

/** What `DnsResolver` wants done: send a datagram, call again at `wakeAt`, or the lookup's result. */
export interface DnsAction {
    send?: Datagram
    wakeAt: number
    /** set once, when the lookup ends */
    result?: DnsResult
}

/** Resolver settings. */
export interface DnsOptions {
    /** wait for each answer, ms (default 3000) */
    timeoutMs?: number
    /** rounds over the server list (default 2) */
    tries?: number
    /** cache entries (default 8) */
    cacheSize?: number
}

/** Resolver counters. */
export interface DnsCounters {
    timeouts: number
    cacheHits: number
    /** datagrams for another query, ignored */
    foreign: number
}

const IDLE = 3600000
// errors of a datagram that is not the answer to our query (another id, not a response, another question)
const STRAY = words("id notResponse question", " ")
// answers that end the lookup whatever the other servers would say
const FINAL = words("nxdomain noAddress", " ")

/**
 * Looks up one name at a time: `lookup(name, now)` starts, then `poll(now)` at `wakeAt` and
 * `poll(now, datagram)` for each datagram from port 53 until an action carries `result`.
 * Tries each server in turn (`tries` rounds); NXDOMAIN and "no A record" end the lookup at once,
 * SERVFAIL, REFUSED, truncated and malformed answers move on to the next server.
 */
export class DnsResolver {
    readonly cache: DnsCache
    readonly counters: DnsCounters = { timeouts: 0, cacheHits: 0, foreign: 0 }
    private name: string
    /** @internal the id of the query under way; -1 when none */
    id = -1
    private attempt: number
    private nextAt: number
    private lastFail: DnsResult
    private readonly timeoutMs: number
    private readonly tries: number

    /** `servers`: IPv4 addresses (may be replaced later, e.g. from a DHCP lease); `random()` in [0, 1). */
    constructor(public servers: string[], private readonly random: () => number, opts: DnsOptions = {}) {
        this.timeoutMs = opts.timeoutMs || 3000
        this.tries = opts.tries || 2
        this.cache = dnsCache(opts.cacheSize)
    }

    /**
     * Starts looking up the A records of `name` (ends any lookup under way); drive it with `poll`.
     * Answers at once for an IPv4 address, a cached name or an invalid one.
     */
    lookup(name: string, now: number): DnsAction {
        this.name = name
        this.attempt = 0
        this.lastFail = undefined
        let hit: string[]
        if (isIp(name)) hit = [name]
        else {
            const err = nameError(name)
            if (err) return lookupEnd(fail("name", err), this, now)
            hit = cacheGet(this.cache, name, now)
            if (!hit) return this.next(now)
            this.counters.cacheHits++
        }
        return lookupEnd({ ok: true, addresses: hit, ttl: 0 }, this, now)
    }

    /** Advances the lookup to `now`, first handling `rx` (a datagram from a server) if given. */
    poll(now: number, rx?: Buffer): DnsAction {
        if (this.id < 0) return action(now + IDLE)
        const c = this.counters
        if (rx) {
            const r = parseResponse(rx, this.id, this.name)
            const e = r.error
            if (r.ok) {
                cachePut(this.cache, this.name, r.addresses, r.ttl, now)
                return lookupEnd(r, this, now)
            }
            // a stray datagram (another query's id, not a response, another question): keep waiting
            if (STRAY.indexOf(e) >= 0) c.foreign = c.foreign + 1
            else if (FINAL.indexOf(e) >= 0) return lookupEnd(r, this, now)
            else {
                this.lastFail = r
                return this.next(now)
            }
        }
        if (now < this.nextAt) return action(this.nextAt)
        c.timeouts = c.timeouts + 1
        return this.next(now)
    }

    // Asks the next server, or ends the lookup once every server had its tries.
    private next(now: number): DnsAction {
        const s = this.servers
        const n = s.length
        if (this.attempt >= this.tries * n)
            return lookupEnd(this.lastFail || (n
                ? fail("timeout", `dns: no answer for ${this.name} from ${s.join(", ")} after ${this.attempt} tries`)
                : fail("noServer", `dns: no DNS server to ask for ${this.name}`)), this, now)
        this.id = Math.floor(this.random() * 0x10000)
        this.nextAt = now + this.timeoutMs
        return action(this.nextAt, undefined, buildQuery(this.id, this.name), s[this.attempt++ % n], DNS_PORT)
    }
}

// Ends the lookup of `r` with `result` (no query under way from then on).
function lookupEnd(result: DnsResult, r: DnsResolver, now: number): DnsAction {
    r.id = -1
    return { wakeAt: now + IDLE, result }
}
