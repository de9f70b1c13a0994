/**
 * `npm run profile -- [--board ID] [--reports N | --idle S | --commands N | --boot] [--within NAME] [--top K]`: where the emulated board's
 * core cycles go. Boots the firmware on the emulated board (REPORT_MS=1000, the benchmark's setting),
 * waits until the first report and the Home Assistant discovery are out, then counts each executed
 * instruction's cycles over N reports (`--idle S`: S virtual seconds with REPORT_MS=3600000;
 * `--commands N`: N commands/set, each from its bytes at the chip to its reply's SEND; `--boot`: from power-on to the
 * first report) and prints where they went: by bytecode function of the image (self, inclusive, VM
 * steps) and by C function of the runtime's ELF (beside its UF2); `--within NAME` adds what ran
 * while that bytecode function was current or on the call chain. Whatever the mode, it also
 * watches the VM's heap from power-on (sim/board/heap.ts) and prints the most that survived a
 * collection, what it was made of and the largest free block then. See docs/benchmark.md.
 */
import fs from "node:fs"
import path from "node:path"
import type { RP2040 } from "rp2040js"
import { parseArgs } from "node:util"
import { startAedes } from "../brokers.ts"
import { EmulatedBoard } from "./board.ts"
import { functionAt, readElfFunctions } from "./elf.ts"
import { HeapWatch } from "./heap.ts"
import { ACT_CALLER, ACT_FUNC, CTX_CURR_FN, CTX_IMG } from "./layout.ts"
import { boardLan, bundleForEmulatedBoard } from "./firmware.ts"
import { CORE_HZ } from "./run.ts"
import { runtimeElfPath } from "./runtime.ts"

const FLASH_BASE = 0x10000000
const FLASH_SIZE = 16 * 1024 * 1024
const SRAM_BASE = 0x20000000
const SRAM_SIZE = 264 * 1024
/** Cycles between two looks at the VM's current function. */
const VM_SAMPLE_CYCLES = 64

/** Where the profile attributes cycles: the runtime's C functions by address, and the bytecode function the VM is in. */
export class Profiler {
    /** cycles by instruction address (halfword slots of flash and SRAM) */
    private flash = new Float64Array(FLASH_SIZE / 2)
    private sram = new Float64Array(SRAM_SIZE / 2)
    private bootrom = 0
    /** cycles by bytecode function (its descriptor's address), self: while it is the VM's current function */
    private vmSelf = new Map<number, number>()
    /**
     * cycles by bytecode function on the VM's call chain (each function once per sample); a fiber's
     * first function shows under the function that started it (`fn.start()` keeps the starter on the chain)
     */
    private vmIncl = new Map<number, number>()
    private outsideVm = 0
    /** with `within`: cycles by runtime address (sampled) while that bytecode function is the current one */
    private withinPcs = new Map<number, number>()
    /** with `within`: cycles by current bytecode function while `within` is on the VM's call chain */
    private withinVm = new Map<number, number>()
    /** a bytecode function's start in the image, for withinRows */
    within = -1
    private ctx = 0
    private sampleCycles = 0
    total = 0

    /** VM steps (entries of devs_vm_exec_opcode) by bytecode function */
    private steps = new Map<number, number>()

    constructor(private readonly mcu: RP2040, private readonly execOpcodes: number, private readonly execOpcode: number) {}

