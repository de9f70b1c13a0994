/**
 * The W5500 bridge: a TCP server on 127.0.0.1 through which a program that has only a TCP socket
 * (the DeviceScript VM) drives the emulated chip's SPI bus, RSTn and INTn pins. The protocol is
 * specified in BRIDGE.md beside this file.
 */
import net from "node:net"
import type { W5500 as W5500Chip } from "./chip.ts"
import type { W5100S } from "../w5100s/chip.ts"
import { notePort } from "../simports.ts"

/** The chip behind the bridge: the W5500 model, or the W5100S model whose frames are `OP addr_hi addr_lo data...`. */
type W5500 = W5500Chip | W5100S

/** Checks the header of a READ (`write` false) or WRITE frame for the chip's framing; the error message, or "". */
function headerError(chip: W5500, p: Uint8Array, write: boolean): string {
    if ("kind" in chip) {
        const op = write ? 0xf0 : 0x0f
        return p[0] === op ? "" : `${write ? "WRITE" : "READ"}: W5100S OP-code 0x${p[0].toString(16)}, expected 0x${op.toString(16)}`
    }
    if (write) return p[2] & 0x04 ? "" : `WRITE: control 0x${p[2].toString(16)} must have RWB=1`
    return p[2] & 0x07 ? `READ: control 0x${p[2].toString(16)} must have RWB=0 and OM=00` : ""
}

/** The device's default bridge port, for a program run by hand (runs of `runVm` get the bridge's own port). */
export const BRIDGE_PORT = 17767
/** Protocol version reported by HELLO. */
export const BRIDGE_VERSION = 1
/** Magic string at the start of the HELLO response. */
export const BRIDGE_MAGIC = "W5500EMU"

/** Request types. A response carries the request type | 0x80, or 0xFF for an error. */
export const OP = {
    HELLO: 0x01,
    XFER: 0x02,
    READ: 0x03,
    WRITE: 0x04,
    BATCH: 0x05,
    RESET: 0x06,
    INT: 0x07,
    WAIT_INT: 0x08,
    STATS: 0x09,
    ERROR: 0xff,
} as const

/** Requests allowed inside a BATCH. */
const BATCHABLE = new Set<number>([OP.XFER, OP.READ, OP.WRITE, OP.RESET, OP.INT])

/** Options of the bridge server. */
export interface BridgeOptions {
    /** TCP port on 127.0.0.1; default 0: a free one (`runVm` hands it to the device, sim/simports.ts) */
    port?: number
    /** keep retrying for this long while the port is in use (another simulator), default 0 */
    waitMs?: number
}

/** Bridge traffic counters (for the benchmark). */
export interface BridgeStats {
    connections: number
    /** top-level requests served: one per round trip */
    requests: number
    /** SPI frames carried (XFER/READ/WRITE, inside batches too) */
    frames: number
    bytesIn: number
    bytesOut: number
}

/** A running bridge. */
export interface Bridge {
    readonly port: number
    readonly stats: BridgeStats
    close(): Promise<void>
}

class BridgeError extends Error {}

/** Executes one request on the chip; returns the response payload. Throws BridgeError on bad input. */
function execute(chip: W5500, stats: BridgeStats, type: number, p: Uint8Array, inBatch: boolean): Uint8Array {
    switch (type) {
        case OP.HELLO: {
            const r = new Uint8Array(12)
            r.set(Buffer.from(BRIDGE_MAGIC, "ascii"), 0)
            r[8] = BRIDGE_VERSION
            r[9] = chip.inReset ? 1 : 0
            r[10] = 0xff
            r[11] = 0xff
            return r
        }
        case OP.XFER:
            if (p.length < 3) throw new BridgeError(`XFER: frame of ${p.length} bytes, expected at least 3 (address, control)`)
            stats.frames++
            return chip.transfer(p)
        case OP.READ: {
            if (p.length !== 5) throw new BridgeError(`READ: payload of ${p.length} bytes, expected 5 (addr_hi addr_lo control len_hi len_lo)`)
            if (headerError(chip, p, false)) throw new BridgeError(headerError(chip, p, false))
            const n = (p[3] << 8) | p[4]
            const f = new Uint8Array(3 + n)
            f.set(p.subarray(0, 3))
            stats.frames++
            return chip.transfer(f).subarray(3)
        }
        case OP.WRITE:
            if (p.length < 3) throw new BridgeError(`WRITE: frame of ${p.length} bytes, expected at least 3`)
            if (headerError(chip, p, true)) throw new BridgeError(headerError(chip, p, true))
            stats.frames++
            chip.transfer(p)
            return new Uint8Array(0)
        case OP.RESET:
            if (p.length !== 1 || p[0] > 1) throw new BridgeError(`RESET: payload must be one byte 0 (RSTn low) or 1 (released)`)
            chip.setResetPin(p[0] === 1)
            return new Uint8Array(0)
        case OP.INT:
            if (p.length !== 0) throw new BridgeError(`INT: payload of ${p.length} bytes, expected none`)
            return Uint8Array.of(chip.intPin())
        case OP.STATS: {
            const r = new Uint8Array(12)
            const dv = new DataView(r.buffer)
            dv.setUint32(0, chip.counters.frames >>> 0)
            dv.setUint32(4, chip.counters.bytes >>> 0)
            dv.setUint32(8, stats.requests >>> 0)
            return r
        }
        default:
            throw new BridgeError(inBatch ? `BATCH: request type 0x${type.toString(16)} cannot be batched` : `unknown request type 0x${type.toString(16)}`)
    }
}

