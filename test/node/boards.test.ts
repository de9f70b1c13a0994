/**
 * The board files (boards/*.board.json): what they declare, that the DeviceScript CLI compiles
 * them into a device configuration the way `devs bundle --board` does (pin checks, key lengths),
 * and that the generated `pins` typings offer the user pins but not the W5500 ones.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { DEVS_CLI, ROOT } from "../../sim/devs.ts"
import { chipOfBoard, imageFor } from "../../sim/images.ts"

interface Expect {
    id: string
    /** the board file's WIZnet section and pin prefix (default "w5500"), and the chip it names */
    section?: string
    chip?: string
    bus: "gpio" | "spi0"
    wiring: Record<string, number>
    led: number
    ledType?: number
    /** GPIOs that must not be user pins */
    hidden: number[]
    /** user pins that must be there */
    user: string[]
    /** how many user pins in all */
    userCount: number
}

const BOARDS: Expect[] = [
    {
        id: "w55rp20_evb_pico",
        bus: "gpio",
        wiring: { cs: 20, sck: 21, miso: 22, mosi: 23, int: 24, rst: 25 },
        led: 19,
        hidden: [4, 5, 17, 19, 20, 21, 22, 23, 24, 25],
        user: ["GP0", "GP15", "GP16", "GP18", "GP26", "GP28"],
        // GP0..GP16, GP18, GP26..GP28 but GP4/GP5 (the board page: 22 GPIOs on the header, GPIO19 being the LED; GP4/5 are I2C0)
        userCount: 19,
    },
    {
        id: "w5500_evb_pico",
        bus: "spi0",
        wiring: { miso: 16, cs: 17, sck: 18, mosi: 19, rst: 20, int: 21 },
        led: 25,
        hidden: [4, 5, 16, 17, 18, 19, 20, 21, 23, 24, 25],
        user: ["GP0", "GP15", "GP22", "GP26", "GP28"],
        // GP0..GP15, GP22, GP26..GP28 but GP4/GP5 (I2C0)
        userCount: 18,
    },
    {
        // WIZnet's W5100S-EVB-Pico pin table: the W5500-EVB-Pico's wiring with a W5100S
        id: "w5100s_evb_pico",
        section: "wiz",
        chip: "w5100s",
        bus: "spi0",
        wiring: { miso: 16, cs: 17, sck: 18, mosi: 19, rst: 20, int: 21 },
        led: 25,
        hidden: [4, 5, 16, 17, 18, 19, 20, 21, 23, 24, 25],
        user: ["GP0", "GP15", "GP22", "GP26", "GP28"],
        // GP0..GP15, GP22, GP26..GP28 but GP4/GP5 (I2C0), as on the W5500-EVB-Pico
        userCount: 18,
    },
]

