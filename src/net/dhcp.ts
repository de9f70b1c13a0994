/**
 * DHCP client (RFC 2131, options RFC 2132): packet builder, reply parser and a poll-driven lease
 * state machine. No I/O here: the caller sends what `DhcpClient.poll` asks for (UDP port 68 to
 * port 67) and feeds back every datagram that arrives on port 68.
 */
import { BROADCAST, Datagram, formatIp, getU32, parseIp, setU16, setU32 } from "./ip"

/** UDP port of DHCP servers. */
export const DHCP_SERVER_PORT = 67
/** UDP port of DHCP clients. */
export const DHCP_CLIENT_PORT = 68

/** Message types (option 53) this client receives. */
export const DHCPOFFER = 2
export const DHCPACK = 5
export const DHCPNAK = 6

/** Lease time meaning "forever" (option 51). */
export const DHCP_INFINITE = 0xffffffff

const COOKIE = 0x63825363
const OPTIONS = 240
const MIN_LEN = 300
const PARAMS = [1, 3, 6, 15, 51, 58, 59]

/**
 * What to build: `discover`; `select` (REQUEST for an offer: options 50 and 54); `renew`
 * (REQUEST unicast to the server, ciaddr set); `rebind` (REQUEST broadcast, ciaddr set);
 * `decline` (options 50 and 54); `release` (ciaddr and option 54).
 */
export type DhcpKind = "discover" | "select" | "renew" | "rebind" | "decline" | "release"

/** Header fields and options of a packet to build. */
export interface DhcpFields {
    xid: number
    /** 6-byte hardware address */
    mac: Buffer
    /** option 12; omitted when empty (never sent in decline/release) */
    hostname?: string
    /** seconds since the exchange began */
    secs?: number
    /** our address (renew, rebind, release) */
    ciaddr?: string
    /** option 50 (select, decline) */
    requestedIp?: string
    /** option 54 (select, decline, release) */
    serverId?: string
}

/** Throws unless `mac` is 6 bytes and `hostname` is empty or a 1..63 character host label. */
export function checkDhcpIdentity(mac: Buffer, hostname: string) {
    if (!mac || mac.length !== 6) throw new Error(`dhcp: mac must be 6 bytes, got ${mac ? mac.length : "none"}`)
    const h = hostname || ""
    let ok = h.length <= 63
    for (let i = 0; ok && i < h.length; i++) {
        const c = h.charCodeAt(i)
        const l = c | 0x20
        ok = (l >= 97 && l <= 122) || (c >= 48 && c <= 57) || c === 45
    }
    if (!ok) throw new Error(`dhcp: hostname "${h}" must be 1..63 letters, digits or "-"`)
}

function putIp(b: Buffer, p: number, code: number, ip: string) {
    b[p] = code
    b[p + 1] = 4
    b.blitAt(p + 2, parseIp(ip), 0, 4)
    return p + 6
}

