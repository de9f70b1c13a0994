/**
 * Reads the device console for the dashboard: which bring-up phase a line reports (config,
 * network, time, broker, subscribe, reporting) and in what state, and whether a line is an error.
 * Pure: one line in, a description out.
 */
import type { PhaseName, PhaseState } from "./protocol.ts"

/** A change of one phase, read from a console line. */
export interface PhaseUpdate {
    name: PhaseName
    state: PhaseState
    detail: string
    ms?: number
}

/** What a console line means for the bring-up: a phase update, or a halt of the boot. */
export type ConsoleMeaning = { kind: "phase"; update: PhaseUpdate } | { kind: "halted"; reason: string } | undefined

const DURATION = /^(.*) \((\d+) ms\)$/

/** Splits "text (12 ms)" into text and duration. */
function timed(s: string): { text: string; ms?: number } {
    const m = DURATION.exec(s)
    return m ? { text: m[1], ms: Number(m[2]) } : { text: s }
}

/** A short summary of the `boot: config:` line ("generic profile, sensor auto, every 5 s"). */
function configSummary(text: string): string {
    const field = (k: string) => new RegExp(`(?:^| )${k}=(\\S+)`).exec(text)?.[1]
    const parts: string[] = []
    const cloud = field("cloud")
    const sensor = field("sensor")
    const report = field("report")
    if (cloud) parts.push(`${cloud} profile`)
    if (sensor) parts.push(`sensor ${sensor}`)
    const ms = report ? /^(\d+)ms$/.exec(report) : null
    if (report) parts.push(`every ${ms ? formatMs(Number(ms[1])) : report}`)
    return parts.length ? parts.join(", ") : text
}

function phase(name: PhaseName, state: PhaseState, detail: string, ms?: number): ConsoleMeaning {
    return { kind: "phase", update: ms === undefined ? { name, state, detail } : { name, state, detail, ms } }
}

/** What a line of the device console says about the bring-up, or undefined. */
export function readDeviceLine(raw: string): ConsoleMeaning {
    const line = raw.trim()
    let m: RegExpExecArray | null
    if ((m = /^boot: halted: (.*)$/.exec(line))) return { kind: "halted", reason: m[1] }
    if ((m = /^boot: config: (.*)$/.exec(line))) {
        const t = timed(m[1])
        return phase("config", "ok", configSummary(t.text), t.ms)
    }
    if ((m = /^boot: network failed: (.*)$/.exec(line))) return phase("network", "failed", m[1])
    if ((m = /^boot: network: (.*)$/.exec(line))) {
        const t = timed(m[1])
        return phase("network", "ok", t.text, t.ms)
    }
    if ((m = /^boot: time: waiting for the clock: (.*)$/.exec(line))) return phase("time", "active", `waiting: ${m[1]}`)
    if ((m = /^boot: time: (.*)$/.exec(line))) {
        const t = timed(m[1])
        return phase("time", "ok", t.text, t.ms)
    }
    if ((m = /^boot: mqtt: (.*)$/.exec(line))) {
        const t = timed(m[1])
        return phase("broker", "ok", t.text, t.ms)
    }
    if ((m = /^boot: subscribe (\S+) failed: (.*)$/.exec(line))) return phase("subscribe", "failed", `${m[1]}: ${m[2]}`)
    if ((m = /^boot: subscribe: (.*)$/.exec(line))) {
        const t = timed(m[1])
        return phase("subscribe", "ok", t.text, t.ms)
    }
    if ((m = /^boot: reporting every (\d+) ms$/.exec(line))) return phase("reporting", "active", `every ${formatMs(Number(m[1]))}, waiting for the broker`)
    if ((m = /^mqtt: connected to (.*)$/.exec(line))) return phase("broker", "ok", `connected to ${m[1]}`)
    if ((m = /^mqtt: disconnected: (.*)$/.exec(line))) return phase("broker", "failed", `disconnected: ${m[1]}`)
    if ((m = /^mqtt: reconnecting in (\d+) ms$/.exec(line))) return phase("broker", "active", `reconnecting in ${formatMs(Number(m[1]))}`)
    if ((m = /^mqtt: (.*)$/.exec(line))) {
        const what = m[1]
        // the client's other lines are connect failures; listener/handler failures and token renewal are not
        if (/^(event listener|handler for|credentials)/.test(what)) return undefined
        return phase("broker", "failed", what)
    }
    return undefined
}

/** True when a device console line reports an error (exception, failure, crash). */
export function isErrorLine(raw: string): boolean {
    const line = raw.trim()
    if (/^boot: (config|network|time|mqtt|subscribe|ready): /.test(line)) return false
    return /^(Exception|Error)\b|PANIC|\bfailed\b|not sent|halted|\bcrashed\b|^config: /i.test(line)
}

/** A warning line (retries, missing pieces) that is not an error. */
export function isWarnLine(raw: string): boolean {
    return /^(mqtt: (disconnected|reconnecting|cannot reach)|.*\bretrying\b|warning:)/i.test(raw.trim())
}

/** "5 s", "1.5 s", "250 ms", "2 min". */
export function formatMs(ms: number): string {
    if (ms < 1000) return `${ms} ms`
    if (ms < 60000) return `${Number((ms / 1000).toFixed(1))} s`
    return `${Number((ms / 60000).toFixed(1))} min`
}
