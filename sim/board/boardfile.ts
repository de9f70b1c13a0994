/**
 * What the emulated board takes from a board file (boards/<id>.board.json): the WIZnet chip, its
 * bus and pins (a "w5500" section with "w5500.*" pins, or a "wiz" section naming the chip with
 * "wiz.*" pins), the I2C pins, the LED pin and polarity. Bad or missing entries get an error naming the
 * file and the entry.
 */
import fs from "node:fs"
import path from "node:path"
import { ROOT } from "../devs.ts"
import type { W5500Pins } from "./spi.ts"

/** The parts of a board file the emulated board wires. */
export interface BoardWiring {
    id: string
    devName: string
    /** the WIZnet chip, how it is wired and on which pins */
    wiz: { chip: "w5500" | "w5100s"; bus: "gpio" | "spi0"; pins: W5500Pins }
    i2c?: { pinSDA: number; pinSCL: number }
    led?: { pin: number; activeHigh: boolean }
}

/** Board ids that have a board file in `boardsDir`. */
export function boardIds(boardsDir = path.join(ROOT, "boards")): string[] {
    return fs.existsSync(boardsDir) ? fs.readdirSync(boardsDir).filter(f => f.endsWith(".board.json")).map(f => f.replace(/\.board\.json$/, "")).sort() : []
}

/** Reads and checks the wiring of board `id`. */
export function readBoardWiring(id: string, boardsDir = path.join(ROOT, "boards")): BoardWiring {
    if (!/^[a-z0-9_]+$/.test(id)) throw new Error(`board id must be letters, digits and _, got ${JSON.stringify(id)}`)
    const file = path.join(boardsDir, `${id}.board.json`)
    if (!fs.existsSync(file)) throw new Error(`no board file ${path.relative(ROOT, file)}; boards: ${boardIds(boardsDir).join(", ") || "none"}`)
    let j: Record<string, unknown>
    try {
        j = JSON.parse(fs.readFileSync(file, "utf8"))
    } catch (e) {
        throw new Error(`${file}: not JSON (${(e as Error).message})`)
    }
    const gpio = (v: unknown, what: string): number => {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 29) throw new Error(`${file}: ${what} must be a GPIO number 0..29, got ${JSON.stringify(v)}`)
        return v
    }
    const pins = (j.pins ?? {}) as Record<string, unknown>
    // the W5500 boards: a "w5500" section and "w5500.*" pins; the others: a "wiz" section naming the chip, "wiz.*" pins
    const sec = j.w5500 !== undefined ? "w5500" : "wiz"
    const w = (j[sec] ?? {}) as Record<string, unknown>
    const chip = sec === "w5500" ? "w5500" : w.chip
    if (chip !== "w5500" && chip !== "w5100s")
        throw new Error(`${file}: no WIZnet chip the emulated board carries: a "w5500" section, or a "wiz" section with chip "w5500" or "w5100s" (got ${j.wiz === undefined ? "neither" : `wiz.chip ${JSON.stringify(w.chip)}`})`)
    if (w.bus !== "gpio" && w.bus !== "spi0") throw new Error(`${file}: ${sec}.bus must be "gpio" or "spi0", got ${JSON.stringify(w.bus)}`)
    const role = (r: string) => gpio(pins[`${sec}.${r}`], `pins["${sec}.${r}"]`)
    const out: BoardWiring = {
        id,
        devName: String(j.devName ?? id),
        wiz: { chip, bus: w.bus, pins: { cs: role("cs"), sck: role("sck"), miso: role("miso"), mosi: role("mosi"), int: role("int"), rst: role("rst") } },
    }
    if (j.i2c !== undefined) {
        const i = j.i2c as Record<string, unknown>
        out.i2c = { pinSDA: gpio(i.pinSDA, "i2c.pinSDA"), pinSCL: gpio(i.pinSCL, "i2c.pinSCL") }
    }
    if (j.led !== undefined) {
        const l = j.led as Record<string, unknown>
        // type 100 is the Pico's LED on GPIO25, active high
        out.led = { pin: gpio(l.pin, "led.pin"), activeHigh: l.activeHigh !== false }
    }
    return out
}
