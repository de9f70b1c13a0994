/**
 * The emulated board: the real DeviceScript RP2040 runtime and our firmware UF2 on rp2040js,
 * booted through the bootrom, with what the runtime needs and rp2040js lacks (flash writes, a flash
 * unique ID per instance, a USB host that NAKs, the console over USB) and the peripherals the board
 * file names: the W5500 or W5100S model and its LAN on the chip's pins (bit-banged GPIO or SPI0,
 * INTn, RSTn),
 * the AHT20/SHT30 models on the I2C pins, the LED pin observed. Everything runs on the board's
 * virtual time, the chip model and the LAN included.
 */
import crypto from "node:crypto"
import fs from "node:fs"
import { GPIOPinState, RP2040 } from "rp2040js"
import { Lan, type LanOptions } from "../w5500/lan.ts"
import { W5500, type W5500Options } from "../w5500/chip.ts"
import { W5100S } from "../w5100s/chip.ts"
import { Aht20 } from "./aht20.ts"
import { readBoardWiring, type BoardWiring } from "./boardfile.ts"
import { VirtualClock } from "./clock.ts"
import { attachFlash, patchBootrom, writeUf2, type FlashCounters } from "./flash.ts"
import { attachI2c, driftingClimate, i2cBlockOf, type Climate, type I2cCounters } from "./i2c.ts"
import { newRunCounters, run, type RunCounters, type RunStop } from "./run.ts"
import { loadBootrom } from "./runtime.ts"
import { Sht30 } from "./sht30.ts"
import { newSpiCounters, w5500OnWire, wireSpiChip, type SpiCounters } from "./spi.ts"
import { UsbHost } from "./usb.ts"

/** Console lines kept for the frozen report and tests. */
const KEEP_LINES = 400

/** A console line of the emulated board. */
export interface ConsoleLine {
    /** virtual time (ns) */
    at: number
    /** the text, without the runtime's "> " mark of program output */
    text: string
    /** true for the program's own output (console.log); false for the runtime's DMESG */
    program: boolean
}

/** Options of an emulated board. */
export interface BoardOptions {
    /** board id (boards/<id>.board.json) */
    board: string
    /** the UF2 to boot (bytes or a file path): the one `npm run flash` would write */
    uf2: Uint8Array | string
    /** flash contents to boot instead (a reboot keeps the flash); the UF2 is then not written */
    flash?: Uint8Array
    /** the flash's 8-byte unique ID (default random: each instance gets its own MAC and DEVICE_ID) */
    uid?: Uint8Array
    /** wake the core after a lost timer wake-up instead of reporting the board frozen (default false) */
    bridgeLostWakeups?: boolean
    /** sensor models on the I2C bus (default: an AHT20) */
    sensors?: ("aht20" | "sht30")[]
    /** what the sensor models measure (default: slow sine waves) */
    climate?: Climate
    /** the emulated LAN (the clock is the board's) */
    lan?: Omit<LanOptions, "timers">
    /** the chip model, W5500 or W5100S as the board file says (the clock is the board's) */
    chip?: Omit<W5500Options, "clock" | "network">
    /** each console line as it arrives */
    onConsole?: (l: ConsoleLine) => void
    /** the LED's state each time its pin changes level */
    onLed?: (on: boolean) => void
    /** each lost timer wake-up as it is counted (its number, virtual seconds) */
    onLostWakeup?: (n: number, atSeconds: number) => void
    /** wall-clock time virtual time 0 stands for (NTP answers), default now */
    epochMs?: number
    /** virtual time may not run ahead of wall time by more than this factor while the core sleeps (default 20) */
    maxSpeed?: number
}

/** The board stopped: frozen on a lost wake-up, or a limit reached. */
export interface FrozenReport {
    /** virtual seconds since power-on */
    atSeconds: number
    lostWakeups: number
    lastLines: string[]
}

