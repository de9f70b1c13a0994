/**
 * The W5500's bus on a board: `openBoardBus()` reads the board file's wiring (wiring.ts) and
 * returns a `BoardSpiBus`, SPI mode 0 MSB first either bit-banged over GPIO ("gpio": the
 * W55RP20-EVB-Pico, whose internal wiring does not match the RP2040 SPI0 pin roles and whose PIO
 * is not exposed by the stock runtime) or on the RP2040's hardware SPI0 ("spi0": the
 * W5500-EVB-Pico, MISO 16, SCK 18, MOSI 19), with CS, RSTn and INTn on GPIO either way. A board
 * image links this file and not the simulator's bridge (bridge-spi.ts).
 * NOT VERIFIED ON HARDWARE: the simulator has no GPIO and no SPI; see docs/hardware.md.
 */
import * as ds from "@devicescript/core"
import { BATCH_HEAD, FRAME_WRITE, SpiBatch, SpiBus } from "./spi"
import { readWiring, W5500Wiring } from "./wiring"
import { sleep } from "../util/rt"

type DsSpi = typeof ds & {
    spiConfigure(miso: number, mosi: number, sck: number, mode: number, hz: number): void
    spiXfer(tx: Buffer, rx: Buffer): Promise<void>
}

// The runtime's GPIO objects have `setMode` and `value` natively; @devicescript/gpio only types them
// and adds `write` and a `subscribe` that polls every pin from a setInterval. Importing it linked
// that, the interval timer and the events code into every board image (~1.3 KB of bytecode) for
// nothing we call, so the two native members are typed here instead.
declare module "@devicescript/core" {
    interface PinBase {
        setMode(mode: GPIOMode): void
    }
    interface InputPin {
        value: DigitalValue | number
    }
}

/** The runtime's SPI transfer, looked up once (`ds.x` is a lookup by name in the runtime's namespace at every use). */
const spiXfer = (ds as DsSpi).spiXfer
/** The largest transfer the runtime's SPI takes, bytes. */
const SPI_MAX = 4096

const HIGH = ds.GPIOMode.OutputHigh
const LOW = ds.GPIOMode.OutputLow

/** Options of `openBoardBus`. */
export interface BoardBusOptions {
    /** hardware SPI clock, Hz (default 16 MHz) */
    spiHz?: number
    /** the board file's section and pin prefix: "w5500" (default), or "wiz" (W5100S-EVB-Pico) */
    section?: string
}

/** The W5500's bus as the board file wires it. Throws with what is missing (no wiring, pin not exposed). */
export async function openBoardBus(opts: BoardBusOptions = {}): Promise<SpiBus> {
    return new BoardSpiBus(readWiring(opts.section), opts.spiHz)
}

/** A W5500 on GPIO-driven CS/RSTn/INTn and either bit-banged or hardware SPI. */
export class BoardSpiBus implements SpiBus {
    readonly name: string
    private cs: ds.IOPin
    private sck: ds.IOPin
    private mosi: ds.IOPin
    private miso: ds.IOPin
    private rst: ds.IOPin
    readonly intPin: ds.IOPin
    private level = 0
    private sinceYield = 0

    /** Takes the pins (throws "pin N not exposed" when the board config lacks one) and idles the bus. */
    constructor(w: W5500Wiring, hz = 16000000) {
        this.name = w.bus
        this.cs = ds.gpio(w.cs)
        this.cs.setMode(HIGH)
        if (w.rst >= 0) (this.rst = ds.gpio(w.rst)).setMode(HIGH)
        if (w.int >= 0) (this.intPin = ds.gpio(w.int)).setMode(ds.GPIOMode.InputPullUp)
        if (w.bus === "spi0") (ds as DsSpi).spiConfigure(w.miso, w.mosi, w.sck, 0, hz)
        else {
            ;(this.sck = ds.gpio(w.sck)).setMode(LOW)
            ;(this.mosi = ds.gpio(w.mosi)).setMode(LOW)
            ;(this.miso = ds.gpio(w.miso)).setMode(ds.GPIOMode.Input)
        }
    }

