/**
 * The W5500 wiring of the board, read from the board configuration (boards/*.board.json, which
 * `devs bundle --board <id>` packs into the firmware image). The pins are entries of the board's
 * "pins" section with dotted labels ("w5500.cs", "w5500.sck", "w5500.miso", "w5500.mosi",
 * "w5500.rst", "w5500.int"): the runtime creates GPIO objects for them while the compiler keeps
 * them out of the board's `pins` typings, so they are not offered as user pins. The transport is
 * the string "w5500.bus": "gpio" (bit-banged) or "spi0" (hardware SPI).
 * The simulator has no board configuration: there the bridge is used instead (see w5500-bus.ts).
 */
import * as ds from "@devicescript/core"

/**
 * The runtime's map of exposed pins, by label.
 * @devsNative GPIO
 */
declare var GPIO: Record<string, ds.IOPin>

type DsConfig = typeof ds & { _dcfgString(id: string): string }

/** How the W5500 is wired: transport and GPIO numbers (`rst`, `int`: -1 when not wired). */
export interface W5500Wiring {
    bus: "gpio" | "spi0"
    cs: number
    sck: number
    miso: number
    mosi: number
    rst: number
    int: number
}

/** The labels of the W5500 pins in a board's "pins" section. */
export const WIRING_LABELS = ["w5500.cs", "w5500.sck", "w5500.miso", "w5500.mosi", "w5500.rst", "w5500.int"]

/**
 * Builds the wiring from the board's "w5500.bus" string and a pin lookup (label -> GPIO number,
 * undefined when absent); throws naming the board and what is missing or wrong.
 */
export function parseWiring(board: string, bus: string, pin: (label: string) => number): W5500Wiring {
    if (bus === undefined || bus === null || bus === "")
        throw new Error(`w5500: board "${board}" has no "w5500" section (bus "gpio" or "spi0"): use a W5500 board file such as boards/w55rp20_evb_pico.board.json`)
    if (bus !== "gpio" && bus !== "spi0")
        throw new Error(`w5500: board "${board}": w5500.bus is "${bus}", expected "gpio" (bit-banged) or "spi0" (hardware SPI)`)
    const nums: number[] = []
    const seen: number[] = []
    for (let i = 0; i < WIRING_LABELS.length; i++) {
        const label = WIRING_LABELS[i]
        const g = pin(label)
        const optional = i >= 4
        if (g === undefined || g === null) {
            if (!optional) throw new Error(`w5500: board "${board}" has no pin "${label}" in its "pins" section`)
            nums.push(-1)
            continue
        }
        if (!(g >= 0 && g <= 29) || g !== Math.floor(g))
            throw new Error(`w5500: board "${board}": pin "${label}" is ${g}, expected a GPIO number 0..29`)
        if (seen.indexOf(g) >= 0) throw new Error(`w5500: board "${board}": GPIO${g} is used twice in the W5500 wiring`)
        seen.push(g)
        nums.push(g)
    }
    const w: W5500Wiring = { bus: bus === "spi0" ? "spi0" : "gpio", cs: nums[0], sck: nums[1], miso: nums[2], mosi: nums[3], rst: nums[4], int: nums[5] }
    // hardware SPI0 pin roles on the RP2040: RX (MISO) 0/4/16/20, SCK 2/6/18/22, TX (MOSI) 3/7/19/23
    if (w.bus === "spi0" && (w.miso % 4 !== 0 || w.sck % 4 !== 2 || w.mosi % 4 !== 3 || ((w.miso | w.sck | w.mosi) & 8) !== 0))
        throw new Error(`w5500: board "${board}": MISO ${w.miso}, SCK ${w.sck}, MOSI ${w.mosi} are not SPI0 pin roles: use bus "gpio"`)
    return w
}

/** Reads the W5500 wiring of the board this firmware runs on; throws when the board has none. */
export function readWiring(): W5500Wiring {
    const cfg = ds as DsConfig
    const board = cfg._dcfgString("devName") || cfg._dcfgString("archId") || "unknown"
    return parseWiring(board, cfg._dcfgString("w5500.bus"), label => {
        const p = GPIO[label]
        return p ? p.gpio : undefined
    })
}
