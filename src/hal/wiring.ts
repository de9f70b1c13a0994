/**
 * The W5500 wiring of the board, read from the board configuration (boards/*.board.json, which
 * `devs bundle --board <id>` packs into the firmware image). The pins are entries of the board's
 * "pins" section with dotted labels ("w5500.cs", "w5500.sck", "w5500.miso", "w5500.mosi",
 * "w5500.rst", "w5500.int"): the runtime creates GPIO objects for them while the compiler keeps
 * them out of the board's `pins` typings, so they are not offered as user pins. The transport is
 * the string "w5500.bus": "gpio" (bit-banged) or "spi0" (hardware SPI).
 * The simulator has no board configuration: there the bridge is used instead (see bridge-spi.ts).
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

/** The pin roles, in `W5500Wiring` order: a board labels them "<section>.<role>" ("w5500.cs", "wiz.cs"; the runtime's keys such as "pins.wiz.miso" are at most 15 characters). */
export const WIRING_ROLES = ["cs", "sck", "miso", "mosi", "rst", "int"]

/**
 * Builds the wiring from the board's "w5500.bus" string and a pin lookup (label -> GPIO number,
 * undefined when absent); throws naming the board and what is missing or wrong.
 */
export function parseWiring(board: string, bus: string, pin: (label: string) => number, chip = "w5500"): W5500Wiring {
    const where = `${chip}: board "${board}"`
    if (bus !== "gpio" && bus !== "spi0")
        throw new Error(
            bus
                ? `${where}: ${chip}.bus is "${bus}", expected "gpio" (bit-banged) or "spi0" (hardware SPI)`
                : `${where} has no "${chip}" section (bus "gpio" or "spi0"): use a board file of a board with that chip (boards/*.board.json)`
        )
    const n: number[] = []
    for (const role of WIRING_ROLES) {
        const label = chip + "." + role
        let g = pin(label)
        if (g === undefined || g === null) {
            // rst and int are optional
            if (n.length < 4) throw new Error(`${where} has no pin "${label}" in its "pins" section`)
            g = -1
        } else if (!(g >= 0 && g <= 29) || g !== Math.floor(g)) throw new Error(`${where}: pin "${label}" is ${g}, expected a GPIO number 0..29`)
        else if (n.indexOf(g) >= 0) throw new Error(`${where}: GPIO${g} is used twice in the ${chip} wiring`)
        n.push(g)
    }
    // hardware SPI0 pin roles on the RP2040: RX (MISO) 0/4/16/20, SCK 2/6/18/22, TX (MOSI) 3/7/19/23
    if (bus === "spi0" && (n[2] % 4 !== 0 || n[1] % 4 !== 2 || n[3] % 4 !== 3 || ((n[1] | n[2] | n[3]) & 8) !== 0))
        throw new Error(`${where}: MISO ${n[2]}, SCK ${n[1]}, MOSI ${n[3]} are not SPI0 pin roles: use bus "gpio"`)
    return { bus: bus as "gpio" | "spi0", cs: n[0], sck: n[1], miso: n[2], mosi: n[3], rst: n[4], int: n[5] }
}

/** Reads the wiring in section `chip` ("w5500", or "wiz" with its own "wiz.chip") of the board this firmware runs on; throws when the board has none. */
export function readWiring(chip = "w5500"): W5500Wiring {
    const cfg = ds as DsConfig
    const board = cfg._dcfgString("devName") || cfg._dcfgString("archId") || "unknown"
    return parseWiring(board, cfg._dcfgString(chip + ".bus"), label => {
        const p = GPIO[label]
        return p ? p.gpio : undefined
    }, chip)
}
