/**
 * The rig of the fault scenarios, the heap probe and the soak (sim/reliability/): the real
 * firmware image (src/main.ts) in the simulator's device mode, reporting at QoS 1 to aedes through
 * the fault proxy (sim/faultproxy.ts), over the simulator's socket or the emulated W5500 and LAN
 * (sim/w5500/). Every report the device makes is logged by it (LOG_LEVEL=debug) and matched
 * against what the broker received, so each run yields: reports made, lost (never reached the
 * broker), duplicates (reached it more than once, QoS 1 resends after a lost PUBACK), recovery
 * time after each fault, and connection attempts with the gaps between them (backoff).
 *
 * Everything stays on 127.0.0.1 (the emulated LAN is loopback-only).
 */
import path from "node:path"
import type { ChildProcess } from "node:child_process"
import mqtt from "mqtt"
import { startAedes, type AedesBroker } from "../brokers.ts"
import { ROOT, runVm, type VmRun } from "../devs.ts"
import { loadEnvFiles } from "../envfile.ts"
import { FaultProxy } from "../faultproxy.ts"
import { startHostLink } from "../hostlink.ts"
import { deviceSettings, startEmulatedNetwork } from "../start.ts"
import type { LanOptions, W5500Sim } from "../w5500/index.ts"
import type { Headroom } from "./heap.ts"

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** What one scenario measured. */
export interface ScenarioResult {
    name: string
    /** reports the device made (its own log) */
    made: number
    /** distinct reports the broker received */
    delivered: number
    /** made, settled (older than the settle time at the end), and never received */
    lost: number
    /** receptions beyond the first of a report */
    duplicates: number
    /** ms from the end of each fault to the next report at the broker */
    recoveryMs: number[]
    /** TCP connections the device opened to the broker (through the proxy) */
    connections: number
    /** ms between consecutive connection attempts while the broker was unreachable */
    attemptGapsMs: number[]
    /** free-form figures (e.g. "time set by SNTP after 12.3 s") */
    notes: string[]
    /** what went wrong (empty: the scenario's guarantees held) */
    problems: string[]
    /** wall time of the scenario, ms */
    ms: number
    /** the soak with the heap probe: what the device could still add to its ballast at the end */
    headroom?: Headroom
}

/** A running device with its broker, proxy and (optionally) emulated network. */
export class Rig {
    readonly lines: string[] = []
    /** payload -> when the device logged making it */
    readonly made = new Map<string, number>()
    /** payload -> receptions at the broker */
    readonly received = new Map<string, number>()
    /** Date.now() of each report reception (first receptions only) */
    readonly arrivals: number[] = []
    /** Date.now() of each connection the proxy accepted */
    readonly attempts: number[] = []
    /** Date.now() of each MQTT session the broker accepted from the device */
    readonly sessions: number[] = []
    child?: ChildProcess
    run?: Promise<VmRun>
    exited = false
    /** the first panic line (OutOfMemory, ...): the device restarted itself, as a board would */
    panic?: string
    private poll?: NodeJS.Timeout
    observer?: mqtt.MqttClient

    private constructor(
        readonly id: string,
        readonly broker: AedesBroker,
        readonly proxy: FaultProxy,
        readonly lan: W5500Sim | undefined
    ) {}

