/**
 * `npm run bench -- --board`: figures of the firmware on the emulated board, in emulated RP2040
 * time at 125 MHz, for each WIZnet board (W55RP20-EVB-Pico, W5500-EVB-Pico, W5100S-EVB-Pico):
 * boot to first report, CPU time per report (busy core cycles between two reports, REPORT_MS=1000),
 * SPI bytes and frames per report (on the chip's wire, interrupt and link polling included), idle CPU load between reports (REPORT_MS=3600000, set over
 * USB and kept across a reboot), the VM's heap spare at its fullest (sim/board/heap.ts), SPI bytes per second (while clocking, and over chip-select time),
 * emulation speed (virtual/wall), lost wake-ups, and how long the stock runtime runs before it
 * freezes without bridging. rp2040js's cycle counts are approximate (no XIP flash wait states):
 * silicon may be slower than these figures.
 */
import { startAedes, type AedesBroker } from "../brokers.ts"
import { EmulatedBoard } from "./board.ts"
import { boardLan, bundleForEmulatedBoard } from "./firmware.ts"
import { HeapWatch } from "./heap.ts"
import { CORE_HZ } from "./run.ts"
import { runtimeElfPath } from "./runtime.ts"
import { commandRoundTrips, percentile } from "../rtt.ts"

/** Commands timed for the round-trip figures on each board. */
const RTT_N = 40

/** Figures of one board. */
export interface BoardFigures {
    board: string
    chip: string
    bus: string
    freezeAtS: number | undefined
    bootToReportS: number
    cpuPerReportMs: number
    spiBytesPerReport: number
    spiFramesPerReport: number
    /** command round trip at the chip, virtual ms (sim/rtt.ts) */
    cmdP50Ms: number
    cmdP99Ms: number
    cmdN: number
    idleLoadPct: number
    /** the VM's heap less the most that survived a collection (boot, reports, commands), bytes */
    heapSpare: number
    spiClockingBps: number
    spiCsBps: number
    speed: number
    lostPerMin: number
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? s[Math.floor(s.length / 2)] : NaN
}

/** Measures one board; `freeze: false` skips the run without bridging (its figure is then undefined). */
export async function figures(board: string, broker: AedesBroker, log: (s: string) => void, opts: { freeze?: boolean } = {}): Promise<BoardFigures> {
    const { file } = await bundleForEmulatedBoard(board, { local: false, extra: { REPORT_MS: 1000 } })
    const lan = () => boardLan(broker.port)
    // 1. without bridging: when does the stock runtime freeze?
    let b: EmulatedBoard
    let freezeAtS: number | undefined
    if (opts.freeze !== false) {
        b = await EmulatedBoard.create({ board, uf2: file, lan: lan() })
        const stop = await b.run({ seconds: 60, wallMs: 300_000 })
        freezeAtS = stop === "frozen" ? b.frozen?.atSeconds : undefined
        log(`${board}: without bridging: ${stop} at ${b.seconds.toFixed(2)} virtual s`)
        b.close()
    }

    // 2. bridged, REPORT_MS=1000: boot to first report, CPU per report, SPI rates, speed
    b = await EmulatedBoard.create({ board, uf2: file, lan: lan(), bridgeLostWakeups: true })
    const heap = new HeapWatch(b.mcu, runtimeElfPath(), () => b.seconds)
    b.onBatch = () => heap.look()
    const reports: { at: number; busy: number; spiBytes: number; spiFrames: number }[] = []
    const topic = () => `devices/w55-${Buffer.from(b.uid).toString("hex")}/telemetry`
    const onPub = (p: { topic: string }) => {
        if (p.topic === topic()) reports.push({ at: b.seconds, busy: b.counters.run.busyCycles, spiBytes: b.counters.spi.bytes, spiFrames: b.counters.spi.frames })
    }
    broker.aedes.on("publish", onPub)
    const wall0 = Date.now()
    await b.run({ until: () => reports.length >= 1, seconds: 40, wallMs: 300_000 })
    if (!reports.length) throw new Error(`${board}: no report within 40 virtual s`)
    const bootToReportS = reports[0].at
    // the Home Assistant discovery messages follow the first report: measure once they are out
    await b.run({ seconds: 12, wallMs: 300_000 })
    const from = reports.length
    await b.run({ until: () => reports.length >= from + 7, seconds: 15, wallMs: 300_000 })
    const per: number[] = []
    const spiBytes: number[] = []
    const spiFrames: number[] = []
    for (let i = from + 1; i < reports.length; i++) {
        per.push(((reports[i].busy - reports[i - 1].busy) / CORE_HZ) * 1000)
        spiBytes.push(reports[i].spiBytes - reports[i - 1].spiBytes)
        spiFrames.push(reports[i].spiFrames - reports[i - 1].spiFrames)
    }
    const spi = b.counters.spi
    const speed = b.seconds / ((Date.now() - wall0) / 1000)
    const lostPerMin = (b.counters.run.lostWakeups / b.seconds) * 60
    // command round trips, reports going on (REPORT_MS=1000), on virtual time
    const trips = await commandRoundTrips(broker, b.core, topic().replace(/\/telemetry$/, ""), RTT_N, {
        now: () => b.clock.nanos / 1e6,
        runUntil: async (done, ms) => void (await b.run({ until: done, seconds: ms / 1000, wallMs: 120_000 })),
    })

    const hp = heap.peak
    const heapSpare = hp ? HeapWatch.spare(hp) : NaN

    // 3. REPORT_MS=3600000 (written over USB, kept across a reboot): idle load between reports
    b.usb.setSetting("REPORT_MS", 3600000)
    await b.run({ until: () => b.counters.flash.programs > 0, seconds: 3 })
    await b.run({ seconds: 0.5 })
    broker.aedes.off("publish", onPub)
    b = await b.reboot()
    await b.waitForLine(/^boot: reporting every 3600000 ms/, { seconds: 40, wallMs: 300_000 })
    await b.run({ seconds: 15, wallMs: 300_000 }) // past the first report and discovery
    const busy0 = b.counters.run.busyCycles
    const t0 = b.seconds
    await b.run({ seconds: 10, wallMs: 300_000 })
    const idleLoadPct = (((b.counters.run.busyCycles - busy0) / CORE_HZ) / (b.seconds - t0)) * 100
    b.close()
    return {
        board,
        chip: b.wiring.wiz.chip,
        bus: b.wiring.wiz.bus,
        freezeAtS,
        bootToReportS,
        cpuPerReportMs: median(per),
        spiBytesPerReport: median(spiBytes),
        spiFramesPerReport: median(spiFrames),
        cmdP50Ms: percentile(trips, 50),
        cmdP99Ms: percentile(trips, 99),
        cmdN: trips.length,
        idleLoadPct,
        heapSpare,
        spiClockingBps: spi.bytes / (spi.clockingNanos / 1e9),
        spiCsBps: spi.bytes / (spi.csLowNanos / 1e9),
        speed,
        lostPerMin,
    }
}

