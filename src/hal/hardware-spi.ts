/**
 * `HardwareSpiBus`: the RP2040's hardware SPI through the runtime's SPI support (the same native
 * calls `@devicescript/spi` makes), CS, RSTn and INTn on GPIO. For the W5500-EVB-Pico, whose
 * W5500 sits on SPI0's pin roles (MISO 16, SCK 18, MOSI 19; the runtime picks spi0/spi1 from the
 * pin number and its RX DMA always reads spi0). Each frame is one full-duplex transfer (split at
 * 4 KB) with CS held low; reads send zeros (the RP2040 SPI master only clocks while it sends).
 * NOT VERIFIED ON HARDWARE: the simulator has no SPI; see the README's hardware section.
 */
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { FrameCursor, SpiBatch, SpiBus } from "./spi"

type DsSpi = typeof ds & {
    spiConfigure(miso: number, mosi: number, sck: number, mode: number, hz: number): void
    spiXfer(tx: Buffer, rx: Buffer): Promise<void>
}

/** GPIO numbers of a W5500 on hardware SPI (`rst`, `int` optional: -1 = not wired). */
export interface HardwareSpiPins {
    cs: number
    sck: number
    mosi: number
    miso: number
    rst: number
    int: number
}

/** the runtime's largest single SPI transfer (jd_spi_max_block_size on the RP2040) */
const MAX_XFER = 4096
const HIGH = ds.GPIOMode.OutputHigh
const LOW = ds.GPIOMode.OutputLow

/** A W5500 on the RP2040's hardware SPI. */
export class HardwareSpiBus implements SpiBus {
    readonly name = "spi0"
    frames = 0
    bytes = 0
    private cs: ds.IOPin
    private rst: ds.IOPin
    private int: ds.IOPin

    /** Configures SPI mode 0 at `hz` (default 16 MHz) and idles CS high. */
    constructor(pins: HardwareSpiPins, hz = 16000000) {
        this.cs = ds.gpio(pins.cs)
        this.rst = pins.rst >= 0 ? ds.gpio(pins.rst) : undefined
        this.int = pins.int >= 0 ? ds.gpio(pins.int) : undefined
        this.cs.setMode(HIGH)
        if (this.int) this.int.setMode(ds.GPIOMode.InputPullUp)
        if (this.rst) this.rst.setMode(HIGH)
        ;(ds as DsSpi).spiConfigure(pins.miso, pins.mosi, pins.sck, 0, hz)
    }

    async run(batch: SpiBatch): Promise<Buffer> {
        const out = Buffer.alloc(batch.readLen)
        const b = batch.buf
        const spi = ds as DsSpi
        const f = new FrameCursor(batch)
        while (f.next()) {
            const n = f.n
            const hdr = f.hdr
            // full duplex always: the runtime does not drain the RX FIFO after a send-only transfer
            const tx = f.write ? b.slice(hdr, hdr + 3 + n) : Buffer.alloc(3 + n)
            if (!f.write) tx.blitAt(0, b, hdr, 3)
            const total = 3 + n
            this.cs.setMode(LOW)
            try {
                let done = 0
                while (done < total) {
                    const k = Math.min(total - done, MAX_XFER)
                    const rx = Buffer.alloc(k)
                    await spi.spiXfer(done === 0 && k === total ? tx : tx.slice(done, done + k), rx)
                    // data bytes of a read frame start after the 3 header bytes
                    if (!f.write) {
                        const skip = done < 3 ? 3 - done : 0
                        if (k > skip) out.blitAt(f.outOff + done + skip - 3, rx, skip, k - skip)
                    }
                    done += k
                }
            } finally {
                this.cs.setMode(HIGH)
            }
            this.frames++
            this.bytes += 3 + n
        }
        return out
    }

    async setReset(asserted: boolean): Promise<boolean> {
        if (!this.rst) return false
        this.rst.setMode(asserted ? LOW : HIGH)
        return true
    }

    async interrupt(): Promise<number> {
        if (!this.int) return -1
        return this.int.value ? 0 : 1
    }

    async close() {
        this.cs.setMode(HIGH)
    }
}
