/**
 * The W5100S (WIZnet W5100S datasheet) where it differs from the W5500: the SPI frame is
 * `OP addr_hi addr_lo data...` (OP 0xF0 write, 0x0F read; burst with auto-increment while CS is
 * low), the address space is flat (common registers at 0x0000, socket n's registers at
 * 0x0400 + 0x100 n, TX memory at 0x4000 and RX memory at 0x6000, 8 KB each), it has 4 sockets,
 * the socket interrupt bits are IR's bits 3..0 (mask IMR), the link is PHYSR bit 0, the version
 * register VERR (0x0080) reads 0x51, and the chip does not wrap buffer accesses: the host
 * computes base + (pointer & (size - 1)) and splits an access that runs past the buffer's end.
 * The socket offsets 0x00..0x2C, the commands, statuses and interrupt bits are the W5500's, so the
 * sockets (socket.ts), TCP (tcp.ts) and the stack (stack.ts) run unchanged over `W5100sBatch`,
 * which turns the W5500's (block, address) pairs they use into W5100S frames.
 * A W5500 image does not link this file.
 */
import { SpiBatch, SpiBus } from "../../hal/spi"
import { W5500 } from "./chip"

/** W5100S SPI OP-codes. */
export const W5100S_WRITE = 0xf0
export const W5100S_READ = 0x0f
/** W5100S common registers that differ from the W5500's (MR, GAR, SUBR, SHAR, SIPR agree). */
export const W5100S_IR = 0x0015
/** interrupt mask: IR's address + 1, as SIMR follows SIR on the W5500 */
export const W5100S_IMR = 0x0016
export const W5100S_PHYSR = 0x003c
export const W5100S_VERR = 0x0080
/** VERR of a W5100S. */
export const W5100S_VERSION = 0x51
/** Number of hardware sockets. */
export const W5100S_SOCKETS = 4

/**
 * A `SpiBatch` that frames for the W5100S. Addresses come as the W5500 driver code names them:
 * block 0 = common register (a W5100S address), block 4n+1 = socket n's register at offset
 * `addr`, 4n+2 / 4n+3 = socket n's TX / RX buffer at the free-running pointer `addr`.
 */
export class W5100sBatch extends SpiBatch {
    /** the chip: its `bufSize` is each socket's TX and RX buffer size (set by its init) */
    constructor(private readonly chip: W5500) {
        super()
    }

    override add(bsb: number, addr: number, n: number, src?: Buffer, off?: number): number {
        const kind = bsb & 3
        const s = bsb >> 2
        const op = src ? W5100S_WRITE : W5100S_READ
        let a = addr
        let first = n
        let base = 0
        if (kind > 1) {
            // buffer memory: physical address, split at the end of the socket's buffer
            const size = this.chip.bufSize
            base = (kind === 2 ? 0x4000 : 0x6000) + s * size
            a = base + (addr & (size - 1))
            first = Math.min(n, base + size - a)
        } else if (bsb) a = 0x0400 + (s << 8) + addr
        const r = this.frame(op, a >> 8, a & 0xff, first, src, off)
        if (first < n) this.frame(op, base >> 8, base & 0xff, n - first, src, src ? off + first : 0)
        return r
    }
}

/** A W5100S on an SPI bus: the W5500 driver with the W5100S frame, address map and 4 sockets. */
export class W5100S extends W5500 {
    constructor(bus: SpiBus, log: (msg: string) => void) {
        super(bus, log, W5100S_SOCKETS)
        this.name = "w5100s"
        this.verName = "VERR"
        this.verAt = W5100S_VERR
        this.verWant = W5100S_VERSION
        this.sirAt = W5100S_IR // IMR follows it
        this.sockMask = 0x0f
        this.phyAt = W5100S_PHYSR
        this.batch = new W5100sBatch(this)
    }
}

/** The chip factory for `WiznetOptions.chip`: a W5100S on `bus`. */
export function w5100s(bus: SpiBus, log: (msg: string) => void): W5500 {
    return new W5100S(bus, log)
}
