/**
 * DNS stub resolver (RFC 1035, A records only): query builder, response parser (compression
 * pointers, CNAME chains), a TTL cache and a poll-driven resolver that retries over several
 * servers. No I/O here: the caller sends what `DnsResolver.poll` asks for (UDP to port 53) and
 * feeds back what arrives.
 */
import { Datagram, formatIp, getU16, getU32, isIp, setU16 } from "./ip"

/** UDP port of DNS servers. */
export const DNS_PORT = 53

const MAX_JUMPS = 16
const MAX_CHAIN = 8

/** Lower-cases `name` and drops one trailing dot. */
export function normalizeName(name: string) {
    const n = name.toLowerCase()
    return n.length && n.charCodeAt(n.length - 1) === 46 ? n.slice(0, n.length - 1) : n
}

/** Why `name` cannot be looked up ("" when it can): labels of 1..63 letters, digits, "-" or "_", 253 characters in all. */
export function nameError(name: string): string {
    const n = typeof name === "string" ? normalizeName(name) : ""
    let why = ""
    if (!n.length) why = "is empty"
    else if (n.length > 253) why = `is ${n.length} characters long (at most 253)`
    let label = 0
    for (let i = 0; !why && i <= n.length; i++) {
        const c = i < n.length ? n.charCodeAt(i) : 46
        if (c === 46) {
            if (!label) why = `has an empty label at position ${i}`
            label = 0
        } else if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95) {
            if (++label > 63) why = `has a label longer than 63 characters at position ${i - 63}`
        } else {
            const ch = String.fromCharCode(c)
            why = `has a bad character "${ch}" at position ${i} (expected letters, digits, "-", "_" or ".")`
        }
    }
    return why ? `dns: name "${name}" ${why}` : ""
}

/** Builds a recursive query for the A records of `name`; throws an Error when the name is invalid. */
export function buildQuery(id: number, name: string): Buffer {
    const err = nameError(name)
    if (err) throw new Error(err)
    const n = normalizeName(name)
    const b = Buffer.alloc(12 + n.length + 2 + 4)
    setU16(b, 0, id)
    b[2] = 1 // RD
    b[5] = 1 // QDCOUNT
    let len = 12 // position of the current label's length byte
    for (let i = 0; i < n.length; i++) {
        const c = n.charCodeAt(i)
        if (c === 46) {
            b[len] = 12 + i - len
            len = 13 + i
        } else b[13 + i] = c
    }
    b[len] = 12 + n.length - len
    const p = 14 + n.length
    b[p + 1] = 1 // QTYPE A
    b[p + 3] = 1 // QCLASS IN
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

const RCODES = ["", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]

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
    return len ? scratch.slice(0, len - 1).toString().toLowerCase() : ""
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
    if (qd !== 1 && !(qd === 0 && rc)) return fail("question", `dns: response has ${qd} questions, expected 1`)
    labelBudget = MAX_LABELS
    const owners: string[] = []
    const types: number[] = []
    const ttls: number[] = []
    const datas: string[] = []
    try {
        let p = 12
        if (qd) {
            const qn = readName(b, 12)
            p = nameEnd
            if (p + 4 > n) throw new Error("question runs past the end")
            if (qn !== q || getU16(b, p) !== 1 || getU16(b, p + 2) !== 1)
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
            if (p + 10 > n) throw new Error(`answer ${i} runs past the end`)
            const type = getU16(b, p)
            const cls = getU16(b, p + 2)
            const ttl = getU32(b, p + 4)
            const rd = p + 10
            p = rd + getU16(b, p + 8)
            if (p > n) throw new Error(`answer ${i} data runs past the end`)
            if (cls !== 1 || (type !== 1 && type !== 5)) continue
            let data: string
            if (type === 1) {
                if (p - rd !== 4) throw new Error(`A record ${i} has ${p - rd} bytes of data, expected 4`)
                data = formatIp(b, rd)
            } else {
                data = readName(b, rd)
                if (nameEnd > p) throw new Error(`CNAME ${i} runs past its data`)
            }
            owners.push(owner)
            types.push(type)
            ttls.push(ttl >= 0x80000000 ? 0 : ttl) // RFC 2181: top bit set means 0
            datas.push(data)
        }
    } catch (e: any) {
        return fail("format", `dns: malformed response for ${q}: ${e.message}`)
    }
    // follow the CNAME chain from the question
    const chain = [q]
    let ttl = 0x7fffffff
    let cur = q
    for (let hop = 0; hop < MAX_CHAIN; hop++) {
        let k = 0
        while (k < owners.length && !(types[k] === 5 && owners[k] === cur)) k++
        if (k >= owners.length) break
        cur = datas[k]
        chain.push(cur)
        ttl = Math.min(ttl, ttls[k])
    }
    const addresses: string[] = []
    let aTtl = 0x7fffffff
    for (let k = 0; k < owners.length; k++)
        if (types[k] === 1 && chain.indexOf(owners[k]) >= 0) {
            addresses.push(datas[k])
            aTtl = Math.min(aTtl, ttls[k])
        }
    if (!addresses.length)
        return fail("noAddress", `dns: no A record for ${chain.join(" -> ")} (${owners.length} usable answers)`)
    return { ok: true, addresses, ttl: Math.min(ttl, aTtl) }
}

interface CacheEntry {
    name: string
    addresses: string[]
    expires: number
}

/** A bounded cache of lookups, each kept for its TTL (capped at `maxTtl` seconds). */
export class DnsCache {
    private entries: CacheEntry[] = []

    constructor(readonly size = 8, readonly maxTtl = 86400) {}

