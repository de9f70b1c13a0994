/**
 * DHCP client (RFC 2131, options RFC 2132): packet builder, reply parser and a poll-driven lease
 * state machine. No I/O here: the caller sends what `DhcpClient.poll` asks for (UDP port 68 to
 * port 67) and feeds back every datagram that arrives on port 68.
 */
import { utf8ErrorAt } from "../util/utf8"
import { nameError } from "./dns"
import { action, BROADCAST, Datagram, formatIp, getU16, getU32, parseIp, setU16, setU32 } from "./ip"
import { words } from "../util/words"

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
// option 55: subnet mask, router, DNS, domain name, lease time, T1, T2
const PARAMS = hex`01 03 06 0f 33 3a 3b`

/**
 * What to build: `discover`; `select` (REQUEST for an offer: options 50 and 54); `renew`
 * (REQUEST unicast to the server, ciaddr set); `rebind` (REQUEST broadcast, ciaddr set);
 * `reboot` (INIT-REBOOT: REQUEST broadcast with option 50 only, RFC 2131 3.2);
 * `decline` (options 50 and 54); `release` (ciaddr and option 54).
 */
export type DhcpKind = "discover" | "select" | "renew" | "rebind" | "reboot" | "decline" | "release"

// The first five are what the client sends in the states of STATES.
const KINDS = words("discover select renew rebind reboot decline release", " ")
// Per kind: the message type (option 53), then what the packet carries: 1 ciaddr, 2 option 50
// (requested address), 4 option 54 (server), 8 hostname and parameter list, 16 broadcast flag.
const SHAPES = hex`01 18 03 1e 03 09 03 09 03 1a 04 06 07 05`

/** Header fields and options of a packet to build (what a kind does not carry is ignored). */
export interface DhcpFields {
    xid: number
    /** 6-byte hardware address */
    mac: Buffer
    /** option 12 (discover and requests); omitted when empty */
    hostname?: string
    /** seconds since the exchange began */
    secs?: number
    /** the address: ciaddr (renew, rebind, release) or option 50, the requested address (select, reboot, decline) */
    ip?: string
    /** option 54, the server identifier (select, decline, release) */
    server?: string
}

/** Throws unless `mac` is 6 bytes and `hostname` is empty or a 1..63 character host label. */
function checkIdentity(mac: Buffer, hostname: string) {
    if (!mac) throw new Error("dhcp: mac must be 6 bytes, got none")
    if (mac.length !== 6) throw new Error(`dhcp: mac must be 6 bytes, got ${mac.length}`)
    // a host label is a DNS label without "_"
    if (hostname) if (hostname.indexOf(".") >= 0 || hostname.indexOf("_") >= 0 || nameError(hostname))
        throw new Error(`dhcp: hostname "${hostname}" must be 1..63 letters, digits or "-"`)
}

// The address `ip` as 4 bytes; throws naming the field when it is missing or not an address.
function need(ip: string, kind: string, field: string) {
    if (!ip) throw new Error(`dhcp: ${kind} needs ${field}`)
    return parseIp(ip)
}

// Writes option `code` holding `data` at `p` of `b`; returns the offset after it. (`data` comes
// first: a call computing it then makes the compiler save none of the others.)
function put(data: Buffer | string, b: Buffer, p: number, code: number) {
    b[p] = code
    b[p + 1] = data.length
    b.blitAt(p + 2, data, 0, data.length)
    return p + 2 + data.length
}