/** One emulated W55RP20-EVB-Pico, W5500-EVB-Pico or W5100S-EVB-Pico. */
export class EmulatedBoard {
    readonly mcu: RP2040
    readonly clock: VirtualClock
    readonly wiring: BoardWiring
    /** the WIZnet chip model the board file names */
    readonly chip: W5500 | W5100S
    /** its socket engine (the W5500 model; a W5100S's `core`): counters, link, sockets */
    readonly core: W5500
    readonly lan: Lan
    readonly usb: UsbHost
    readonly uid: Uint8Array
    readonly aht20?: Aht20
    readonly sht30?: Sht30
    readonly counters: { run: RunCounters; spi: SpiCounters; flash: FlashCounters; i2c: I2cCounters; led: number }
    /** console lines so far (the last KEEP_LINES) */
    readonly lines: ConsoleLine[] = []
    /** LED state (pin level and polarity); undefined until the pin is driven */
    led: boolean | undefined
    /** set when the board froze (lost wake-up without bridging) */
    frozen: FrozenReport | undefined
    /** wake the core after a lost timer wake-up (the runtime's bug) instead of freezing; may change between runs */
    bridgeLostWakeups: boolean
    /** console lines seen since power-on (the index of the next one) */
    lineCount = 0
    private closed = false

    private constructor(readonly opts: BoardOptions, rom: Uint32Array) {
        this.wiring = readBoardWiring(opts.board)
        this.bridgeLostWakeups = !!opts.bridgeLostWakeups
        this.clock = new VirtualClock(opts.epochMs ?? Date.now())
        this.mcu = new RP2040(this.clock)
        this.mcu.logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as RP2040["logger"]
        patchBootrom(rom)
        this.mcu.loadBootrom(rom)
        this.counters = {
            run: newRunCounters(),
            spi: newSpiCounters(),
            flash: { erases: 0, eraseBytes: 0, programs: 0, programBytes: 0, uniqueIdReads: 0 },
            i2c: { addressed: {}, nacks: 0 },
            led: 0,
        }
        // flash: after loadBootrom (reset fills the flash with 0xFF)
        if (opts.flash) this.mcu.flash.set(opts.flash)
        else {
            const buf = typeof opts.uf2 === "string" ? fs.readFileSync(opts.uf2) : opts.uf2
            writeUf2(this.mcu.flash, buf, typeof opts.uf2 === "string" ? opts.uf2 : "UF2")
        }
        this.uid = opts.uid ?? crypto.randomBytes(8)
        attachFlash(this.mcu, this.uid, this.counters.flash)
        // USB host and console
        this.usb = new UsbHost(this.mcu, raw => this.consoleLine(raw))
        // the WIZnet chip and the LAN on the board's virtual time
        const timers = this.clock.timers()
        this.lan = new Lan({ ...opts.lan, timers })
        const wiz = this.wiring.wiz
        if (wiz.chip === "w5100s") {
            const chip = new W5100S({ ...opts.chip, clock: timers, network: this.lan })
            this.chip = chip
            this.core = chip.core
            wireSpiChip(this.mcu, this.clock, chip, wiz.pins, wiz.bus, this.counters.spi)
        } else {
            const chip = new W5500({ ...opts.chip, clock: timers, network: this.lan })
            this.chip = this.core = chip
            wireSpiChip(this.mcu, this.clock, w5500OnWire(chip), wiz.pins, wiz.bus, this.counters.spi)
        }
        this.lan.attach(this.core)
        // sensors on the board file's I2C pins
        if (this.wiring.i2c) {
            const climate = opts.climate ?? driftingClimate()
            const kinds = opts.sensors ?? ["aht20"]
            if (kinds.includes("aht20")) this.aht20 = new Aht20(this.clock, climate)
            if (kinds.includes("sht30")) this.sht30 = new Sht30(this.clock, climate)
            const targets = [this.aht20, this.sht30].filter(t => t !== undefined)
            attachI2c(this.mcu, i2cBlockOf(this.wiring.i2c.pinSDA, this.wiring.i2c.pinSCL), targets, this.counters.i2c)
        }
        // the LED, observed at the pin
        const led = this.wiring.led
        if (led) {
            this.mcu.gpio[led.pin].addListener(st => {
                if (st !== GPIOPinState.High && st !== GPIOPinState.Low) return
                const on = (st === GPIOPinState.High) === led.activeHigh
                if (on === this.led) return
                this.led = on
                this.counters.led++
                opts.onLed?.(on)
            })
        }
        this.mcu.core.PC = 0x10000000
    }

