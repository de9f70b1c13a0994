/**
 * `npm run bench`: speed and size figures, never asserted in tests.
 * - MQTT throughput of our client vs the stock @devicescript/net client: same VM run, same aedes
 *   broker, same 120-byte JSON payload; measured in both VM modes (device: as on a board;
 *   test: `--test`, which turns on GC stress).
 * - Bytecode size of each client (program size minus a baseline program, from `devs build`).
 * - The firmware over the emulated W5500 (`npm start`'s default network): SPI transactions and
 *   bytes per report, boot-to-first-report time, and the bytecode of the network stack per image
 *   (`npm run bench -- --w5500`: this part alone).
 * - The firmware on the emulated board (sim/board/bench.ts): `npm run bench -- --board` (that
 *   part alone; not in the default run: a few minutes).
 * Each figure is checked against what the broker received, so a client that drops messages
 * cannot look fast.
 */
import { execFileSync } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import mqtt from "mqtt"
import { startAedes } from "./brokers.ts"
import { DEVS_CLI, ROOT, runVm } from "./devs.ts"
import { startHostLink } from "./hostlink.ts"
import { measureImage } from "./sizes.ts"
import { deviceSettings, startEmulatedNetwork } from "./start.ts"
import { loadEnvFiles } from "./envfile.ts"
import { commandRoundTrips, percentile } from "./rtt.ts"

const N = Number(process.env.BENCH_N ?? 2000)
/** Commands timed for the round-trip figures. */
const RTT_N = 100

interface Figure {
    client: string
    mode: string
    n: number
    ms: number
    received: number
}

/**
 * Bytes of bytecode of one program, from the TOTAL line of bytecode-sizes.md. Builds share
 * .devicescript/bin, so the result is used only when the binary next to it names `entry`.
 */
function programBytes(entry: string): number {
    const bin = path.join(ROOT, ".devicescript/bin")
    for (let attempt = 0; attempt < 5; attempt++) {
        execFileSync(process.execPath, [DEVS_CLI, "build", entry], { cwd: ROOT, stdio: "pipe" })
        const md = fs.readFileSync(path.join(bin, "bytecode-sizes.md"), "utf8")
        const devs = fs.readFileSync(path.join(bin, "bytecode.devs"))
        const m = /^\s*(\d+)\s*\|\s*TOTAL\s*\|/m.exec(md)
        if (m && devs.includes(entry.replace(/\.ts$/, ""))) return Number(m[1])
    }
    throw new Error(`bench: could not read the size of ${entry} (another build kept overwriting .devicescript/bin)`)
}

async function throughput(mode: "test" | "device"): Promise<Figure[]> {
    const broker = await startAedes()
    const counts = new Map<string, number>()
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: "bench-counter" })
    sub.on("message", topic => counts.set(topic, (counts.get(topic) ?? 0) + 1))
    await sub.subscribeAsync("bench/#", { qos: 1 })
    const link = await startHostLink({ B_PORT: broker.port, BENCH_N: N }, { waitMs: 120000 })
    const figures: Figure[] = []
    try {
        const run = await runVm("test/bench/mqtt.bench.ts", {
            mode,
            timeoutMs: 600000,
            stopWhen: line => line.includes("##BENCH done"),
        })
        for (const line of run.lines) {
            const m = /##BENCH (\w+) ([\w-]+) (\d+) (\d+)/.exec(line)
            if (m) figures.push({ client: m[1], mode: m[2], n: +m[3], ms: +m[4], received: 0 })
        }
        if (!run.lines.some(l => l.includes("##BENCH done")))
            throw new Error(`bench (${mode} mode) did not finish:\n${run.lines.slice(-20).join("\n")}`)
        await new Promise(r => setTimeout(r, 500))
        const topicOf: Record<string, string> = { qos0: "q0", "qos1-acked": "q1", "qos1-nowait": "q1w" }
        for (const f of figures) f.received = counts.get(`bench/${f.client}/${topicOf[f.mode]}`) ?? 0
    } finally {
        await link.close()
        await sub.endAsync(true)
        await broker.close()
    }
    return figures
}

function rate(f: Figure | undefined) {
    return f && f.ms > 0 ? (f.received / f.ms) * 1000 : 0
}

/** The bytes of the MQTT PUBLISH (QoS 1: with a packet id) that carries `payload` on `topic`. */
function publishBytes(topic: string, payload: number): number {
    const rem = 2 + Buffer.byteLength(topic) + 2 + payload
    return 1 + (rem < 128 ? 1 : rem < 16384 ? 2 : 3) + rem
}

/**
 * The firmware image (src/main.ts) over the emulated W5500 in device mode, reporting every second
 * to aedes: boot-to-first-report time and the SPI traffic per report in a window of `n` reports.
 */
