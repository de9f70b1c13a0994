/// <reference lib="dom" />
/**
 * The dashboard page: follows the server's event stream (/api/events) and renders the device:
 * bring-up, values, charts, counters, the MQTT log with replies paired to their commands, and the
 * console; the controls post commands to /api/command.
 */
import "./style.css"
import { formatMs } from "../bringup.ts"
import { PHASES } from "../protocol.ts"
import type {
    CommandRequest,
    CommandResponse,
    ConsoleLine,
    Counters,
    DeviceView,
    LinkState,
    MqttEntry,
    Phase,
    PhaseName,
    ReplyInfo,
    ServerEvent,
    SessionInfo,
    Snapshot,
    TelemetryPoint,
} from "../protocol.ts"
import { TimeChart } from "./charts.ts"

const PHASE_LABELS: Record<PhaseName, string> = {
    config: "Config",
    network: "Network",
    time: "Time",
    broker: "Broker",
    subscribe: "Commands",
    reporting: "Reporting",
}
const PHASE_HINTS: Record<PhaseName, string> = {
    config: "settings read and checked",
    network: "network interface and address",
    time: "wall-clock time",
    broker: "MQTT session with the broker",
    subscribe: "subscribed to the command topics",
    reporting: "telemetry on schedule",
}
/** Interval presets, ms. */
const PRESETS = [1000, 2000, 5000, 10000, 30000, 60000]
/** Rows kept in the page's logs. */
const MAX_ROWS = { mqtt: 400, console: 800 }

function el<T extends HTMLElement = HTMLElement>(id: string): T {
    const e = document.getElementById(id)
    if (!e) throw new Error(`dashboard page: no element #${id}`)
    return e as T
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
    const e = document.createElement(tag)
    if (cls) e.className = cls
    if (text !== undefined) e.textContent = text
    return e
}

function setText(e: HTMLElement, text: string) {
    if (e.textContent !== text) e.textContent = text
}

const clock = (at: number) => new Date(at).toLocaleTimeString([], { hour12: false })

