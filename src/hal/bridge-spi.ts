/**
 * `BridgeSpiBus`: the simulator's SPI transport. The VM has one TCP socket and no SPI, so the
 * W5500 driver reaches the emulated chip (sim/w5500/) through the bridge protocol of
 * sim/w5500/BRIDGE.md on 127.0.0.1: a whole `SpiBatch` travels as one BATCH request, so one
 * driver step costs one round trip whatever its number of SPI frames. Requests are serialized
 * (one outstanding at a time), so every response is matched to its request by order.
 */
import * as ds from "@devicescript/core"
import { HostStack } from "../net/host"
import { Connection } from "../net/stack"
import { Mutex } from "../util/mutex"
import { BATCH_HEAD, SpiBatch, SpiBus } from "./spi"

/** Default bridge port of sim/w5500/bridge.ts. */
export const BRIDGE_PORT = 17767

const HELLO = 0x01
const BATCH = 0x05
const RESET = 0x06
const INT = 0x07
const STATS = 0x09
const ERROR = 0xff
const MAGIC = "W5500EMU"
const EMPTY = Buffer.alloc(0)
const INT_REQ = hex`07 00 00`
const STATS_REQ = hex`09 00 00`

/** Counters the bridge keeps for the emulated chip (STATS). */
export interface BridgeStats {
    /** SPI transactions (CS-low periods) since the chip was created */
    spiFrames: number
    /** SPI bytes clocked, headers included */
    spiBytes: number
    /** requests the bridge has served (round trips) */
    requests: number
}

/** Options of `BridgeSpiBus.connect`. */
export interface BridgeOptions {
    /** default 127.0.0.1 */
    host?: string
    /** default BRIDGE_PORT (17767) */
    port?: number
    /** connect and per-request timeout, ms (default 5000) */
    timeoutMs?: number
}

function u32(b: Buffer, off: number) {
    return b[off] * 0x1000000 + ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3])
}

/** The W5500 emulator's bridge, over the runtime's single socket, as an `SpiBus`. */
export class BridgeSpiBus implements SpiBus {
    readonly name = "bridge"
    frames = 0
    bytes = 0
    /** round trips made */
    requests = 0
    private acc = EMPTY
    private mutex = new Mutex()
    private closed = false

    private constructor(private conn: Connection, private readonly where: string, private readonly timeoutMs: number) {}

    /**
     * Connects to the bridge and checks its HELLO. Takes over the runtime's only socket: the host
     * link (`loadSimSettings`) must be done before.
     */
    static async connect(opts: BridgeOptions = {}): Promise<BridgeSpiBus> {
        const host = opts.host || "127.0.0.1"
        const port = opts.port || BRIDGE_PORT
        const timeoutMs = opts.timeoutMs || 5000
        const where = `w5500 bridge ${host}:${port}`
        let conn: Connection
        try {
            conn = await new HostStack().connect({ host, port, timeoutMs })
        } catch (e: any) {
            throw new Error(`${where}: cannot connect (is the emulator running? sim/w5500, startW5500Sim): ${e.message}`)
        }
        const bus = new BridgeSpiBus(conn, where, timeoutMs)
        const hello = await bus.request(HELLO, hex`01 00 00`)
        if (hello.length < 10 || hello.slice(0, 8).toString() !== MAGIC || hello[8] !== 1) {
            await bus.close()
            throw new Error(`${where}: HELLO answered ${hello.toString("hex")}, expected "${MAGIC}" protocol 1`)
        }
        return bus
    }

    async run(batch: SpiBatch): Promise<Buffer> {
        if (batch.len <= BATCH_HEAD) return EMPTY
        const len = batch.len - BATCH_HEAD
        const b = batch.buf
        b[0] = BATCH
        b[1] = len >> 8
        b[2] = len & 0xff
        const r = await this.request(BATCH, b.slice(0, batch.len))
        if (r.length !== batch.readLen)
            throw new Error(`${this.where}: BATCH answered ${r.length} bytes, expected ${batch.readLen}`)
        this.frames += batch.frames
        this.bytes += batch.spiBytes
        return r
    }

    async setReset(asserted: boolean): Promise<boolean> {
        const m = Buffer.alloc(4)
        m[0] = RESET
        m[2] = 1
        m[3] = asserted ? 0 : 1
        await this.request(RESET, m)
        return true
    }

    async interrupt(): Promise<number> {
        const r = await this.request(INT, INT_REQ)
        if (r.length !== 1) throw new Error(`${this.where}: INT answered ${r.length} bytes, expected 1`)
        return r[0] === 0 ? 1 : 0
    }

    /** The emulated chip's SPI counters (STATS request; costs no SPI bytes). */
    async stats(): Promise<BridgeStats> {
        const r = await this.request(STATS, STATS_REQ)
        if (r.length !== 12) throw new Error(`${this.where}: STATS answered ${r.length} bytes, expected 12`)
        return { spiFrames: u32(r, 0), spiBytes: u32(r, 4), requests: u32(r, 8) }
    }

    async close() {
        this.closed = true
        await this.conn.close()
    }

    /** Sends one whole request message (`type` is its first byte) and waits for its response. */
    private async request(type: number, msg: Buffer): Promise<Buffer> {
        await this.mutex.lock()
        try {
            if (this.closed) throw new Error(`${this.where}: closed`)
            this.requests++
            await this.conn.send(msg)
            return await this.response(type | 0x80)
        } finally {
            this.mutex.unlock()
        }
    }

    private async response(want: number): Promise<Buffer> {
        const deadline = ds.millis() + this.timeoutMs
        for (;;) {
            const a = this.acc
            if (a.length >= 3) {
                const len = (a[1] << 8) | a[2]
                if (a.length >= 3 + len) {
                    const type = a[0]
                    const body = len ? a.slice(3, 3 + len) : EMPTY
                    this.acc = a.length === 3 + len ? EMPTY : a.slice(3 + len, a.length)
                    if (type === ERROR) throw new Error(`${this.where}: ${body.toString()}`)
                    if (type !== want)
                        throw new Error(`${this.where}: response type ${type}, expected ${want}`)
                    return body
                }
            }
            const left = deadline - ds.millis()
            if (left <= 0) {
                // a late answer would be taken for the next request's: the bus is unusable now
                this.closed = true
                await this.conn.close()
                throw new Error(`${this.where}: no answer within ${this.timeoutMs} ms (bus closed)`)
            }
            const chunk = await this.conn.recv(left)
            if (chunk === null) {
                this.closed = true
                throw new Error(`${this.where}: connection closed${this.conn.error ? " (" + this.conn.error + ")" : ""}`)
            }
            if (chunk) this.acc = this.acc.length ? this.acc.concat(chunk) : chunk
        }
    }
}