function cli(args: string[]) {
    const r = spawnSync(process.execPath, [DEVS_CLI, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
    return { code: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") }
}

/** Compiles a board file with `devs dcfg` (as `devs bundle` does) and decodes the result into key -> value. */
function compileBoard(id: string): Record<string, string | number> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcfg-"))
    try {
        // the RP2040 facts the compiler checks pins against
        fs.writeFileSync(path.join(dir, "arch.json"), JSON.stringify({ id: "rp2040", name: "RP2040", dcfgOffset: "0x100dc000", pins: { io: "0-29", analogIn: "26-29" } }))
        fs.copyFileSync(path.join(ROOT, "boards", `${id}.board.json`), path.join(dir, `${id}.board.json`))
        const bin = path.join(dir, "cfg.bin")
        const c = cli(["dcfg", "-o", bin, path.join(dir, `${id}.board.json`)])
        assert.equal(c.code, 0, `devs dcfg ${id}: ${c.out}`)
        const d = cli(["dcfg", bin])
        assert.equal(d.code, 0, `devs dcfg decode: ${d.out}`)
        const out: Record<string, string | number> = {}
        for (const m of d.out.matchAll(/^\s+'?([^':]+)'?: (?:'([^']*)'|(-?\d+)),?$/gm)) out[m[1]] = m[2] !== undefined ? m[2] : Number(m[3])
        return out
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
}

for (const b of BOARDS) {
    const sec = b.section ?? "w5500"
    test(`board ${b.id}: ${b.chip ?? "w5500"} wiring, LED and user pins`, () => {
        const json = JSON.parse(fs.readFileSync(path.join(ROOT, "boards", `${b.id}.board.json`), "utf8"))
        assert.equal(json.archId, "rp2040")
        assert.equal(json[sec].bus, b.bus)
        if (b.chip) assert.equal(json[sec].chip, b.chip)
        for (const [role, gpio] of Object.entries(b.wiring)) assert.equal(json.pins[`${sec}.${role}`], gpio, `${sec}.${role}`)
        assert.equal(json.led.pin, b.led)
        assert.equal(json.led.type, b.ledType)
        const userGpios = Object.entries(json.pins).filter(([k]) => !k.startsWith("#") && !k.startsWith(`${sec}.`)).map(([, v]) => v)
        for (const g of b.hidden) assert.ok(!userGpios.includes(g), `GPIO${g} must not be a user pin`)
        for (const u of b.user) assert.ok(u in json.pins, `user pin ${u}`)
    })

    test(`board ${b.id}: compiles to a device configuration the runtime can read`, () => {
        const cfg = compileBoard(b.id)
        assert.equal(cfg[`${sec}.bus`], b.bus, `${sec}.bus is a string (the runtime's _dcfgString reads strings only)`)
        if (b.chip) assert.equal(cfg[`${sec}.chip`], b.chip)
        for (const [role, gpio] of Object.entries(b.wiring)) assert.equal(cfg[`pins.${sec}.${role}`], gpio, `pins.${sec}.${role}`)
        assert.equal(cfg["led.pin"], b.led)
        // I2C0 on the Pico header's default pins (the sensor's bus; the runtime starts I2C from these keys)
        assert.equal(cfg["i2c.pinSDA"], 4, "i2c.pinSDA")
        assert.equal(cfg["i2c.pinSCL"], 5, "i2c.pinSCL")
        if (b.ledType === undefined) assert.equal(cfg["led.type"], undefined, "no Pico LED probing (it drives GPIO25)")
        // a lone LED pin is mono only when said so (the runtime logs mono=0 otherwise, and setStatusLight misses the pin)
        assert.equal(cfg["led.isMono"], 1, "led.isMono")
        // keys the runtime's GPIO set-up marks as "used" (a ".pin..." key) lose their GPIO object: only the LED may
        for (const k of Object.keys(cfg)) {
            assert.ok(k.length <= 15, `dcfg key ${k} longer than 15`)
            if (/\.pin/.test(k)) assert.ok(["led.pin", "i2c.pinSDA", "i2c.pinSCL"].includes(k), `${k} would hide its GPIO from the firmware`)
        }
    })
}

test("board typings offer the user pins, not the W5500 pins", () => {
    const c = cli(["build", "test/vm/boards-typings.ts"])
    assert.equal(c.code, 0, `devs build: ${c.out}`)
    const dts = fs.readFileSync(path.join(ROOT, "node_modules/@devicescript/core/src/devicescript-boards.d.ts"), "utf8")
    for (const b of BOARDS) {
        const start = dts.indexOf(`declare module "@dsboard/${b.id}"`)
        assert.ok(start >= 0, `typings of ${b.id}`)
        const block = dts.slice(start, dts.indexOf("\n}", start))
        const pins = [...block.matchAll(/^\s+(\w+): ds\./gm)].map(m => m[1])
        for (const u of b.user) assert.ok(pins.includes(u), `${b.id}: ${u} offered`)
        assert.ok(!/(w5500|wiz)\.(cs|sck|miso|mosi|rst|int)/.test(block), `${b.id}: the WIZnet chip's pins must not be offered`)
        assert.ok(pins.length === b.userCount, `${b.id}: ${pins.length} pins offered, expected ${b.userCount}`)
        for (const g of b.hidden) assert.ok(!pins.includes(`GP${g}`), `${b.id}: GP${g} must not be offered`)
    }
})

test("each board picks its images: W5500 boards every platform, the W5100S the plain-TCP platforms (simulator: generic), the Pico W the generic one", () => {
    assert.equal(chipOfBoard("w55rp20_evb_pico"), "w5500")
    assert.equal(chipOfBoard("w5500_evb_pico"), "w5500")
    assert.equal(chipOfBoard("w5100s_evb_pico"), "w5100s")
    assert.equal(chipOfBoard("pico_w"), "picow")
    assert.throws(() => chipOfBoard("w6100_evb_pico"), /no board file boards\/w6100_evb_pico\.board\.json; boards: .*w5100s_evb_pico.*pico_w/)
    assert.equal(imageFor("board", "alibaba", "w5500"), "src/images/board-alibaba.ts")
    assert.equal(imageFor("board", "generic", "w5100s"), "src/images/board-w5100s-generic.ts")
    assert.equal(imageFor("sim", undefined, "w5100s"), "src/images/sim-w5100s-generic.ts")
    assert.equal(imageFor("sim", "generic", "picow"), "src/images/sim-picow-generic.ts")
    assert.equal(imageFor("board", "alibaba", "w5100s"), "src/images/board-w5100s-alibaba.ts")
    assert.equal(imageFor("board", "onenet", "w5100s"), "src/images/board-w5100s-onenet.ts")
    assert.throws(() => imageFor("board", "azure", "w5100s"), /CLOUD=azure has no W5100S board image: Azure IoT Hub accepts TLS only/)
    assert.throws(() => imageFor("sim", "alibaba", "w5100s"), /CLOUD=alibaba has no W5100S sim image: the W5100S has a generic-platform sim image only/)
})
