/**
 * The simulator's SPI transport. The VM has one TCP socket and no SPI, so the W5500 driver
 * reaches the emulated chip (sim/w5500/) through the bridge protocol of sim/w5500/BRIDGE.md on
 * 127.0.0.1: a whole `SpiBatch` travels as one BATCH request, so one driver step costs one round
 * trip whatever its number of SPI frames. Requests are serialized (one outstanding at a time), so
 * every response is matched to its request by order. Only a simulator image links this file.
 */
import { HostStack } from "../net/host"
import { Connection } from "../net/stack"
import { simPorts } from "./ports"
import { Mutex } from "../util/mutex"
import { BATCH_HEAD, SpiBatch, SpiBus } from "../hal/spi"
import { millis } from "../util/rt"
import { joinBytes } from "../util/bytes"

const EMPTY = Buffer.alloc(0)

/** Counters the bridge keeps for the emulated chip (STATS). */
export interface BridgeStats {
    /** SPI transactions (CS-low periods) since the chip was created */
    spiFrames: number
    /** SPI bytes clocked, headers included */
    spiBytes: number
    /** requests the bridge has served (round trips) */
    requests: number
}

/** Options of `openBridgeBus`. */
export interface BridgeOptions {
    /** default 127.0.0.1 */
    host?: string
    /** default `simPorts.bridge` (src/simdev/ports.ts: the runner's bridge for this run) */
    port?: number
    /** connect and per-request timeout, ms (default 5000) */
    timeoutMs?: number
}

/**
 * Connects to the W5500 emulator's bridge and checks its HELLO. Takes over the runtime's only
 * socket: the host link (`loadSimSettings`) must be done before.
 */
export async function openBridgeBus(opts: BridgeOptions = {}): Promise<BridgeSpiBus> {
    const host = opts.host || "127.0.0.1"
    const port = opts.port || simPorts.bridge
    const timeoutMs = opts.timeoutMs || 5000
    const where = `w5500 bridge ${host}:${port}`
    let conn: Connection
    try {
        conn = await new HostStack().connect({ host, port, timeoutMs })
    } catch (e: any) {
        throw new Error(`${where}: cannot connect (is the emulator running? sim/w5500, startW5500Sim): ${e.message}`)
    }
    const bus = new BridgeSpiBus(conn, where, timeoutMs)
    const hello = await bus.request(hex`01 00 00`)
    if (hello.length < 10 || hello.slice(0, 8).toString() !== "W5500EMU" || hello[8] !== 1) {
        await conn.close()
        throw new Error(`${where}: HELLO answered ${hello.toString("hex")}, expected "W5500EMU" protocol 1`)
    }
    return bus
}

/** The W5500 emulator's bridge, over the runtime's single socket, as an `SpiBus`. */
export class BridgeSpiBus implements SpiBus {
    readonly name = "bridge"
    /** SPI bytes run so far, headers included */
    bytes = 0
    private acc = EMPTY
    private mutex = new Mutex()

    constructor(private conn: Connection, readonly where: string, private readonly timeoutMs: number) {}

    async run(batch: SpiBatch): Promise<Buffer> {
        const len = batch.len - BATCH_HEAD
        const b = batch.buf
        b[0] = 0x05 // BATCH
        b[1] = len >> 8
        b[2] = len & 0xff
        const r = await this.request(b.slice(0, batch.len))
        if (r.length !== batch.readLen) throw new Error(`${this.where}: BATCH answered ${r.length} bytes, expected ${batch.readLen}`)
        this.bytes += batch.spiBytes
        return r
    }

    async setReset(asserted: boolean): Promise<boolean> {
        // RESET with one byte: the RSTn level
        await this.request(asserted ? hex`06 00 01 00` : hex`06 00 01 01`)
        return true
    }

    async interrupt(): Promise<number> {
        // INT answers the INTn level: 0 = asserted
        return (await this.request(hex`07 00 00`))[0] === 0 ? 1 : 0
    }

    async close() {
        await this.conn.close()
    }

    /** Sends one whole request message (its first byte is its type) and waits for its response. */
    async request(msg: Buffer): Promise<Buffer> {
        await this.mutex.lock()
        try {
            await this.conn.send(msg)
            const want = msg[0] | 0x80
            const deadline = millis() + this.timeoutMs
            for (;;) {
                const a = this.acc
                const len = a.length >= 3 ? (a[1] << 8) | a[2] : 0
                if (a.length >= 3 && a.length >= 3 + len) {
                    const body = a.slice(3, 3 + len)
                    this.acc = a.slice(3 + len, a.length)
                    if (a[0] === 0xff) throw new Error(`${this.where}: ${body.toString()}`)
                    if (a[0] !== want) throw new Error(`${this.where}: response type ${a[0]}, expected ${want}`)
                    return body
                }
                const left = deadline - millis()
                // a late answer would be taken for the next request's: the bus is unusable then
                const chunk = left > 0 ? await this.conn.recv(left) : null
                if (chunk === null) {
                    await this.conn.close()
                    throw new Error(`${this.where}: ${left > 0 ? "connection closed" : `no answer within ${this.timeoutMs} ms`} (bus closed)`)
                }
                if (chunk) this.acc = joinBytes(a, 0, chunk, 0)
            }
        } finally {
            this.mutex.unlock()
        }
    }
}

/**
 * The emulated chip's SPI counters (STATS request; costs no SPI bytes). A function, not a method,
 * so that images, which never ask, do not carry it.
 */
export async function bridgeStats(bus: BridgeSpiBus): Promise<BridgeStats> {
    const r = await bus.request(hex`09 00 00`)
    if (r.length !== 12) throw new Error(`${bus.where}: STATS answered ${r.length} bytes, expected 12`)
    const u32 = (off: number) => r[off] * 0x1000000 + ((r[off + 1] << 16) | (r[off + 2] << 8) | r[off + 3])
    return { spiFrames: u32(0), spiBytes: u32(4), requests: u32(8) }
}