/** Builds a client message (BOOTREQUEST), padded to at least 300 bytes; throws on missing fields. */
export function buildDhcp(kind: DhcpKind, f: DhcpFields): Buffer {
    const k = KINDS.indexOf(kind) * 2
    if (k < 0) throw new Error(`dhcp: unknown message kind "${kind}"`)
    const shape = SHAPES[k + 1]
    const host = f.hostname || ""
    checkIdentity(f.mac, host)
    const b = Buffer.alloc(300 + host.length)
    b.blitAt(0, hex`01 01 06`, 0, 3) // BOOTREQUEST, Ethernet, 6-byte addresses
    setU32(b, 4, f.xid)
    setU16(b, 8, Math.min(0xffff, f.secs | 0))
    // we cannot take unicast before we have an address: ask for broadcast replies
    if (shape & 16) b[10] = 0x80
    if (shape & 1) b.blitAt(12, need(f.ip, kind, "ip (ciaddr, our address)"), 0, 4)
    b.blitAt(28, f.mac, 0, 6)
    // cookie, option 53 (type set below), option 61: client identifier 01 + MAC
    b.blitAt(236, hex`63 82 53 63 35 01 00 3d 07 01`, 0, 10)
    b[242] = SHAPES[k]
    b.blitAt(246, f.mac, 0, 6)
    let p = 252
    if (shape & 2) p = put(need(f.ip, kind, "ip (option 50, the requested address)"), b, p, 50)
    if (shape & 4) p = put(need(f.server, kind, "server (option 54)"), b, p, 54)
    if (shape & 8) {
        if (host) p = put(host, b, p, 12)
        p = put(PARAMS, b, p, 55)
    }
    b[p] = 255
    return b
}

/**
 * A parsed OFFER, ACK or NAK addressed to us (`ok`), or why the datagram was not accepted
 * (`message`; `foreign` when it is a well-formed reply for another client or exchange).
 * The fields are named as in `DhcpLease`, which an ACK becomes.
 */
export interface DhcpReply {
    ok: boolean
    foreign?: boolean
    message?: string
    /** DHCPOFFER, DHCPACK or DHCPNAK */
    type?: number
    /** yiaddr, the address offered */
    ip?: string
    /** option 54 (server identifier); undefined when absent */
    server?: string
    /** option 1; "255.255.255.0" when absent */
    mask?: string
    /** option 3 (the first router); "" when absent */
    gateway?: string
    /** option 6 (at most 4) */
    dns?: string[]
    /** option 51, seconds; -1 when absent */
    lease?: number
    /** option 58, seconds; -1 when absent */
    t1?: number
    /** option 59, seconds; -1 when absent */
    t2?: number
    /** option 56 (why a NAK); undefined when absent */
    text?: string
    /** option 52: 1 `file`, 2 `sname` hold more options */
    overload?: number
}

function fail(foreign: boolean, message: string): DhcpReply {
    return { ok: false, foreign, message }
}

// How to read each option code below 60 (0: skip it): 1 one byte, 2 a 4-byte number, 3 an
// address, 4 addresses (keep the first), 5 addresses (keep up to 4), 6 text.
const WANT = hex`00 03 00 04 00 00 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 01 01 03 00 06 00 02 02`
// The length each way of reading needs (0: a non-zero multiple of 4; text: any).
const SIZE = hex`00 01 04 04 00 00`
// The DhcpReply field of each option WANT reads (by option code).
const FIELDS = words(",mask,,gateway,,,dns,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,lease,overload,type,server,,text,,t1,t2", ",")

// Reads the options in b[from..to) into r; returns an error message, or "" once option 255 ends them.
function scanOptions(b: Buffer, from: number, to: number, where: string, r: any): string {
    let i = from
    let count = 0
    while (i < to) {
        const code = b[i]
        if (code === 255) return ""
        if (!code) {
            i++
            continue
        }
        // real replies carry a few dozen; the cap bounds the VM steps a hostile packet can cost
        if (++count > 100) return `dhcp: more than 100 options in ${where}`
        if (i + 1 >= to) return `dhcp: option ${code} at offset ${i} has no length byte`
        const len = b[i + 1]
        const v = i + 2
        i = v + len
        if (i > to) return `dhcp: option ${code} at offset ${v - 2} claims ${len} bytes, ${to - v} left in ${where}`
        // (codes past the table read as undefined: skipped)
        const want = WANT[code]
        if (!want) continue
        let val: any
        if (want === 6) {
            // a server's text (option 56): invalid UTF-8 would crash the VM when logged, so hex
            val = b.slice(v, i)
            val = utf8ErrorAt(val) < 0 ? val.toString() : `(not UTF-8: ${val.toString("hex")})`
        } else {
            const size = SIZE[want]
            if (size ? len !== size : !len || len & 3)
                return `dhcp: option ${code} must be ${size || "a multiple of 4"} bytes, got ${len}`
            if (want === 1) val = b[v]
            else if (want === 2) val = getU32(b, v)
            else if (want < 5) val = formatIp(b, v)
            else {
                val = []
                const end = Math.min(len, 16)
                for (let k = 0; k < end; k += 4) val.push(formatIp(b, v + k))
            }
        }
        r[FIELDS[code]] = val
    }
    return `dhcp: ${where} has no end option (255)`
}

