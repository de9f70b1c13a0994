/**
 * A hostile MQTT "broker" for fuzzing the client: a raw TCP server on 127.0.0.1 that accepts the
 * CONNECT (CONNACK 0), answers SUBSCRIBE with SUBACK when the case says so, then sends one
 * malformed or mutated case per connection, drawn from a seeded generator, and closes.
 * Every case is recorded: what was sent (kind, seed, bytes), who closed first, and whether the
 * client connected again afterwards.
 */
import net from "node:net"
import { runVm } from "./devs.ts"
import { startHostLink } from "./hostlink.ts"

/** The kinds of hostile input, one per case in turn. */
export const CASE_KINDS = [
    "random-bytes",
    "wrong-length",
    "varint-5",
    "huge-length",
    "type-0",
    "type-15",
    "unknown-ack",
    "pubrel-storm",
    "oversized-topic",
    "bad-utf8-topic",
    "qos3",
    "packet-id-0",
    "truncated-close",
    "split-publish-garbage",
    "mutated-valid",
    "bad-flags",
    "publish-flood",
    "big-publish",
] as const

/** One kind of hostile input. */
export type CaseKind = (typeof CASE_KINDS)[number]

/** A generated case: chunks written with `gapMs` between them. */
export interface HostileCase {
    index: number
    /** the seed this case was drawn from (`caseSeed(runSeed, index)`) */
    seed: number
    kind: CaseKind
    /** answer the client's SUBSCRIBE with a SUBACK before the case */
    suback: boolean
    chunks: Buffer[]
    gapMs: number
    /** close right after the last chunk instead of waiting for the client to go quiet */
    closeNow: boolean
}

/** What happened on the connection that carried one case. */
export interface CaseRecord {
    index: number
    seed: number
    kind: CaseKind
    /** bytes of hostile input written */
    bytes: number
    /** every chunk was written before the connection ended */
    sentAll: boolean
    /** the client ended the connection before the broker did */
    clientClosedFirst: boolean
    /** packets the client sent after the case started (acks, PUBCOMPs, PINGREQs...) */
    replies: number
    /** a later connection arrived (the client reconnected) */
    reconnected: boolean
}

/** Counts of cases of one kind. */
export interface CaseTally {
    cases: number
    clientClosedFirst: number
    reconnected: number
    /** bytes of hostile input written */
    bytes: number
}