async function w5500Figures(n = 10, kind: "w5500" | "w5100s" = "w5500") {
    const broker = await startAedes()
    const sim = await startEmulatedNetwork({ lan: { log: () => {} }, kind })
    const reports: { at: number; topic: string; bytes: number; spiBytes: number; spiFrames: number }[] = []
    broker.aedes.on("publish", (p, client) => {
        if (client && p.topic.endsWith("/telemetry"))
            reports.push({ at: Date.now(), topic: p.topic, bytes: (p.payload as Buffer).length, spiBytes: sim.chip.counters.bytes, spiFrames: sim.chip.counters.frames })
    })
    const env = loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: false }])
    const settings = { ...deviceSettings(env.settings, broker.port, "w5500"), DEVICE_ID: `bench-${kind}`, REPORT_MS: 1000, MQTT_USER: "", MQTT_PASS: "", LOG_LEVEL: "debug" }
    const link = await startHostLink(settings as Record<string, string | number | boolean>, { waitMs: 120000, time: false })
    let spawnedAt = 0
    let vmStartAt = 0
    const phases: string[] = []
    let rtt: Promise<unknown> | undefined
    let trips: number[] | undefined
    let rttError: Error | undefined
    try {
        const run = await runVm(kind === "w5100s" ? "src/images/sim-w5100s-generic.ts" : "src/main.ts", {
            mode: "device",
            timeoutMs: 120000,
            onSpawn: () => (spawnedAt = Date.now()),
            onLine: l => {
                if (!vmStartAt && /start: /.test(l)) vmStartAt = Date.now()
                const m = /boot: (\w+): .*\((\d+) ms\)$/.exec(l)
                if (m) phases.push(`${m[1]} ${m[2]} ms`)
            },
            // LOG_LEVEL=debug: a console line per report, so the stop condition is checked often
            stopWhen: () => {
                if (reports.length >= n + 3 && !rtt) {
                    const base = reports[0].topic.replace(/\/telemetry$/, "")
                    const wallRig = {
                        now: () => performance.now(),
                        runUntil: async (done: () => boolean, ms: number) => {
                            const end = performance.now() + ms
                            while (!done() && performance.now() < end) await new Promise(r => setTimeout(r, 1))
                        },
                    }
                    rtt = commandRoundTrips(broker, "core" in sim.chip ? sim.chip.core : sim.chip, base, RTT_N, wallRig).then(
                        r => (trips = r),
                        e => (rttError = e as Error)
                    )
                }
                return !!trips || !!rttError
            },
        })
        if (reports.length < n + 3) throw new Error(`bench: only ${reports.length} reports over the ${kind}:\n${run.lines.slice(-20).join("\n")}`)
        if (rttError) throw rttError
    } finally {
        await link.close()
        await sim.close()
        await broker.close()
    }
    // the window between report 3 and report 3+n: reports only (a 3600 s lease, 60 s keepalive)
    const a = reports[2], b = reports[2 + n]
    const spi = (b.spiBytes - a.spiBytes) / n
    const frames = (b.spiFrames - a.spiFrames) / n
    const pkt = publishBytes(b.topic, b.bytes)
    const cmd = { p50: percentile(trips!, 50), p99: percentile(trips!, 99), n: trips!.length }
    return { boot: reports[0].at - spawnedAt, bootVm: reports[0].at - (vmStartAt || spawnedAt), phases, spi, frames, pkt, payload: b.bytes, target: 1.5 * pkt + 40, cmd }
}

async function main() {
    if (process.argv.includes("--w5100s")) return await w5100sSection()
    if (process.argv.includes("--w5500")) return await w5500Section()
    if (process.argv.includes("--board")) {
        const { boardSection } = await import("./board/bench.ts")
        await boardSection()
        return
    }
    console.log(`MQTT benchmark: ${N} messages of 120 bytes per figure, aedes on 127.0.0.1, one VM run per mode\n`)
    const rows: string[] = []
    const ratios: string[] = []
    for (const mode of ["device", "test"] as const) {
        const figs = await throughput(mode)
        const get = (c: string, m: string) => figs.find(f => f.client === c && f.mode === m)
        const o0 = get("ours", "qos0"), o1 = get("ours", "qos1-acked"), o1w = get("ours", "qos1-nowait"), s0 = get("stock", "qos0")
        const label = mode === "device" ? "device mode (as on a board)" : "test mode (--test: GC stress)"
        for (const [name, f] of [
            ["ours, QoS 0", o0],
            ["ours, QoS 1 acknowledged (32 publishers, each waiting for its PUBACK)", o1],
            ["ours, QoS 1 acknowledged (one publisher, wait: false, as the firmware publishes; timed to the last PUBACK)", o1w],
            ["stock, QoS 0 (never waits for acks)", s0],
        ] as const)
            rows.push(`| ${label} | ${name} | ${f ? `${f.received}/${f.n}` : "-"} | ${f ? f.ms : "-"} | ${rate(f).toFixed(0)} |`)
        ratios.push(
            `${label}: ours QoS 0 / stock QoS 0 = ${(rate(o0) / rate(s0)).toFixed(2)}x; ours QoS 1 acknowledged / stock QoS 0 = ${(rate(o1) / rate(s0)).toFixed(2)}x (32 waiting publishers), ${(rate(o1w) / rate(s0)).toFixed(2)}x (one publisher, wait: false)`
        )
    }
    console.log("| VM mode | client | received/sent | ms | msg/s |")
    console.log("|---|---|---:|---:|---:|")
    for (const r of rows) console.log(r)
    console.log("")
    for (const r of ratios) console.log(r)

    const base = programBytes("test/bench/size-base.ts")
    const ours = programBytes("test/bench/size-ours.ts") - base
    const stock = programBytes("test/bench/size-stock.ts") - base
    console.log("\n| bytecode (program minus baseline) | bytes |")
    console.log("|---|---:|")
    console.log(`| ours: src/mqtt + src/net/host.ts (QoS 0-2, subscribe, unsubscribe) | ${ours} |`)
    console.log(`| stock: @devicescript/net MQTT client + sockets + observables | ${stock} |`)
    console.log(`\nours / stock bytecode = ${(ours / stock).toFixed(2)}x`)
    await w5500Section()
}