    /** Builds a board (the bootrom comes from the runtime folder); it starts running with `run`. */
    static async create(opts: BoardOptions): Promise<EmulatedBoard> {
        return new EmulatedBoard(opts, await loadBootrom())
    }

    /** Virtual seconds since power-on. */
    get seconds(): number {
        return this.clock.nanos / 1e9
    }

    private consoleLine(raw: string) {
        const program = raw.startsWith("> ")
        const l: ConsoleLine = { at: this.clock.nanos, text: program ? raw.slice(2) : raw, program }
        this.lines.push(l)
        this.lineCount++
        if (this.lines.length > KEEP_LINES) this.lines.splice(0, this.lines.length - KEEP_LINES)
        this.opts.onConsole?.(l)
    }

    /** called between batches of a few thousand instructions while it runs (e.g. `HeapWatch.look`) */
    onBatch?: () => void

    /**
     * Runs the board until `until` holds, `seconds` of virtual time have passed, `wallMs` of wall
     * time have passed, it freezes (lost wake-up without bridging: `frozen` says when) or it is closed.
     */
    async run(lim: { until?: () => boolean; seconds?: number; wallMs?: number } = {}): Promise<RunStop> {
        if (this.closed) return "closed"
        if (this.frozen && !this.bridgeLostWakeups) return "frozen"
        const stop = await run(this.mcu, this.clock, this.counters.run, {
            until: lim.until,
            untilNanos: lim.seconds !== undefined ? this.clock.nanos + lim.seconds * 1e9 : undefined,
            wallMs: lim.wallMs,
            bridge: this.bridgeLostWakeups,
            maxSpeed: this.opts.maxSpeed,
            closed: () => this.closed,
            onLost: (n, at) => this.opts.onLostWakeup?.(n, at / 1e9),
            onBatch: this.onBatch,
        })
        if (stop === "frozen")
            this.frozen = { atSeconds: this.seconds, lostWakeups: this.counters.run.lostWakeups, lastLines: this.lines.slice(-12).map(l => (l.program ? "> " : "") + l.text) }
        return stop
    }

    /** Runs until a console line matches `re` (from line number `from`, a `lineCount`); returns it or undefined. */
    async waitForLine(re: RegExp, lim: { seconds?: number; wallMs?: number; from?: number } = {}): Promise<ConsoleLine | undefined> {
        let found: ConsoleLine | undefined
        const check = () => {
            if (!found) found = this.lines.slice(Math.max(0, (lim.from ?? 0) - (this.lineCount - this.lines.length))).find(l => re.test(l.text))
            return !!found
        }
        if (check()) return found
        await this.run({ until: check, seconds: lim.seconds, wallMs: lim.wallMs })
        return found
    }

    /**
     * Power-cycles the board: a fresh RP2040 booting the same flash (settings written by the
     * runtime kept) with the same unique ID, and a new chip model (the old one is closed). Returns the
     * new board; this one is closed.
     */
    async reboot(): Promise<EmulatedBoard> {
        const flash = Uint8Array.from(this.mcu.flash)
        this.close()
        return await EmulatedBoard.create({ ...this.opts, bridgeLostWakeups: this.bridgeLostWakeups, flash, uid: this.uid, epochMs: this.clock.epochMs + this.clock.nanos / 1e6 })
    }

    /** Stops the board: the chip's host connections and timers are dropped. */
    close(): void {
        if (this.closed) return
        this.closed = true
        this.chip.close()
        this.lan.close()
    }
}