/**
 * A reply's `sname` and `file` fields, bytes SNAME_AT..OPTIONS_AT: 192 bytes that carry nothing
 * we use unless option 52 (overload) puts options there. A driver may leave them unread (zeros).
 */
export const SNAME_AT = 44
export const OPTIONS_AT = 236

/**
 * Parses a server reply to our exchange `xid` from the client with hardware address `mac`:
 * checks op, xid, chaddr, the magic cookie and every option length (options may overflow into
 * `file` and `sname`, option 52). An ACK must carry a lease time (option 51). `partial`: `sname`
 * and `file` were not read, so a reply with option 52 is refused (`overload` tells why).
 */
export function parseDhcp(b: Buffer, xid: number, mac: Buffer, partial?: boolean): DhcpReply {
    const n = b.length
    if (n < 241) return fail(false, `dhcp: reply is ${n} bytes, shorter than 241 (header, cookie, options)`)
    if (b[0] !== 2) return fail(true, `dhcp: op ${b[0]} is not BOOTREPLY (2)`)
    const x = getU32(b, 4)
    if (x !== xid) return fail(true, `dhcp: xid ${x} is not ours (${xid})`)
    const ch = b.slice(28, 34).toString("hex")
    if (mac.toString("hex") !== ch) return fail(true, `dhcp: chaddr ${ch} is not our MAC`)
    // htype 1 (Ethernet), hlen 6
    if (getU16(b, 1) !== 0x106) return fail(false, `dhcp: htype/hlen ${b[1]}/${b[2]}, expected 1/6`)
    if (getU32(b, 236) !== COOKIE)
        return fail(false, `dhcp: magic cookie ${b.slice(236, 240).toString("hex")}, expected 63825363`)
    const r: DhcpReply = { ok: true, ip: formatIp(b, 16), mask: "255.255.255.0", gateway: "", dns: [], lease: -1, t1: -1, t2: -1 }
    let err = scanOptions(b, 240, n, "options", r)
    const o = r.overload
    if (!err) {
        if (o) if (partial) {
            const f = fail(false, "dhcp: options in sname/file (option 52), which were not read")
            f.overload = o
            return f
        }
        if (o & 1) err = scanOptions(b, 108, OPTIONS_AT, "file", r)
        // (read again: `file` may hold an option 52 of its own)
        if (!err) if (r.overload & 2) err = scanOptions(b, SNAME_AT, 108, "sname", r)
    }
    if (err) return fail(false, err)
    const t = r.type
    if (!t) return fail(false, "dhcp: no message type (option 53)")
    if (t === DHCPNAK) return r
    if (t !== DHCPOFFER) if (t !== DHCPACK) return fail(false, `dhcp: message type ${t}, expected OFFER (2), ACK (5) or NAK (6)`)
    if (r.ip === "0.0.0.0") return fail(false, `dhcp: ${t === DHCPACK ? "ACK" : "OFFER"} with no address (yiaddr 0)`)
    if (t === DHCPOFFER) {
        if (!r.server) return fail(false, "dhcp: OFFER without server identifier (option 54)")
    } else if (r.lease < 0) return fail(false, "dhcp: ACK without lease time (option 51)")
    return r
}

/** Client states (RFC 2131 figure 5; "rebooting" is INIT-REBOOT and REBOOTING). */
export type DhcpState = "init" | "selecting" | "requesting" | "bound" | "renewing" | "rebinding" | "rebooting"

// The states that send (KINDS in the same order).
const STATES = words("selecting requesting renewing rebinding rebooting", " ")

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
    acks: number
    naks: number
    /** replies for other clients or exchanges, ignored */
    foreign: number
    /** malformed or unusable replies (see lastError) */
    bad: number
    timeouts: number
    lost: number
}