/** The W5100S against the W5500, same firmware and settings (generic platform): `npm run bench -- --w5100s`. */
async function w5100sSection() {
    console.log("\nW5100S against W5500 (both emulated): the generic image in device mode, REPORT_MS=1000, 10 reports\n")
    const w = await w5500Figures(10, "w5500")
    const s = await w5500Figures(10, "w5100s")
    console.log("| figure | W5500 | W5100S |")
    console.log("|---|---:|---:|")
    console.log(`| SPI bytes per report (QoS 1 PUBLISH of ${w.pkt} bytes and its PUBACK) | ${w.spi.toFixed(1)} | ${s.spi.toFixed(1)} |`)
    console.log(`| SPI transactions (frames) per report | ${w.frames.toFixed(1)} | ${s.frames.toFixed(1)} |`)
    console.log(`| boot to first report, from the VM's first line | ${w.bootVm} ms | ${s.bootVm} ms |`)
    console.log("\n| image | whole image | left of 64 KB |")
    console.log("|---|---:|---:|")
    for (const img of ["src/images/sim-w5100s-generic.ts", "src/images/board-w5100s-generic.ts", "src/images/sim-picow-generic.ts", "src/images/board-picow-generic.ts"]) {
        const m = measureImage(img)
        console.log(`| ${img} | ${m.functions} | ${m.left} |`)
    }
}

/** The W5500 figures alone: `npm run bench -- --w5500`. */
async function w5500Section() {
    console.log("\nW5500 (emulated, npm start's default network): the firmware image src/main.ts in device mode, REPORT_MS=1000\n")
    const w = await w5500Figures()
    console.log("| figure | value | target |")
    console.log("|---|---:|---:|")
    console.log(`| SPI bytes per report (the firmware's QoS 1 PUBLISH of ${w.pkt} bytes, ${w.payload}-byte payload, and its PUBACK) | ${w.spi.toFixed(1)} | <= ${w.target.toFixed(0)} (1.5x packet + 40) |`)
    console.log(`| SPI transactions (frames) per report | ${w.frames.toFixed(1)} | |`)
    console.log(`| boot to first report at the broker, from spawning devs run (includes compiling the image) | ${w.boot} ms | |`)
    console.log(`| boot to first report, from the VM's first line | ${w.bootVm} ms | < 1500 ms |`)
    console.log(`| command round trip p50, at the chip (${w.cmd.n} commands/set, wall time) | ${w.cmd.p50.toFixed(1)} ms | <= 30 ms |`)
    console.log(`| command round trip p99 | ${w.cmd.p99.toFixed(1)} ms | <= 60 ms |`)
    console.log(`\ndevice-side bring-up phases (since boot): ${w.phases.join(", ")}`)

    console.log("\n| image | network stack bytecode (src/net/wiznet, dhcp/dns/sntp/ip, src/hal) | whole image | left of 64 KB |")
    console.log("|---|---:|---:|---:|")
    for (const img of ["src/images/sim-generic.ts", "src/images/board-generic.ts", "src/images/board-alibaba.ts"]) {
        const m = measureImage(img)
        let stack = 0
        for (const [f, b] of m.files) if (/src\/net\/(wiznet\/|dhcp|dns|sntp|ip)|src\/hal\//.test(f)) stack += b
        console.log(`| ${img} | ${stack} | ${m.functions} | ${m.left} |`)
    }
}

main().then(
    () => process.exit(0),
    e => {
        console.error(e instanceof Error ? e.message : e)
        process.exit(1)
    }
)
