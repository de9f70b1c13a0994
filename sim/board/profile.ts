/**
 * `npm run profile -- [--board ID] [--reports N] [--idle S] [--top K]`: where the emulated board's
 * core cycles go. Boots the firmware on the emulated board (REPORT_MS=1000, the benchmark's setting),
 * waits until the first report and the Home Assistant discovery are out, then counts each executed
 * instruction's cycles by its address over N reports (or, with `--idle S`, over S virtual seconds
 * with REPORT_MS=3600000) and prints the functions of the runtime's ELF (beside its UF2) that took
 * the most, as ms of core time per report (or per virtual second when idle) and as a share.
 * A flat profile: a function's own instructions, not its callees'.
 */
import path from "node:path"
import { parseArgs } from "node:util"
import { startAedes } from "../brokers.ts"
import { BROKER_LAN_IP, emulatedLanOptions } from "../start.ts"
import { EmulatedBoard } from "./board.ts"
import { functionAt, readElfFunctions } from "./elf.ts"
import { bundleForEmulatedBoard, LAN_BROKER_PORT } from "./firmware.ts"
import { CORE_HZ, FLASH_BASE, newPcProfile, SRAM_BASE, type PcProfile } from "./run.ts"
import { runtimeDir, RUNTIME_UF2 } from "./runtime.ts"

/** The runtime's ELF: the UF2's name with `.elf`. */
export function runtimeElfPath(): string {
    return path.join(runtimeDir(), RUNTIME_UF2.replace(/\.uf2$/, ".elf"))
}

/** Cycles of a profile by function, most first. */
export function byFunction(p: PcProfile, elf: string): { name: string; cycles: number }[] {
    const fns = readElfFunctions(elf)
    const acc = new Map<string, number>()
    const add = (arr: Float64Array, base: number) => {
        for (let i = 0; i < arr.length; i++) {
            const c = arr[i]
            if (!c) continue
            const addr = base + i * 2
            const f = functionAt(fns, addr)
            const name = f && addr < f.addr + Math.max(f.size, 1) ? f.name : f ? `${f.name}+0x${(addr - f.addr).toString(16)}` : `0x${addr.toString(16)}`
            acc.set(name, (acc.get(name) ?? 0) + c)
        }
    }
    add(p.flash, FLASH_BASE)
    add(p.sram, SRAM_BASE)
    if (p.other) acc.set("(bootrom)", p.other)
    return [...acc].map(([name, cycles]) => ({ name, cycles })).sort((a, b) => b.cycles - a.cycles)
}

async function main() {
    const { values } = parseArgs({
        options: {
            board: { type: "string", default: "w5500_evb_pico" },
            reports: { type: "string", default: "5" },
            idle: { type: "string" },
            top: { type: "string", default: "40" },
        },
    })
    const board = values.board!
    const idleS = values.idle !== undefined ? Number(values.idle) : undefined
    const nReports = Number(values.reports)
    const broker = await startAedes({ port: 0 })
    try {
        const { file } = await bundleForEmulatedBoard(board, { local: false, extra: { REPORT_MS: idleS !== undefined ? 3600000 : 1000 } })
        const lan = { ...emulatedLanOptions(), tcpMap: { [`${BROKER_LAN_IP}:${LAN_BROKER_PORT}`]: `127.0.0.1:${broker.port}` } }
        const b = await EmulatedBoard.create({ board, uf2: file, lan, bridgeLostWakeups: true })
        let reports = 0
        broker.aedes.on("publish", p => {
            if (p.topic.endsWith("/telemetry")) reports++
        })
        await b.run({ until: () => reports >= 1, seconds: 40, wallMs: 300_000 })
        if (!reports) throw new Error(`${board}: no report within 40 virtual s`)
        await b.run({ seconds: 12, wallMs: 300_000 })
        const prof = newPcProfile()
        const busy0 = b.counters.run.busyCycles
        const wakes0 = b.counters.run.wakes
        const t0 = b.seconds
        let per: string
        if (idleS !== undefined) {
            b.counters.run.profile = prof
            await b.run({ seconds: idleS, wallMs: 600_000 })
            per = "virtual s"
        } else {
            // from one report to the N-th after it
            const from = reports
            await b.run({ until: () => reports > from, seconds: 5, wallMs: 300_000 })
            const start = reports
            b.counters.run.profile = prof
            await b.run({ until: () => reports >= start + nReports, seconds: nReports * 3, wallMs: 600_000 })
            per = "report"
        }
        b.counters.run.profile = undefined
        const units = idleS !== undefined ? b.seconds - t0 : nReports
        const busy = b.counters.run.busyCycles - busy0
        const wakes = b.counters.run.wakes - wakes0
        b.close()
        const rows = byFunction(prof, runtimeElfPath())
        const total = rows.reduce((s, r) => s + r.cycles, 0)
        const ms = (c: number) => ((c / CORE_HZ) * 1000) / units
        console.log(`${board}: ${ms(busy).toFixed(1)} ms of core per ${per} over ${units.toFixed(idleS !== undefined ? 1 : 0)}; ${(wakes / units).toFixed(0)} wake-ups of the core per ${per}, ${(((busy / CORE_HZ) * 1000) / Math.max(wakes, 1)).toFixed(3)} ms each on average)\n`)
        console.log("| function | ms per " + per + " | share |\n|---|---:|---:|")
        for (const r of rows.slice(0, Number(values.top))) console.log(`| ${r.name} | ${ms(r.cycles).toFixed(2)} | ${((r.cycles / total) * 100).toFixed(1)} % |`)
    } finally {
        await broker.close()
    }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
