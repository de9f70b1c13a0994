/**
 * `GpioSpiBus`: SPI mode 0, MSB first, bit-banged over `@devicescript/gpio`. On the stock RP2040
 * runtime this is the only way to reach the W55RP20's internal W5500 (its wiring does not match
 * the RP2040 SPI0 pin roles and no PIO is exposed). Every pin change is one native call, so the
 * loops below do as little as possible: MOSI is only written when the bit changes, reads keep MOSI
 * low, SCK is the only pin toggled twice per bit.
 * NOT VERIFIED ON HARDWARE: the simulator has no GPIO; see the README's hardware section.
 */
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { FrameCursor, SpiBatch, SpiBus } from "./spi"

/** GPIO numbers of a W5500 on bit-banged SPI (`rst`, `int` optional: -1 = not wired). */
export interface GpioSpiPins {
    cs: number
    sck: number
    mosi: number
    miso: number
    rst: number
    int: number
}

const HIGH = ds.GPIOMode.OutputHigh
const LOW = ds.GPIOMode.OutputLow
/** bytes clocked between two yields (the VM kills a fiber after ~128K steps without one) */
const YIELD_EVERY = 256

/** A W5500 on bit-banged GPIO SPI. */
export class GpioSpiBus implements SpiBus {
    readonly name = "gpio"
    frames = 0
    bytes = 0
    private cs: ds.IOPin
    private sck: ds.IOPin
    private mosi: ds.IOPin
    private miso: ds.IOPin
    private rst: ds.IOPin
    private int: ds.IOPin
    private mosiLevel = 0
    private sinceYield = 0

    /** Takes the pins (throws "pin N not exposed" when the board config lacks one) and idles the bus. */
    constructor(pins: GpioSpiPins) {
        this.cs = ds.gpio(pins.cs)
        this.sck = ds.gpio(pins.sck)
        this.mosi = ds.gpio(pins.mosi)
        this.miso = ds.gpio(pins.miso)
        this.rst = pins.rst >= 0 ? ds.gpio(pins.rst) : undefined
        this.int = pins.int >= 0 ? ds.gpio(pins.int) : undefined
        this.cs.setMode(HIGH)
        this.sck.setMode(LOW)
        this.mosi.setMode(LOW)
        this.miso.setMode(ds.GPIOMode.Input)
        if (this.int) this.int.setMode(ds.GPIOMode.InputPullUp)
        if (this.rst) this.rst.setMode(HIGH)
    }

    async run(batch: SpiBatch): Promise<Buffer> {
        const out = Buffer.alloc(batch.readLen)
        const b = batch.buf
        const f = new FrameCursor(batch)
        while (f.next()) {
            const n = f.n
            this.cs.setMode(LOW)
            try {
                this.shiftOut(b, f.hdr, 3)
                if (!f.write) {
                    this.mosi.setMode(LOW)
                    this.mosiLevel = 0
                }
                this.sinceYield += 3
                let done = 0
                while (done < n) {
                    const k = Math.min(n - done, YIELD_EVERY)
                    if (f.write) this.shiftOut(b, f.hdr + 3 + done, k)
                    else this.shiftIn(out, f.outOff + done, k)
                    done += k
                    this.sinceYield += k
                    // long frames: yield now and then (CS stays low; the W5500 does not mind a pause)
                    if (this.sinceYield >= YIELD_EVERY && done < n) {
                        this.sinceYield = 0
                        await ds.sleep(0)
                    }
                }
            } finally {
                this.cs.setMode(HIGH)
            }
            // many small frames: yield between them too
            if (this.sinceYield >= YIELD_EVERY) {
                this.sinceYield = 0
                await ds.sleep(0)
            }
            this.frames++
            this.bytes += 3 + n
        }
        return out
    }

    // MOSI changes only when the next bit differs; data is sampled by the W5500 on the rising edge
    private shiftOut(src: Buffer, off: number, n: number) {
        const sck = this.sck
        const mosi = this.mosi
        let level = this.mosiLevel
        const end = off + n
        for (let i = off; i < end; i++) {
            const v = src[i]
            for (let m = 0x80; m !== 0; m >>= 1) {
                const bit = v & m ? 1 : 0
                if (bit !== level) {
                    mosi.setMode(bit ? HIGH : LOW)
                    level = bit
                }
                sck.setMode(HIGH)
                sck.setMode(LOW)
            }
        }
        this.mosiLevel = level
    }

    // MOSI stays low (dummy 0x00 bytes); MISO is read while SCK is high (the W5500 shifts on the falling edge)
    private shiftIn(dst: Buffer, off: number, n: number) {
        const sck = this.sck
        const miso = this.miso
        const end = off + n
        for (let i = off; i < end; i++) {
            let v = 0
            for (let k = 0; k < 8; k++) {
                sck.setMode(HIGH)
                v = (v << 1) | (miso.value ? 1 : 0)
                sck.setMode(LOW)
            }
            dst[i] = v
        }
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
        this.miso.setMode(ds.GPIOMode.Off)
    }
}
