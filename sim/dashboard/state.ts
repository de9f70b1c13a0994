/**
 * The dashboard's model of the device: what the console and the device's MQTT topics say (bring-up
 * phases, last values, counters, recent reports, console lines, a log of messages with commands
 * paired to their replies), kept in bounded buffers and pushed to subscribers as ServerEvents.
 */
import { formatMs, isErrorLine, isWarnLine, readDeviceLine } from "./bringup.ts"
import { classifyTopic } from "./topics.ts"
import {
    PHASES,
    REPLY_TIMEOUT_MS,
    type CommandRequest,
    type ConsoleLine,
    type Counters,
    type DeviceView,
    type LinkState,
    type MqttEntry,
    type Phase,
    type PhaseName,
    type ReplyInfo,
    type ServerEvent,
    type SessionInfo,
    type Snapshot,
    type TelemetryPoint,
} from "./protocol.ts"

/** Buffer sizes: what the server keeps, and what a page gets when it connects. */
export const LIMITS = { telemetry: 3600, console: 2000, mqtt: 1000, snapshotConsole: 400, snapshotMqtt: 300, payloadChars: 4000 }

/** Publishes one message on the broker (the MQTT bridge). */
export type Publisher = (topic: string, payload: string) => Promise<void>

/** Options of DashboardState. */
export interface StateOptions {
    /** clock, ms since the epoch (tests pass their own) */
    now?: () => number
    /** how long a command waits for its reply */
    replyTimeoutMs?: number
}

/** A report's fields, when the payload is a telemetry object. */
interface Report {
    ts?: number
    temperature?: number
    humidity?: number
    led?: boolean
    interval?: number
    uptime?: number
}

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined)