/** Builds a client message (BOOTREQUEST), padded to at least 300 bytes; throws on missing fields. */
export function buildDhcp(kind: DhcpKind, f: DhcpFields): Buffer {
    const request = kind === "select" || kind === "renew" || kind === "rebind"
    const type = request ? 3 : kind === "discover" ? 1 : kind === "decline" ? 4 : kind === "release" ? 7 : 0
    if (!type) throw new Error(`dhcp: unknown message kind "${kind}"`)
    checkDhcpIdentity(f.mac, f.hostname)
    const host = type === 1 || type === 3 ? f.hostname || "" : ""
    const b = Buffer.alloc(Math.max(MIN_LEN, 276 + host.length))
    b[0] = 1 // BOOTREQUEST
    b[1] = 1 // Ethernet
    b[2] = 6
    setU32(b, 4, f.xid)
    setU16(b, 8, Math.min(0xffff, Math.max(0, f.secs | 0)))
    // we cannot take unicast before we have an address: ask for broadcast replies
    if (kind === "discover" || kind === "select") b[10] = 0x80
    if (kind === "renew" || kind === "rebind" || kind === "release") {
        if (!f.ciaddr) throw new Error(`dhcp: ${kind} needs ciaddr (our address)`)
        b.blitAt(12, parseIp(f.ciaddr), 0, 4)
    }
    b.blitAt(28, f.mac, 0, 6)
    setU32(b, 236, COOKIE)
    let p = OPTIONS
    b[p++] = 53
    b[p++] = 1
    b[p++] = type
    b[p++] = 61
    b[p++] = 7
    b[p++] = 1
    b.blitAt(p, f.mac, 0, 6)
    p += 6
    if (kind === "select" || kind === "decline") {
        if (!f.requestedIp || !f.serverId) throw new Error(`dhcp: ${kind} needs requestedIp and serverId`)
        p = putIp(b, p, 50, f.requestedIp)
    }
    if (kind === "select" || kind === "decline" || kind === "release") {
        if (!f.serverId) throw new Error(`dhcp: ${kind} needs serverId`)
        p = putIp(b, p, 54, f.serverId)
    }
    if (type === 1 || type === 3) {
        if (host.length) {
            b[p++] = 12
            b[p++] = host.length
            b.blitAt(p, host, 0, host.length)
            p += host.length
        }
        b[p++] = 55
        b[p++] = PARAMS.length
        for (const c of PARAMS) b[p++] = c
    }
    b[p] = 255
    return b
}

/**
 * A parsed OFFER, ACK or NAK addressed to us (`ok`), or why the datagram was not accepted
 * (`message`; `foreign` when it is a well-formed reply for another client or exchange).
 * Addresses are "" and times -1 when absent.
 */
export interface DhcpReply {
    ok: boolean
    foreign?: boolean
    message?: string
    /** DHCPOFFER, DHCPACK or DHCPNAK */
    type?: number
    yiaddr?: string
    /** option 54 */
    serverId?: string
    /** option 1 */
    mask?: string
    /** option 3 (the first router) */
    router?: string
    /** option 6 (at most 4) */
    dns?: string[]
    /** option 51, seconds */
    lease?: number
    /** option 58, seconds */
    t1?: number
    /** option 59, seconds */
    t2?: number
    /** option 56 (why a NAK) */
    text?: string
}

function fail(foreign: boolean, message: string): DhcpReply {
    return { ok: false, foreign, message }
}

let overload = 0

// What each option code below 60 must hold: 1 or 4 bytes exactly, 0x80 a multiple of 4 bytes,
// 0x40 anything; 0 means an option we skip.
const WANT = hex`00 04 00 80 00 00 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 01 01 04 00 40 00 04 04`

// Reads the options in b[from..to) into r; returns an error message, or "" once option 255 ends them.
function scanOptions(b: Buffer, from: number, to: number, where: string, r: DhcpReply): string {
    let i = from
    let count = 0
    while (i < to) {
        const code = b[i]
        if (code === 0) {
            i++
            continue
        }
        if (code === 255) return ""
        // real replies carry a few dozen; the cap bounds the VM steps a hostile packet can cost
        if (++count > 100) return `dhcp: more than 100 options in ${where}`
        if (i + 1 >= to) return `dhcp: option ${code} at offset ${i} has no length byte`
        const len = b[i + 1]
        const v = i + 2
        i = v + len
        if (i > to) return `dhcp: option ${code} at offset ${v - 2} claims ${len} bytes, ${to - v} left in ${where}`
        const want = code < 60 ? WANT[code] : 0
        if (!want) continue
        if (want < 8 ? len !== want : want === 0x80 && (len === 0 || len & 3))
            return `dhcp: option ${code} must be ${want < 8 ? want : "a multiple of 4"} bytes, got ${len}`
        if (code === 53) r.type = b[v]
        else if (code === 52) overload = b[v]
        else if (code === 1) r.mask = formatIp(b, v)
        else if (code === 54) r.serverId = formatIp(b, v)
        else if (code === 3) r.router = formatIp(b, v)
        else if (code === 6) {
            r.dns = []
            for (let k = 0; k < len && k < 16; k += 4) r.dns.push(formatIp(b, v + k))
        } else if (code === 51) r.lease = getU32(b, v)
        else if (code === 58) r.t1 = getU32(b, v)
        else if (code === 59) r.t2 = getU32(b, v)
        else if (code === 56) r.text = b.slice(v, v + len).toString()
    }
    return `dhcp: ${where} has no end option (255)`
}