    /** The cached addresses for `name` at time `now` (ms), or undefined. */
    get(name: string, now: number): string[] {
        const n = normalizeName(name)
        for (let i = 0; i < this.entries.length; i++) {
            const e = this.entries[i]
            if (e.name !== n) continue
            if (now < e.expires) return e.addresses
            this.entries.insert(i, -1)
            break
        }
        return undefined
    }

    /** Stores `addresses` for `ttl` seconds from `now`; evicts the entry that expires first when full. */
    put(name: string, addresses: string[], ttl: number, now: number) {
        const n = normalizeName(name)
        const es = this.entries
        let victim = -1
        for (let i = 0; i < es.length; i++) {
            if (es[i].name === n) {
                victim = i
                break
            }
            if (victim < 0 || es[i].expires < es[victim].expires) victim = i
        }
        if (victim >= 0 && (es[victim].name === n || es.length >= this.size)) es.insert(victim, -1)
        if (ttl <= 0 || this.size <= 0) return
        es.push({ name: n, addresses, expires: now + Math.min(ttl, this.maxTtl) * 1000 })
    }

    /** Number of entries (expired ones included until looked up or evicted). */
    count() {
        return this.entries.length
    }

    /** Empties the cache. */
    clear() {
        this.entries = []
    }
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
    queries: number
    answers: number
    timeouts: number
    failures: number
    cacheHits: number
    /** datagrams for another query, ignored */
    foreign: number
}

const IDLE = 3600000

/**
 * Looks up one name at a time: `lookup(name, now)` starts, then `poll(now)` at `wakeAt` and
 * `poll(now, datagram)` for each datagram from port 53 until an action carries `result`.
 * Tries each server in turn (`tries` rounds); NXDOMAIN and "no A record" end the lookup at once,
 * SERVFAIL, REFUSED, truncated and malformed answers move on to the next server.
 */
export class DnsResolver {
    readonly cache: DnsCache
    readonly counters: DnsCounters = { queries: 0, answers: 0, timeouts: 0, failures: 0, cacheHits: 0, foreign: 0 }
    private name = ""
    private id = -1
    private attempt = 0
    private nextAt = 0
    private pending: DnsResult
    private lastFail: DnsResult
    private readonly timeoutMs: number
    private readonly tries: number

    /** `servers`: IPv4 addresses (may be replaced later, e.g. from a DHCP lease); `random()` in [0, 1). */
    constructor(public servers: string[], private readonly random: () => number, opts: DnsOptions = {}) {
        this.timeoutMs = opts.timeoutMs > 0 ? opts.timeoutMs : 3000
        this.tries = opts.tries > 0 ? opts.tries : 2
        this.cache = new DnsCache(opts.cacheSize === undefined ? 8 : opts.cacheSize)
    }

    /** True while a lookup is under way. */
    busy() {
        return this.id >= 0 || !!this.pending
    }

    /** Starts looking up the A records of `name` (ends any lookup under way); drive it with `poll`. */
    lookup(name: string, now: number): DnsAction {
        this.name = name
        this.id = -1
        this.pending = undefined
        this.lastFail = undefined
        this.attempt = 0
        const err = nameError(name)
        if (isIp(name)) this.pending = { ok: true, addresses: [name], ttl: 0 }
        else if (err) this.pending = fail("name", err)
        else {
            const hit = this.cache.get(name, now)
            if (hit) {
                this.counters.cacheHits++
                this.pending = { ok: true, addresses: hit, ttl: 0 }
            } else if (!this.servers.length) this.pending = fail("noServer", `dns: no DNS server to ask for ${name}`)
        }
        return this.pending ? this.poll(now) : this.next(now)
    }

    /** Advances the lookup to `now`, first handling `rx` (a datagram from a server) if given. */
    poll(now: number, rx?: Buffer): DnsAction {
        if (this.pending) {
            const result = this.pending
            this.pending = undefined
            this.id = -1
            if (!result.ok) this.counters.failures++
            return { wakeAt: now + IDLE, result }
        }
        if (this.id < 0) return { wakeAt: now + IDLE }
        if (rx) {
            const r = parseResponse(rx, this.id, this.name)
            if (r.ok) {
                this.counters.answers++
                this.cache.put(this.name, r.addresses, r.ttl, now)
                return this.end(now, r)
            }
            const e = r.error
            // a stray datagram (another query's id, not a response, another question): keep waiting
            if (e === "id" || e === "notResponse" || e === "question") this.counters.foreign++
            else if (e === "nxdomain" || e === "noAddress") return this.end(now, r)
            else {
                this.lastFail = r
                return this.next(now)
            }
        }
        if (now < this.nextAt) return { wakeAt: this.nextAt }
        this.counters.timeouts++
        return this.next(now)
    }

    private end(now: number, r: DnsResult): DnsAction {
        this.pending = r
        return this.poll(now)
    }

    private next(now: number): DnsAction {
        const n = this.servers.length
        if (this.attempt >= this.tries * n) {
            const f = this.lastFail
            const servers = this.servers.join(", ")
            return this.end(now, f ? f : fail("timeout", `dns: no answer for ${this.name} from ${servers} after ${this.attempt} tries`))
        }
        this.start(now)
        const to = this.servers[this.attempt++ % n]
        return { send: { data: buildQuery(this.id, this.name), to, port: DNS_PORT }, wakeAt: this.nextAt }
    }

    private start(now: number) {
        this.counters.queries++
        this.id = Math.floor(this.random() * 0x10000) & 0xffff
        this.nextAt = now + this.timeoutMs
    }
}