/** Parses a telemetry payload; undefined when it is not a JSON object. */
export function parseReport(text: string): Report | undefined {
    let v: unknown
    try {
        v = JSON.parse(text)
    } catch {
        return undefined
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined
    const o = v as Record<string, unknown>
    return {
        ts: num(o.ts),
        temperature: num(o.temperature),
        humidity: num(o.humidity),
        led: typeof o.led === "boolean" ? o.led : undefined,
        interval: num(o.interval),
        uptime: num(o.uptime),
    }
}

/** Median of a non-empty list. */
function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Spacing of on-schedule reports at `interval`: the median of the last few gaps between reports
 * carrying that interval, leaving out off-schedule ones (a "report now" comes early).
 */
export function measureCadence(points: { t: number; interval?: number }[], interval: number): number | undefined {
    const gaps: number[] = []
    for (let i = points.length - 1; i > 0 && gaps.length < 5; i--) {
        const a = points[i - 1]
        const b = points[i]
        if (a.interval !== interval || b.interval !== interval) break
        const d = b.t - a.t
        if (d >= interval / 2) gaps.push(d)
    }
    return gaps.length ? Math.round(median(gaps)) : undefined
}

/** Reports missing between two consecutive ones (gap over 1.5 times the longer of their intervals). */
export function missedBetween(gapMs: number, prevInterval: number, interval: number): number {
    const expect = Math.max(prevInterval, interval)
    if (!(expect > 0) || gapMs <= expect * 1.5) return 0
    return Math.max(0, Math.round(gapMs / expect) - 1)
}

/** The dashboard's state and its event stream. */
export class DashboardState {
    readonly info: SessionInfo
    private now: () => number
    private replyTimeoutMs: number
    private phases = new Map<PhaseName, Phase>()
    private counters: Counters = { reports: 0, reconnects: 0, restarts: 0, missed: 0, unanswered: 0, errorReplies: 0, consoleErrors: 0, commands: 0 }
    private device: DeviceView = { online: null }
    private link: LinkState = { state: "off", detail: "" }
    private telemetry: TelemetryPoint[] = []
    private consoleLines: ConsoleLine[] = []
    private mqtt: MqttEntry[] = []
    private seq = 0
    private listeners = new Set<(e: ServerEvent) => void>()
    private stateQueued = false
    private closed = false
    /** recent reports for the cadence and gap checks; cleared when the device goes away */
    private recent: { t: number; interval?: number }[] = []
    /** device sessions seen (status "online"); reconnects = sessions - 1 */
    private sessions = 0
    private runs = 0
    /** commands waiting for their reply: id -> entry */
    private waiting = new Map<string, MqttEntry>()
    private timers = new Set<ReturnType<typeof setTimeout>>()
    /** our own commands, to recognise their echo on commands/+ */
    private echoes = new Map<string, number>()
    private publisher?: Publisher
    private nextId = 1

    constructor(info: SessionInfo, opts: StateOptions = {}) {
        this.info = info
        this.now = opts.now ?? Date.now
        this.replyTimeoutMs = opts.replyTimeoutMs ?? REPLY_TIMEOUT_MS
        const at = this.now()
        for (const name of PHASES) this.phases.set(name, { name, state: "pending", detail: "", at })
        if (!info.topics) this.link = { state: "off", detail: info.mqttNote ?? "MQTT view off" }
    }

    /** Receives every event from now on; returns the function that stops it. */
    subscribe(fn: (e: ServerEvent) => void): () => void {
        this.listeners.add(fn)
        return () => this.listeners.delete(fn)
    }

    /** Everything a newly connected page needs. */
    snapshot(): Snapshot {
        return {
            info: this.info,
            ...this.stateUpdate(),
            telemetry: [...this.telemetry],
            console: this.consoleLines.slice(-LIMITS.snapshotConsole),
            mqtt: this.mqtt.slice(-LIMITS.snapshotMqtt),
        }
    }

    /** Current counters (a copy). */
    getCounters(): Counters {
        return { ...this.counters }
    }

    /** Current device values (a copy). */
    getDevice(): DeviceView {
        return { ...this.device }
    }

    /** Current phase (a copy). */
    getPhase(name: PhaseName): Phase {
        return { ...this.phases.get(name)! }
    }

    /** Stops the reply timers and the listeners. */
    close(): void {
        this.closed = true
        for (const t of this.timers) clearTimeout(t)
        this.timers.clear()
        this.listeners.clear()
    }

    /** Sets how commands are published (the MQTT bridge). */
    setPublisher(p: Publisher | undefined): void {
        this.publisher = p
    }

    /** The dashboard's own broker connection changed. */
    setLink(state: LinkState["state"], detail: string): void {
        if (this.link.state === state && this.link.detail === detail) return
        this.link = { state, detail }
        this.queueState()
    }

    // --- console ---

    /** A line of the device console (without the runner's prefix). */
    deviceLine(text: string): void {
        const meaning = readDeviceLine(text)
        if (meaning?.kind === "phase") this.setPhase(meaning.update.name, meaning.update.state, meaning.update.detail, meaning.update.ms)
        else if (meaning?.kind === "halted") {
            const stuck = PHASES.map(n => this.phases.get(n)!).find(p => p.state !== "ok")
            if (stuck) this.setPhase(stuck.name, "failed", `halted: ${meaning.reason}`)
        }
        const error = isErrorLine(text)
        if (error) {
            this.counters.consoleErrors++
            this.queueState()
        }
        this.addConsole("device", text, error ? "error" : isWarnLine(text) ? "warn" : /^boot: /.test(text.trim()) ? "boot" : "info")
    }

    /** A line of the runner (without its prefix). */
    runnerLine(text: string): void {
        if (/^starting /.test(text)) {
            this.runs++
            if (this.runs > 1) this.counters.restarts++
            for (const name of PHASES) this.setPhase(name, "pending", "")
            this.setPhase("config", "active", text)
            this.deviceGone()
        } else if (/^device .*restarting in/.test(text)) {
            this.setPhase("config", "failed", text.replace(/^device /, "the device "))
            for (const name of PHASES) if (name !== "config") this.setPhase(name, "pending", "")
            this.deviceGone()
        }
        const level = /warning|crashed|exited with code|does not compile/.test(text) ? (/warning/.test(text) ? "warn" : "error") : "info"
        this.addConsole("runner", text, level)
    }

    /** A line from the broker side (clients connecting) or from the dashboard itself. */
    infoLine(source: "broker" | "dashboard", text: string, level: ConsoleLine["level"] = "info"): void {
        this.addConsole(source, text, level)
    }

    private addConsole(source: ConsoleLine["source"], text: string, level: ConsoleLine["level"]) {
        const line: ConsoleLine = { seq: ++this.seq, at: this.now(), source, text, level }
        push(this.consoleLines, line, LIMITS.console)
        this.emit({ type: "console", line })
    }

    private setPhase(name: PhaseName, state: Phase["state"], detail: string, ms?: number) {
        const p = this.phases.get(name)!
        if (p.state === state && p.detail === detail && p.ms === ms) return
        const next: Phase = { name, state, detail, at: this.now() }
        if (ms !== undefined) next.ms = ms
        this.phases.set(name, next)
        this.queueState()
    }

    /** The device went away (restart, will): forget the cadence so the outage is not counted as missed reports. */
    private deviceGone() {
        this.recent = []
    }

    // --- MQTT ---

    /** A message seen on the broker (the bridge's subscriptions). */
    mqttIn(topic: string, payload: Buffer | string, retain: boolean): void {
        const topics = this.info.topics
        if (!topics) return
        const text = typeof payload === "string" ? payload : payload.toString("utf8")
        const { kind, name } = classifyTopic(topics, topic)
        if (kind === "command") {
            const key = topic + "\n" + text
            const n = this.echoes.get(key)
            if (n) {
                // our own command coming back through the subscription: logged when it was sent
                if (n > 1) this.echoes.set(key, n - 1)
                else this.echoes.delete(key)
                return
            }
        }
        const entry = this.entry("in", topic, name, text, retain, kind)
        if (kind === "telemetry") this.onReport(text, retain)
        else if (kind === "status") this.onStatus(text, retain)
        else if (kind === "reply") this.onReply(entry, text)
        else if (kind === "command") this.onCommand(entry, text)
        push(this.mqtt, entry, LIMITS.mqtt)
        this.emit({ type: "mqtt", entry })
    }

    /**
     * Publishes a command on the device's command topic with a fresh id and logs it; its reply is
     * paired with it when it comes. Throws on a request that is not a command.
     */
    async sendCommand(req: CommandRequest): Promise<MqttEntry> {
        const topics = this.info.topics
        if (!topics) throw new Error(this.info.mqttNote ?? "the MQTT view is off")
        if (!this.publisher) throw new Error("not connected to the broker")
        const id = `dash-${this.nextId++}`
        let body: Record<string, unknown>
        if (req.command === "set") {
            if (!req.params || typeof req.params !== "object" || Array.isArray(req.params)) throw new Error('"set" needs "params", an object like {"led":true}')
            body = { id, params: req.params }
        } else if (req.command === "toggle" || req.command === "report") body = { id }
        else throw new Error(`unknown command ${JSON.stringify((req as { command?: unknown }).command)}; expected set, toggle or report`)
        const topic = topics.commandPrefix + req.command
        const payload = JSON.stringify(body)
        const key = topic + "\n" + payload
        this.echoes.set(key, (this.echoes.get(key) ?? 0) + 1)
        const entry = this.entry("out", topic, topic.slice(topics.base.length + 1), payload, false, "command")
        entry.id = id
        // logged and waiting before the publish completes: the reply may come before the PUBACK
        push(this.mqtt, entry, LIMITS.mqtt)
        this.emit({ type: "mqtt", entry })
        this.track(entry)
        try {
            await this.publisher(topic, payload)
        } catch (e) {
            this.echoes.delete(key)
            if (this.waiting.get(id) === entry) this.waiting.delete(id)
            const message = `not sent: ${(e as Error).message}`
            entry.reply = { code: 0, message }
            this.emit({ type: "reply", seq: entry.seq, reply: entry.reply })
            this.addConsole("dashboard", `command ${id} ${message}`, "error")
            throw e
        }
        return entry
    }

    private entry(dir: MqttEntry["dir"], topic: string, name: string, text: string, retain: boolean, kind: MqttEntry["kind"]): MqttEntry {
        const payload = text.length > LIMITS.payloadChars ? text.slice(0, LIMITS.payloadChars) + "…" : text
        return { seq: ++this.seq, at: this.now(), dir, topic, name, payload, retain, kind }
    }

    private onReport(text: string, retain: boolean) {
        const r = parseReport(text)
        if (!r) {
            this.addConsole("dashboard", `telemetry is not a JSON object: ${text.slice(0, 80)}`, "warn")
            return
        }
        const at = this.now()
        this.counters.reports++
        const t = r.ts !== undefined && r.ts > 1e12 ? r.ts : at
        const d = this.device
        if (r.temperature !== undefined) d.temperature = r.temperature
        if (r.humidity !== undefined) d.humidity = r.humidity
        if (r.led !== undefined) d.led = r.led
        if (r.interval !== undefined) d.interval = r.interval
        if (r.uptime !== undefined) d.uptime = r.uptime
        d.lastReportAt = at
        if (!retain) {
            const prev = this.recent[this.recent.length - 1]
            if (prev && prev.interval !== undefined && r.interval !== undefined) {
                const missed = missedBetween(t - prev.t, prev.interval, r.interval)
                if (missed) {
                    this.counters.missed += missed
                    this.addConsole("dashboard", `${missed} report${missed > 1 ? "s" : ""} missing: ${formatMs(t - prev.t)} since the last one, expected every ${formatMs(Math.max(prev.interval, r.interval))}`, "warn")
                }
            }
            push(this.recent, { t, interval: r.interval }, 16)
            d.cadenceMs = r.interval !== undefined ? measureCadence(this.recent, r.interval) : undefined
        }
        const point: TelemetryPoint = { t, temperature: r.temperature ?? null, humidity: r.humidity ?? null }
        push(this.telemetry, point, LIMITS.telemetry)
        this.emit({ type: "telemetry", point })
        this.setPhase("reporting", "ok", r.interval !== undefined ? `every ${formatMs(r.interval)}` : "reporting")
        this.queueState()
    }

    private onStatus(text: string, retain: boolean) {
        const online = text.trim() === "online"
        const offline = text.trim() === "offline"
        if (!online && !offline) return
        this.device.online = online
        if (online) {
            // the retained copy on subscribing is the session already counted (or one from before the dashboard)
            if (!retain) this.sessions++
            else if (this.sessions === 0) this.sessions = 1
            this.counters.reconnects = Math.max(0, this.sessions - 1)
            if (this.phases.get("broker")!.state !== "ok") this.setPhase("broker", "ok", "online")
        } else {
            this.deviceGone()
            if (!retain) this.setPhase("broker", "failed", "offline: the broker delivered the device's will")
            if (this.phases.get("reporting")!.state === "ok") this.setPhase("reporting", "active", "waiting for the device")
        }
        this.queueState()
    }

    private onCommand(entry: MqttEntry, text: string) {
        // a command from another client (mosquitto_pub, Home Assistant): pair its reply too
        try {
            const v = JSON.parse(text) as { id?: unknown }
            if (v && typeof v === "object" && (typeof v.id === "string" || typeof v.id === "number")) entry.id = String(v.id)
        } catch {}
        this.track(entry)
    }

    private track(entry: MqttEntry) {
        this.counters.commands++
        this.queueState()
        const id = entry.id ?? ""
        this.waiting.set(id, entry)
        const timer = setTimeout(() => {
            this.timers.delete(timer)
            if (entry.reply || this.closed) return
            if (this.waiting.get(id) === entry) this.waiting.delete(id)
            entry.reply = { code: 0, message: `no reply within ${formatMs(this.replyTimeoutMs)}` }
            this.counters.unanswered++
            this.emit({ type: "reply", seq: entry.seq, reply: entry.reply })
            this.queueState()
        }, this.replyTimeoutMs)
        timer.unref?.()
        this.timers.add(timer)
    }

    private onReply(entry: MqttEntry, text: string) {
        let v: { id?: unknown; code?: unknown; message?: unknown; data?: unknown }
        try {
            v = JSON.parse(text)
        } catch {
            return
        }
        if (!v || typeof v !== "object") return
        const id = typeof v.id === "string" || typeof v.id === "number" ? String(v.id) : ""
        const code = typeof v.code === "number" ? v.code : 0
        entry.id = id
        entry.code = code
        if (code >= 400) this.counters.errorReplies++
        const data = v.data && typeof v.data === "object" && !Array.isArray(v.data) ? (v.data as Record<string, unknown>) : undefined
        if (code === 200 && data) {
            if (typeof data.led === "boolean") this.device.led = data.led
            if (typeof data.interval === "number") this.device.interval = data.interval
        }
        const cmd = this.waiting.get(id) ?? this.timedOut(id)
        if (cmd) {
            this.waiting.delete(id)
            if (cmd.reply?.code === 0) this.counters.unanswered--
            const reply: ReplyInfo = { code, ms: entry.at - cmd.at, replySeq: entry.seq }
            if (typeof v.message === "string") reply.message = v.message
            if (data) reply.data = data
            cmd.reply = reply
            entry.answers = cmd.seq
            this.emit({ type: "reply", seq: cmd.seq, reply })
        }
        this.queueState()
    }

    /** The latest command with this id that timed out (its reply came late). */
    private timedOut(id: string): MqttEntry | undefined {
        for (let i = this.mqtt.length - 1; i >= 0; i--) {
            const e = this.mqtt[i]
            if (e.kind === "command" && e.id === id && e.reply?.code === 0) return e
        }
        return undefined
    }

    // --- events ---

    private stateUpdate() {
        return {
            phases: PHASES.map(n => ({ ...this.phases.get(n)! })),
            counters: { ...this.counters },
            device: { ...this.device },
            link: { ...this.link },
        }
    }

    /** Sends one "state" event for all the changes of this turn of the event loop. */
    private queueState() {
        if (this.stateQueued) return
        this.stateQueued = true
        queueMicrotask(() => {
            this.stateQueued = false
            this.emit({ type: "state", ...this.stateUpdate() })
        })
    }

    private emit(e: ServerEvent) {
        if (this.closed) return
        for (const fn of this.listeners) {
            try {
                fn(e)
            } catch {}
        }
    }
}

function push<T>(list: T[], item: T, max: number) {
    list.push(item)
    if (list.length > max) list.splice(0, list.length - max)
}