    /** The hook for RunCounters.onInstruction. */
    readonly onInstruction = (pc: number, cycles: number): void => {
        this.total += cycles
        const f = pc - FLASH_BASE
        if (f >= 0 && f < FLASH_SIZE) this.flash[f >>> 1] += cycles
        else if (pc - SRAM_BASE >= 0 && pc - SRAM_BASE < SRAM_SIZE) this.sram[(pc - SRAM_BASE) >>> 1] += cycles
        else this.bootrom += cycles
        // devs_vm_exec_opcodes(ctx, ...): its first argument is the VM's context
        if (pc === this.execOpcodes) this.ctx = this.mcu.core.registers[0] >>> 0
        else if (pc === this.execOpcode && this.ctx) {
            const a = this.mcu.readUint32(this.ctx + CTX_CURR_FN) >>> 0
            if (a) {
                const d = this.mcu.readUint32(a + ACT_FUNC) >>> 0
                this.steps.set(d, (this.steps.get(d) ?? 0) + 1)
            }
        }
        // the VM's function: looked up once every VM_SAMPLE_CYCLES cycles, which it takes all (reads of RAM are slow)
        this.sampleCycles += cycles
        if (this.sampleCycles < VM_SAMPLE_CYCLES) return
        const c = this.sampleCycles
        this.sampleCycles = 0
        const act = this.ctx ? this.mcu.readUint32(this.ctx + CTX_CURR_FN) >>> 0 : 0
        if (!act) {
            this.outsideVm += c
            return
        }
        const fn = this.mcu.readUint32(act + ACT_FUNC) >>> 0
        this.vmSelf.set(fn, (this.vmSelf.get(fn) ?? 0) + c)
        if (this.within >= 0 && this.mcu.readUint32(fn) >>> 0 === this.within) this.withinPcs.set(pc, (this.withinPcs.get(pc) ?? 0) + c)
        const seen = new Set<number>()
        let under = false
        for (let a = act, depth = 0; a && depth < 64; a = this.mcu.readUint32(a + ACT_CALLER) >>> 0, depth++) {
            const g = this.mcu.readUint32(a + ACT_FUNC) >>> 0
            if (seen.has(g)) continue
            seen.add(g)
            this.vmIncl.set(g, (this.vmIncl.get(g) ?? 0) + c)
            if (this.within >= 0 && this.mcu.readUint32(g) >>> 0 === this.within) under = true
        }
        if (under) this.withinVm.set(fn, (this.withinVm.get(fn) ?? 0) + c)
    }

    /** The runtime's functions, cycles each, most first. */
    runtimeRows(elf: string): { name: string; cycles: number }[] {
        const fns = readElfFunctions(elf)
        const acc = new Map<string, number>()
        const add = (arr: Float64Array, base: number) => {
            for (let i = 0; i < arr.length; i++) {
                const c = arr[i]
                if (!c) continue
                const addr = base + i * 2
                const f = functionAt(fns, addr)
                const name = f ? (addr < f.addr + Math.max(f.size, 2) ? f.name : `${f.name}+0x${(addr - f.addr).toString(16)}`) : `0x${addr.toString(16)}`
                acc.set(name, (acc.get(name) ?? 0) + c)
            }
        }
        add(this.flash, FLASH_BASE)
        add(this.sram, SRAM_BASE)
        if (this.bootrom) acc.set("(bootrom)", this.bootrom)
        return sorted(acc)
    }

    /** With `within` set: the runtime's functions that ran while that bytecode function was current (sampled), most first. */
    withinRows(elf: string): { name: string; cycles: number }[] {
        const fns = readElfFunctions(elf)
        const acc = new Map<string, number>()
        for (const [pc, c] of this.withinPcs) {
            const f = functionAt(fns, pc)
            const name = f ? f.name : `0x${pc.toString(16)}`
            acc.set(name, (acc.get(name) ?? 0) + c)
        }
        return sorted(acc)
    }

    /** With `within` set: the bytecode functions that ran under it (it on the call chain), self cycles, most first. */
    withinVmRows(names: Map<number, string>): { name: string; cycles: number }[] {
        const acc = new Map<string, number>()
        for (const [d, c] of this.withinVm) {
            const n = names.get(this.mcu.readUint32(d) >>> 0) ?? `0x${d.toString(16)}`
            acc.set(n, (acc.get(n) ?? 0) + c)
        }
        return sorted(acc)
    }

    /** The name of the bytecode function whose descriptor is at `desc` (in the image, in flash). */
    nameOf(names: Map<number, string>, desc: number): string {
        const img = this.ctx ? this.mcu.readUint32(this.ctx + CTX_IMG) >>> 0 : 0
        return names.get(this.mcu.readUint32(desc) >>> 0) ?? `function at 0x${(desc - img).toString(16)}`
    }