    /** Starts broker, proxy, LAN (with net "w5500") and the device; resolves once it has its settings. */
    static async start(name: string, opts: { net: "host" | "w5500"; lan?: LanOptions; settings?: Record<string, string | number | boolean>; timeoutMs?: number; log?: boolean; prep?: (lan: W5500Sim) => void }): Promise<Rig> {
        const id = `soak-${name}-${process.pid}`
        const broker = await startAedes()
        const proxy = await FaultProxy.start({ targetHost: "127.0.0.1", targetPort: broker.port })
        const lan = opts.net === "w5500" ? await startEmulatedNetwork({ lan: { log: () => {}, ...opts.lan } }) : undefined
        if (lan) opts.prep?.(lan)
        const r = new Rig(id, broker, proxy, lan)
        broker.aedes.on("client", c => {
            if (c.id === id) r.sessions.push(Date.now())
        })
        broker.aedes.on("publish", (p, client) => {
            if (!client || client.id !== id) return
            const text = (p.payload as Buffer).toString()
            if (p.topic.endsWith("/telemetry")) {
                const n = r.received.get(text) ?? 0
                r.received.set(text, n + 1)
                if (n === 0) r.arrivals.push(Date.now())
            }
        })
        let seen = 0
        r.poll = setInterval(() => {
            const a = proxy.stats().accepted
            for (; seen < a; seen++) r.attempts.push(Date.now())
        }, 10)
        const env = loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: false }])
        const settings = {
            ...deviceSettings(env.settings, proxy.port, opts.net),
            DEVICE_ID: id, REPORT_MS: 1000, LOG_LEVEL: "debug", MQTT_USER: "", MQTT_PASS: "", HA_DISCOVERY: false,
            ...opts.settings,
        } as Record<string, string | number | boolean>
        const link = await startHostLink(settings, { waitMs: 120000, time: opts.net === "host" })
        try {
            r.run = runVm("src/main.ts", {
                mode: "device",
                timeoutMs: opts.timeoutMs ?? 600000,
                onSpawn: c => (r.child = c),
                onLine: l => {
                    r.lines.push(l)
                    if (r.lines.length > 4000) r.lines.splice(0, 2000)
                    if (opts.log) console.log(`[device] ${l}`)
                    if (!r.panic && /PANIC \d+|Exception: (OutOfMemory|InfiniteLoop)/.test(l)) r.panic = l
                    const m = /report #\d+ to \S+: (.*)$/.exec(l)
                    if (m) r.made.set(m[1], Date.now())
                },
            })
            r.run.finally(() => (r.exited = true)).catch(() => {})
            const deadline = Date.now() + 60000
            while (link.served < 1 && !r.exited && Date.now() < deadline) await sleep(50)
            if (link.served < 1) throw new Error(`${name}: the device never asked for its settings\n${r.tail()}`)
        } catch (e) {
            await link.close()
            await r.close()
            throw e
        }
        await link.close()
        return r
    }

    tail(n = 30): string {
        return this.lines.slice(-n).join("\n")
    }

    /** Waits for `n` more first receptions of reports after `from` (an index into arrivals). */
    async reports(n: number, timeoutMs: number, what: string, from = this.arrivals.length): Promise<number> {
        const deadline = Date.now() + timeoutMs
        while (this.arrivals.length < from + n) {
            if (this.exited) throw new Error(`${what}: the VM exited\n${this.tail()}`)
            if (this.panic) throw new Error(`${what}: the VM panicked (${this.panic})\n${this.tail()}`)
            if (Date.now() > deadline) throw new Error(`${what}: ${this.arrivals.length - from} of ${n} reports after ${timeoutMs} ms\n${this.tail()}`)
            await sleep(20)
        }
        return this.arrivals[from + n - 1]
    }

    /** Waits for a console line matching `re` (any line since boot). */
    async line(re: RegExp, timeoutMs: number, what: string): Promise<string> {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            const l = this.lines.find(x => re.test(x))
            if (l) return l
            if (this.exited) throw new Error(`${what}: the VM exited\n${this.tail()}`)
            if (Date.now() > deadline) throw new Error(`${what}: no line matching ${re} after ${timeoutMs} ms\n${this.tail()}`)
            await sleep(20)
        }
    }

    /** Waits for the device's first `n` reports and its command subscription. */
    async ready(n = 1): Promise<void> {
        await this.reports(n, 60000, "first reports")
        await this.line(/boot: subscribe: /, 20000, "the command subscription")
    }

    /** An MQTT client on the broker (direct, not through the proxy) that can send commands. */
    async commander(): Promise<mqtt.MqttClient> {
        if (!this.observer) {
            this.observer = await mqtt.connectAsync(this.broker.url, { clientId: `cmd-${this.id}`, reconnectPeriod: 200 })
            this.observer.on("error", () => {})
        }
        return this.observer
    }

    /**
     * Tallies the run: reports made more than `settleMs` before now and never received are lost.
     * First it gives the device up to `drainMs` to forward what it still holds: with store and
     * forward, samples taken during an outage arrive after the reconnect, behind the status and
     * discovery messages, oldest first.
     */
    async tally(name: string, t0: number, recoveryMs: number[], attemptGapsMs: number[], settleMs = 5000, drainMs = 20000): Promise<ScenarioResult> {
        const deadline = Date.now() + drainMs
        while (Date.now() < deadline && !this.exited && [...this.made.keys()].some(p => !this.received.has(p))) await sleep(100)
        const now = Date.now()
        let lost = 0
        for (const [p, at] of this.made) if (!this.received.has(p) && now - at > settleMs) lost++
        let duplicates = 0
        for (const n of this.received.values()) duplicates += n - 1
        return {
            name, made: this.made.size, delivered: this.received.size, lost, duplicates, recoveryMs, attemptGapsMs,
            connections: this.attempts.length, notes: [], problems: [], ms: now - t0,
        }
    }

    async close() {
        if (this.poll) clearInterval(this.poll)
        const c = this.child
        if (c && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
        await this.run?.catch(() => {})
        await this.observer?.endAsync(true).catch(() => {})
        await this.proxy.close().catch(() => {})
        await this.lan?.close().catch(() => {})
        await this.broker.close().catch(() => {})
    }
}

