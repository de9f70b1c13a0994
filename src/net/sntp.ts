/**
 * SNTP client (RFC 4330): request builder, reply parser (clock offset and round-trip delay) and a
 * poll-driven machine that syncs periodically over several servers. No I/O here: the caller sends
 * what `SntpClient.poll` asks for (UDP to port 123) and feeds back what arrives.
 */
import { action, Datagram, getU32, setU32 } from "./ip"

/** UDP port of NTP servers. */
export const NTP_PORT = 123

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX = 2208988800
const ERA = 4294967296
const FRAC_PER_MS = 4294967.296

/** Reads the NTP timestamp at `off` as Unix milliseconds (seconds < 2^31 are taken as era 1, after 2036). */
export function readNtpTime(b: Buffer, off: number) {
    let s = getU32(b, off)
    if (s < 0x80000000) s += ERA
    // (the fraction first: then the compiler saves no operand across the call)
    return getU32(b, off + 4) / FRAC_PER_MS + (s - NTP_UNIX) * 1000
}

/** Builds a 48-byte client request (version 4) carrying `txTime` (ms, any clock) as its transmit timestamp. */
export function buildRequest(txTime: number): Buffer {
    const b = Buffer.alloc(48)
    b[0] = 0x23 // LI 0, VN 4, mode 3
    const secs = Math.floor(txTime / 1000)
    // NTP seconds modulo 2^32 (DeviceScript's `%` is wrong past 2^31, so no `%` here), then the fraction
    let s = secs + NTP_UNIX
    if (s >= ERA) s -= ERA
    setU32(b, 40, s)
    setU32(b, 44, Math.floor((txTime - secs * 1000) * FRAC_PER_MS))
    return b
}

/**
 * Result of `parseReply`: `ok` with times in ms (`offset` = server clock - our clock), or an
 * error. "origin" and "mode" mean not a reply to our request (ignore it); the others condemn
 * the server's answer.
 */
export interface SntpResult {
    ok: boolean
    /** Unix time (ms) at `t4` */
    unixMs?: number
    offset?: number
    /** round-trip delay */
    delay?: number
    stratum?: number
    error?: SntpErrorKind
    message?: string
    /** the kiss code for "kod", e.g. "RATE", "DENY" */
    code?: string
}

/** Why a reply is unusable. */
export type SntpErrorKind = "format" | "mode" | "origin" | "kod" | "unsynced" | "stratum" | "zeroTx"

function fail(error: SntpErrorKind, message: string, code?: string): SntpResult {
    return { ok: false, error, message, code }
}

// The 8 bytes of the NTP timestamp at `off`, in hex (compared whole: no number above 2^31 involved)
function stamp(b: Buffer, off: number) {
    return b.slice(off, off + 8).toString("hex")
}

const ZERO_STAMP = "0000000000000000"

/**
 * Parses the reply to a request sent at `sentTx` (the value given to `buildRequest`) and received
 * at `t4` (same clock): mode 4, our timestamp echoed, stratum 1..15 (0 is a kiss-o'-death),
 * LI != 3, non-zero transmit time.
 */
export function parseReply(b: Buffer, sentTx: number, t4: number): SntpResult {
    if (b.length < 48) return fail("format", `sntp: reply is ${b.length} bytes, expected at least 48`)
    const mode = b[0] & 7
    if (mode !== 4) return fail("mode", `sntp: mode ${mode}, expected 4 (server)`)
    // the originate timestamp must be the transmit timestamp of our request
    if (stamp(b, 24) !== stamp(buildRequest(sentTx), 40))
        return fail("origin", "sntp: originate timestamp does not echo our request")
    const stratum = b[1]
    if (!stratum) {
        let code = ""
        // the printable ASCII of the reference ID
        for (let i = 12; i < 16; i++) if (b[i] >= 32) if (b[i] < 127) code += String.fromCharCode(b[i])
        return fail("kod", `sntp: server sent kiss-o'-death "${code}"`, code)
    }
    if (stratum > 15) return fail("stratum", `sntp: stratum ${stratum}, expected 1..15`)
    if (b[0] >> 6 === 3) return fail("unsynced", "sntp: server clock is not synchronized (LI 3)")
    if (stamp(b, 40) === ZERO_STAMP) return fail("zeroTx", "sntp: transmit timestamp is zero")
    const t3 = readNtpTime(b, 40)
    // no receive timestamp: take the transmit time
    let t2 = t3
    if (stamp(b, 32) !== ZERO_STAMP) t2 = readNtpTime(b, 32)
    const offset = (t2 - sentTx + (t3 - t4)) / 2
    return { ok: true, unixMs: t4 + offset, offset, delay: t4 - sentTx - (t3 - t2), stratum }
}

/**
 * `synced`: `offset` was (re)set; `failed`: a whole round over the servers got no usable reply;
 * `kod`: a server sent kiss-o'-death DENY, RSTR or RATE (see `lastError`).
 */
export type SntpEvent = "synced" | "failed" | "kod"

/** What `SntpClient` wants done: send a datagram, call again at `wakeAt`, report. */
export interface SntpAction {
    send?: Datagram
    wakeAt: number
    event?: SntpEvent
}