    /**
     * The bytecode functions, self and inclusive cycles, most inclusive first; names from the
     * image's debug information (functions by their start in the image).
     */
    vmRows(names: Map<number, string>): { name: string; self: number; incl: number; steps: number }[] {
        const nameOf = (desc: number) => this.nameOf(names, desc)
        const rows = new Map<string, { self: number; incl: number; steps: number }>()
        const row = (n: string) => rows.get(n) ?? rows.set(n, { self: 0, incl: 0, steps: 0 }).get(n)!
        for (const [d, k] of this.steps) row(nameOf(d)).steps += k
        for (const [d, c] of this.vmSelf) row(nameOf(d)).self += c
        for (const [d, c] of this.vmIncl) row(nameOf(d)).incl += c
        const out = [...rows].map(([name, r]) => ({ name, ...r }))
        out.push({ name: "(outside the VM: the runtime's loop, Jacdac, USB, timers)", self: this.outsideVm, incl: this.outsideVm, steps: 0 })
        return out.sort((a, b) => b.incl - a.incl)
    }
}

function sorted(acc: Map<string, number>): { name: string; cycles: number }[] {
    return [...acc].map(([name, cycles]) => ({ name, cycles })).sort((a, b) => b.cycles - a.cycles)
}

/**
 * Names of the image's bytecode functions by their start (bytes into the image), from `devs build`'s
 * debug file, each with its source file (`send (socket.ts)`): several functions share a name.
 */
export function bytecodeNames(dbgFile: string): Map<number, string> {
    const dbg = JSON.parse(fs.readFileSync(dbgFile, "utf8")) as {
        functions: { name: string; startpc: number; location?: [number, number] }[]
        sources: { path: string; length: number }[]
    }
    // a location is a position in the sources laid end to end
    const starts: number[] = []
    let at = 0
    for (const src of dbg.sources) {
        starts.push(at)
        at += src.length
    }
    const fileOf = (pos: number) => {
        let i = starts.length - 1
        while (i > 0 && starts[i] > pos) i--
        return path.basename(dbg.sources[i]?.path ?? "?")
    }
    return new Map(dbg.functions.map(f => [f.startpc, f.location ? `${f.name} (${fileOf(f.location[0])})` : f.name]))
}

