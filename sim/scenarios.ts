/**
 * Fault scenarios and the soak: the real firmware image (src/main.ts) in the simulator's device
 * mode, reporting at QoS 1 to aedes through the fault proxy (sim/faultproxy.ts), over the
 * simulator's socket or the emulated W5500 and LAN (sim/w5500/). Every report the device makes is
 * logged by it (LOG_LEVEL=debug) and matched against what the broker received, so each scenario
 * yields: reports made, lost (never reached the broker), duplicates (reached it more than once,
 * QoS 1 resends after a lost PUBACK), recovery time after each fault, and connection attempts
 * with the gaps between them (backoff).
 *
 *   npm run soak                 every scenario in full, then the heap ballast search, the heap
 *                                probe in a fresh device, the 10,000-report soak with faults
 *                                injected, and the heap probe after it (SOAK_REPORTS=N for fewer)
 *   npm run soak -- --quick      the reduced versions (what npm test runs)
 *   npm run soak -- NAME ...     only those scenarios (names: see SCENARIOS)
 *
 * Everything stays on 127.0.0.1 (the emulated LAN is loopback-only).
 */
import path from "node:path"
import type { ChildProcess } from "node:child_process"
import mqtt from "mqtt"
import { startAedes, type AedesBroker } from "./brokers.ts"
import { ROOT, runVm, type VmRun } from "./devs.ts"
import { loadEnvFiles } from "./envfile.ts"
import { FaultProxy } from "./faultproxy.ts"
import { prng } from "./hostile-broker.ts"
import { startHostLink } from "./hostlink.ts"
import { deviceSettings, startEmulatedNetwork } from "./start.ts"
import type { LanOptions, W5500Sim } from "./w5500/index.ts"
import type { UdpDatagram } from "./w5500/chip.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

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

/** Gaps between the connection attempts made in [from, to). */
function gapsBetween(attempts: number[], from: number, to: number): number[] {
    const a = attempts.filter(t => t >= from && t < to)
    return a.slice(1).map((t, i) => t - a[i])
}

/** The standard checks: nothing lost, the device alive. */
function judge(r: ScenarioResult, rig: Rig, extra: string[] = []): ScenarioResult {
    if (r.lost > 0) r.problems.push(`${r.lost} QoS 1 reports lost`)
    if (rig.exited) r.problems.push(`the VM exited:\n${rig.tail(15)}`)
    if (rig.panic || rig.lines.some(l => /Unhandled exception/.test(l))) r.problems.push(`the VM panicked or had an unhandled exception: ${rig.panic ?? "see the console"}`)
    r.problems.push(...extra)
    return r
}

type Runner = (quick: boolean, log: boolean) => Promise<ScenarioResult>

/** Runs `body` on a rig, always closing it. */
async function withRig(name: string, opts: Parameters<typeof Rig.start>[1], body: (rig: Rig, t0: number) => Promise<ScenarioResult>): Promise<ScenarioResult> {
    const t0 = Date.now()
    const rig = await Rig.start(name, opts)
    try {
        return await body(rig, t0)
    } finally {
        await rig.close()
    }
}

/** Broker killed (listener and every connection destroyed) and restarted N times during the QoS 1 stream. */
const brokerRestarts: Runner = (quick, log) =>
    withRig("broker-restart", { net: "host", log }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const recovery: number[] = []
        const gaps: number[] = []
        const times = quick ? 2 : 5
        for (let i = 0; i < times; i++) {
            await rig.broker.stop()
            const down = Date.now()
            await sleep(quick ? 2500 : 4000)
            const up = Date.now()
            gaps.push(...gapsBetween(rig.attempts, down, up))
            await rig.broker.start()
            const from = rig.arrivals.length
            recovery.push((await rig.reports(1, 60000, `reports after restart ${i + 1}`, from)) - up)
            await rig.reports(2, 20000, `steady after restart ${i + 1}`)
            // the client starts its backoff again from 1 s only after a session of 10 s (a broker
            // that accepts and drops at once must not be hammered): space the full run's restarts
            if (!quick) await sleep(10000)
        }
        await sleep(3000)
        const r = judge(await rig.tally(`broker killed and restarted ${times}x`, t0, recovery, gaps), rig)
        if (gaps.length >= 2 && !(gaps[gaps.length - 1] >= gaps[0])) r.problems.push(`reconnect gaps do not grow: ${gaps.join(", ")}`)
        return r
    })