/**
 * Parses a server reply to our exchange `xid` from the client with hardware address `mac`:
 * checks op, xid, chaddr, the magic cookie and every option length (options may overflow into
 * `file` and `sname`, option 52).
 */
export function parseDhcp(b: Buffer, xid: number, mac: Buffer): DhcpReply {
    const n = b.length
    if (n < OPTIONS + 1) return fail(false, `dhcp: reply is ${n} bytes, shorter than ${OPTIONS + 1} (header, cookie, options)`)
    if (b[0] !== 2) return fail(true, `dhcp: op ${b[0]} is not BOOTREPLY (2)`)
    const x = getU32(b, 4)
    if (x !== xid) return fail(true, `dhcp: xid ${x} is not ours (${xid})`)
    for (let i = 0; i < 6; i++)
        if (b[28 + i] !== mac[i]) return fail(true, `dhcp: chaddr ${b.slice(28, 34).toString("hex")} is not our MAC`)
    if (b[1] !== 1 || b[2] !== 6) return fail(false, `dhcp: htype/hlen ${b[1]}/${b[2]}, expected 1/6`)
    if (getU32(b, 236) !== COOKIE)
        return fail(false, `dhcp: magic cookie ${b.slice(236, 240).toString("hex")}, expected 63825363`)
    const r: DhcpReply = {
        ok: true, type: 0, yiaddr: formatIp(b, 16), serverId: "", mask: "", router: "", dns: [],
        lease: -1, t1: -1, t2: -1, text: "",
    }
    overload = 0
    let err = scanOptions(b, OPTIONS, n, "options", r)
    if (!err && overload & 1) err = scanOptions(b, 108, 236, "file", r)
    if (!err && overload & 2) err = scanOptions(b, 44, 108, "sname", r)
    if (err) return fail(false, err)
    const t = r.type
    if (t !== DHCPOFFER && t !== DHCPACK && t !== DHCPNAK)
        return fail(false, t
            ? `dhcp: message type ${t}, expected OFFER (2), ACK (5) or NAK (6)`
            : "dhcp: no message type (option 53)")
    if (t !== DHCPNAK && r.yiaddr === "0.0.0.0")
        return fail(false, `dhcp: ${t === DHCPACK ? "ACK" : "OFFER"} with no address (yiaddr 0)`)
    if (t === DHCPOFFER && !r.serverId) return fail(false, "dhcp: OFFER without server identifier (option 54)")
    return r
}

/** Client states (RFC 2131 figure 5, without INIT-REBOOT). */
export type DhcpState = "init" | "selecting" | "requesting" | "bound" | "renewing" | "rebinding"

/**
 * `bound`: a new address is ready to configure; `renewed`: the same address, lease extended;
 * `lost`: stop using the address now (lease over or NAK).
 */
export type DhcpEvent = "bound" | "renewed" | "lost"

/** What `DhcpClient` wants done: send a datagram (from port 68), call again at `wakeAt`, report. */
export interface DhcpAction {
    send?: Datagram
    /** when to call `poll` again if nothing arrives (same clock as `now`, ms) */
    wakeAt: number
    event?: DhcpEvent
}

/** The configuration a server handed out (times in seconds). */
export interface DhcpLease {
    ip: string
    /** "255.255.255.0" when the server sent no subnet mask */
    mask: string
    /** "" when the server named no router */
    gateway: string
    dns: string[]
    /** seconds; DHCP_INFINITE means forever */
    lease: number
    server: string
    t1: number
    t2: number
}

