/**
 * Shared pieces of the end-to-end tests: the simulated device (the real firmware in the VM), an
 * mqtt.js observer that records what it receives, the host link that serves the device its
 * settings, and cleanups that run even when a test times out.
 */
import { after } from "node:test"
import assert from "node:assert/strict"
import path from "node:path"
import type { ChildProcess } from "node:child_process"
import mqtt from "mqtt"
import { ROOT, runVm, type VmRun } from "../../../sim/devs.ts"
import { loadEnvFiles } from "../../../sim/envfile.ts"
import { startHostLink, type HostLink, type Settings } from "../../../sim/hostlink.ts"
import { deviceSettings } from "../../../sim/start.ts"

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
/** The firmware entry (E2E_ENTRY overrides it, e.g. to check that a deliberately broken copy fails). */
export const ENTRY = process.env.E2E_ENTRY ?? "src/main.ts"

/**
 * Cleanups that also run when a test times out (its finally blocks never run then): without them a
 * reconnecting client or a VM would keep this process alive.
 */
const cleanups = new Set<() => Promise<unknown>>()
export function onCleanup(fn: () => Promise<unknown>): () => Promise<void> {
    cleanups.add(fn)
    return async () => {
        if (!cleanups.delete(fn)) return
        await fn().catch(() => {})
    }
}
after(async () => {
    for (const fn of [...cleanups].reverse()) await fn().catch(() => {})
    cleanups.clear()
})

/** One message seen by an observer. */
export interface Rx {
    topic: string
    text: string
    retain: boolean
    /** Date.now() at receipt */
    at: number
    /** the payload parsed as JSON, or undefined */
    json: any
}

/** The simulated device: its VM process and console. */
export class Device {
    readonly lines: string[] = []
    child?: ChildProcess
    exited = false
    run!: Promise<VmRun>

    /** Starts src/main.ts in the VM; the caller serves its settings over the host link. */
    constructor(readonly entry = ENTRY) {}

    start(timeoutMs: number, onLine?: (l: string) => void) {
        this.run = runVm(this.entry, {
            timeoutMs,
            onSpawn: c => (this.child = c),
            onLine: l => {
                this.lines.push(l)
                if (process.env.VM_LOG) console.log(`[device] ${l}`)
                onLine?.(l)
            },
        })
        this.run.finally(() => (this.exited = true)).catch(() => {})
    }

    tail(n = 25): string {
        return this.lines.slice(-n).join("\n")
    }

    /** SIGKILL (no DISCONNECT: the broker sees the connection drop) and wait for the exit. */
    async kill() {
        if (!this.run) return
        if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL")
        await this.run.catch(() => {})
    }
}

/** An mqtt.js client that records everything it receives. */
export class Observer {
    readonly msgs: Rx[] = []
    private constructor(readonly client: mqtt.MqttClient) {}

    static async open(url: string, opts: mqtt.IClientOptions, filters: string[]): Promise<Observer> {
        const c = await mqtt.connectAsync(url, { reconnectPeriod: 100, connectTimeout: 5000, ...opts })
        c.on("error", () => {})
        const o = new Observer(c)
        c.on("message", (topic, payload, packet) => {
            const text = payload.toString("utf8")
            let json: any
            try {
                json = JSON.parse(text)
            } catch {}
            o.msgs.push({ topic, text, retain: packet.retain, at: Date.now(), json })
        })
        if (filters.length) await c.subscribeAsync(Object.fromEntries(filters.map(f => [f, { qos: 1 as const }])))
        return o
    }

    /** Index of the next message (for `after` and `waitFor`). */
    mark(): number {
        return this.msgs.length
    }

    /** Messages on `topic` received since `from`. */
    after(from: number, topic: string): Rx[] {
        return this.msgs.slice(from).filter(m => m.topic === topic)
    }

