/**
 * The SPI transport interface of the W5500 driver, and `SpiBatch`, the list of SPI frames one
 * call carries. A W5500 frame is `addr_hi addr_lo control data...` during one CS-low period
 * (variable-length data mode); a batch holds several frames so that a transport with a round-trip
 * cost (the simulator bridge) pays it once. The batch is encoded exactly as the sub-requests of the
 * bridge's BATCH request (sim/w5500/BRIDGE.md): `[type u8][len u16 BE][payload]`, type READ (3,
 * payload `addr_hi addr_lo control n_hi n_lo`) or WRITE (4, payload = the frame as driven on MOSI).
 * The board transports (w5500-bus.ts) walk the same encoding.
 */

/** Batch item type: a read frame (`addr_hi addr_lo control n_hi n_lo`). */
export const FRAME_READ = 0x03
/** Batch item type: a write frame (the bytes driven on MOSI). */
export const FRAME_WRITE = 0x04
/** Bytes kept free at the start of `SpiBatch.buf` for a transport's own header. */
export const BATCH_HEAD = 3

/**
 * SPI frames to run in order, each in its own CS-low period. Reads return their bytes
 * concatenated, in order, from `SpiBus.run`.
 */
export class SpiBatch {
    /** the encoded items start at BATCH_HEAD; bytes before are free for the transport */
    buf = Buffer.alloc(64)
    /** end of the encoded items in `buf` */
    len = BATCH_HEAD
    /** bytes the read frames return in all */
    readLen = 0
    /** frames (CS-low periods) in the batch */
    frames = 0
    /** bytes clocked on the bus by these frames, 3-byte headers included */
    spiBytes = 0

    /** Empties the batch (a large buffer is dropped to give the memory back). */
    clear() {
        if (this.buf.length > 1024) this.buf = Buffer.alloc(64)
        this.len = BATCH_HEAD
        this.readLen = 0
        this.frames = 0
        this.spiBytes = 0
    }

    /**
     * Adds a frame at (`bsb`, `addr`): with `src`, writing `n` bytes of it from `off`; without,
     * reading `n` bytes (n >= 1). Returns where a read's bytes start in the result.
     */
    add(bsb: number, addr: number, n: number, src?: Buffer, off?: number): number {
        // control byte: BSB<<3 | RWB<<2 | OM (00: variable-length data)
        return this.frame(addr >> 8, addr & 0xff, (bsb << 3) | (src ? 4 : 0), n, src, off)
    }

    /**
     * Adds a frame whose 3 header bytes (as driven on MOSI) are `h0 h1 h2`, writing `n` bytes of
     * `src` from `off`, or reading `n` bytes without `src`; returns where a read's bytes start.
     */
    protected frame(h0: number, h1: number, h2: number, n: number, src?: Buffer, off?: number): number {
        // runs for every SPI frame (~3.5 us of core a VM step on an RP2040): the write and the read
        // each store only their own bytes
        let b = this.buf
        const p = this.len
        const end = src ? p + 6 + n : p + 8
        if (end > b.length) {
            const nb = Buffer.alloc(end * 2)
            nb.blitAt(0, b, 0, p)
            this.buf = b = nb
        }
        this.len = end
        this.frames++
        this.spiBytes += 3 + n
        b[p + 3] = h0
        b[p + 4] = h1
        b[p + 5] = h2
        const at = this.readLen
        if (src) {
            b[p] = FRAME_WRITE
            b[p + 1] = (3 + n) >> 8
            b[p + 2] = (3 + n) & 0xff
            b.blitAt(p + 6, src, off, n)
            return at
        }
        b[p] = FRAME_READ
        b[p + 1] = 0
        b[p + 2] = 5
        b[p + 6] = n >> 8
        b[p + 7] = n & 0xff
        this.readLen = at + n
        return at
    }

    /** Adds a frame writing `v` as an `n`-byte (1 or 2) big-endian number. */
    reg(bsb: number, addr: number, v: number, n = 1) {
        this.add(bsb, addr, n, this.buf, 0)
        const b = this.buf
        const e = this.len
        b[e - 1] = v & 0xff
        if (n > 1) b[e - 2] = (v >> 8) & 0xff
    }
}

/** What a W5500 needs from its bus: SPI frames, the RSTn pin and the INTn pin. */
export interface SpiBus {
    /** short name for logs: "bridge", "gpio", "spi0" */
    readonly name: string
    /**
     * Runs the frames of `batch` in order, one CS-low period each; resolves with the bytes the
     * read frames returned, concatenated (`batch.readLen` bytes). Throws when the bus fails.
     */
    run(batch: SpiBatch): Promise<Buffer>
    /** Drives RSTn: `true` holds the chip in reset, `false` releases it. False when there is no reset line. */
    setReset(asserted: boolean): Promise<boolean>
    /** INTn: 1 when asserted (the pin is low), 0 when idle, -1 when this bus has no INT line. */
    interrupt(): Promise<number>
    /**
     * INTn as a GPIO input (low: asserted), when the bus has it on a pin: the interrupt service
     * reads it directly, a property read instead of an async `interrupt()` call through this
     * interface (~96 us of core each on the emulated RP2040, `npm run profile`).
     */
    readonly intPin?: { value: number }
    /** Releases the bus (pins, socket). */
    close(): Promise<void>
}