/** Prints the emulated-board section of the benchmark. */
export async function boardSection(boards = ["w55rp20_evb_pico", "w5500_evb_pico", "w5100s_evb_pico"]): Promise<BoardFigures[]> {
    console.log("\nEmulated board (rp2040js 1.4.1, DeviceScript runtime v2.16.0, emulated time at 125 MHz; cycle counts are approximate: no XIP flash wait states)\n")
    const broker = await startAedes({ port: 0 })
    const out: BoardFigures[] = []
    try {
        for (const board of boards) out.push(await figures(board, broker, s => console.log(`  ${s}`)))
    } finally {
        await broker.close()
    }
    const f = (n: number | undefined, d = 1) => (n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en", { maximumFractionDigits: d, minimumFractionDigits: d }))
    console.log("\n| figure | " + out.map(o => `${o.board} (${o.chip.toUpperCase()}, ${o.bus === "gpio" ? "bit-banged GPIO" : "SPI0"})`).join(" | ") + " |")
    console.log("|---|" + out.map(() => "---:|").join(""))
    const row = (name: string, get: (o: BoardFigures) => string) => console.log(`| ${name} | ${out.map(get).join(" | ")} |`)
    row("without bridging: frozen at (virtual s)", o => (o.freezeAtS === undefined ? "did not freeze in 60 s" : f(o.freezeAtS, 2)))
    row("boot to first report (virtual s)", o => f(o.bootToReportS, 2))
    row("CPU per report, median (ms of core time, REPORT_MS=1000)", o => f(o.cpuPerReportMs, 0))
    row("SPI bytes per report, median (REPORT_MS=1000)", o => f(o.spiBytesPerReport, 0))
    row("SPI frames per report, median", o => f(o.spiFramesPerReport, 0))
    row(`command round trip p50 at the chip (commands/set, virtual ms; target <= 30)`, o => f(o.cmdP50Ms, 1))
    row(`command round trip p99 (of ${RTT_N}; target <= 60)`, o => f(o.cmdP99Ms, 1))
    row("idle CPU load between reports (REPORT_MS=3600000)", o => `${f(o.idleLoadPct, 1)} %`)
    row("heap spare: the VM's 64 KB less the most that survived a collection (boot, reports, commands; bytes; target >= 32,768)", o => f(o.heapSpare, 0))
    row("SPI bytes/s while clocking", o => f(o.spiClockingBps, 0))
    row("SPI bytes/s over chip-select-low time", o => f(o.spiCsBps, 0))
    row("emulation speed (virtual/wall, REPORT_MS=1000 run)", o => `${f(o.speed, 2)}x`)
    row("lost wake-ups per virtual minute (bridged)", o => f(o.lostPerMin, 0))
    return out
}