    async run(batch: SpiBatch): Promise<Buffer> {
        // every step here runs for every frame (~3.5 us of core each on an RP2040): locals, one try,
        // CS's setMode bound once, and every kind of frame in line (bit-banged, hardware SPI, a
        // hardware frame longer than one transfer; methods used once would also cost bytecode)
        const out = Buffer.alloc(batch.readLen)
        const b = batch.buf
        const end = batch.len
        const csMode = this.cs.setMode
        const bang = !!this.sck
        let p = BATCH_HEAD
        let o = 0
        try {
            while (p < end) {
                const w = b[p] === FRAME_WRITE
                const hdr = p + 3
                // data bytes: a write's follow its 3-byte header, a read's count ends the item
                const n = w ? ((b[p + 1] << 8) | b[p + 2]) - 3 : (b[p + 6] << 8) | b[p + 7]
                p = hdr + (w ? 3 + n : 5)
                csMode(LOW)
                if (bang) {
                    // bit-banged SPI: the header, then the data in chunks with a yield every 64 bytes
                    // clocked, headers included (CS stays low; the W5500 does not mind a pause). The
                    // VM ends a fiber with InfiniteLoop after ~128K steps without a yield: a byte is
                    // ~150 steps here, and the caller may have spent most of its budget before (256
                    // bytes between yields ended the Home Assistant discovery)
                    this.shift(b, hdr, 3, undefined, 0)
                    this.sinceYield = this.sinceYield + 3
                    for (let d = 0; d < n; d += 64) {
                        const k = Math.min(n - d, 64)
                        if (this.sinceYield >= 64) {
                            this.sinceYield = 0
                            await sleep(0)
                        }
                        if (w) this.shift(b, hdr + 3 + d, k, undefined, 0)
                        else this.shift(undefined, 0, k, out, o + d)
                        this.sinceYield = this.sinceYield + k
                    }
                } else if (n > SPI_MAX - 3) {
                    // hardware SPI for a frame longer than one transfer: one full-duplex transfer per
                    // SPI_MAX bytes (full duplex always: the runtime does not drain the RX FIFO after
                    // a send-only transfer); reads send zeros
                    const total = 3 + n
                    for (let d = 0; d < total; d += SPI_MAX) {
                        const k = Math.min(total - d, SPI_MAX)
                        const tx = Buffer.alloc(k)
                        // the header and, for a write, its data; a read sends zeros after the header
                        if (w) tx.blitAt(0, b, hdr + d, k)
                        else if (!d) tx.blitAt(0, b, hdr, 3)
                        const rx = Buffer.alloc(k)
                        await spiXfer(tx, rx)
                        // rx byte i is frame byte d + i; the read's data start at frame byte 3
                        if (!w) {
                            const from = d ? 0 : 3
                            out.blitAt(o + d + from - 3, rx, from, k - from)
                        }
                    }
                } else {
                    // one full-duplex transfer: a write's header and data as they stand in the
                    // batch; a read's header, then zeros (alloc and blitAt, both native: the
                    // library's Buffer slice is TypeScript)
                    const tx = Buffer.alloc(3 + n)
                    tx.blitAt(0, b, hdr, w ? 3 + n : 3)
                    const rx = Buffer.alloc(3 + n)
                    await spiXfer(tx, rx)
                    if (!w) out.blitAt(o, rx, 3, n)
                }
                csMode(HIGH)
                if (!w) o += n
            }
        } catch (e) {
            csMode(HIGH)
            throw e
        }
        return out
    }

    /**
     * Clocks `n` bytes: sends `src` from `off`, or, without `src`, sends zeros and stores what MISO
     * returns in `dst` from `dOff` (a frame's header and a write's data go out, a read's data come
     * in; what MISO says during a write is not needed). MOSI is only written when the bit changes;
     * the W5500 samples MOSI on the rising edge and shifts MISO on the falling one, so MISO is read
     * while SCK is high. Each loop keeps to its own direction: fewer VM steps a bit (~3.5 us each).
     */
    private shift(src: Buffer, off: number, n: number, dst: Buffer, dOff: number) {
        // the pins' setMode bound once per call: looked up per bit it cost ~40% of the bit's time
        const sckMode = this.sck.setMode
        const mosiMode = this.mosi.setMode
        let level = this.level
        if (!src) {
            if (level) mosiMode(LOW)
            level = 0
            const miso = this.miso
            for (let i = 0; i < n; i++) {
                let r = 0
                for (let m = 0x80; m; m >>= 1) {
                    sckMode(HIGH)
                    if (miso.value) r |= m
                    sckMode(LOW)
                }
                dst[dOff + i] = r
            }
        } else
            for (let i = 0; i < n; i++) {
                const v = src[off + i]
                for (let m = 0x80; m; m >>= 1) {
                    const bit = v & m ? 1 : 0
                    if (bit !== level) {
                        mosiMode(bit ? HIGH : LOW)
                        level = bit
                    }
                    sckMode(HIGH)
                    sckMode(LOW)
                }
            }
        this.level = level
    }

    async setReset(asserted: boolean): Promise<boolean> {
        if (this.rst) this.rst.setMode(asserted ? LOW : HIGH)
        return !!this.rst
    }

    async interrupt(): Promise<number> {
        const p = this.intPin
        return p ? (p.value ? 0 : 1) : -1
    }

    async close() {
        this.cs.setMode(HIGH)
    }
}