    /** The first message since `from` that matches; throws naming `what` after `timeoutMs` or when the device dies. */
    async waitFor(what: string, from: number, pred: (m: Rx) => boolean, timeoutMs: number, dev?: Device): Promise<Rx> {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            for (let i = from; i < this.msgs.length; i++) if (pred(this.msgs[i])) return this.msgs[i]
            if (dev?.exited) throw new Error(`waiting for ${what}: the VM exited\n${dev.tail()}`)
            if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${timeoutMs} ms` + (dev ? `\n--- device ---\n${dev.tail()}` : ""))
            await sleep(20)
        }
    }

    async close() {
        await this.client.endAsync(true).catch(() => {})
    }
}

/** The retained messages a fresh subscriber to `filter` gets (collected until `count` arrive or `waitMs` passes). */
export async function retained(url: string, filter: string, count: number, waitMs = 3000): Promise<Rx[]> {
    const o = await Observer.open(url, { reconnectPeriod: 0 }, [filter])
    try {
        const deadline = Date.now() + waitMs
        while (o.msgs.length < count && Date.now() < deadline) await sleep(20)
        await sleep(100)
        return o.msgs.slice()
    } finally {
        await o.close()
    }
}

/** The settings `npm start` would serve (.env.defaults and the runner's overrides), with `over` on top. */
export function settingsFor(brokerPort: number, over: Settings, net?: "w5500" | "host"): Settings {
    const env = loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: true }])
    return { ...(deviceSettings(env.settings, brokerPort, net) as Settings), MQTT_USER: "", MQTT_PASS: "", ...over }
}

/**
 * Starts a host link (on a free port, handed to the next `runVm` of this process) serving
 * `settings`; call `boot` next.
 */
export async function hostLink(settings: Settings, opts: { time?: boolean } = {}): Promise<HostLink> {
    const link = await startHostLink(settings, { waitMs: 120000, time: opts.time })
    onCleanup(() => link.close())
    return link
}

/** Boots the device and closes the host link once the device has its settings. */
export async function boot(dev: Device, link: HostLink, timeoutMs: number, onLine?: (l: string) => void) {
    onCleanup(() => dev.kill())
    try {
        dev.start(timeoutMs, onLine)
        const deadline = Date.now() + 30000
        while (link.served < 1 && !dev.exited && Date.now() < deadline) await sleep(50)
        assert.ok(link.served >= 1, `the device never asked the host link for its settings\n${dev.tail()}`)
    } finally {
        await link.close()
    }
}

export const REPORT_KEYS = ["ts", "temperature", "humidity", "led", "interval", "uptime"]

/** Checks a telemetry payload: JSON object with exactly the report keys and plausible values. */
export function checkReport(m: Rx, expect: { led?: boolean; interval?: number } = {}) {
    const r = m.json
    assert.ok(r && typeof r === "object" && !Array.isArray(r), `telemetry is a JSON object: ${m.text}`)
    assert.deepEqual(Object.keys(r).sort(), [...REPORT_KEYS].sort(), `telemetry keys: ${m.text}`)
    assert.ok(Number.isInteger(r.ts) && Math.abs(r.ts - Date.now()) < 60000, `ts is the unix time in ms: ${m.text}`)
    assert.ok(typeof r.temperature === "number" && r.temperature >= 15 && r.temperature <= 30, `temperature in the simulated range: ${m.text}`)
    assert.ok(typeof r.humidity === "number" && r.humidity >= 25 && r.humidity <= 70, `humidity in the simulated range: ${m.text}`)
    assert.equal(typeof r.led, "boolean", `led is a boolean: ${m.text}`)
    assert.ok(Number.isInteger(r.interval), `interval is an integer: ${m.text}`)
    assert.ok(Number.isInteger(r.uptime) && r.uptime >= 0 && r.uptime < 600, `uptime in seconds: ${m.text}`)
    if (expect.led !== undefined) assert.equal(r.led, expect.led, `led in ${m.text}`)
    if (expect.interval !== undefined) assert.equal(r.interval, expect.interval, `interval in ${m.text}`)
}