/** Counters, for status pages and tests. */
export interface DhcpCounters {
    sent: number
    offers: number
    acks: number
    naks: number
    /** replies for other clients or exchanges, ignored */
    foreign: number
    /** malformed or unusable replies (see lastError) */
    bad: number
    timeouts: number
    lost: number
}

const MIN_RETRY = 60000
const FAR = 1e12 // ms: "never" for infinite leases

/**
 * DHCP client state machine. Call `poll(now)` at `wakeAt`, and `poll(now, datagram)` for each
 * datagram received on port 68; send what it returns. `now` is any millisecond clock.
 * DISCOVER/REQUEST retransmit after 4, 8, 16, 32, 32... s (+/-1 s); after 4 unanswered REQUESTs
 * it starts over. While renewing/rebinding it retransmits after half the time left (>= 60 s).
 */
export class DhcpClient {
    state: DhcpState = "init"
    /** the current lease; undefined unless bound, renewing or rebinding */
    lease: DhcpLease
    lastError = ""
    readonly counters: DhcpCounters = { sent: 0, offers: 0, acks: 0, naks: 0, foreign: 0, bad: 0, timeouts: 0, lost: 0 }
    private xid = 0
    private tries = 0
    private nextAt = 0
    private startAt = 0
    private offerIp = ""
    private offerServer = ""
    private t1At = 0
    private t2At = 0
    private endAt = 0

    /** `random()` returns [0, 1) (xids and jitter); throws on a bad MAC or hostname. */
    constructor(readonly mac: Buffer, readonly hostname: string, private readonly random: () => number) {
        checkDhcpIdentity(mac, hostname)
    }

    /** Advances the machine to `now`, first handling `rx` (a datagram from port 67) if given. */
    poll(now: number, rx?: Buffer): DhcpAction {
        if (rx) {
            const a = this.receive(now, rx)
            if (a) return a
        }
        if (now < this.nextAt) return { wakeAt: this.nextAt }
        const s = this.state
        if (s === "init") return this.discover(now)
        if (s === "selecting") {
            this.counters.timeouts++
            return this.send(now, "discover", BROADCAST, this.backoff(++this.tries))
        }
        if (s === "requesting") {
            this.counters.timeouts++
            if (++this.tries >= 4) return this.discover(now)
            return this.send(now, "select", BROADCAST, this.backoff(this.tries))
        }
        // bound, renewing, rebinding
        if (now >= this.endAt) return this.drop(now, `dhcp: lease on ${this.lease.ip} expired`)
        if (s !== "bound") this.counters.timeouts++
        if (now >= this.t2At) {
            if (s !== "rebinding") this.begin(now, "rebinding")
            return this.send(now, "rebind", BROADCAST, this.halfway(now, this.endAt))
        }
        if (s === "bound") this.begin(now, "renewing")
        return this.send(now, "renew", this.lease.server, this.halfway(now, this.t2At))
    }

    /** Declines the bound address (the caller found it in use): sends DECLINE, starts over in 10 s. */
    decline(now: number): DhcpAction {
        const l = this.lease
        if (!l) return { wakeAt: this.nextAt }
        const data = this.build("decline", now, l.ip, l.server)
        this.reset(now + 10000)
        return { send: { data, to: BROADCAST, port: DHCP_SERVER_PORT }, wakeAt: this.nextAt, event: "lost" }
    }

    /** Gives the lease back (RELEASE, unicast to the server); polling again starts over. */
    release(now: number): DhcpAction {
        const l = this.lease
        if (!l) return { wakeAt: this.nextAt }
        const data = this.build("release", now, l.ip, l.server)
        this.reset(now)
        return { send: { data, to: l.server, port: DHCP_SERVER_PORT }, wakeAt: now, event: "lost" }
    }

    /** Forgets any lease and starts over at the next poll (e.g. after the link came back). */
    reset(at = 0) {
        this.state = "init"
        this.lease = undefined
        this.nextAt = at
    }