/** The standard checks: nothing lost, the device alive. */
export function judge(r: ScenarioResult, rig: Rig, extra: string[] = []): ScenarioResult {
    if (r.lost > 0) r.problems.push(`${r.lost} QoS 1 reports lost`)
    if (rig.exited) r.problems.push(`the VM exited:\n${rig.tail(15)}`)
    if (rig.panic || rig.lines.some(l => /Unhandled exception/.test(l))) r.problems.push(`the VM panicked or had an unhandled exception: ${rig.panic ?? "see the console"}`)
    r.problems.push(...extra)
    return r
}

/** Runs `body` on a rig, always closing it. */
export async function withRig(name: string, opts: Parameters<typeof Rig.start>[1], body: (rig: Rig, t0: number) => Promise<ScenarioResult>): Promise<ScenarioResult> {
    const t0 = Date.now()
    const rig = await Rig.start(name, opts)
    try {
        return await body(rig, t0)
    } finally {
        await rig.close()
    }
}

/** Asks for a report with `commands/report` and waits until the device made it (false: it did not within `ms`). */
export async function requestReport(rig: Rig, id: string, ms: number): Promise<boolean> {
    const made = rig.made.size
    const cmd = await rig.commander()
    await cmd.publishAsync(`devices/${rig.id}/commands/report`, JSON.stringify({ id }), { qos: 1 })
    const deadline = Date.now() + ms
    while (rig.made.size === made && Date.now() < deadline && !rig.exited && !rig.panic) await sleep(2)
    return rig.made.size > made
}

/** A table line for a result. */
export function describe(r: ScenarioResult): string {
    const rec = r.recoveryMs.length ? `${Math.min(...r.recoveryMs)}-${Math.max(...r.recoveryMs)} ms` : "-"
    const gaps = r.attemptGapsMs.length ? r.attemptGapsMs.join(", ") : "-"
    return `| ${r.name} | ${r.made} | ${r.lost} | ${r.duplicates} | ${rec} | ${r.connections} | ${gaps} | ${r.problems.length ? "FAIL: " + r.problems.join("; ") : "ok"} |`
}

export const TABLE_HEAD = ["| scenario | reports made | lost | duplicates | recovery | connections | gaps between attempts (ms) | verdict |", "|---|---:|---:|---:|---|---:|---|---|"]
