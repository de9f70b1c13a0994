/**
 * The WIZnet chip on the emulated board's pins: chip select framing, the bytes the chip shifts
 * out, and two transports: bit-banged GPIO (an SPI mode-0 slave in GPIO listeners: W55RP20-EVB-Pico)
 * and the RP2040's SPI0 peripheral (W5500-EVB-Pico, W5100S-EVB-Pico). Also INTn (chip to MCU,
 * active low) and RSTn (MCU to chip), and the counters the benchmark reads. The W5500 model is put
 * on the wire by `w5500OnWire`; the W5100S model (sim/w5100s/chip.ts) is an `SpiChip` itself.
 */
import { GPIOPinState, type RP2040 } from "rp2040js"
import type { W5500 } from "../w5500/chip.ts"
import type { VirtualClock } from "./clock.ts"

/** The WIZnet chip's pins on the board (GPIO numbers). */
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
    /** bytes clocked on SPI0 with chip select high (not for the chip) */
    stray: number
    /** times the chip pulled INTn low (an unmasked interrupt became pending) */
    intLow: number
}

/** A fresh set of counters. */
export function newSpiCounters(): SpiCounters {
    return { frames: 0, bytes: 0, csLowNanos: 0, clockingNanos: 0, resetLowAt: [], resetHighAt: [], stray: 0, intLow: 0 }
}

/**
 * A chip on the SPI wire, byte by byte, as the board clocks it: chip select falls (`select`), then
 * for each byte the MISO byte is decided before the MOSI byte is in (`misoNext`, then `take`), then
 * chip select rises (`deselect`). Plus RSTn and the "int" event (INTn follows it, active low).
 */
export interface SpiChip {
    select(): void
    misoNext(): number
    take(mosi: number): void
    deselect(): void
    setResetPin(high: boolean): void
    readonly inReset: boolean
    on(ev: "int", fn: (asserted: boolean) => void): unknown
}

/**
 * The W5500 model as an `SpiChip`: the byte it shifts out while it receives byte `idx` of the
 * frame (01 02 03 in the header), reads served byte by byte. A variable-length (VDM) frame lasts
 * until chip select rises, and a write is applied then; a fixed-length frame (OM 01, 10, 11: 1, 2
 * or 4 data bytes, datasheet 2.2.2) ends after its data, a write is applied at once, and the next
 * frame's header may follow in the same chip-select period.
 */
export function w5500OnWire(chip: W5500): SpiChip {
    let frame: number[] = []
    return {
        select: () => {
            frame = []
        },
        misoNext: () => {
            const idx = frame.length
            if (idx < 3) return idx + 1
            const ctl = frame[2]
            if (ctl & 4) return 0
            const addr = ((frame[0] << 8) | frame[1]) + idx - 3
            return chip.read(ctl >> 3, addr & 0xffff, 1)[0]
        },
        take: v => {
            frame.push(v)
            if (frame.length < 4) return
            const om = frame[2] & 3
            if (om && frame.length === 3 + (om === 3 ? 4 : om)) {
                if (frame[2] & 4) chip.transfer(Uint8Array.from(frame))
                frame = []
            }
        },
        deselect: () => {
            // a VDM write; a fixed-length one cut short is applied as far as it was clocked
            if (frame.length >= 3 && frame[2] & 4) chip.transfer(Uint8Array.from(frame))
        },
        setResetPin: high => chip.setResetPin(high),
        get inReset() {
            return chip.inReset
        },
        on: (ev, fn) => chip.on(ev, fn),
    }
}

/**
 * Wires `chip` to `mcu` on `pins` over `bus` ("gpio": bit-banged; "spi0": the SPI0 block, whose
 * bytes complete one byte-time later on the virtual clock: completing them at once lets the TX DMA
 * overrun the 8-entry RX FIFO before the RX DMA runs).
 */
export function wireSpiChip(mcu: RP2040, clock: VirtualClock, chip: SpiChip, pins: W5500Pins, bus: "gpio" | "spi0", counters: SpiCounters): void {
    const H = GPIOPinState.High
    const L = GPIOPinState.Low
    let csLow = false
    let bytes = 0
    let csAt = 0
    let firstEdge = -1
    let lastEdge = -1
    // INTn idles high; the chip's "int" event follows its pending, unmasked interrupts
    mcu.gpio[pins.int].setInputValue(true)
    let intLow = false
    chip.on("int", (asserted: boolean) => {
        if (asserted && !intLow) counters.intLow++
        intLow = asserted
        mcu.gpio[pins.int].setInputValue(!asserted)
    })
    mcu.gpio[pins.rst].addListener(st => {
        if (st !== H && st !== L) return
        const high = st === H
        if (!high && !chip.inReset) counters.resetLowAt.push(clock.nanos)
        if (high && chip.inReset) counters.resetHighAt.push(clock.nanos)
        chip.setResetPin(high)
    })
    let misoByte = 0
    mcu.gpio[pins.cs].addListener(st => {
        if (st === L && !csLow) {
            csLow = true
            bytes = 0
            csAt = clock.nanos
            firstEdge = lastEdge = -1
            chip.select()
            if (bus === "gpio") {
                misoByte = chip.misoNext()
                mcu.gpio[pins.miso].setInputValue(!!(misoByte & 0x80))
            }
        } else if (st !== L && csLow) {
            csLow = false
            counters.frames++
            counters.bytes += bytes
            counters.csLowNanos += clock.nanos - csAt
            if (firstEdge >= 0) counters.clockingNanos += lastEdge - firstEdge
            chip.deselect()
        }
    })
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
                    chip.take(cur)
                    bytes++
                    cur = 0
                    nbits = 0
                    misoByte = chip.misoNext()
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
            pending = chip.misoNext()
            chip.take(v & 0xff)
            bytes++
            byteDone.schedule(8e9 / (spi.clockFrequency || 15.625e6))
        }
    }
}