async function main() {
    const { values } = parseArgs({
        options: {
            board: { type: "string", default: "w5500_evb_pico" },
            reports: { type: "string", default: "5" },
            idle: { type: "string" },
            commands: { type: "string" },
            within: { type: "string" },
            boot: { type: "boolean" },
            top: { type: "string", default: "30" },
        },
    })
    const board = values.board!
    const idleS = values.idle !== undefined ? Number(values.idle) : undefined
    const nReports = Number(values.reports)
    const nCommands = values.commands !== undefined ? Number(values.commands) : undefined
    const top = Number(values.top)
    const elf = runtimeElfPath()
    const execOpcodes = readElfFunctions(elf).find(f => f.name === "devs_vm_exec_opcodes")
    const execOpcode = readElfFunctions(elf).find(f => f.name === "devs_vm_exec_opcode")
    if (!execOpcodes || !execOpcode) throw new Error(`${elf}: no devs_vm_exec_opcodes symbol: not the DeviceScript runtime`)
    const broker = await startAedes({ port: 0 })
    try {
        const { file } = await bundleForEmulatedBoard(board, { local: false, extra: { REPORT_MS: idleS !== undefined ? 3600000 : 1000 } })
        const names = bytecodeNames(file.replace(/\.uf2$/, ".dbg.json"))
        const lan = boardLan(broker.port)
        const b = await EmulatedBoard.create({ board, uf2: file, lan, bridgeLostWakeups: true })
        const heap = new HeapWatch(b.mcu, elf, () => b.seconds)
        b.onBatch = () => heap.look()
        let reports = 0
        broker.aedes.on("publish", p => {
            if (p.topic.endsWith("/telemetry")) reports++
        })
        const prof = new Profiler(b.mcu, execOpcodes.addr, execOpcode.addr)
        // --boot: from power-on to the first report at the broker
        if (values.boot) b.counters.run.onInstruction = prof.onInstruction
        await b.run({ until: () => reports >= 1, seconds: 40, wallMs: 300_000 })
        if (!reports) throw new Error(`${board}: no report within 40 virtual s`)
        if (!values.boot) await b.run({ seconds: 12, wallMs: 300_000 }) // past the Home Assistant discovery
        if (values.within) {
            const at = [...names].find(([, n]) => n === values.within || n.startsWith(`${values.within} (`))
            if (!at) throw new Error(`--within ${values.within}: no bytecode function of that name in the image`)
            prof.within = at[0]
        }
        let per = ""
        let units = 1
        const ms = (c: number) => (((c / CORE_HZ) * 1000) / units).toFixed(2)
        const pct = (c: number) => `${((c / prof.total) * 100).toFixed(1)} %`
        const report = (busy: number, wakes: number) =>
            console.log(`${board}: ${ms(busy)} ms of core per ${per} (over ${units.toFixed(idleS !== undefined ? 1 : 0)}); ${(wakes / units).toFixed(0)} wake-ups of the core per ${per}, ${ms((busy / Math.max(wakes, 1)) * units)} ms each\n`)
        if (values.boot) {
            b.counters.run.onInstruction = undefined
            per = "boot"
            console.log(`${board}: power-on to the first report at the broker: ${b.seconds.toFixed(2)} virtual s`)
            report(b.counters.run.busyCycles, b.counters.run.wakes)
        } else if (idleS === undefined) {
            // from one report to the N-th after it
            const from = reports
            await b.run({ until: () => reports > from, seconds: 5, wallMs: 300_000 })
        }
        if (!values.boot) {
            const busy0 = b.counters.run.busyCycles
            const wakes0 = b.counters.run.wakes
            const t0 = b.seconds
            b.counters.run.onInstruction = prof.onInstruction
            if (nCommands !== undefined) {
                // the device's own part of each command, as the benchmark's round trip times it
                // (sim/rtt.ts): from the command's bytes reaching the chip's socket to the SEND of
                // the reply (the bytes carrying the command's id; a report may go out between). The
                // time from the broker's publish to the chip is the rig's (host sockets on virtual
                // time), not the device's.
                b.counters.run.onInstruction = undefined
                const base = `devices/w55-${Buffer.from(b.uid).toString("hex")}`
                let replied = false
                broker.aedes.on("publish", (p, c) => {
                    if (c && p.topic === `${base}/replies`) replied = true
                })
                let phase: "off" | "waiting" | "counting" | "done" = "off"
                let c0 = 0
                let w0 = 0
                let s0 = 0
                let busy = 0
                let wakes = 0
                let span = 0
                b.core.on("rx", () => {
                    if (phase !== "waiting") return
                    phase = "counting"
                    c0 = b.counters.run.busyCycles
                    w0 = b.counters.run.wakes
                    s0 = b.seconds
                    b.counters.run.onInstruction = prof.onInstruction
                })
                let id = Buffer.alloc(0)
                b.core.on("tx", (_n: number, _len: number, data: Buffer) => {
                    if (phase !== "counting" || !data.includes(id)) return
                    phase = "done"
                    b.counters.run.onInstruction = undefined
                    busy += b.counters.run.busyCycles - c0
                    wakes += b.counters.run.wakes - w0
                    span += b.seconds - s0
                })
                for (let k = 0; k < nCommands; k++) {
                    await b.run({ seconds: 0.05 + Math.random() * 0.2 })
                    replied = false
                    phase = "waiting"
                    id = Buffer.from(`"p${k}"`)
                    const payload = Buffer.from(JSON.stringify({ id: `p${k}`, params: { led: k % 2 === 0 } }))
                    broker.aedes.publish({ cmd: "publish", topic: `${base}/commands/set`, payload, qos: 1, retain: false, dup: false }, () => {})
                    await b.run({ until: () => replied, seconds: 5, wallMs: 120_000 })
                    if (!replied || (phase as string) !== "done") throw new Error(`${board}: no reply to command p${k} within 5 virtual s`)
                    phase = "off"
                }
                per = "command"
                units = nCommands
                console.log(`${board}: a command's bytes at the chip to its reply's SEND: ${((span / nCommands) * 1000).toFixed(1)} virtual ms each on average`)
                report(busy, wakes)
            } else if (idleS !== undefined) {
                await b.run({ seconds: idleS, wallMs: 600_000 })
                per = "virtual s"
                units = b.seconds - t0
            } else {
                const start = reports
                await b.run({ until: () => reports >= start + nReports, seconds: nReports * 3, wallMs: 600_000 })
                per = "report"
                units = reports - start
            }
            b.counters.run.onInstruction = undefined
            if (nCommands === undefined) report(b.counters.run.busyCycles - busy0, b.counters.run.wakes - wakes0)
        }
        const hp = heap.peak
        if (hp) {
            const kinds = [...hp.byKind].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${n}`).join(", ")
            console.log(
                `${board}: heap (the VM's ${hp.totalBytes} bytes, from power-on): ${heap.gcs} collections; the most that survived one: ` +
                    `${HeapWatch.survivors(hp)} bytes at ${hp.atSeconds.toFixed(2)} virtual s, so ${HeapWatch.spare(hp)} bytes spare ` +
                    `(the largest free block then ${hp.largestFreeBytes}); in use then, by kind (with ${hp.sinceGcBytes} bytes allocated since): ${kinds}\n`
            )
            const frames = [...hp.frames].sort((x, y) => y[1] - x[1]).slice(0, 12)
            console.log(`Call frames in the heap then (activations of running and suspended fibers), bytes by function\n`)
            console.log("| function | bytes |\n|---|---:|")
            for (const [d, n] of frames) console.log(`| ${prof.nameOf(names, d)} | ${n} |`)
            console.log(`\nObjects then, by prototype (a class's prototype is in the heap, with its methods as entries; plain objects share the runtime's)\n`)
            console.log("| prototype | objects | entries | bytes of entries |\n|---|---:|---:|---:|")
            for (const [p, e] of [...hp.byPrototype].sort((x, y) => y[1].storageBytes - x[1].storageBytes).slice(0, 12)) {
                const methods = hp.prototypeEntries.get(p)
                const what = methods !== undefined ? `a class with ${methods} methods (0x${p.toString(16)})` : `outside the heap (0x${p.toString(16)}: plain objects, built-in classes)`
                console.log(`| ${what} | ${e.objects} | ${e.entries} | ${e.storageBytes} |`)
            }
            console.log(`\nObjects then, by their keys (fields, or a prototype's methods; the first 8) and prototype\n`)
            console.log("| prototype {keys} | objects | bytes of entries |\n|---|---:|---:|")
            for (const [k, e] of [...hp.byKeys].sort((x, y) => y[1].storageBytes - x[1].storageBytes).slice(0, top)) console.log(`| ${k} | ${e.objects} | ${e.storageBytes} |`)
            console.log("")
        } else console.log(`${board}: heap: no collection seen\n`)
        console.log(`Bytecode functions (self: while the VM runs it, its native calls included; inclusive: anywhere on the VM's call chain), ms per ${per}\n`)
        console.log("| function | self | inclusive | inclusive share | VM steps (own) |\n|---|---:|---:|---:|---:|")
        for (const r of prof.vmRows(names).slice(0, top)) console.log(`| ${r.name} | ${ms(r.self)} | ${ms(r.incl)} | ${pct(r.incl)} | ${(r.steps / units).toFixed(0)} |`)
        console.log(`\nThe runtime's C functions (own instructions), ms per ${per}\n`)
        console.log("| function | ms | share |\n|---|---:|---:|")
        for (const r of prof.runtimeRows(elf).slice(0, top)) console.log(`| ${r.name} | ${ms(r.cycles)} | ${pct(r.cycles)} |`)
        if (values.within) {
            console.log(`\nBytecode functions under ${values.within} (self), ms per ${per}\n`)
            console.log("| function | ms |\n|---|---:|")
            for (const r of prof.withinVmRows(names).slice(0, top)) console.log(`| ${r.name} | ${ms(r.cycles)} |`)
            console.log(`\nThe runtime's C functions while ${values.within} was the VM's current function (sampled), ms per ${per}\n`)
            console.log("| function | ms |\n|---|---:|")
            for (const r of prof.withinRows(elf).slice(0, top)) console.log(`| ${r.name} | ${ms(r.cycles)} |`)
        }
        b.close()
    } finally {
        await broker.close()
    }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
