/**
 * The W5500 on the emulated board's pins: chip select framing, the bytes the chip shifts out, and
 * two transports: bit-banged GPIO (an SPI mode-0 slave in GPIO listeners: W55RP20-EVB-Pico) and
 * the RP2040's SPI0 peripheral (W5500-EVB-Pico). Also INTn (chip to MCU, active low) and RSTn
 * (MCU to chip), and the counters the benchmark reads.
 */
import { GPIOPinState, type RP2040 } from "rp2040js"
import type { W5500 } from "../w5500/chip.ts"
import type { VirtualClock } from "./clock.ts"

/** The W5500's pins on the board (GPIO numbers). */
export interface W5500Pins {
    cs: number
    sck: number
    miso: number
    mosi: number
    int: number
    rst: number
}

/** Activity on the SPI wire (for tests and the benchmark). */
export interface SpiCounters {
    /** chip-select-low periods */
    frames: number
    bytes: number
    /** virtual ns spent with chip select low */
    csLowNanos: number
    /** virtual ns from the first to the last SCK edge of each frame, summed */
    clockingNanos: number
    /** RSTn edges: low (reset asserted) and back high, with their virtual times (ns) */
    resetLowAt: number[]
    resetHighAt: number[]
    /** bytes clocked on SPI0 with chip select high (not for the W5500) */
    stray: number
}

/** A fresh set of counters. */
export function newSpiCounters(): SpiCounters {
    return { frames: 0, bytes: 0, csLowNanos: 0, clockingNanos: 0, resetLowAt: [], resetHighAt: [], stray: 0 }
}

/**
 * Wires `chip` to `mcu` on `pins` over `bus` ("gpio": bit-banged; "spi0": the SPI0 block, whose
 * bytes complete one byte-time later on the virtual clock: completing them at once lets the TX DMA
 * overrun the 8-entry RX FIFO before the RX DMA runs).
 */
export function wireW5500(mcu: RP2040, clock: VirtualClock, chip: W5500, pins: W5500Pins, bus: "gpio" | "spi0", counters: SpiCounters): void {
    const H = GPIOPinState.High
    const L = GPIOPinState.Low
    let csLow = false
    let frame: number[] = []
    let csAt = 0
    let firstEdge = -1
    let lastEdge = -1
    // INTn idles high; the chip's "int" event follows its pending, unmasked interrupts
    mcu.gpio[pins.int].setInputValue(true)
    chip.on("int", (asserted: boolean) => mcu.gpio[pins.int].setInputValue(!asserted))
    mcu.gpio[pins.rst].addListener(st => {
        if (st !== H && st !== L) return
        const high = st === H
        if (!high && !chip.inReset) counters.resetLowAt.push(clock.nanos)
        if (high && chip.inReset) counters.resetHighAt.push(clock.nanos)
        chip.setResetPin(high)
    })
    // the byte the W5500 shifts out while it receives byte `idx` of the frame (datasheet: 01 02 03 in the header)
    const respond = (idx: number): number => {
        if (idx < 3) return idx + 1
        const ctl = frame[2]
        if (ctl & 4) return 0
        const addr = ((frame[0] << 8) | frame[1]) + idx - 3
        return chip.read(ctl >> 3, addr & 0xffff, 1)[0]
    }
    const endFrame = () => {
        counters.frames++
        counters.bytes += frame.length
        counters.csLowNanos += clock.nanos - csAt
        if (firstEdge >= 0) counters.clockingNanos += lastEdge - firstEdge
        // reads were served byte by byte; a write takes effect when chip select rises
        if (frame.length >= 3 && frame[2] & 4) chip.transfer(Uint8Array.from(frame))
    }
    mcu.gpio[pins.cs].addListener(st => {
        if (st === L && !csLow) {
            csLow = true
            frame = []
            csAt = clock.nanos
            firstEdge = lastEdge = -1
            if (bus === "gpio") {
                misoByte = respond(0)
                mcu.gpio[pins.miso].setInputValue(!!(misoByte & 0x80))
            }
        } else if (st !== L && csLow) {
            csLow = false
            endFrame()
        }
    })
    let misoByte = 0
    if (bus === "gpio") {
        let cur = 0
        let nbits = 0
        mcu.gpio[pins.sck].addListener(st => {
            if (!csLow) return
            if (firstEdge < 0) {
                firstEdge = clock.nanos
                cur = 0
                nbits = 0
            }
            lastEdge = clock.nanos
            if (st === H) {
                // mode 0: sample MOSI on the rising edge
                cur = (cur << 1) | (mcu.gpio[pins.mosi].value === H ? 1 : 0)
                if (++nbits === 8) {
                    frame.push(cur)
                    cur = 0
                    nbits = 0
                    misoByte = respond(frame.length)
                }
            } else if (st === L) mcu.gpio[pins.miso].setInputValue(!!((misoByte >> (7 - nbits)) & 1))
        })
    } else {
        const spi = mcu.spi[0]
        let pending = 0
        const byteDone = clock.createAlarm(() => {
            lastEdge = clock.nanos
            spi.completeTransmit(pending)
        })
        spi.onTransmit = v => {
            if (!csLow) {
                counters.stray++
                spi.completeTransmit(0xff)
                return
            }
            if (firstEdge < 0) firstEdge = clock.nanos
            frame.push(v & 0xff)
            pending = respond(frame.length - 1)
            byteDone.schedule(8e9 / (spi.clockFrequency || 15.625e6))
        }
    }
}