/** "3 s", "2 min 5 s", "1 h 4 min". */
function duration(s: number): string {
    s = Math.max(0, Math.floor(s))
    if (s < 60) return `${s} s`
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

// --- state of the page ---

let info: SessionInfo | undefined
let device: DeviceView = { online: null }
let counters: Counters | undefined
let link: LinkState = { state: "off", detail: "" }
let ledBusy = false
/** replies known per command entry seq (events may come before the POST's answer) */
const replies = new Map<number, ReplyInfo>()
/** what to do when the command with this seq gets its reply */
const waiters = new Map<number, (r: ReplyInfo) => void>()
const rows = new Map<number, HTMLLIElement>()
const phaseEls = new Map<PhaseName, HTMLLIElement>()
const tempValues: number[] = []
const humValues: number[] = []

const tempChart = new TimeChart(el("temp-chart"), el("temp-points"), { label: "Temperature", unit: "°C", color: "#fb923c", fill: "rgba(251,146,60,0.28)", decimals: 1, minSpan: 1 })
const humChart = new TimeChart(el("hum-chart"), el("hum-points"), { label: "Humidity", unit: "%RH", color: "#38bdf8", fill: "rgba(56,189,248,0.26)", decimals: 1, minSpan: 2 })

// --- rendering ---

function renderInfo(i: SessionInfo) {
    setText(el("device-id"), i.deviceId)
    document.title = `${i.deviceId} · W55RP20 dashboard`
    setText(el("broker-url"), i.brokerUrl ? `${i.brokerUrl}${i.embedded ? " (embedded aedes)" : ""}` : "no broker")
    setText(el("base-topic"), i.topics ? `${i.topics.base}/` : `CLOUD=${i.cloud}`)
    const banner = el("banner")
    banner.hidden = !i.mqttNote
    if (i.mqttNote) banner.textContent = i.mqttNote
    const tip = el("watch-tip")
    tip.textContent = ""
    if (i.topics && i.brokerUrl) {
        const u = new URL(i.brokerUrl.replace(/^mqtts?:/, "http:"))
        tip.append("watch from a terminal: ", h("code", undefined, `mosquitto_sub -h ${u.hostname} -p ${u.port || 1883} -t '${i.topics.base}/#' -v`))
    }
    const controls = !!i.topics
    for (const b of document.querySelectorAll<HTMLButtonElement | HTMLInputElement>(".t-interval button, .t-interval input")) b.disabled = !controls
}

function buildPhases() {
    const list = el("phases")
    list.textContent = ""
    for (const name of PHASES) {
        const li = h("li", "phase")
        li.dataset.testid = `phase-${name}`
        li.dataset.state = "pending"
        li.title = PHASE_HINTS[name]
        const icon = h("span", "ph-icon")
        icon.setAttribute("aria-hidden", "true")
        const title = h("span", "ph-name")
        title.append(h("span", undefined, PHASE_LABELS[name]), h("span", "ph-ms"))
        li.append(icon, title, h("span", "ph-detail"))
        list.append(li)
        phaseEls.set(name, li)
    }
}

function renderPhases(phases: Phase[]) {
    for (const p of phases) {
        const li = phaseEls.get(p.name)
        if (!li) continue
        li.dataset.state = p.state
        setText(li.querySelector(".ph-icon")!, p.state === "ok" ? "✓" : p.state === "failed" ? "!" : "")
        setText(li.querySelector(".ph-ms")!, p.ms !== undefined && p.state === "ok" ? `${p.ms} ms` : "")
        const detail = p.detail || (p.state === "pending" ? "not yet" : "")
        setText(li.querySelector(".ph-detail")!, detail)
        li.title = `${PHASE_LABELS[p.name]}: ${PHASE_HINTS[p.name]}${p.detail ? `\n${p.detail}` : ""}`
    }
}

function fmt1(v: number | undefined) {
    return v === undefined ? "–" : v.toFixed(1)
}

function rangeText(values: number[], unit: string) {
    if (!values.length) return "waiting for the first report"
    let lo = Infinity
    let hi = -Infinity
    for (const v of values) {
        if (v < lo) lo = v
        if (v > hi) hi = v
    }
    return `min ${lo.toFixed(1)} · max ${hi.toFixed(1)} ${unit} over ${values.length} report${values.length === 1 ? "" : "s"}`
}

function renderDevice() {
    setText(el("temp-value"), fmt1(device.temperature))
    setText(el("hum-value"), fmt1(device.humidity))
    setText(el("temp-range"), rangeText(tempValues, "°C"))
    setText(el("hum-range"), rangeText(humValues, "%RH"))
    const sw = el<HTMLButtonElement>("led-switch")
    sw.disabled = !info?.topics || device.led === undefined
    el<HTMLButtonElement>("led-toggle").disabled = !info?.topics || ledBusy
    if (!ledBusy) sw.setAttribute("aria-checked", String(device.led === true))
    el("led-bulb").classList.toggle("on", device.led === true)
    setText(el("led-state"), device.led === undefined ? "–" : device.led ? "On" : "Off")
    setText(el("interval-value"), device.interval === undefined ? "–" : formatMs(device.interval))
    setText(el("cadence"), device.cadenceMs === undefined ? "–" : formatMs(device.cadenceMs))
    for (const b of el("presets").querySelectorAll<HTMLButtonElement>("button")) {
        const on = Number(b.dataset.ms) === device.interval
        b.classList.toggle("on", on)
        b.setAttribute("aria-pressed", String(on))
    }
    const pres = el("presence")
    const cls = device.online === true ? "pill-ok" : device.online === false ? "pill-bad" : "pill-wait"
    pres.className = `pill ${cls}`
    setText(pres.querySelector("b")!, device.online === true ? "Online" : device.online === false ? "Offline" : "Unknown")
    setText(el("uptime"), device.uptime === undefined ? "" : `up ${duration(device.uptime)}`)
    tick()
}

function renderCounters() {
    const c = counters
    if (!c) return
    const dropped = c.missed + c.unanswered
    const errors = c.errorReplies + c.consoleErrors
    setText(el("c-reports"), String(c.reports))
    setText(el("c-reconnects"), String(c.reconnects))
    setText(el("c-reconnects-sub"), `${c.restarts} device restart${c.restarts === 1 ? "" : "s"}`)
    setText(el("c-dropped"), String(dropped))
    setText(el("c-dropped-sub"), `${c.missed} missed · ${c.unanswered} unanswered`)
    setText(el("c-errors"), String(errors))
    setText(el("c-errors-sub"), `${c.errorReplies} repl${c.errorReplies === 1 ? "y" : "ies"} · ${c.consoleErrors} console`)
    el("c-dropped").parentElement!.classList.toggle("warn", dropped > 0)
    el("c-errors").parentElement!.classList.toggle("bad", errors > 0)
}

function renderLink() {
    const t = el("link")
    const what = link.state === "connected" ? "dashboard ↔ broker connected" : link.state === "off" ? "" : `dashboard ↔ broker: ${link.detail}`
    setText(t, what)
    t.title = link.detail
}

/** Once a second: "last report 3 s ago". */
function tick() {
    const last = device.lastReportAt
    setText(el("c-reports-sub"), last === undefined ? "none yet" : `last ${duration((Date.now() - last) / 1000)} ago`)
}

function setLive(up: boolean) {
    const p = el("live")
    p.className = `pill small-pill ${up ? "pill-ok" : "pill-wait"}`
    setText(p.querySelector("b")!, up ? "Live" : "Reconnecting")
}

// --- the MQTT log ---

function replyLine(r: ReplyInfo | undefined): HTMLElement {
    const line = h("div", "m-reply")
    if (!r) {
        line.append(h("span", "badge wait", "…"), h("span", "muted", "waiting for the reply"))
        return line
    }
    const ok = r.code >= 200 && r.code < 300
    line.append(h("span", `badge ${ok ? "ok" : "bad"}`, r.code ? String(r.code) : "—"))
    const parts: string[] = []
    if (r.code === 0) parts.push(r.message ?? "no reply")
    else {
        parts.push(ok ? "replied" : r.message ?? "error")
        if (r.ms !== undefined) parts.push(`in ${r.ms} ms`)
        if (r.data) parts.push(JSON.stringify(r.data))
    }
    line.append(h("span", ok ? "muted" : undefined, parts.join(" · ")))
    return line
}

/** A JSON payload with a space after each member, so long lines wrap between members. */
function readable(payload: string): string {
    if (!/^[[{]/.test(payload)) return payload
    try {
        return JSON.stringify(JSON.parse(payload)).replace(/,(?=["{[])/g, ", ")
    } catch {
        return payload
    }
}

function mqttRow(e: MqttEntry): HTMLLIElement {
    const li = h("li", `k-${e.kind}${e.kind === "reply" && (e.code ?? 0) >= 400 ? " err" : ""}`)
    li.dataset.seq = String(e.seq)
    li.dataset.kind = e.kind
    li.dataset.dir = e.dir
    if (e.id !== undefined) li.dataset.id = e.id
    if (e.code !== undefined) li.dataset.code = String(e.code)
    const head = h("div", "m-head")
    head.append(h("span", `m-dir ${e.dir}`, e.dir === "in" ? "IN" : "OUT"))
    const topic = h("span", "m-topic", e.name)
    topic.title = e.topic
    head.append(topic)
    if (e.retain) head.append(h("span", "m-flag", "retained"))
    if (e.kind === "reply" && e.answers !== undefined) head.append(h("span", "m-flag", `answers ${e.id}`))
    head.append(h("span", "m-time", clock(e.at)))
    li.append(head, h("div", "m-payload", readable(e.payload) || "(empty)"))
    if (e.kind === "command") {
        const r = e.reply ?? replies.get(e.seq)
        li.append(replyLine(r))
        if (r) li.dataset.replyCode = String(r.code)
    }
    return li
}

function addMqtt(e: MqttEntry, fresh: boolean) {
    const log = el("mqtt-log")
    log.querySelector(".log-empty")?.remove()
    const li = mqttRow(e)
    if (fresh) li.classList.add("fresh")
    log.prepend(li)
    rows.set(e.seq, li)
    while (log.children.length > MAX_ROWS.mqtt) {
        const last = log.lastElementChild as HTMLLIElement
        rows.delete(Number(last.dataset.seq))
        last.remove()
    }
}

function onReply(seq: number, r: ReplyInfo) {
    replies.set(seq, r)
    const li = rows.get(seq)
    if (li) {
        li.querySelector(".m-reply")?.replaceWith(replyLine(r))
        li.dataset.replyCode = String(r.code)
    }
    const w = waiters.get(seq)
    if (w) {
        waiters.delete(seq)
        w(r)
    }
}

// --- the console ---

function addConsole(line: ConsoleLine) {
    const box = el("console")
    const div = h("div", `c-line s-${line.source} l-${line.level}`)
    div.append(h("span", "c-t", clock(line.at)))
    if (line.source !== "device") div.append(h("span", "c-src", `[${line.source}]`))
    div.append(document.createTextNode(line.text))
    box.append(div)
    while (box.children.length > MAX_ROWS.console) box.firstElementChild!.remove()
    if (el<HTMLInputElement>("follow").checked) box.scrollTop = box.scrollHeight
}

// --- events ---

function resetFrom(s: Snapshot) {
    info = s.info
    renderInfo(s.info)
    el("mqtt-log").textContent = ""
    el("console").textContent = ""
    rows.clear()
    replies.clear()
    tempValues.length = 0
    humValues.length = 0
    for (const p of s.telemetry) addValues(p)
    tempChart.reset(s.telemetry.map(p => ({ t: p.t, y: p.temperature })))
    humChart.reset(s.telemetry.map(p => ({ t: p.t, y: p.humidity })))
    for (const e of s.mqtt) {
        if (e.reply) replies.set(e.seq, e.reply)
        addMqtt(e, false)
    }
    if (!s.mqtt.length) el("mqtt-log").append(h("li", "log-empty", info.topics ? `Listening on ${info.topics.base}/… — messages appear here.` : "The MQTT view is off."))
    for (const l of s.console) addConsole(l)
    applyState(s)
}

function addValues(p: TelemetryPoint) {
    if (p.temperature !== null) tempValues.push(p.temperature)
    if (p.humidity !== null) humValues.push(p.humidity)
    if (tempValues.length > 3600) tempValues.shift()
    if (humValues.length > 3600) humValues.shift()
}

function applyState(s: { phases: Phase[]; counters: Counters; device: DeviceView; link: LinkState }) {
    device = s.device
    counters = s.counters
    link = s.link
    renderPhases(s.phases)
    renderDevice()
    renderCounters()
    renderLink()
}

function handle(e: ServerEvent) {
    switch (e.type) {
        case "snapshot":
            return resetFrom(e)
        case "state":
            return applyState(e)
        case "telemetry":
            addValues(e.point)
            tempChart.push(e.point.t, e.point.temperature)
            humChart.push(e.point.t, e.point.humidity)
            return
        case "console":
            return addConsole(e.line)
        case "mqtt":
            return addMqtt(e.entry, true)
        case "reply":
            return onReply(e.seq, e.reply)
    }
}

function connect() {
    const es = new EventSource("/api/events")
    es.onopen = () => setLive(true)
    // the browser reconnects by itself (the server asks for 2 s); a new snapshot follows
    es.onerror = () => setLive(false)
    es.onmessage = m => {
        let ev: ServerEvent
        try {
            ev = JSON.parse(m.data)
        } catch {
            return
        }
        handle(ev)
    }
}

// --- commands ---

function status(target: HTMLElement, kind: "ok" | "bad" | "wait" | "", text: string) {
    target.className = `cmd-status small ${kind || "muted"}`
    setText(target, text)
}

/** Posts a command; reports progress and the device's reply in `target`; resolves with the reply (or undefined). */
async function send(req: CommandRequest, target: HTMLElement, what: string): Promise<ReplyInfo | undefined> {
    status(target, "wait", `${what}: sending…`)
    let body: CommandResponse
    try {
        const res = await fetch("/api/command", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) })
        body = (await res.json()) as CommandResponse
    } catch {
        status(target, "bad", `${what}: the dashboard server does not answer (is npm start running?)`)
        return undefined
    }
    if (!body.ok || body.seq === undefined) {
        status(target, "bad", `${what}: ${body.error ?? "refused"}`)
        return undefined
    }
    const seq = body.seq
    status(target, "wait", `${what}: sent as ${body.id}, waiting for the device…`)
    const reply = await new Promise<ReplyInfo>(resolve => {
        const known = replies.get(seq)
        if (known) resolve(known)
        else waiters.set(seq, resolve)
    })
    if (reply.code === 200) status(target, "ok", `${what}: done · ${body.id} → 200${reply.ms !== undefined ? ` in ${reply.ms} ms` : ""}`)
    else if (reply.code === 0) status(target, "bad", `${what}: ${reply.message ?? "no reply"} (${body.id})`)
    else status(target, "bad", `${what}: ${reply.code} ${reply.message ?? ""} (${body.id})`)
    return reply
}

function wireControls() {
    const sw = el<HTMLButtonElement>("led-switch")
    sw.addEventListener("click", async () => {
        if (ledBusy) return
        const want = device.led !== true
        ledBusy = true
        sw.setAttribute("aria-busy", "true")
        sw.setAttribute("aria-checked", String(want))
        renderDevice()
        await send({ command: "set", params: { led: want } }, el("led-status"), want ? "LED on" : "LED off")
        ledBusy = false
        sw.removeAttribute("aria-busy")
        renderDevice()
    })

    el("led-toggle").addEventListener("click", async () => {
        if (ledBusy) return
        ledBusy = true
        sw.setAttribute("aria-busy", "true")
        renderDevice()
        await send({ command: "toggle" }, el("led-status"), "LED toggle")
        ledBusy = false
        sw.removeAttribute("aria-busy")
        renderDevice()
    })

    const presets = el("presets")
    for (const ms of PRESETS) {
        const b = h("button", "chip", formatMs(ms))
        b.type = "button"
        b.dataset.ms = String(ms)
        b.addEventListener("click", () => void send({ command: "set", params: { interval: ms } }, el("interval-status"), `interval ${formatMs(ms)}`))
        presets.append(b)
    }

    el<HTMLFormElement>("interval-form").addEventListener("submit", ev => {
        ev.preventDefault()
        const input = el<HTMLInputElement>("interval-input")
        const s = Number(input.value.trim())
        if (!input.value.trim() || !Number.isFinite(s)) {
            status(el("interval-status"), "bad", "enter the interval in seconds (1 to 3600)")
            return
        }
        const ms = Math.round(s * 1000)
        void send({ command: "set", params: { interval: ms } }, el("interval-status"), `interval ${formatMs(ms)}`)
    })

    el("report-now").addEventListener("click", () => void send({ command: "report" }, el("interval-status"), "report now"))

    el("mqtt-filters").addEventListener("click", ev => {
        const b = (ev.target as HTMLElement).closest<HTMLButtonElement>("button[data-filter]")
        if (!b) return
        for (const c of el("mqtt-filters").querySelectorAll("button")) c.classList.toggle("on", c === b)
        el("mqtt-log").dataset.filter = b.dataset.filter
    })

    const box = el("console")
    box.addEventListener("scroll", () => {
        // scrolling up to read stops following; back at the bottom follows again
        const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24
        el<HTMLInputElement>("follow").checked = atBottom
    })
}

buildPhases()
wireControls()
setInterval(tick, 1000)
connect()