/** Adds `records` (holes skipped) to the counts by kind in `into` (which has every kind); returns it. */
export function tallyCases<T extends CaseTally>(records: (CaseRecord | undefined)[], into: Map<CaseKind, T>): Map<CaseKind, T> {
    for (const r of records) {
        if (!r) continue
        const s = into.get(r.kind)!
        s.cases++
        s.bytes += r.bytes
        if (r.clientClosedFirst) s.clientClosedFirst++
        if (r.reconnected) s.reconnected++
    }
    return into
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
    let a = seed >>> 0
    return () => {
        a = (a + 0x6d2b79f5) >>> 0
        let t = a
        t = Math.imul(t ^ (t >>> 15), t | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
}

/** The seed of case `index` in a run seeded with `runSeed`. */
export function caseSeed(runSeed: number, index: number): number {
    let h = (Math.imul(runSeed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0
    return (h ^ (h >>> 15)) >>> 0
}

function varint(n: number): number[] {
    const out: number[] = []
    do {
        let b = n % 128
        n = Math.floor(n / 128)
        if (n > 0) b |= 0x80
        out.push(b)
    } while (n > 0)
    return out
}

function packet(hdr: number, body: Buffer | number[]): Buffer {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body)
    return Buffer.concat([Buffer.from([hdr, ...varint(b.length)]), b])
}

function u16(n: number): number[] {
    return [(n >> 8) & 0xff, n & 0xff]
}

function publish(topic: Buffer | string, payload: Buffer, qos: number, id: number, flags = 0): Buffer {
    const t = Buffer.isBuffer(topic) ? topic : Buffer.from(topic)
    const parts = [Buffer.from(u16(t.length)), t]
    if (qos) parts.push(Buffer.from(u16(id)))
    parts.push(payload)
    return packet(0x30 | (qos << 1) | flags, Buffer.concat(parts))
}

/** Draws case `index` of a run seeded with `runSeed` (deterministic). */
export function makeCase(runSeed: number, index: number): HostileCase {
    const seed = caseSeed(runSeed, index)
    const r = prng(seed)
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]
    const bytes = (n: number) => {
        const b = Buffer.alloc(n)
        for (let i = 0; i < n; i++) b[i] = int(0, 255)
        return b
    }
    const kind = CASE_KINDS[index % CASE_KINDS.length]
    const c: HostileCase = { index, seed, kind, suback: r() < 0.6, chunks: [], gapMs: 0, closeNow: false }
    const validPublish = () => publish(`hostile/${int(0, 999)}`, bytes(int(0, 64)), int(0, 2), int(1, 65535))
    switch (kind) {
        case "random-bytes":
            c.chunks = [bytes(int(1, 400))]
            break
        case "wrong-length": {
            const v = int(0, 4)
            if (v === 0) c.chunks = [Buffer.from([0x40, int(0, 1) ? 1 : 3, ...u16(int(1, 65535)), 0])] // PUBACK 1 or 3 bytes
            else if (v === 1) c.chunks = [Buffer.from([0xd0, int(1, 5), 0, 0, 0, 0, 0])] // PINGRESP with a body
            else if (v === 2) c.chunks = [Buffer.from([0x90, 2, ...u16(int(1, 65535))])] // SUBACK without a return code
            else if (v === 3) {
                // PUBLISH whose declared length is shorter than its body: the rest parses as garbage
                const p = validPublish()
                p[1] = Math.max(0, p[1] - int(1, 5))
                c.chunks = [p]
            } else c.chunks = [Buffer.from([0x20, int(3, 9), 0, 0, ...bytes(9)])] // CONNACK of the wrong size
            break
        }
        case "varint-5": {
            const lead = pick([0x30, 0x32, 0x40, 0x90, 0xd0, 0x00, 0xf0])
            const tail = int(0, 1) ? [0xff, 0xff, 0xff, 0xff, 0x01] : [0x80, 0x80, 0x80, 0x80, 0x00]
            c.chunks = [Buffer.from([lead, ...tail, ...bytes(int(0, 20))])]
            break
        }
        case "huge-length": {
            // 268,435,455 announced, then a trickle of bytes, then the close
            const lead = pick([0x30, 0x32, 0x34, 0x40, 0x90, 0x00])
            c.chunks = [Buffer.from([lead, 0xff, 0xff, 0xff, 0x7f])]
            if (lead === 0x32 || lead === 0x34) c.chunks.push(Buffer.from([0, 3, 0x61, 0x2f, 0x62, ...u16(int(1, 65535))]))
            const n = int(5, 15)
            for (let i = 0; i < n; i++) c.chunks.push(bytes(int(1, 300)))
            c.gapMs = int(2, 8)
            c.closeNow = true
            break
        }
        case "type-0":
        case "type-15": {
            const hdr = (kind === "type-0" ? 0x00 : 0xf0) | int(0, 15)
            c.chunks = [packet(hdr, bytes(int(0, 40))), ...(int(0, 1) ? [validPublish()] : [])]
            break
        }
        case "unknown-ack": {
            const n = int(1, 20)
            const out: number[] = []
            for (let i = 0; i < n; i++) out.push(pick([0x40, 0x50, 0x70]), 2, ...u16(int(1, 65535)))
            c.chunks = [Buffer.from(out)]
            break
        }
        case "pubrel-storm": {
            const n = int(200, 800)
            const out: number[] = []
            for (let i = 0; i < n; i++) out.push(0x62, 2, ...u16(int(1, 65535)))
            c.chunks = [Buffer.from(out)]
            break
        }
        case "oversized-topic": {
            const v = int(0, 2)
            if (v === 0) {
                // a topic length field larger than the packet
                c.chunks = [packet(0x30, [...u16(int(100, 65535)), 0x61, 0x62])]
            } else if (v === 1) {
                // a real 65535-byte topic: above maxPacketSize, to be skipped
                c.chunks = [publish(Buffer.alloc(65535, 0x61), bytes(int(0, 10)), int(0, 2), int(1, 65535))]
            } else {
                // a long topic that fits the packet size limit
                c.chunks = [publish(Buffer.alloc(int(1000, 20000), 0x62), Buffer.alloc(0), int(0, 2), int(1, 65535))]
            }
            break
        }
        case "bad-utf8-topic": {
            const bad = pick([
                [0xc3, 0x28], // bad continuation
                [0xff, 0xfe], // never valid
                [0xed, 0xa0, 0x80], // surrogate
                [0xc0, 0xaf], // overlong
                [0x61, 0x00, 0x62], // NUL
                [0xe2, 0x82], // truncated sequence
                [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
                [0x80], // lone continuation
            ])
            c.chunks = [publish(Buffer.from([0x61, 0x2f, ...bad]), bytes(int(0, 16)), int(0, 2), int(1, 65535))]
            break
        }
        case "qos3":
            c.chunks = [packet(0x36 | int(0, 1) | (int(0, 1) << 3), [0, 1, 0x61, ...u16(int(0, 65535)), ...bytes(int(0, 8))])]
            break
        case "packet-id-0": {
            const v = int(0, 2)
            if (v === 0) c.chunks = [publish("hostile/id0", bytes(4), int(1, 2), 0)]
            else if (v === 1) c.chunks = [Buffer.from([pick([0x40, 0x50, 0x62, 0x70, 0xb0]), 2, 0, 0])]
            else c.chunks = [Buffer.from([0x90, 3, 0, 0, 0])]
            break
        }
        case "truncated-close": {
            const p = pick([validPublish(), Buffer.from([0x40, 2, 0, 1]), Buffer.from([0x90, 3, 0, 1, 0]), publish("t/big", bytes(3000), 1, 7)])
            c.chunks = [p.subarray(0, int(1, p.length - 1))]
            c.closeNow = true
            break
        }
        case "split-publish-garbage": {
            const p = publish(`hostile/split/${int(0, 99)}`, bytes(int(0, 600)), int(0, 2), int(1, 65535))
            const cuts = [0]
            for (let i = int(1, 6); i > 0; i--) cuts.push(int(1, p.length - 1))
            cuts.push(p.length)
            cuts.sort((a, b) => a - b)
            for (let i = 1; i < cuts.length; i++) if (cuts[i] > cuts[i - 1]) c.chunks.push(p.subarray(cuts[i - 1], cuts[i]))
            c.chunks.push(bytes(int(1, 64)))
            c.gapMs = int(1, 5)
            break
        }
        case "mutated-valid": {
            const parts: Buffer[] = []
            for (let i = int(1, 6); i > 0; i--)
                parts.push(pick([validPublish(), Buffer.from([0xd0, 0]), Buffer.from([0x40, 2, ...u16(int(1, 65535))]), Buffer.from([0x90, 3, ...u16(int(1, 65535)), int(0, 2)])]))
            const b = Buffer.concat(parts)
            for (let i = int(1, 4); i > 0; i--) b[int(0, b.length - 1)] = int(0, 255)
            c.chunks = [b]
            break
        }
        case "bad-flags": {
            c.chunks = [Buffer.from(pick([
                [0x4f, 2, 0, 1], // PUBACK with reserved flags
                [0x60, 2, 0, 1], // PUBREL without its 0x2 flags
                [0x21, 2, 0, 0], // CONNACK with flags
                [0x22, 2, 0, 0], // a second CONNACK... with flags
                [0x20, 2, 0, 0], // a second CONNACK
                [0x20, 2, 0xfe, 5], // CONNACK with bad ack flags
                [0x82, 6, 0, 1, 0, 1, 0x61, 0], // SUBSCRIBE from the broker
                [0xc0, 0], // PINGREQ from the broker
                [0xe0, 0], // DISCONNECT from the broker
                [0x10, 3, 0, 1, 0x61], // CONNECT from the broker
                [0x99, 3, 0, 1, 0], // SUBACK with flags
            ]))]
            break
        }
        case "publish-flood": {
            const parts: Buffer[] = []
            for (let i = int(20, 80); i > 0; i--) parts.push(validPublish())
            c.chunks = [Buffer.concat(parts)]
            break
        }
        case "big-publish": {
            // near the client's default maxPacketSize (8192): valid, or cut short, or just above the limit
            const size = pick([int(1000, 8100), int(8150, 8250)])
            const p = publish("hostile/big", bytes(size), int(0, 2), int(1, 65535))
            if (int(0, 1)) {
                c.chunks = [p.subarray(0, int(10, p.length - 1))]
                c.closeNow = true
            } else c.chunks = [p]
            break
        }
    }
    return c
}

/** Largest single write to the VM (see `sendCase`). */
const PIECE = 2048

/** Options of `HostileBroker.start`. */
export interface HostileOptions {
    seed: number
    /** cases to serve; later connections get a plain CONNACK/SUBACK and are left open */
    cases: number
    /** index of the first case (to split a run over several brokers) */
    firstIndex?: number
    /** close once the client has been silent this long after the case (ms, default 30) */
    quietMs?: number
    /** close at the latest this long after the case (ms, default 400) */
    maxHoldMs?: number
}

/** The hostile broker: one case per connection, in order. */
export class HostileBroker {
    readonly records: CaseRecord[] = []
    /** connections accepted so far */
    connections = 0
    private sockets = new Set<net.Socket>()

    private constructor(private server: net.Server, readonly port: number, private o: Required<HostileOptions>) {}

    /** Listens on 127.0.0.1 (an ephemeral port unless `port` is given). */
    static start(opts: HostileOptions, port = 0): Promise<HostileBroker> {
        const o: Required<HostileOptions> = { firstIndex: 0, quietMs: 30, maxHoldMs: 400, ...opts }
        return new Promise((resolve, reject) => {
            let hb: HostileBroker
            const server = net.createServer(sock => hb.accept(sock))
            server.once("error", reject)
            server.listen(port, "127.0.0.1", () => {
                hb = new HostileBroker(server, (server.address() as net.AddressInfo).port, o)
                resolve(hb)
            })
        })
    }

    private accept(sock: net.Socket) {
        const n = this.connections++
        this.sockets.add(sock)
        // the previous case's client came back
        if (n > 0 && this.records[n - 1]) this.records[n - 1].reconnected = true
        const hc = n < this.o.cases ? makeCase(this.o.seed, this.o.firstIndex + n) : undefined
        const rec: CaseRecord | undefined = hc && {
            index: hc.index, seed: hc.seed, kind: hc.kind, bytes: 0,
            sentAll: false, clientClosedFirst: false, replies: 0, reconnected: false,
        }
        if (rec) this.records[n] = rec
        let ended = false
        let weClosed = false
        let started = false
        let lastHeard = Date.now()
        let acc = Buffer.alloc(0)
        const timers: NodeJS.Timeout[] = []
        const close = () => {
            if (ended) return
            weClosed = true
            sock.destroy()
        }
        const sendCase = async () => {
            if (started || !hc) return
            started = true
            for (const ch of hc.chunks) {
                // the simulator runtime panics ("buffer too big") on one socket read above ~57 KB,
                // a limit below the client: large cases go out in 8 KB pieces, 5 ms apart
                for (let off = 0; off < ch.length; off += PIECE) {
                    if (ended) return
                    const piece = ch.subarray(off, off + PIECE)
                    sock.write(piece)
                    rec!.bytes += piece.length
                    if (off + PIECE < ch.length) await new Promise(r => timers.push(setTimeout(r, 5)))
                }
                if (hc.gapMs) await new Promise(r => timers.push(setTimeout(r, hc.gapMs)))
            }
            if (ended) return
            rec!.sentAll = true
            if (hc.closeNow) return close()
            // wait until the client goes quiet (it may be answering a storm), within a bound
            // a storm gets time for all its answers (the VM can take more than 30 ms to start)
            const storm = hc.kind === "pubrel-storm"
            const quiet = storm ? 300 : this.o.quietMs
            const until = Date.now() + (storm ? 1500 : this.o.maxHoldMs)
            lastHeard = Date.now()
            const tick = () => {
                if (ended) return
                if (Date.now() - lastHeard >= quiet || Date.now() >= until) return close()
                timers.push(setTimeout(tick, 5))
            }
            tick()
        }
        sock.on("error", () => {})
        sock.on("close", () => {
            ended = true
            for (const t of timers) clearTimeout(t)
            this.sockets.delete(sock)
            if (rec && !weClosed) rec.clientClosedFirst = true
        })
        // a connection that never sends CONNECT is dropped
        timers.push(setTimeout(() => { if (!started) close() }, 3000))
        sock.on("data", d => {
            lastHeard = Date.now()
            acc = acc.length ? Buffer.concat([acc, d]) : d
            // split the client's bytes into packets: fixed header + remaining length
            for (;;) {
                if (acc.length < 2) break
                let len = 0, mult = 1, i = 1
                for (; i < 5 && i < acc.length; i++) {
                    len += (acc[i] & 0x7f) * mult
                    mult *= 128
                    if (!(acc[i] & 0x80)) break
                }
                if (i >= acc.length || i >= 5) {
                    if (i >= 5) return close() // the client sent garbage: not expected
                    break
                }
                const total = 1 + i + len
                if (acc.length < total) break
                const type = acc[0] >> 4
                const body = acc.subarray(i + 1, total)
                acc = acc.subarray(total)
                if (started && rec) rec.replies++
                if (type === 1) {
                    sock.write(Buffer.from([0x20, 2, 0, 0]))
                    // a case that needs no SUBACK starts at once; otherwise after the SUBSCRIBE
                    if (hc && !hc.suback) void sendCase()
                    // a client that sends no SUBSCRIBE gets the case anyway
                    else timers.push(setTimeout(() => void sendCase(), 150))
                } else if (type === 8) {
                    if (!hc || hc.suback) sock.write(Buffer.from([0x90, 3, body[0], body[1], 1]))
                    if (hc) void sendCase()
                } else if (type === 12) sock.write(Buffer.from([0xd0, 0]))
            }
        })
    }

    /** Counts of the recorded cases by kind. */
    summary(): Map<CaseKind, CaseTally> {
        const m = new Map<CaseKind, CaseTally>()
        for (const k of CASE_KINDS) m.set(k, { cases: 0, clientClosedFirst: 0, reconnected: 0, bytes: 0 })
        return tallyCases(this.records, m)
    }

    /** Stops listening and drops every open connection. */
    close(): Promise<void> {
        for (const s of this.sockets) s.destroy()
        return new Promise(r => this.server.close(() => r()))
    }
}

/** The counters the VM program (test/vm/hostile.vm.ts) prints in its `##HOSTILE` line. */
export interface HostileVmStats {
    attempts: number
    malformed: number
    received: number
    reconnects: number
    delivered: number
    dropped: number
    bytes: number
}

/** Parses a `##HOSTILE k=v ...` line; undefined for any other line. */
export function parseHostileLine(line: string): HostileVmStats | undefined {
    const i = line.indexOf("##HOSTILE ")
    if (i < 0) return undefined
    const v: Record<string, number> = {}
    for (const kv of line.slice(i + 10).trim().split(/\s+/)) {
        const [k, n] = kv.split("=")
        v[k] = Number(n)
    }
    return {
        attempts: v.attempts, malformed: v.malformed, received: v.received, reconnects: v.reconnects,
        delivered: v.delivered, dropped: v.dropped, bytes: v.bytes,
    }
}

/** What a VM run against the hostile broker printed and did. */
export interface HostileRunResult {
    stats?: HostileVmStats
    records: CaseRecord[]
    connections: number
    /** VM exit code (null when stopped at the summary in device mode) */
    code: number | null
    timedOut: boolean
    /** lines that show a VM panic, exception or runaway */
    panics: string[]
    lines: string[]
    ms: number
}

/** Matches console lines that mean the VM crashed or threw where it must not. */
export const PANIC_LINE = /PANIC|Exception|OutOfMemory|out of memory|InfiniteLoop|infinite loop|stack overflow|unhandled/i

/** Options of `runHostileVm`. */
export interface HostileRunOptions {
    seed: number
    cases: number
    firstIndex?: number
    /** "device" (default: fast, no GC stress) or "test" (GC stress) */
    mode?: "device" | "test"
    timeoutMs?: number
    /** the VM logs every connection event */
    log?: boolean
    onLine?: (line: string) => void
}

/**
 * Runs test/vm/hostile.vm.ts against a fresh hostile broker serving `cases` cases; the VM stops
 * after `cases + 1` connection attempts, so every case is followed by a reconnect. The host link
 * is held only until the VM has read its settings.
 */
export async function runHostileVm(o: HostileRunOptions): Promise<HostileRunResult> {
    const t0 = Date.now()
    const broker = await HostileBroker.start({ seed: o.seed, cases: o.cases, firstIndex: o.firstIndex ?? 0 })
    const link = await startHostLink({ H_PORT: broker.port, H_ATTEMPTS: o.cases + 1, H_LOG: !!o.log }, { waitMs: 120000 })
    let linkOpen = true
    const closeLink = async () => {
        if (!linkOpen) return
        linkOpen = false
        await link.close()
    }
    const panics: string[] = []
    let stats: HostileVmStats | undefined
    try {
        const run = await runVm("test/vm/hostile.vm.ts", {
            mode: o.mode ?? "device",
            timeoutMs: o.timeoutMs ?? 120000,
            onLine: line => {
                if (line.includes("##HOSTILE-START")) void closeLink()
                if (PANIC_LINE.test(line)) panics.push(line)
                stats = stats ?? parseHostileLine(line)
                o.onLine?.(line)
            },
            stopWhen: line => (o.mode ?? "device") === "device" && line.includes("##HOSTILE "),
        })
        return {
            stats, records: broker.records.slice(), connections: broker.connections,
            code: run.code, timedOut: run.timedOut, panics, lines: run.lines, ms: Date.now() - t0,
        }
    } finally {
        await closeLink()
        await broker.close()
    }
}