/** Client settings (ms). */
export interface SntpOptions {
    /** wait for each reply (default 3000) */
    timeoutMs?: number
    /** rounds over the server list per sync (default 2) */
    tries?: number
    /** resync period after a success (default 1 h) */
    intervalMs?: number
    /** first wait after a failed sync, doubled up to intervalMs (default 30 s) */
    retryMs?: number
}

/** Client counters. */
export interface SntpCounters {
    /** requests sent */
    sent: number
    /** rounds over the servers that got no usable reply (see lastError) */
    failures: number
    /** replies not to our request, ignored */
    foreign: number
}

/**
 * Keeps the offset between a local millisecond clock and Unix time: call `poll(now)` at `wakeAt`
 * and `poll(now, datagram)` for each datagram from port 123. Sticks to the last server that
 * answered; on a timeout or an unusable reply it moves to the next. Kiss-o'-death (RFC 4330
 * section 8): DENY and RSTR stop all requests to that address (`denied`); RATE makes the next
 * failed round wait the whole resync interval instead of the retry backoff.
 */
export class SntpClient {
    /** Unix ms minus local ms, valid once `synced` */
    offset = 0
    synced = false
    /** round-trip delay of the last sync, ms */
    delay = 0
    lastError = ""
    readonly counters: SntpCounters = { sent: 0, failures: 0, foreign: 0 }
    /** addresses that sent kiss-o'-death DENY or RSTR: never asked again */
    readonly denied: string[] = []
    private nextAt: number
    private waiting: boolean
    private attempt: number
    // the server that answered last, and the one asked now (indexes into servers)
    private first = 0
    private asked: number
    private sentTx: number
    private retry: number
    private readonly timeoutMs: number
    private readonly tries: number
    private readonly intervalMs: number
    private readonly retryMs: number

    /** `servers`: IPv4 addresses (may be replaced later); `random()` in [0, 1) (request nonce). */
    constructor(public servers: string[], private readonly random: () => number, opts: SntpOptions = {}) {
        this.timeoutMs = opts.timeoutMs || 3000
        this.tries = opts.tries || 2
        this.intervalMs = opts.intervalMs || 3600000
        this.retry = this.retryMs = opts.retryMs || 30000
    }

    /** Unix time (ms) at local time `now`, or -1 before the first sync. */
    unixTime(now: number) {
        if (this.synced) return now + this.offset
        return -1
    }

    /** Syncs at the next poll instead of waiting for the interval. */
    syncNow() {
        this.nextAt = 0
        this.waiting = false
    }

    /**
     * Advances the machine to `now`, first handling `rx` (a datagram from a server) if given. On a
     * timeout or an unusable reply it asks the next server, or ends the round with "failed" once
     * every server had its tries.
     */
    poll(now: number, rx?: Buffer): SntpAction {
        const c = this.counters
        const s = this.servers
        const n = s.length
        const d = this.denied
        // `bad`: the reply condemned the server asked (ask the next one now); `kod`: kiss-o'-death
        let bad = false
        let kod = ""
        if (rx) if (this.waiting) {
            const r = parseReply(rx, this.sentTx, now)
            if (r.ok) {
                this.offset = r.offset
                this.delay = r.delay
                this.synced = true
                this.waiting = false
                this.first = this.asked
                this.retry = this.retryMs
                this.nextAt = now + this.intervalMs
                return action(this.nextAt, "synced")
            }
            if (r.error === "origin" || r.error === "mode") c.foreign = c.foreign + 1
            else {
                const k = r.code
                const srv = s[this.asked]
                if (k === "DENY" || k === "RSTR") {
                    d.push(srv)
                    kod = "no more requests to it"
                }
                if (k === "RATE") {
                    this.retry = this.intervalMs
                    kod = "asking less often"
                }
                if (kod) this.lastError = `sntp: ${srv} sent kiss-o'-death ${k}: ${kod}`
                else this.lastError = r.message
                bad = true
            }
        }
        if (!bad) {
            if (now < this.nextAt) return action(this.nextAt)
            if (!this.waiting) this.attempt = 0
        }
        for (;;) {
            if (this.attempt >= this.tries * n) {
                if (!n) this.lastError = "sntp: no NTP server configured"
                else if (!this.lastError) this.lastError = `sntp: no reply from ${s.join(", ")}${d.length ? " (refused by " + d.join(", ") + ")" : ""}`
                this.waiting = false
                c.failures = c.failures + 1
                this.nextAt = now + this.retry
                this.retry = Math.min(this.retry * 2, this.intervalMs)
                return action(this.nextAt, "failed")
            }
            if (!this.attempt) this.lastError = ""
            this.asked = (this.first + this.attempt++) % n
            if (d.indexOf(s[this.asked]) < 0) break
        }
        // sub-millisecond random bits make the echoed timestamp hard to guess
        this.sentTx = this.random() * 0.99 + now
        this.waiting = true
        c.sent = c.sent + 1
        this.nextAt = now + this.timeoutMs
        return action(this.nextAt, kod ? "kod" : undefined, buildRequest(this.sentTx), s[this.asked], NTP_PORT)
    }
}