function executeBatch(chip: W5500, stats: BridgeStats, p: Uint8Array): Uint8Array {
    const parts: Uint8Array[] = []
    let i = 0
    let k = 0
    while (i < p.length) {
        if (i + 3 > p.length) throw new BridgeError(`BATCH: item ${k} at offset ${i} has a truncated header`)
        const type = p[i]
        const len = (p[i + 1] << 8) | p[i + 2]
        if (i + 3 + len > p.length) throw new BridgeError(`BATCH: item ${k} (type 0x${type.toString(16)}) needs ${len} bytes, ${p.length - i - 3} left`)
        if (!BATCHABLE.has(type)) throw new BridgeError(`BATCH: item ${k}: request type 0x${type.toString(16)} cannot be batched`)
        try {
            parts.push(execute(chip, stats, type, p.subarray(i + 3, i + 3 + len), true))
        } catch (e) {
            throw new BridgeError(`BATCH: item ${k}: ${(e as Error).message}`)
        }
        i += 3 + len
        k++
    }
    return Buffer.concat(parts)
}

/** Resolves with the INTn level once it is low or after `ms`; `cancels` lets a closing connection end the wait. */
function waitInt(chip: W5500, ms: number, cancels: Set<() => void>): Promise<Uint8Array> {
    if (chip.intAsserted() || ms === 0) return Promise.resolve(Uint8Array.of(chip.intPin()))
    return new Promise(resolve => {
        const done = () => {
            clearTimeout(t)
            chip.off("int", onInt)
            cancels.delete(done)
            resolve(Uint8Array.of(chip.intPin()))
        }
        const onInt = (asserted: boolean) => { if (asserted) done() }
        const t = setTimeout(done, ms)
        chip.on("int", onInt)
        cancels.add(done)
    })
}

function frame(type: number, payload: Uint8Array): Buffer {
    if (payload.length > 0xffff) {
        const msg = Buffer.from(`response of ${payload.length} bytes exceeds 65535`, "utf8")
        return frame(OP.ERROR, msg)
    }
    const h = Buffer.alloc(3)
    h[0] = type
    h.writeUInt16BE(payload.length, 1)
    return Buffer.concat([h, payload])
}

/** Starts the bridge for `chip` on 127.0.0.1. */
export async function startBridge(chip: W5500, opts: BridgeOptions = {}): Promise<Bridge> {
    const port = opts.port ?? 0
    const deadline = Date.now() + (opts.waitMs ?? 0)
    for (;;) {
        try {
            const bridge = await listen(chip, port)
            return notePort("bridge", bridge.port, bridge)
        } catch (e) {
            if (!(e as Error).message.includes("in use") || Date.now() > deadline) throw e
            await new Promise(r => setTimeout(r, 200 + Math.random() * 300))
        }
    }
}

function listen(chip: W5500, port: number): Promise<Bridge> {
    const stats: BridgeStats = { connections: 0, requests: 0, frames: 0, bytesIn: 0, bytesOut: 0 }
    const sockets = new Set<net.Socket>()
    const server = net.createServer(sock => {
        sockets.add(sock)
        stats.connections++
        sock.setNoDelay(true)
        const cancels = new Set<() => void>()
        sock.on("close", () => {
            sockets.delete(sock)
            for (const c of [...cancels]) c()
        })
        sock.on("error", () => {})
        let acc: Buffer = Buffer.alloc(0)
        let busy = false
        const send = (b: Buffer) => {
            stats.bytesOut += b.length
            if (!sock.destroyed) sock.write(b)
        }
        const run = async () => {
            if (busy) return
            busy = true
            try {
                while (acc.length >= 3) {
                    const len = acc.readUInt16BE(1)
                    if (acc.length < 3 + len) break
                    const type = acc[0]
                    const p = new Uint8Array(acc.subarray(3, 3 + len))
                    acc = acc.subarray(3 + len)
                    stats.requests++
                    try {
                        let r: Uint8Array
                        if (type === OP.BATCH) r = executeBatch(chip, stats, p)
                        else if (type === OP.WAIT_INT) {
                            if (p.length !== 2) throw new BridgeError(`WAIT_INT: payload of ${p.length} bytes, expected 2 (timeout ms)`)
                            r = await waitInt(chip, (p[0] << 8) | p[1], cancels)
                        } else r = execute(chip, stats, type, p, false)
                        send(frame(type | 0x80, r))
                    } catch (e) {
                        const msg = e instanceof BridgeError ? e.message : `internal error: ${(e as Error).message}`
                        send(frame(OP.ERROR, Buffer.from(msg, "utf8")))
                    }
                }
            } finally {
                busy = false
            }
        }
        sock.on("data", (d: Buffer) => {
            stats.bytesIn += d.length
            acc = acc.length === 0 ? d : Buffer.concat([acc, d])
            void run()
        })
    })
    return new Promise((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) =>
            reject(new Error(e.code === "EADDRINUSE"
                ? `w5500 bridge: port ${port} is in use (is another simulator running?)`
                : `w5500 bridge: ${e.message}`)))
        server.listen(port, "127.0.0.1", () => {
            const addr = server.address() as net.AddressInfo
            resolve({
                port: addr.port,
                stats,
                close: () => new Promise<void>(r => {
                    for (const s of sockets) s.destroy()
                    server.close(() => r())
                }),
            })
        })
    })
}
