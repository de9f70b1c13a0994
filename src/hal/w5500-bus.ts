/**
 * Opens the SPI bus of the W5500 wherever the firmware runs: in the simulator the bridge to the
 * W5500 emulator (sim/w5500/), on a board the transport its board file names (bit-banged GPIO on
 * the W55RP20-EVB-Pico, hardware SPI0 on the W5500-EVB-Pico).
 */
import * as ds from "@devicescript/core"
import { BridgeOptions, BridgeSpiBus } from "./bridge-spi"
import { GpioSpiBus } from "./gpio-spi"
import { HardwareSpiBus } from "./hardware-spi"
import { SpiBus } from "./spi"
import { readWiring } from "./wiring"

/** Options of `openW5500Bus`. */
export interface W5500BusOptions {
    /** simulator only: where the bridge listens (default 127.0.0.1:17767) */
    bridge?: BridgeOptions
    /** hardware SPI clock, Hz (default 16 MHz) */
    spiHz?: number
}

/**
 * The W5500's bus: the emulator bridge in the simulator (it takes the runtime's only socket, so
 * load the simulator settings first), otherwise the board's wiring. Throws with what is missing.
 */
export async function openW5500Bus(opts: W5500BusOptions = {}): Promise<SpiBus> {
    if (ds.isSimulator()) return await BridgeSpiBus.connect(opts.bridge || {})
    const w = readWiring()
    if (w.bus === "spi0") return new HardwareSpiBus(w, opts.spiHz)
    return new GpioSpiBus(w)
}