    private receive(now: number, rx: Buffer): DhcpAction {
        const s = this.state
        if (s === "init" || s === "bound") return undefined
        const c = this.counters
        const r = parseDhcp(rx, this.xid, this.mac)
        if (!r.ok) {
            if (r.foreign) c.foreign++
            else this.bad(r.message)
            return undefined
        }
        if (s === "selecting") {
            if (r.type !== DHCPOFFER) return undefined
            c.offers++
            this.offerIp = r.yiaddr
            this.offerServer = r.serverId
            this.state = "requesting"
            this.tries = 0
            return this.send(now, "select", BROADCAST, this.backoff(0))
        }
        // during REQUESTING only the chosen server's answer counts
        if (s === "requesting" && r.serverId && r.serverId !== this.offerServer) return undefined
        if (r.type === DHCPNAK) {
            c.naks++
            const why = `dhcp: server ${r.serverId || "?"} refused the address (NAK${r.text ? ": " + r.text : ""})`
            if (s === "requesting") {
                this.lastError = why
                return this.discover(now)
            }
            return this.drop(now, why)
        }
        if (r.type !== DHCPACK) return undefined
        if (r.lease < 0) {
            this.bad("dhcp: ACK without lease time (option 51)")
            return undefined
        }
        c.acks++
        const prev = this.lease
        const server = r.serverId || (prev ? prev.server : this.offerServer)
        const lease = r.lease
        let t1 = r.t1
        let t2 = r.t2
        if (t1 < 0 || t2 < 0 || t1 > t2 || t2 > lease) {
            t1 = Math.floor(lease / 2)
            t2 = Math.floor((lease * 7) / 8)
        }
        this.lease = {
            ip: r.yiaddr, mask: r.mask || "255.255.255.0", gateway: r.router, dns: r.dns,
            lease, server, t1, t2,
        }
        const forever = lease === DHCP_INFINITE
        this.t1At = forever ? now + FAR : now + t1 * 1000
        this.t2At = forever ? now + FAR : now + t2 * 1000
        this.endAt = forever ? now + FAR : now + lease * 1000
        this.state = "bound"
        this.nextAt = this.t1At
        return { wakeAt: this.nextAt, event: s !== "requesting" && prev && prev.ip === r.yiaddr ? "renewed" : "bound" }
    }

    private bad(message: string) {
        this.counters.bad++
        this.lastError = message
    }

    private begin(now: number, state: DhcpState) {
        this.state = state
        this.startAt = now
        this.tries = 0
        this.xid = Math.floor(this.random() * 0x100000000) >>> 0
    }

    private discover(now: number): DhcpAction {
        this.lease = undefined
        this.begin(now, "selecting")
        return this.send(now, "discover", BROADCAST, this.backoff(0))
    }

    private drop(now: number, why: string): DhcpAction {
        this.lastError = why
        this.counters.lost++
        const a = this.discover(now)
        a.event = "lost"
        return a
    }

    private backoff(tries: number) {
        return (4000 << Math.min(tries, 3)) + Math.round((this.random() * 2 - 1) * 1000)
    }

    private halfway(now: number, limit: number) {
        return Math.max(0, Math.min(limit - now, Math.max(MIN_RETRY, (limit - now) / 2)))
    }

    private build(kind: DhcpKind, now: number, ip: string, server: string) {
        this.counters.sent++
        const own = kind === "renew" || kind === "rebind" || kind === "release"
        return buildDhcp(kind, {
            xid: this.xid, mac: this.mac, hostname: this.hostname, secs: (now - this.startAt) / 1000,
            ciaddr: own ? ip : undefined,
            requestedIp: own ? undefined : ip,
            serverId: own && kind !== "release" ? undefined : server,
        })
    }

    private send(now: number, kind: DhcpKind, to: string, delay: number): DhcpAction {
        const l = this.lease
        const data = l ? this.build(kind, now, l.ip, l.server) : this.build(kind, now, this.offerIp, this.offerServer)
        this.nextAt = now + delay
        return { send: { data, to, port: DHCP_SERVER_PORT }, wakeAt: this.nextAt }
    }
}
