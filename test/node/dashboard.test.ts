/**
 * The dashboard of `npm start` (sim/dashboard/):
 * - its console reading, cadence and gap arithmetic, and state (pure, no I/O);
 * - the server and MQTT bridge against a real aedes broker with a stand-in device (mqtt.js):
 *   telemetry reaches the state, a posted command is published on the device's topic and its
 *   reply is paired with it, requests from elsewhere are refused;
 * - end to end in headless Chromium: `npm start` (the firmware in the VM), the page shows
 *   telemetry in the chart, the LED switch gets the device's reply and the new state, changing the
 *   interval changes the measured cadence, and the page logs no console errors. Screenshots go to
 *   artifacts/dashboard.png (desktop) and artifacts/dashboard-phone.png.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import http from "node:http"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import mqtt from "mqtt"
import { startAedes, startMosquitto, type Broker } from "../../sim/brokers.ts"
import { ROOT } from "../../sim/devs.ts"
import { isErrorLine, readDeviceLine } from "../../sim/dashboard/bringup.ts"
import type { ServerEvent } from "../../sim/dashboard/protocol.ts"
import { startDashboard } from "../../sim/dashboard/server.ts"
import { DashboardState, measureCadence, missedBetween, parseReport } from "../../sim/dashboard/state.ts"
import { brokerTarget, classifyTopic, deviceTopics, topicMatches } from "../../sim/dashboard/topics.ts"
import { parseOptions, USAGE } from "../../sim/start.ts"
import { CHROMIUM, skipUnless } from "./lib/tools.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
const ARTIFACTS = path.join(ROOT, "artifacts")

async function until<T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, ms: number, context: () => string = () => ""): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
        const v = await get()
        if (v) return v
        if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${ms} ms\n${context()}`)
        await sleep(100)
    }
}

// --- pure parts ---

test("console lines: each bring-up phase, its state, detail and duration", () => {
    const cases: [string, unknown][] = [
        ["boot: config: device=d1 cloud=generic broker=mqtt://127.0.0.1:1883 report=5000ms sensor=auto log=info (1414 ms)", { name: "config", state: "ok", detail: "generic profile, sensor auto, every 5 s", ms: 1414 }],
        ["boot: network: runtime sockets (0 ms)", { name: "network", state: "ok", detail: "runtime sockets", ms: 0 }],
        ["boot: network: w5500 192.168.1.20 (DHCP) (850 ms)", { name: "network", state: "ok", detail: "w5500 192.168.1.20 (DHCP)", ms: 850 }],
        ["boot: network failed: no link", { name: "network", state: "failed", detail: "no link" }],
        ["boot: time: waiting for the clock: azure credentials need the real time", { name: "time", state: "active", detail: "waiting: azure credentials need the real time" }],
        ["boot: time: host clock (0 ms)", { name: "time", state: "ok", detail: "host clock", ms: 0 }],
        ["boot: mqtt: connected to 127.0.0.1:1883 (57 ms)", { name: "broker", state: "ok", detail: "connected to 127.0.0.1:1883", ms: 57 }],
        ["mqtt: disconnected: connection closed by the broker", { name: "broker", state: "failed", detail: "disconnected: connection closed by the broker" }],
        ["mqtt: reconnecting in 1500 ms", { name: "broker", state: "active", detail: "reconnecting in 1.5 s" }],
        ["mqtt: cannot reach 127.0.0.1:1883: connection refused", { name: "broker", state: "failed", detail: "cannot reach 127.0.0.1:1883: connection refused" }],
        ["mqtt: connected to 127.0.0.1:1883", { name: "broker", state: "ok", detail: "connected to 127.0.0.1:1883" }],
        ["boot: subscribe: devices/d1/commands/+ (QoS 1) (144 ms)", { name: "subscribe", state: "ok", detail: "devices/d1/commands/+ (QoS 1)", ms: 144 }],
        ["boot: subscribe devices/d1/commands/+ failed: timeout; retrying", { name: "subscribe", state: "failed", detail: "devices/d1/commands/+: timeout; retrying" }],
        ["boot: reporting every 5000 ms", { name: "reporting", state: "active", detail: "every 5 s, waiting for the broker" }],
    ]
    for (const [line, want] of cases) {
        const m = readDeviceLine(line)
        assert.equal(m?.kind, "phase", line)
        assert.deepEqual(m.kind === "phase" ? m.update : undefined, want, line)
    }
    assert.deepEqual(readDeviceLine("boot: halted: fix the settings above and restart"), { kind: "halted", reason: "fix the settings above and restart" })
    for (const line of ["sensor: simulated random walk active", "command set id=1: 200", "mqtt: handler for \"x\" failed: boom", "", "boot: ready: generic profile"])
        assert.equal(readDeviceLine(line), undefined, line)
    assert.ok(isErrorLine("Exception: TypeError"))
    assert.ok(isErrorLine("report: not sent: not connected"))
    assert.ok(isErrorLine("config: MQTT_PORT must be 1..65535, got 70000"))
    assert.ok(!isErrorLine("boot: config: device=d1 log=error (3 ms)"))
    assert.ok(!isErrorLine("command set id=1: 200"))
})

test("cadence and missed reports: the arithmetic", () => {
    // on schedule every 1000, one early "report now" left out
    const pts = [0, 1000, 1400, 2000, 3000, 4001].map(t => ({ t, interval: 1000 }))
    assert.equal(measureCadence(pts, 1000), 1000)
    // only reports at the current interval count
    assert.equal(measureCadence([{ t: 0, interval: 5000 }, { t: 5000, interval: 5000 }, { t: 5100, interval: 1000 }], 1000), undefined)
    assert.equal(measureCadence([{ t: 0, interval: 5000 }, { t: 5000, interval: 5000 }], 5000), 5000)
    assert.equal(missedBetween(5200, 5000, 5000), 0)
    assert.equal(missedBetween(10000, 5000, 5000), 1)
    assert.equal(missedBetween(20500, 5000, 5000), 3)
    // an interval change: the longer one is expected
    assert.equal(missedBetween(9000, 10000, 1000), 0)
    assert.equal(parseReport("not json"), undefined)
    assert.equal(parseReport("[1]"), undefined)
    assert.deepEqual(parseReport('{"ts":1,"temperature":"x","led":true}'), { ts: 1, temperature: undefined, humidity: undefined, led: true, interval: undefined, uptime: undefined })
})

test("topics: the generic profile's, from the settings", () => {
    const t = deviceTopics({ DEVICE_ID: "d1", TOPIC_PREFIX: "site/a", HA_PREFIX: "ha" })
    assert.deepEqual(t, {
        base: "site/a/d1",
        telemetry: "site/a/d1/telemetry",
        status: "site/a/d1/status",
        replies: "site/a/d1/replies",
        commandPrefix: "site/a/d1/commands/",
        discovery: "ha/+/d1/+/config",
    })
    assert.equal(deviceTopics({ DEVICE_ID: "d1", HA_DISCOVERY: false }).discovery, "")
    assert.throws(() => deviceTopics({}), /DEVICE_ID/)
    assert.deepEqual(brokerTarget({ MQTT_HOST: "h", MQTT_TLS: true, MQTT_USER: "u", MQTT_PASS: "p" }), { url: "mqtts://h:8883", username: "u", password: "p" })
    assert.throws(() => brokerTarget({ MQTT_HOST: "h", MQTT_PORT: 0 }), /MQTT_PORT must be 1\.\.65535, got 0/)
    assert.deepEqual(classifyTopic(t, "site/a/d1/commands/set"), { kind: "command", name: "commands/set" })
    assert.deepEqual(classifyTopic(t, "ha/switch/d1/led/config"), { kind: "discovery", name: "ha/switch/d1/led/config" })
    assert.ok(topicMatches("a/+/c", "a/b/c") && topicMatches("a/#", "a/b/c") && !topicMatches("a/+", "a/b/c") && !topicMatches("a/b/c", "a/b"))
})

test("state: reports, status, commands paired with replies, echoes, timeouts", async () => {
    let now = 1_000_000
    const topics = deviceTopics({ DEVICE_ID: "d1" })
    const st = new DashboardState({ deviceId: "d1", cloud: "generic", brokerUrl: "mqtt://127.0.0.1:1", embedded: true, topics }, { now: () => now, replyTimeoutMs: 50 })
    const events: ServerEvent[] = []
    st.subscribe(e => events.push(e))
    const sent: string[] = []
    st.setPublisher(async (topic, payload) => {
        sent.push(`${topic} ${payload}`)
    })
    const report = (ts: number, interval: number, led = false) => JSON.stringify({ ts, temperature: 21.5, humidity: 40, led, interval, uptime: 1 })

    st.mqttIn(topics.status, "online", false)
    for (let i = 0; i < 4; i++) st.mqttIn(topics.telemetry, report(1_700_000_000_000 + i * 2000, 2000), false)
    // a gap of three intervals: two reports missing
    st.mqttIn(topics.telemetry, report(1_700_000_000_000 + 12000, 2000), false)
    await sleep(0)
    assert.equal(st.getCounters().reports, 5)
    assert.equal(st.getCounters().missed, 2)
    assert.equal(st.getDevice().cadenceMs, 2000)
    assert.equal(st.getPhase("reporting").state, "ok")
    assert.equal(events.filter(e => e.type === "telemetry").length, 5)

    // our command: published once, its echo on commands/+ not logged twice, the reply paired
    const cmd = await st.sendCommand({ command: "set", params: { led: true } })
    assert.equal(cmd.id, "dash-1")
    assert.deepEqual(sent, ['devices/d1/commands/set {"id":"dash-1","params":{"led":true}}'])
    st.mqttIn(topics.commandPrefix + "set", JSON.stringify({ id: cmd.id, params: { led: true } }), false)
    now += 25
    st.mqttIn(topics.replies, JSON.stringify({ id: cmd.id, code: 200, data: { led: true } }), false)
    const snap = st.snapshot()
    const logged = snap.mqtt.filter(e => e.kind === "command")
    assert.equal(logged.length, 1, "the echo of our own command is not logged again")
    assert.deepEqual(logged[0].reply, { code: 200, ms: 25, replySeq: snap.mqtt[snap.mqtt.length - 1].seq, data: { led: true } })
    assert.equal(snap.mqtt[snap.mqtt.length - 1].answers, logged[0].seq)
    assert.equal(st.getDevice().led, true)

    // a command from another client, answered with an error; one that never gets a reply
    st.mqttIn(topics.commandPrefix + "set", '{"id":"x1","params":{"interval":5}}', false)
    st.mqttIn(topics.replies, '{"id":"x1","code":422,"message":"interval must be 1000..3600000, got 5"}', false)
    st.mqttIn(topics.commandPrefix + "report", '{"id":"lost"}', false)
    await sleep(120)
    const c = st.getCounters()
    assert.equal(c.commands, 3)
    assert.equal(c.errorReplies, 1)
    assert.equal(c.unanswered, 1)
    assert.deepEqual(st.snapshot().mqtt.find(e => e.id === "lost")?.reply, { code: 0, message: "no reply within 50 ms" })

    // reconnects: the device's status going online again (not the retained copy)
    st.mqttIn(topics.status, "offline", false)
    st.mqttIn(topics.status, "online", true)
    st.mqttIn(topics.status, "online", false)
    assert.equal(st.getCounters().reconnects, 1)
    // the outage does not count as missed reports
    st.mqttIn(topics.telemetry, report(1_700_000_000_000 + 60000, 2000), false)
    assert.equal(st.getCounters().missed, 2)

    // console: phases and restarts
    st.runnerLine("starting src/main.ts")
    st.runnerLine("starting src/main.ts")
    st.deviceLine("boot: network: runtime sockets (0 ms)")
    st.deviceLine("Exception: RangeError")
    assert.equal(st.getCounters().restarts, 1)
    assert.equal(st.getCounters().consoleErrors, 1)
    assert.equal(st.getPhase("network").state, "ok")
    assert.equal(st.getPhase("config").state, "active")
    st.deviceLine("boot: halted: no network")
    assert.equal(st.getPhase("config").state, "failed")
    await assert.rejects(st.sendCommand({ command: "reboot" } as never), /unknown command "reboot"; expected set, toggle or report/)
    st.close()
})

/** A request to the dashboard with chosen headers. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method: opts.method ?? "GET", headers: opts.headers }, res => {
            let body = ""
            res.on("data", d => (body += d))
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
        })
        req.on("error", reject)
        req.end(opts.body)
    })
}

/** The server and bridge against one broker: a stand-in device (mqtt.js) plays the firmware's part. */
async function bridgeCase(broker: Broker, login: { MQTT_USER?: string; MQTT_PASS?: string } = {}) {
    const settings = { DEVICE_ID: "bench-1", MQTT_HOST: "127.0.0.1", MQTT_PORT: broker.port, MQTT_TLS: false, ...login }
    const dash = await startDashboard({ port: 0, settings, embedded: false })
    const dev = await mqtt.connectAsync(broker.url, { clientId: "bench-1", reconnectPeriod: 0, username: login.MQTT_USER, password: login.MQTT_PASS })
    try {
        assert.match(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
        const page = await request(dash.url, {})
        assert.equal(page.status, 200)
        assert.match(page.body, /<script defer src="\/app\.js"><\/script>/)
        for (const asset of ["app.js", "app.css", "favicon.svg"]) assert.equal((await request(dash.url + asset, {})).status, 200, asset)
        assert.equal((await request(dash.url + "nope", {})).status, 404)

        await until("the bridge to connect", () => dash.state.snapshot().link.state === "connected", 10000)
        const cmds: { topic: string; text: string }[] = []
        dev.on("message", (topic, p) => cmds.push({ topic, text: p.toString() }))
        await dev.subscribeAsync("devices/bench-1/commands/+", { qos: 1 })
        await dev.publishAsync("devices/bench-1/status", "online", { qos: 1, retain: true })
        await dev.publishAsync("devices/bench-1/telemetry", JSON.stringify({ ts: Date.now(), temperature: 22.5, humidity: 41, led: false, interval: 5000, uptime: 3 }), { qos: 1 })
        await until("the report in the state", () => dash.state.getCounters().reports === 1, 5000)
        assert.equal(dash.state.getDevice().online, true)
        assert.equal(dash.state.getDevice().temperature, 22.5)

        const post = (body: string, headers: Record<string, string> = { "Content-Type": "application/json" }) => request(dash.url + "api/command", { method: "POST", headers, body })
        const r = await post(JSON.stringify({ command: "set", params: { led: true } }))
        assert.equal(r.status, 200, r.body)
        const res = JSON.parse(r.body)
        assert.equal(res.ok, true)
        const got = await until("the command at the device", () => cmds.find(c => c.topic === "devices/bench-1/commands/set"), 5000)
        assert.deepEqual(JSON.parse(got.text), { id: res.id, params: { led: true } })
        await dev.publishAsync("devices/bench-1/replies", JSON.stringify({ id: res.id, code: 200, data: { led: true } }), { qos: 1 })
        const entry = await until("the reply paired", () => dash.state.snapshot().mqtt.find(e => e.seq === res.seq && e.reply), 5000)
        assert.equal(entry.reply?.code, 200)
        assert.equal(dash.state.getDevice().led, true)
        if (login.MQTT_PASS) assert.ok(!JSON.stringify(dash.state.snapshot()).includes(login.MQTT_PASS), "the password is not in what the page gets")

        // refused: not JSON, a page elsewhere (Origin), another Host name; a bad command is an answer
        assert.equal((await post("led=1", { "Content-Type": "application/x-www-form-urlencoded" })).status, 415)
        assert.equal((await post("{}", { "Content-Type": "application/json", Origin: "http://evil.example" })).status, 403)
        assert.equal((await request(dash.url + "api/state", { headers: { Host: "evil.example" } })).status, 421)
        const bad = JSON.parse((await post(JSON.stringify({ command: "explode" }))).body)
        assert.equal(bad.ok, false)
        assert.match(bad.error, /unknown command "explode"/)

        // the event stream starts with a snapshot
        const first = await new Promise<ServerEvent>((resolve, reject) => {
            const req = http.get(dash.url + "api/events", res => {
                let buf = ""
                res.on("data", d => {
                    buf += d
                    const m = /^data: (.*)$/m.exec(buf)
                    if (m) {
                        req.destroy()
                        resolve(JSON.parse(m[1]))
                    }
                })
            })
            req.on("error", reject)
        })
        assert.equal(first.type, "snapshot")
        assert.equal(first.type === "snapshot" && first.counters.reports, 1)
    } finally {
        await dev.endAsync(true)
        await dash.close()
    }
}

test("server and bridge on aedes: telemetry in, a posted command out and its reply paired; foreign requests refused", { timeout: 30000 }, async () => {
    const broker = await startAedes()
    try {
        await bridgeCase(broker)
    } finally {
        await broker.close()
    }
})

test("server and bridge on Mosquitto with a user name and password (MQTT_USER/MQTT_PASS)", { timeout: 30000, skip: skipUnless("mosquitto") }, async () => {
    const broker = await startMosquitto({ users: { kit: "dash-pass-1" } })
    try {
        await bridgeCase(broker, { MQTT_USER: "kit", MQTT_PASS: "dash-pass-1" })
    } finally {
        await broker.close()
    }
})

test("npm start: a taken --dashboard-port is refused with a clear message, exit 1", { timeout: 30000 }, async () => {
    const blocker = http.createServer()
    await new Promise<void>(r => blocker.listen(0, "127.0.0.1", () => r()))
    const port = (blocker.address() as { port: number }).port
    try {
        const child = spawn(process.execPath, ["--import", "tsx", "sim/start.ts", "--broker-port", "0", "--dashboard-port", String(port)], { cwd: ROOT })
        let stderr = ""
        child.stderr.on("data", d => (stderr += d))
        const code = await new Promise<number | null>(r => child.on("close", c => r(c)))
        assert.equal(code, 1, stderr)
        assert.match(stderr, new RegExp(`dashboard: port ${port} on 127\\.0\\.0\\.1 is in use\\. Pick another with --dashboard-port N`))
    } finally {
        await new Promise<void>(r => blocker.close(() => r()))
    }
})

test("npm start options: --dashboard-port and --no-dashboard", () => {
    assert.equal(parseOptions([]).dashboardPort, 8080)
    assert.equal(parseOptions(["--dashboard-port", "0"]).dashboardPort, 0)
    assert.equal(parseOptions(["--no-dashboard"]).dashboardPort, undefined)
    assert.throws(() => parseOptions(["--dashboard-port", "x"]), /--dashboard-port must be an integer 0\.\.65535, got "x"/)
    assert.throws(() => parseOptions(["--no-dashboard", "--dashboard-port", "1"]), /cannot be combined/)
    assert.ok(USAGE.includes("--dashboard-port N") && USAGE.includes("--no-dashboard"))
})

// --- end to end in the browser ---

test(
    "dashboard in headless Chromium: live chart, LED switch with the device's reply, interval changes the cadence, no console errors",
    { timeout: 90000, skip: skipUnless("chromium") },
    async () => {
        const { chromium } = await import("playwright-core")
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dash-e2e-"))
        const envFile = path.join(tmp, "dash.env")
        // a quicker cadence than the default, so the test sees several reports at each interval
        fs.writeFileSync(envFile, "REPORT_MS=3000\n")
        const child = spawn(process.execPath, ["--import", "tsx", "sim/start.ts", "--broker-port", "0", "--dashboard-port", "0", "--env", envFile], {
            cwd: ROOT,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1" },
        })
        const pid = child.pid!
        const lines: string[] = []
        createInterface({ input: child.stdout! }).on("line", l => lines.push(l))
        createInterface({ input: child.stderr! }).on("line", l => lines.push(l))
        let exited = false
        const exit = new Promise<void>(r => child.on("exit", () => ((exited = true), r())))
        const out = () => lines.slice(-30).join("\n")
        const pageErrors: string[] = []
        let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined
        let obs: mqtt.MqttClient | undefined
        try {
            const banner = await until("the start banner", () => {
                if (exited) throw new Error(`npm start exited\n${out()}`)
                const d = lines.map(l => /^\s+dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/)$/.exec(l)).find(Boolean)
                const b = lines.map(l => /^\s+broker\s+(mqtt:\/\/127\.0\.0\.1:\d+) /.exec(l)).find(Boolean)
                const t = lines.map(l => /topics under (\S+)\/$/.exec(l)).find(Boolean)
                return d && b && t ? { url: d[1], broker: b[1], base: t[1] } : undefined
            }, 40000, out)

            // an independent observer of the device's topics
            obs = await mqtt.connectAsync(banner.broker, { reconnectPeriod: 0 })
            const seen: { topic: string; text: string; at: number }[] = []
            obs.on("message", (topic, p) => seen.push({ topic, text: p.toString(), at: Date.now() }))
            await obs.subscribeAsync(`${banner.base}/#`, { qos: 1 })
            const reports = () => seen.filter(m => m.topic === `${banner.base}/telemetry`).map(m => JSON.parse(m.text) as { ts: number; led: boolean; interval: number })

            const userDataDir = path.join(tmp, "profile")
            fs.mkdirSync(userDataDir)
            ctx = await chromium.launchPersistentContext(userDataDir, {
                executablePath: CHROMIUM,
                headless: true,
                args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
                viewport: { width: 1440, height: 1000 },
            })
            const page = ctx.pages()[0] ?? (await ctx.newPage())
            page.on("console", m => {
                if (m.type() === "error") pageErrors.push(m.text())
            })
            page.on("pageerror", e => pageErrors.push(`uncaught: ${e.message}`))
            await page.goto(banner.url)

            // telemetry points appear in the chart, drawn in the temperature colour
            const attr = async (sel: string, name: string) => (await page.getAttribute(sel, name)) ?? ""
            await until("two points in the temperature chart", async () => Number(await attr("[data-testid=temp-chart]", "data-points")) >= 2, 45000, out)
            const orange = await page.evaluate(() => {
                const c = document.querySelector<HTMLCanvasElement>("#temp-chart canvas")
                if (!c) return -1
                const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data
                let n = 0
                for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 251) < 12 && Math.abs(d[i + 1] - 146) < 12 && Math.abs(d[i + 2] - 60) < 12 && d[i + 3] > 200) n++
                return n
            })
            assert.ok(orange > 20, `the chart's canvas shows the temperature line (${orange} pixels in its colour)`)
            assert.notEqual((await page.textContent("[data-testid=temp-value]"))?.trim(), "–", "the temperature tile shows a value")
            for (const ph of ["network", "time", "broker", "subscribe", "reporting"])
                assert.equal(await attr(`[data-testid=phase-${ph}]`, "data-state"), "ok", `bring-up phase ${ph} is ok on the page`)
            assert.equal((await page.textContent("[data-testid=presence]"))?.trim(), "Online")

            // the LED switch: the device's reply in the log and the new state on the page and in its reports
            const before = (await attr("[data-testid=led-switch]", "aria-checked")) === "true"
            await page.click("[data-testid=led-switch]")
            const cmdRow = "[data-testid=mqtt-log] li[data-dir=out][data-kind=command]"
            await until("the LED command's reply on the page", async () => (await attr(cmdRow, "data-reply-code")) === "200", 15000, out)
            const id = await attr(cmdRow, "data-id")
            assert.match(id, /^dash-\d+$/)
            assert.equal(await page.locator(`[data-testid=mqtt-log] li[data-kind=reply][data-id="${id}"][data-code="200"]`).count(), 1, "the reply itself is logged")
            const reply = seen.find(m => m.topic === `${banner.base}/replies` && JSON.parse(m.text).id === id)
            assert.deepEqual(reply && JSON.parse(reply.text), { id, code: 200, data: { led: !before } }, "the device replied on its replies topic")
            await until("the switch showing the new state", async () => (await attr("[data-testid=led-switch]", "aria-checked")) === String(!before), 10000)
            assert.equal((await page.textContent("[data-testid=led-state]"))?.trim(), before ? "Off" : "On")
            assert.match((await page.textContent("[data-testid=led-status]")) ?? "", new RegExp(`${id} → 200`))
            await until("a report with the new LED state", () => reports().some(r => r.led === !before), 10000)
            // Toggle sends commands/toggle: back to the first state
            await page.click("[data-testid=led-toggle]")
            const toggleRow = "[data-testid=mqtt-log] li[data-dir=out][data-kind=command]:has(.m-topic:text-is('commands/toggle'))"
            await until("the toggle's reply on the page", async () => (await attr(toggleRow, "data-reply-code")) === "200", 15000, out)
            await until("the switch back in the first state", async () => (await attr("[data-testid=led-switch]", "aria-checked")) === String(before), 10000)

            // the interval: measured cadence at 3 s, set 1 s, measured cadence follows
            const cadence = async () => {
                const m = /^([\d.]+) (ms|s|min)$/.exec(((await page.textContent("[data-testid=cadence]")) ?? "").trim())
                return m ? Number(m[1]) * (m[2] === "ms" ? 0.001 : m[2] === "min" ? 60 : 1) : undefined
            }
            await until("the page measuring the 3 s cadence", async () => Math.abs(((await cadence()) ?? 0) - 3) < 0.75, 20000, out)
            await page.fill("[data-testid=interval-input]", "1")
            await page.click("[data-testid=interval-apply]")
            await until("the interval reply", async () => /→ 200/.test((await page.textContent("[data-testid=interval-status]")) ?? ""), 10000, out)
            // a report sampled before the change can reach the broker after the reply (it waited in
            // the device's backlog while the command was answered) and show the old interval until
            // the next report: wait for the value rather than read it once
            await until("the page showing the 1 s interval", async () => (await page.textContent("[data-testid=interval-value]"))?.trim() === "1 s", 10000, out)
            await until("the page measuring the 1 s cadence", async () => Math.abs(((await cadence()) ?? 0) - 1) < 0.3, 15000, out)
            // the device's own timestamps agree (the page's median can settle before the third report)
            await until("three reports at the new interval", () => reports().filter(r => r.interval === 1000).length >= 3, 15000, out)
            const fast = reports().filter(r => r.interval === 1000)
            const gaps = fast.slice(1).map((r, i) => r.ts - fast[i].ts).sort((a, b) => a - b)
            assert.ok(gaps[gaps.length >> 1] < 2000, `the reports come about every second now (gaps ${gaps.join(", ")} ms)`)

            // counters on the page
            assert.ok(Number(await page.textContent("[data-testid=count-reports]")) >= 4, "reports counted")
            // screenshots: desktop, then phone width
            fs.mkdirSync(ARTIFACTS, { recursive: true })
            await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true })
            await page.setViewportSize({ width: 390, height: 844 })
            await sleep(400)
            const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
            assert.ok(overflow <= 0, `no horizontal scrolling at phone width (${overflow} px too wide)`)
            await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-phone.png"), fullPage: true })

            assert.deepEqual(pageErrors, [], "no errors in the page's console")
        } finally {
            await ctx?.close().catch(() => {})
            await obs?.endAsync(true).catch(() => {})
            if (!exited) {
                try {
                    process.kill(-pid, "SIGINT")
                } catch {}
                const t = setTimeout(() => {
                    try {
                        process.kill(-pid, "SIGKILL")
                    } catch {}
                }, 15000)
                await exit
                clearTimeout(t)
            }
            fs.rmSync(tmp, { recursive: true, force: true })
        }
    }
)
