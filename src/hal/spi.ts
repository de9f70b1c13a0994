/**
 * The SPI transport interface of the W5500 driver, and `SpiBatch`, the list of SPI frames one
 * call carries. A W5500 frame is `addr_hi addr_lo control data...` during one CS-low period
 * (variable-length data mode); a batch holds several frames so that a transport with a round-trip
 * cost (the simulator bridge) pays it once. The batch is encoded exactly as the sub-requests of the
 * bridge's BATCH request (sim/w5500/BRIDGE.md): `[type u8][len u16 BE][payload]`, type READ (3,
 * payload `addr_hi addr_lo control n_hi n_lo`) or WRITE (4, payload = the frame as driven on MOSI).
 * The GPIO and hardware SPI transports walk the same encoding.
 */

/** Batch item type: a read frame (`addr_hi addr_lo control n_hi n_lo`). */
export const FRAME_READ = 0x03
/** Batch item type: a write frame (the bytes driven on MOSI). */
export const FRAME_WRITE = 0x04
/** Bytes kept free at the start of `SpiBatch.buf` for a transport's own header. */
export const BATCH_HEAD = 3

const SHRINK_ABOVE = 1024

/** Control byte of a W5500 frame: BSB<<3 | RWB<<2 | OM (OM 00: variable-length data). */
export function controlByte(bsb: number, write: boolean) {
    return ((bsb & 0x1f) << 3) | (write ? 0x04 : 0)
}

/**
 * SPI frames to run in order, each in its own CS-low period. Reads return their bytes
 * concatenated, in order, from `SpiBus.run`.
 */
export class SpiBatch {
    /** the encoded items start at BATCH_HEAD; bytes before are free for the transport */
    buf: Buffer
    /** end of the encoded items in `buf` */
    len = BATCH_HEAD
    /** bytes the read frames return in all */
    readLen = 0
    /** frames (CS-low periods) in the batch */
    frames = 0
    /** bytes clocked on the bus by these frames, 3-byte headers included */
    spiBytes = 0

    constructor() {
        this.buf = Buffer.alloc(64)
    }

    /** Empties the batch (a large buffer is dropped to give the memory back). */
    clear() {
        if (this.buf.length > SHRINK_ABOVE) this.buf = Buffer.alloc(64)
        this.len = BATCH_HEAD
        this.readLen = 0
        this.frames = 0
        this.spiBytes = 0
    }

    private room(n: number) {
        const need = this.len + n
        if (need <= this.buf.length) return
        let size = this.buf.length * 2
        while (size < need) size *= 2
        const nb = Buffer.alloc(size)
        nb.blitAt(0, this.buf, 0, this.len)
        this.buf = nb
    }

    private head(type: number, payload: number, bsb: number, addr: number, write: boolean) {
        if (payload > 0xffff) throw new Error(`spi: frame of ${payload} bytes, at most 65535`)
        this.room(3 + (type === FRAME_READ ? 5 : payload))
        const b = this.buf
        let p = this.len
        b[p++] = type
        b[p++] = payload >> 8
        b[p++] = payload & 0xff
        b[p++] = (addr >> 8) & 0xff
        b[p++] = addr & 0xff
        b[p++] = controlByte(bsb, write)
        this.len = p
        this.frames++
    }

    /** Adds a frame reading `n` bytes at (`bsb`, `addr`); returns where they start in the result. */
    read(bsb: number, addr: number, n: number): number {
        if (n < 1) throw new Error(`spi: read of ${n} bytes`)
        const at = this.readLen
        this.head(FRAME_READ, 5, bsb, addr, false)
        this.buf[this.len++] = n >> 8
        this.buf[this.len++] = n & 0xff
        this.readLen += n
        this.spiBytes += 3 + n
        return at
    }

    /** Adds a frame writing `n` bytes of `src` from `off` at (`bsb`, `addr`). */
    write(bsb: number, addr: number, src: Buffer, off: number, n: number) {
        if (n < 1) throw new Error(`spi: write of ${n} bytes`)
        this.head(FRAME_WRITE, 3 + n, bsb, addr, true)
        this.buf.blitAt(this.len, src, off, n)
        this.len += n
        this.spiBytes += 3 + n
    }

    /** Adds a frame writing one byte. */
    write8(bsb: number, addr: number, v: number) {
        this.head(FRAME_WRITE, 4, bsb, addr, true)
        this.buf[this.len++] = v & 0xff
        this.spiBytes += 4
    }

    /** Adds a frame writing a big-endian 16-bit value. */
    write16(bsb: number, addr: number, v: number) {
        this.head(FRAME_WRITE, 5, bsb, addr, true)
        this.buf[this.len++] = (v >> 8) & 0xff
        this.buf[this.len++] = v & 0xff
        this.spiBytes += 5
    }

    /** Adds a frame writing two bytes (e.g. Sn_MR then Sn_CR). */
    write2(bsb: number, addr: number, a: number, b: number) {
        this.head(FRAME_WRITE, 5, bsb, addr, true)
        this.buf[this.len++] = a & 0xff
        this.buf[this.len++] = b & 0xff
        this.spiBytes += 5
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
    /** SPI frames (CS-low periods) run so far */
    frames: number
    /** bytes clocked so far, headers included */
    bytes: number
    /** Releases the bus (pins, socket). */
    close(): Promise<void>
}

/**
 * Walks the frames of a batch for transports that clock them one by one: `next()` moves to the
 * next frame (false at the end); then `write`, `hdr` (offset of the 3 header bytes in
 * `batch.buf`, write data follows them), `n` (data bytes) and `outOff` (where a read frame's bytes
 * go in the result) describe it.
 */
export class FrameCursor {
    write = false
    hdr = 0
    n = 0
    outOff = 0
    private p = BATCH_HEAD
    private o = 0

    constructor(private readonly batch: SpiBatch) {}

    /** Moves to the next frame; false when there is none. Throws on a malformed batch. */
    next(): boolean {
        const b = this.batch.buf
        const p = this.p
        if (p >= this.batch.len) return false
        const type = b[p]
        const len = (b[p + 1] << 8) | b[p + 2]
        this.hdr = p + 3
        this.p = p + 3 + len
        if (type === FRAME_READ) {
            this.write = false
            this.n = (b[p + 6] << 8) | b[p + 7]
            this.outOff = this.o
            this.o += this.n
        } else if (type === FRAME_WRITE) {
            this.write = true
            this.n = len - 3
            this.outOff = 0
        } else throw new Error(`spi: bad batch item type ${type} at ${p}`)
        return true
    }
}