/** A dead link with open sockets (no FIN, no RST) while idle: keepalive must notice. */
const halfOpenIdle: Runner = (quick, log) =>
    withRig("half-open-idle", { net: "host", log, settings: { REPORT_MS: 60000, MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(1, 60000, "first report")
        const conns = rig.attempts.length
        rig.proxy.blackhole()
        const start = Date.now()
        // keepalive 5 s: the client sends PINGREQ after 5 s of silence and gives up some seconds later
        while (rig.attempts.length === conns && Date.now() - start < 40000) await sleep(50)
        const detectedMs = Date.now() - start
        rig.proxy.pass()
        const healed = Date.now()
        // idle (60 s reports): recovery is the next MQTT session the broker accepts
        const deadline = healed + 60000
        while (!rig.sessions.some(t => t >= healed) && Date.now() < deadline && !rig.exited) await sleep(20)
        const back = rig.sessions.find(t => t >= healed)
        const r = judge(await rig.tally("half-open link while idle", t0, back ? [back - healed] : [], []), rig)
        if (!back) r.problems.push("no new MQTT session within 60 s of the link healing")
        r.notes.push(`dead link noticed (new connection attempt) ${detectedMs} ms after it went silent, keepalive 5 s`)
        if (rig.attempts.length === conns) r.problems.push("the device never noticed the dead link")
        return r
    })

/** A dead link during a report stream: unacknowledged reports stay queued and are resent. */
const halfOpenPublish: Runner = (quick, log) =>
    withRig("half-open-publish", { net: "host", log, settings: { MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const deadMs = quick ? 8000 : 12000
        rig.proxy.blackhole()
        await sleep(deadMs)
        rig.proxy.pass()
        const healed = Date.now()
        const from = rig.arrivals.length
        const rec = (await rig.reports(1, 60000, "report after the link healed", from)) - healed
        await rig.reports(3, 20000, "steady after healing")
        const r = judge(await rig.tally("half-open link during a publish stream", t0, [rec], []), rig)
        const black = [...rig.made.values()].filter(at => at >= healed - deadMs && at < healed).length
        r.notes.push(`${black} reports made while the link was dead`)
        return r
    })

/** Connections reset while a packet is half-way through (writes split into small pieces). */
const resetMidPacket: Runner = (quick, log) =>
    withRig("reset-mid-packet", { net: "host", log }, async (rig, t0) => {
        await rig.reports(2, 60000, "first reports")
        const recovery: number[] = []
        const times = quick ? 2 : 5
        for (let i = 0; i < times; i++) {
            rig.proxy.setSplit(7)
            rig.proxy.setDelay(30)
            // reset while a report is on its way in 7-byte pieces
            const n = rig.made.size
            while (rig.made.size === n) await sleep(5)
            await sleep(40)
            rig.proxy.resetAll()
            const at = Date.now()
            rig.proxy.setSplit(0)
            rig.proxy.setDelay(0)
            const from = rig.arrivals.length
            recovery.push((await rig.reports(1, 60000, `reports after reset ${i + 1}`, from)) - at)
        }
        await rig.reports(2, 20000, "steady")
        return judge(await rig.tally(`connection reset mid-packet ${times}x`, t0, recovery, []), rig)
    })

/** A network partition: nothing passes for 10 s (both ways), then everything does again. */
const partition: Runner = (quick, log) =>
    withRig("partition", { net: "host", log, settings: { MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const secs = quick ? 6 : 10
        rig.proxy.blackhole()
        rig.proxy.refuse(true)
        const start = Date.now()
        await sleep(secs * 1000)
        const gaps = gapsBetween(rig.attempts, start, Date.now())
        rig.proxy.refuse(false)
        rig.proxy.pass()
        const healed = Date.now()
        const rec = (await rig.reports(1, 60000, "report after the partition", rig.arrivals.length)) - healed
        await rig.reports(2, 20000, "steady")
        return judge(await rig.tally(`${secs} s network partition`, t0, [rec], gaps), rig)
    })

/** The Ethernet cable pulled for 5 s on the emulated W5500 (PHY link down, then up). */
const linkFlap: Runner = (quick, log) =>
    withRig("link-flap", { net: "w5500", log }, async (rig, t0) => {
        await rig.reports(3, 90000, "first reports")
        const recovery: number[] = []
        const times = quick ? 1 : 3
        for (let i = 0; i < times; i++) {
            rig.lan!.chip.setLink(false)
            await sleep(5000)
            rig.lan!.chip.setLink(true)
            const up = Date.now()
            recovery.push((await rig.reports(1, 60000, `report after link up ${i + 1}`, rig.arrivals.length)) - up)
            await rig.reports(2, 20000, "steady")
        }
        const r = judge(await rig.tally(`W5500 PHY link down 5 s, up (${times}x)`, t0, recovery, []), rig)
        if (!rig.lines.some(l => /link down/i.test(l))) r.problems.push("the device did not log the link going down")
        return r
    })

/** The DHCP server disappears before the renewal of a 10 s lease, and comes back 20 s later. */
const dhcpGone: Runner = (quick, log) =>
    withRig("dhcp-gone", { net: "w5500", log, lan: { leaseSeconds: 10 } }, async (rig, t0) => {
        await rig.reports(3, 90000, "first reports")
        const dhcp = rig.lan!.lan.dhcp
        dhcp.silent = true
        const gone = Date.now()
        await sleep(quick ? 16000 : 22000)
        const lostLine = rig.lines.find(l => /lease (lost|expired)|lost.*lease/i.test(l))
        dhcp.silent = false
        const back = Date.now()
        const rec = (await rig.reports(1, 90000, "report after DHCP came back", rig.arrivals.length)) - back
        await rig.reports(2, 20000, "steady")
        const r = judge(await rig.tally("DHCP server gone at renewal (10 s lease), back after " + Math.round((back - gone) / 1000) + " s", t0, [rec], []), rig)
        r.notes.push(lostLine ? `the device logged: ${lostLine.replace(/^.*?w5500: /, "")}` : "no lease-lost line (the lease outlived the outage)")
        return r
    })

/** The DNS server stops answering at boot; the device retries until it answers again. */
const dnsGone: Runner = (quick, log) =>
    withRig("dns-gone", { net: "w5500", log }, async (rig, t0) => {
        rig.lan!.lan.dns.silent = true
        await rig.line(/resolve broker\.lan|no answer for broker\.lan/i, 90000, "a DNS failure for broker.lan")
        await sleep(quick ? 2000 : 10000)
        rig.lan!.lan.dns.silent = false
        const back = Date.now()
        const rec = (await rig.reports(1, 90000, "first report after DNS came back", 0)) - back
        await rig.reports(2, 20000, "steady")
        const r = judge(await rig.tally("DNS server silent at boot, back later", t0, [rec], []), rig)
        const l = rig.lines.find(x => /resolve broker\.lan|no answer for broker\.lan/i.test(x))
        if (l) r.notes.push(`logged: ${l}`)
        return r
    })

/** The NTP server is silent at boot: the generic platform reports anyway; the time arrives later. */
const ntpGone: Runner = (quick, log) =>
    withRig("ntp-gone", { net: "w5500", log }, async (rig, t0) => {
        rig.lan!.lan.ntp.mode = "silent"
        await rig.reports(2, 90000, "reports without the time")
        rig.lan!.lan.ntp.mode = "normal"
        const back = Date.now()
        const deadline = back + (quick ? 60000 : 120000)
        let setAt = 0
        while (!setAt && Date.now() < deadline && !rig.exited) {
            if (rig.lines.some(l => /time .*SNTP|SNTP.*time/i.test(l) && !/failed|no answer/i.test(l))) setAt = Date.now()
            await sleep(100)
        }
        const r = judge(await rig.tally("NTP server silent at boot", t0, [], []), rig)
        r.notes.push(setAt ? `time set by SNTP ${((setAt - back) / 1000).toFixed(1)} s after the server answered again` : "time not set within the wait (SNTP retry period longer than the scenario)")
        return r
    })

/** One mangled copy of a reply: truncated, bytes flipped, random bytes, or a length field lying. */
function mangle(data: Uint8Array, r: () => number): Uint8Array {
    const b = Buffer.from(data)
    const kind = Math.floor(r() * 4)
    if (kind === 0) return b.subarray(0, Math.floor(r() * b.length))
    if (kind === 1) {
        for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) b[Math.floor(r() * b.length)] ^= 1 + Math.floor(r() * 255)
        return b
    }
    if (kind === 2) return Buffer.from(Array.from({ length: Math.floor(r() * 600) }, () => Math.floor(r() * 256)))
    // a length or count field lying: bump one of the first 64 bytes (DNS counts, DHCP option lengths, NTP header)
    b[Math.floor(r() * Math.min(64, b.length))] = 0xff
    return b
}

/**
 * The LAN's DHCP, DNS and NTP servers answer with mangled replies (two mangled copies ahead of
 * each reply, and the reply itself mangled at a seeded 70 %) while the device
 * boots on a 10 s lease: its parsers see truncation, flipped bytes, random bytes and lying length
 * fields on the live path. It must not crash, and must get its lease, name and time from the good
 * replies and report. Then the mangling stops and the device keeps reporting across renewals.
 */
const lanGarbage: Runner = (quick, log) => {
    const r = prng(quick ? 7 : 11)
    let mangled = 0
    let on = true
    const prep = (lan: W5500Sim) => {
        for (const srv of [lan.lan.dhcp, lan.lan.dns, lan.lan.ntp] as { handle: (d: UdpDatagram, now: number) => UdpDatagram[] }[]) {
            const real = srv.handle.bind(srv)
            // while on: two mangled copies ahead of each reply, and the reply itself mangled at 70 %
            srv.handle = (d, now) =>
                real(d, now).flatMap(x => {
                    if (!on) return [x]
                    mangled += 2
                    const out = [{ ...x, data: mangle(x.data, r) }, { ...x, data: mangle(x.data, r) }]
                    // quick (npm test): the reply itself stays good, so boot is not slowed by retries
                    if (!quick && r() < 0.7) {
                        mangled++
                        out.push({ ...x, data: mangle(x.data, r) })
                    } else out.push(x)
                    return out
                })
        }
    }
    return withRig("lan-garbage", { net: "w5500", log, lan: { leaseSeconds: 10 }, prep }, async (rig, t0) => {
        await rig.reports(3, 120000, "reports despite the mangled replies")
        await sleep(quick ? 8000 : 20000)
        on = false
        const from = rig.arrivals.length
        await sleep(12000)
        const after = rig.arrivals.length - from
        const res = judge(await rig.tally(`DHCP, DNS and NTP replies mangled from boot (2 bad copies ahead of each reply${quick ? "" : ", the reply itself at 70 %"})`, t0, [], []), rig)
        res.notes.push(`${mangled} mangled replies sent to the device; ${after} reports in the 12 s after the mangling stopped`)
        if (after < 8) res.problems.push(`only ${after} reports in 12 s after the mangling stopped`)
        return res
    })
}

/** How far below the largest surviving ballast the soak holds (the peak moves by a few KB between runs). */
export const SOAK_MARGIN_KB = 6

/** How far the heap probe goes (KB added) before it stops on its own. */
const PROBE_MAX_KB = 48

/** How much less headroom after a soak than in a fresh device counts as a leak (1 KB steps, allocation noise). */
export const HEADROOM_TOLERANCE_KB = 2

/** Every scenario, by name. */
export const SCENARIOS: Record<string, Runner> = {
    "broker-restart": brokerRestarts,
    "half-open-idle": halfOpenIdle,
    "half-open-publish": halfOpenPublish,
    "reset-mid-packet": resetMidPacket,
    partition,
    "link-flap": linkFlap,
    "dhcp-gone": dhcpGone,
    "dns-gone": dnsGone,
    "ntp-gone": ntpGone,
    "lan-garbage": lanGarbage,
}

/** Asks for a report with `commands/report` and waits until the device made it (false: it did not within `ms`). */
async function requestReport(rig: Rig, id: string, ms: number): Promise<boolean> {
    const made = rig.made.size
    const cmd = await rig.commander()
    await cmd.publishAsync(`devices/${rig.id}/commands/report`, JSON.stringify({ id }), { qos: 1 })
    const deadline = Date.now() + ms
    while (rig.made.size === made && Date.now() < deadline && !rig.exited && !rig.panic) await sleep(2)
    return rig.made.size > made
}

/**
 * What the heap measurement asks of the device: 5 commands answered by reports back to back,
 * then, after a connection reset, the reconnect with its report and one more command answered.
 * Returns why it could not, or undefined when it did.
 */
async function works(rig: Rig, tag: string): Promise<string | undefined> {
    try {
        for (let i = 0; i < 5; i++) if (!(await requestReport(rig, `${tag}-${i}`, 10000))) return `command ${i + 1} of 5 got no report within 10 s${rig.panic ? ` (${rig.panic})` : ""}`
        rig.proxy.resetAll()
        // the report the device makes after it reconnected, then one more on request (a command
        // sent before the device has subscribed again is lost, as MQTT has it: up to 3 tries)
        await rig.reports(1, 60000, `the report after a reset (${tag})`)
        let ok = false
        for (let i = 0; i < 3 && !ok; i++) ok = await requestReport(rig, `${tag}-r${i}`, 5000)
        if (!ok) return "3 commands after the reconnect got no report within 5 s each"
        return rig.exited || rig.panic ? `the VM ${rig.panic ? `panicked (${rig.panic})` : "exited"}` : undefined
    } catch (e) {
        return (e as Error).message.split("\n")[0]
    }
}

/** Boots with BALLAST_KB=kb and says whether the device still subscribes, reports and `works`. */
async function survives(kb: number, log: boolean): Promise<boolean> {
    let rig: Rig | undefined
    try {
        rig = await Rig.start(`ballast-${kb}`, { net: "w5500", log, settings: { BALLAST_KB: kb } })
        await rig.ready(2)
        return (await works(rig, `b${kb}`)) === undefined
    } catch {
        return false
    } finally {
        await rig?.close()
    }
}

/** What `probeHeadroom` found. */
export interface Headroom {
    /** KB added to the ballast with which the device still worked */
    kb: number
    /** why the next step failed */
    why: string
}

/**
 * The heap left in a device that has been running: grows its ballast 1 KB at a time (the heap
 * probe, `commands/ballast`, src/simdev/ballast.ts) and after each step asks what `survives` asks.
 * Returns the KB added before the first step the device did not get through (it ends dead or
 * unable to work; close the rig afterwards).
 */
export async function probeHeadroom(rig: Rig, heldKb: number, maxKb = PROBE_MAX_KB): Promise<Headroom> {
    for (let added = 0; added < maxKb; added++) {
        const want = heldKb + added + 1
        const cmd = await rig.commander()
        await cmd.publishAsync(`devices/${rig.id}/commands/ballast`, "1", { qos: 1 })
        try {
            await rig.line(new RegExp(`ballast: holding ${want} KB`), 10000, `the ballast grown to ${want} KB`)
        } catch (e) {
            return { kb: added, why: (e as Error).message.split("\n")[0] }
        }
        const why = await works(rig, `h${want}`)
        if (why) return { kb: added, why: `holding ${want} KB: ${why}` }
    }
    return { kb: maxKb, why: `stopped at ${maxKb} KB` }
}

/**
 * The heap probe in a fresh device: boots holding `heldKb`, makes `reports` reports on request,
 * then `probeHeadroom`. The figure to compare with the same probe after a soak.
 */
export async function freshHeadroom(heldKb: number, reports: number, log = false): Promise<Headroom> {
    let rig: Rig | undefined
    try {
        rig = await Rig.start("headroom", { net: "w5500", log, settings: { REPORT_MS: 3600000, BALLAST_KB: heldKb } })
        await rig.ready()
        for (let i = 0; i < reports; i++) if (!(await requestReport(rig, `f${i}`, 10000))) throw new Error(`fresh device: report ${i} not made\n${rig.tail()}`)
        return await probeHeadroom(rig, heldKb)
    } finally {
        await rig?.close()
    }
}

/** The largest ballast (KB) the firmware survives while connecting and reporting. */
export async function ballastSearch(log = false, lo = 0, hi = 64): Promise<number> {
    // invariant: survives(lo), !survives(hi)
    while (hi - lo > 1) {
        const mid = (lo + hi) >> 1
        if (await survives(mid, log)) lo = mid
        else hi = mid
    }
    return lo
}

/**
 * The soak: `total` reports requested by `commands/report` (one at a time, closed loop) with a
 * fault every 1,000 reports (every sixth of a shorter run): connection resets and broker restarts
 * in turn, over the emulated W5500, with
 * `ballastKb` of the heap held. Returns the result; lost reports and missing replies are problems.
 * `probeKb` > 0: afterwards, when nothing went wrong, `probeHeadroom` measures the heap left
 * (`headroom`), up to that many KB.
 */
export async function soak(total: number, ballastKb: number, log = false, progress?: (s: string) => void, probeKb = 0): Promise<ScenarioResult> {
    return await withRig("soak", { net: "w5500", log, timeoutMs: 3 * 3600 * 1000, settings: { REPORT_MS: 3600000, BALLAST_KB: ballastKb } }, async (rig, t0) => {
        await rig.reports(1, 90000, "first report")
        const recovery: number[] = []
        let i = 0
        let stalls = 0
        let faults = 0
        let lastFault = 0
        const every = total >= 5000 ? 1000 : Math.max(25, Math.floor(total / 6))
        while (rig.made.size < total) {
            if (rig.exited || rig.panic) break
            if (!(await requestReport(rig, `s${i++}`, 5000))) stalls++
            const n = rig.made.size
            // a fault every `every` reports: connection resets and broker restarts in turn
            if (n > 0 && n % every === 0 && n !== lastFault) {
                lastFault = n
                const kind = (n / every) % 2 ? "reset" : "broker restart"
                if (kind === "reset") rig.proxy.resetAll()
                else {
                    await rig.broker.stop()
                    await sleep(2000)
                    await rig.broker.start()
                }
                const at = Date.now()
                recovery.push((await rig.reports(1, 60000, `report after the ${kind} at ${n}`, rig.arrivals.length)) - at)
                faults++
            }
            if (progress && n % 500 === 0) progress(`soak: ${n}/${total} reports, ${rig.received.size} at the broker`)
        }
        await sleep(5000)
        const r = judge(await rig.tally(`soak: ${total} reports with ${ballastKb} KB ballast, a fault every ${every}`, t0, recovery, []), rig)
        r.notes.push(`${i} report commands sent, ${stalls} not answered by a report within 5 s (sent again; commands sent while the broker was down are lost); ${faults} faults injected; ${(r.made / (r.ms / 1000)).toFixed(1)} reports/s over ${Math.round(r.ms / 1000)} s`)
        if (probeKb > 0 && !r.problems.length) r.headroom = await probeHeadroom(rig, ballastKb, probeKb)
        return r
    })
}

/** A table line for a result. */
export function describe(r: ScenarioResult): string {
    const rec = r.recoveryMs.length ? `${Math.min(...r.recoveryMs)}-${Math.max(...r.recoveryMs)} ms` : "-"
    const gaps = r.attemptGapsMs.length ? r.attemptGapsMs.join(", ") : "-"
    return `| ${r.name} | ${r.made} | ${r.lost} | ${r.duplicates} | ${rec} | ${r.connections} | ${gaps} | ${r.problems.length ? "FAIL: " + r.problems.join("; ") : "ok"} |`
}

const TABLE_HEAD = ["| scenario | reports made | lost | duplicates | recovery | connections | gaps between attempts (ms) | verdict |", "|---|---:|---:|---:|---|---:|---|---|"]

async function main(argv: string[]): Promise<number> {
    const quick = argv.includes("--quick")
    const log = argv.includes("--log")
    const names = argv.filter(a => !a.startsWith("--"))
    for (const n of names) if (!SCENARIOS[n] && n !== "soak" && n !== "ballast") {
        console.error(`soak: unknown scenario ${n} (known: ${Object.keys(SCENARIOS).join(", ")}, ballast, soak)`)
        return 2
    }
    const run = names.length ? names : [...Object.keys(SCENARIOS), "ballast", "soak"]
    const results: ScenarioResult[] = []
    let failed = false
    console.log(...TABLE_HEAD.slice(0, 1))
    console.log(TABLE_HEAD[1])
    let ballast = -1
    for (const n of run) {
        if (n === "ballast" || n === "soak") continue
        const r = await SCENARIOS[n](quick, log)
        results.push(r)
        failed ||= r.problems.length > 0
        console.log(describe(r))
        for (const note of r.notes) console.log(`|   ${note} | | | | | | | |`)
    }
    if (run.includes("ballast") || run.includes("soak")) {
        ballast = await ballastSearch(log)
        console.log(`\nheap: the firmware (W5500 image: boot, subscribe, reports, 5 commands, a reconnect) survives ${ballast} KB of ballast held from boot (BALLAST_KB, 1 KB steps)`)
    }
    if (run.includes("soak")) {
        const total = quick ? 300 : Number(process.env.SOAK_REPORTS ?? 10000)
        // the peak at connect moves by a few KB from run to run (timing, fragmentation): hold 6 KB less
        const hold = Math.max(0, ballast - SOAK_MARGIN_KB)
        // the same heap probe in a fresh device and after the soak: a leak shows as a difference
        const fresh = await freshHeadroom(hold, 20, log)
        console.log(`\nheap probe, fresh device holding ${hold} KB (20 reports made): ${fresh.kb} KB more could be added (next step: ${fresh.why})`)
        const r = await soak(total, hold, log, s => console.log(s), PROBE_MAX_KB)
        failed ||= r.problems.length > 0
        console.log(TABLE_HEAD.join("\n"))
        console.log(describe(r))
        for (const note of r.notes) console.log(`  ${note}`)
        console.log(`\nheadroom: with ${hold} KB held (${SOAK_MARGIN_KB} KB below the measured maximum) the device ${r.problems.length ? "did NOT complete" : "completed"} ${r.made} reports with faults injected`)
        if (r.headroom) {
            const drop = fresh.kb - r.headroom.kb
            console.log(`heap probe after the soak: ${r.headroom.kb} KB more could be added (next step: ${r.headroom.why}); fresh device: ${fresh.kb} KB; difference ${drop} KB, tolerance ${HEADROOM_TOLERANCE_KB} KB`)
            if (drop > HEADROOM_TOLERANCE_KB) {
                failed = true
                console.log(`FAIL: the headroom shrank by ${drop} KB over ${r.made} reports: a leak?`)
            }
        }
    }
    return failed ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
    main(process.argv.slice(2)).then(
        code => process.exit(code),
        e => {
            console.error(`soak: ${(e as Error)?.stack ?? e}`)
            process.exit(1)
        }
    )
}