/**
 * DHCP client state machine. Call `poll(now)` at `wakeAt`, and `poll(now, datagram)` for each
 * datagram received on port 68; send what it returns. `now` is any millisecond clock.
 * DISCOVER/REQUEST retransmit after 4, 8, 16, 32, 32... s (+/-1 s); after 4 unanswered REQUESTs
 * it starts over. While renewing/rebinding it retransmits after half the time left (>= 60 s).
 * `reboot` confirms the lease after the link came back (INIT-REBOOT): a NAK, or no answer to 4
 * REQUESTs (~60 s), loses it. `dhcpGiveBack` gives a lease back.
 */
export class DhcpClient implements DhcpFields {
    state: DhcpState = "init"
    /** the current lease; undefined unless bound, renewing or rebinding */
    lease: DhcpLease
    lastError = ""
    /** a server put options in `sname`/`file` (option 52): read replies whole (`poll`'s `partial`) */
    readWhole = false
    readonly counters: DhcpCounters = { sent: 0, acks: 0, naks: 0, foreign: 0, bad: 0, timeouts: 0, lost: 0 }
    /** @internal exchange id */
    xid: number
    /** @internal requests sent in this exchange (-1 before the first INIT-REBOOT request) */
    tries: number
    /** @internal */
    nextAt = 0
    /** @internal when the exchange began */
    startAt: number
    /** @internal seconds since then, in the packet being built */
    secs: number
    /** @internal the address offered or leased, and its server */
    ip: string
    /** @internal */
    server: string
    /** @internal when to rebind (T2) */
    t2At: number
    /** @internal when the lease ends */
    endAt: number

    /** `random()` returns [0, 1) (xids and jitter); throws on a bad MAC or hostname. */
    constructor(readonly mac: Buffer, readonly hostname: string, /** @internal */ readonly random: () => number) {
        checkIdentity(mac, hostname)
    }

    /**
     * Advances the machine to `now`, first handling `rx` (a datagram from port 67) if given.
     * `partial`: `rx` was read without its `sname` and `file` fields (see SNAME_AT); once a
     * server puts options there, `readWhole` is set and such a reply is dropped (its server
     * sends again when the client retries).
     */
    poll(now: number, rx?: Buffer, partial?: boolean): DhcpAction {
        const s = this.state
        const c = this.counters
        const l = this.lease
        if (rx) if (s !== "init") if (s !== "bound") {
            const r = parseDhcp(rx, this.xid, this.mac, partial)
            const t = r.type
            if (!r.ok) {
                if (r.overload) this.readWhole = true
                if (r.foreign) c.foreign = c.foreign + 1
                else {
                    c.bad = c.bad + 1
                    this.lastError = r.message
                }
            } else if (s === "selecting") {
                if (t === DHCPOFFER) {
                    this.ip = r.ip
                    this.server = r.server
                    this.state = "requesting"
                    this.tries = 0
                    return dhcpRetry(this, now)
                }
            } else if (s === "requesting" && (r.server || this.server) !== this.server) {
                // during REQUESTING only the chosen server's answer counts (or one without option 54)
            } else if (t === DHCPNAK) {
                c.naks = c.naks + 1
                const why = `dhcp: server ${r.server || "?"} refused the address (NAK${r.text ? ": " + r.text : ""})`
                return dhcpDiscover(why, this, now)
            } else if (t === DHCPACK) {
                c.acks = c.acks + 1
                const lease = r.lease
                let t1 = r.t1
                let t2 = r.t2
                if (t1 < 0 || t1 > t2 || t2 > lease) {
                    t1 = Math.floor(lease / 2)
                    t2 = Math.floor((lease * 7) / 8)
                    r.t1 = t1
                    r.t2 = t2
                }
                this.ip = r.ip
                if (!r.server) r.server = this.server
                this.server = r.server
                // the reply's fields are those of a lease
                this.lease = r as DhcpLease
                // an infinite lease: timers ~30 years away (never, in practice)
                let end = lease
                if (lease === DHCP_INFINITE) end = t1 = t2 = 1e9
                this.t2At = now + t2 * 1000
                this.endAt = now + end * 1000
                this.nextAt = now + t1 * 1000
                this.state = "bound"
                let ev = "bound"
                if (l) if (l.ip === r.ip) ev = "renewed"
                return action(this.nextAt, ev)
            }
        }
        if (now < this.nextAt) return action(this.nextAt)
        if (s === "init") return dhcpDiscover(undefined, this, now)
        const rb = s === "rebooting"
        if (l) if (!rb) {
            if (now >= this.endAt) return dhcpDiscover(`dhcp: lease on ${l.ip} expired`, this, now)
            if (now >= this.t2At) {
                if (s !== "rebinding") dhcpBegin(this, now, "rebinding")
            } else if (s === "bound") dhcpBegin(this, now, "renewing")
        }
        // (the first INIT-REBOOT request is no retransmission: tries is below 0 only then)
        if (s !== "bound") if (!(this.tries < 0)) c.timeouts = c.timeouts + 1
        if (!l || rb) if (++this.tries > 3) if (s !== "selecting") {
            if (rb) return dhcpDiscover(`dhcp: no answer to INIT-REBOOT for ${l.ip}`, this, now)
            return dhcpDiscover(undefined, this, now)
        }
        return dhcpRetry(this, now)
    }

    /**
     * After a link outage: asks at the next poll (from `now`) whether the lease still holds on this
     * network (RFC 2131 3.2, 4.4.2). The lease is kept until a NAK or ~60 s without an answer.
     */
    reboot(now: number) {
        if (!this.lease) return
        dhcpBegin(this, now, "rebooting")
        this.tries = -1
        this.nextAt = now
    }

    /** Forgets any lease and starts over at the next poll (e.g. after the link came back). */
    reset(at = 0) {
        this.state = "init"
        this.lease = undefined
        this.nextAt = at
    }
}

// `c` starts over with a DISCOVER (`why`: the reason, kept as lastError); a lease held until then
// is lost: an event "lost" tells the caller. (`why` comes first: a message formatted in the call
// then makes the compiler save no other argument.)
function dhcpDiscover(why: string, c: DhcpClient, now: number): DhcpAction {
    const lost = c.lease
    if (why) c.lastError = why
    c.lease = undefined
    dhcpBegin(c, now, "selecting")
    const a = dhcpRetry(c, now)
    if (lost) {
        c.counters.lost++
        a.event = "lost"
    }
    return a
}

// Sends what the state of `c` calls for and schedules the retransmission.
function dhcpRetry(c: DhcpClient, now: number): DhcpAction {
    const s = c.state
    const renewing = s === "renewing"
    const left = (renewing ? c.t2At : c.endAt) - now
    // (calls first in each sum and min: then the compiler saves no operand across them)
    c.nextAt = (c.lease && s !== "rebooting"
        ? Math.min(Math.max(60000, left / 2), left)
        : Math.round((c.random() * 2 - 1) * 1000) + (4000 << Math.min(c.tries, 3))) + now
    return dhcpSend(c, now, KINDS[STATES.indexOf(s)] as DhcpKind, renewing ? c.server : BROADCAST)
}

// Builds `kind` for the client's exchange: an action sending it to `to`, waking at `c.nextAt`.
function dhcpSend(c: DhcpClient, now: number, kind: DhcpKind, to: string): DhcpAction {
    c.counters.sent++
    c.secs = (now - c.startAt) / 1000
    return action(c.nextAt, undefined, buildDhcp(kind, c), to, DHCP_SERVER_PORT)
}

/**
 * Gives the lease of `c` back: `decline` (the caller found the address in use: DECLINE
 * broadcast, start over in 10 s) or `release` (RELEASE unicast to the server; the next poll
 * starts over). Nothing to send without a lease.
 */
export function dhcpGiveBack(c: DhcpClient, kind: "decline" | "release", now: number): DhcpAction {
    if (!c.lease) return action(c.nextAt)
    c.reset(kind === "decline" ? now + 10000 : now)
    const a = dhcpSend(c, now, kind, kind === "decline" ? BROADCAST : c.server)
    a.event = "lost"
    return a
}

// Begins an exchange in `state`: a new xid, its start time, no tries yet.
function dhcpBegin(c: DhcpClient, now: number, state: DhcpState) {
    c.state = state
    c.startAt = now
    c.tries = 0
    c.xid = Math.floor(c.random() * 0x100000000)
}
