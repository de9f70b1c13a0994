/**
 * End-to-end: the real firmware (src/main.ts) in the simulator against real brokers (aedes in this
 * process, and Mosquitto when installed), observed with mqtt.js clients. One VM boot per broker
 * covers boot, cadence, commands and their replies, invalid commands, status and its will, Home
 * Assistant discovery and a broker restart; one more boot covers a configuration error.
 */
import { test, type TestContext } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import mqtt from "mqtt"
import { startAedes, startMosquitto, type Broker } from "../../sim/brokers.ts"
import { Device, Observer, boot, checkReport, hostLink, onCleanup, retained, settingsFor, sleep, type Rx } from "./lib/e2e.ts"
import { skipUnless } from "./lib/tools.ts"

/** The whole device behaviour against one broker, with one VM boot. */
async function scenario(t: TestContext, broker: Broker) {
    const id = `e2e-${broker.kind}-${process.pid}`
    const base = `devices/${id}`
    const telemetry = `${base}/telemetry`
    const status = `${base}/status`
    const replies = `${base}/replies`
    const cmd = (name: string) => `${base}/commands/${name}`
    const link = await hostLink(settingsFor(broker.port, { DEVICE_ID: id, REPORT_MS: 1000 }))
    // a persistent session: nothing is lost while the broker restarts
    const obs = await Observer.open(broker.url, { clientId: `obs-${id}`, clean: false }, [`${base}/#`, `homeassistant/+/${id}/+/config`])
    const closeObs = onCleanup(() => obs.close())
    const dev = new Device()
    const reports = (from: number) => obs.after(from, telemetry)
    const nextReport = (what: string, from: number, timeoutMs = 5000) => obs.waitFor(what, from, m => m.topic === telemetry, timeoutMs, dev)

    /** Sends a command and returns its reply (matched by id; `expectId` "" = the next reply). */
    const send = async (name: string, payload: string | Buffer, expectId: string) => {
        const from = obs.mark()
        await obs.client.publishAsync(cmd(name), payload, { qos: 1 })
        const r = await obs.waitFor(`the reply to ${name} id=${JSON.stringify(expectId)}`, from,
            m => m.topic === replies && (expectId === "" || m.json?.id === expectId), 5000, dev)
        assert.ok(r.json && typeof r.json === "object", `reply is JSON: ${r.text}`)
        assert.equal(r.json.id, expectId, `reply carries the command id: ${r.text}`)
        return { reply: r.json, rx: r, from }
    }

    try {
        const bootFrom = obs.mark()
        await boot(dev, link, 180000)

        await t.test("boot to the first report", async () => {
            const first = await nextReport("the first report", bootFrom, 30000)
            checkReport(first, { led: false, interval: 1000 })
            assert.ok(dev.lines.some(l => l.includes(`boot: mqtt: connected to 127.0.0.1:${broker.port}`)), "the mqtt phase is logged")
            assert.ok(dev.lines.some(l => /^boot: reporting every 1000 ms/.test(l)), "the reporting phase is logged")
        })

        await t.test("status: retained online after connect", async () => {
            await obs.waitFor("status online", bootFrom, m => m.topic === status && m.text === "online", 5000, dev)
            const got = await retained(broker.url, status, 1)
            assert.equal(got.length, 1, "one retained status")
            assert.equal(got[0].text, "online")
            assert.equal(got[0].retain, true, "status is retained")
        })

        await t.test("Home Assistant discovery: retained JSON configs with the required fields", async () => {
            // let the announcement finish, so the fresh subscriber below gets only retained copies
            await obs.waitFor("the last discovery message", bootFrom, m => m.topic === `homeassistant/button/${id}/report/config`, 10000, dev)
            await sleep(200)
            const got = await retained(broker.url, `homeassistant/+/${id}/+/config`, 6)
            const topics = got.map(m => m.topic).sort()
            assert.deepEqual(topics, [
                `homeassistant/button/${id}/report/config`,
                `homeassistant/number/${id}/interval/config`,
                `homeassistant/sensor/${id}/humidity/config`,
                `homeassistant/sensor/${id}/temperature/config`,
                `homeassistant/sensor/${id}/uptime/config`,
                `homeassistant/switch/${id}/led/config`,
            ])
            const ids = new Set<string>()
            const byTopic: Record<string, any> = {}
            for (const m of got) {
                assert.equal(m.retain, true, `${m.topic} is retained`)
                const c = m.json
                assert.ok(c && typeof c === "object", `${m.topic} is a JSON object: ${m.text}`)
                byTopic[m.topic] = c
                const component = m.topic.split("/")[1]
                assert.ok(typeof c.unique_id === "string" && c.unique_id.length > 0, `${m.topic}: unique_id`)
                assert.ok(!ids.has(c.unique_id), `${m.topic}: unique_id ${c.unique_id} is unique`)
                ids.add(c.unique_id)
                assert.ok(typeof c.name === "string" && c.name.length > 0, `${m.topic}: name`)
                assert.ok(c.device && Array.isArray(c.device.identifiers) && c.device.identifiers.includes(id), `${m.topic}: device.identifiers holds ${id}`)
                assert.ok(typeof c.device.name === "string" && c.device.name.length > 0, `${m.topic}: device.name`)
                assert.equal(c.availability_topic, status, `${m.topic}: availability_topic`)
                assert.equal(c.payload_available, "online")
                assert.equal(c.payload_not_available, "offline")
                if (component !== "button") {
                    assert.equal(c.state_topic, telemetry, `${m.topic}: state_topic`)
                    assert.match(c.value_template, new RegExp(`value_json\\.${m.topic.split("/")[3]}\\b`), `${m.topic}: value_template`)
                }
                if (component !== "sensor") assert.ok(typeof c.command_topic === "string" && c.command_topic.startsWith(`${base}/commands/`), `${m.topic}: command_topic`)
            }
            const temp = byTopic[`homeassistant/sensor/${id}/temperature/config`]
            assert.equal(temp.device_class, "temperature")
            assert.equal(temp.unit_of_measurement, "\u00b0C")
            assert.equal(byTopic[`homeassistant/sensor/${id}/humidity/config`].device_class, "humidity")
            const sw = byTopic[`homeassistant/switch/${id}/led/config`]
            assert.equal(sw.command_topic, cmd("set"), "the switch commands via commands/set")
            // what Home Assistant sends when the switch is flipped works on the device
            const on = await send("set", sw.payload_on, JSON.parse(sw.payload_on).id)
            assert.equal(on.reply.code, 200, `HA payload_on: ${on.rx.text}`)
            assert.deepEqual(on.reply.data, { led: true })
            checkReport(await nextReport("a report after HA switch on", obs.msgs.indexOf(on.rx)), { led: true })
            const off = await send("set", sw.payload_off, JSON.parse(sw.payload_off).id)
            assert.equal(off.reply.code, 200, `HA payload_off: ${off.rx.text}`)
            assert.deepEqual(off.reply.data, { led: false })
            const btn = byTopic[`homeassistant/button/${id}/report/config`]
            assert.equal(btn.command_topic, cmd("report"))
            assert.equal((await send("report", btn.payload_press, JSON.parse(btn.payload_press).id)).reply.code, 200)
        })

        await t.test("led: set and toggle apply, reply 200 with the id, the next report shows it", async () => {
            const on = await send("set", JSON.stringify({ id: "led-on", params: { led: true } }), "led-on")
            assert.equal(on.reply.code, 200, on.rx.text)
            assert.deepEqual(on.reply.data, { led: true })
            checkReport(await nextReport("the report after led on", obs.msgs.indexOf(on.rx)), { led: true })

            const tg = await send("toggle", JSON.stringify({ id: "tg-1" }), "tg-1")
            assert.equal(tg.reply.code, 200, tg.rx.text)
            assert.deepEqual(tg.reply.data, { led: false })
            checkReport(await nextReport("the report after toggle", obs.msgs.indexOf(tg.rx)), { led: false })

            // a numeric id comes back as text; "on" is accepted for a boolean
            const num = await send("set", '{"id":42,"params":{"led":"on"}}', "42")
            assert.equal(num.reply.code, 200, num.rx.text)
            checkReport(await nextReport("the report after led on (numeric id)", obs.msgs.indexOf(num.rx)), { led: true })

            const tg2 = await send("set", JSON.stringify({ id: "tg-2", params: { led: "toggle" } }), "tg-2")
            assert.equal(tg2.reply.code, 200, tg2.rx.text)
            assert.deepEqual(tg2.reply.data, { led: false })
            checkReport(await nextReport("the report after set led toggle", obs.msgs.indexOf(tg2.rx)), { led: false })
        })

        await t.test("invalid commands get error replies naming the problem; the device keeps reporting", async () => {
            const big = JSON.stringify({ id: "big", params: { led: true }, pad: "x".repeat(3000) })
            const cases: { name: string; payload: string | Buffer; id: string; code: number; message: RegExp; what: string }[] = [
                { what: "bad JSON", name: "set", payload: '{"id":"bj","params":{"led":tru', id: "", code: 400, message: /not valid JSON/ },
                { what: "not an object", name: "set", payload: "[1,2]", id: "", code: 400, message: /must be a JSON object.*an array/ },
                { what: "empty set", name: "set", payload: "", id: "", code: 400, message: /payload is empty/ },
                { what: "no params", name: "set", payload: '{"id":"np"}', id: "np", code: 400, message: /params must be an object/ },
                { what: "unknown property", name: "set", payload: '{"id":"up","params":{"colour":"red"}}', id: "up", code: 404, message: /unknown property "colour"/ },
                { what: "wrong type", name: "set", payload: '{"id":"wt","params":{"led":"maybe"}}', id: "wt", code: 422, message: /led must be a boolean.*"maybe"/ },
                { what: "wrong type (int)", name: "set", payload: '{"id":"wi","params":{"interval":1500.5}}', id: "wi", code: 422, message: /interval must be an integer/ },
                { what: "out of range", name: "set", payload: '{"id":"or","params":{"interval":10}}', id: "or", code: 422, message: /interval must be an integer 1000\.\.3600000.*got 10 \(out of range\)/ },
                { what: "read-only", name: "set", payload: '{"id":"ro","params":{"temperature":30}}', id: "ro", code: 403, message: /temperature is read-only/ },
                { what: "read-only toggle", name: "toggle", payload: '{"id":"rt","params":{"name":"uptime"}}', id: "rt", code: 403, message: /uptime is read-only/ },
                { what: "all or nothing", name: "set", payload: '{"id":"an","params":{"led":true,"interval":5}}', id: "an", code: 422, message: /interval must be .*out of range/ },
                { what: "oversized", name: "set", payload: big, id: "", code: 413, message: new RegExp(`payload is ${Buffer.byteLength(big)} bytes, at most 2048 allowed`) },
                { what: "unknown command", name: "reboot", payload: '{"id":"uc"}', id: "uc", code: 404, message: /unknown command "reboot" \(known: set, toggle, report\)/ },
                // hostile input: invalid UTF-8 (it once crashed the VM), nesting deep enough to exhaust a recursive parser
                { what: "invalid UTF-8", name: "set", payload: Buffer.from([...Buffer.from('{"id":"'), 0xc3, 0x28, ...Buffer.from('","params":{"led":true}}')]), id: "", code: 400, message: /not valid UTF-8/ },
                { what: "deep nesting", name: "set", payload: "[".repeat(1000) + "]".repeat(1000), id: "", code: 400, message: /nested more than 8 levels/ },
                { what: "bad id type", name: "report", payload: '{"id":{"x":1}}', id: "", code: 400, message: /id must be a string or a number, got an object/ },
            ]
            for (const c of cases) {
                const { reply, rx } = await send(c.name, c.payload, c.id)
                assert.equal(reply.code, c.code, `${c.what}: code in ${rx.text}`)
                assert.equal(typeof reply.message, "string", `${c.what}: message in ${rx.text}`)
                assert.match(reply.message, c.message, `${c.what}: message`)
                assert.equal(reply.data, undefined, `${c.what}: no data in an error reply`)
            }
            // above the client's maxPacketSize (8192): skipped as it streams past, logged, no reply
            const huge = JSON.stringify({ id: "huge", params: { led: true }, pad: "x".repeat(9000) })
            const hugeAt = obs.mark()
            await obs.client.publishAsync(cmd("set"), huge, { qos: 1 })
            const skipped = () => dev.lines.some(l => l.startsWith("mqtt: skipped an incoming message larger than 8192 bytes"))
            for (let i = 0; i < 100 && !skipped(); i++) await sleep(100)
            assert.ok(skipped(), `the skip is logged\n${dev.tail()}`)
            await sleep(500)
            const late = obs.msgs.slice(hugeAt).filter(m => m.topic === replies)
            assert.deepEqual(late.map(m => m.text), [], "no reply to a message the device never read")
            // nothing changed, and the schedule still runs (the cadence test below counts the reports)
            checkReport(await nextReport("a report after the invalid commands", obs.mark(), 3000), { led: false, interval: 1000 })
            assert.ok(!dev.exited, "the VM is still running")
        })

        await t.test("cadence: REPORT_MS=1000 gives 5..7 reports in 6 s (still after the invalid commands)", async () => {
            const from = obs.mark()
            await sleep(6000)
            const n = reports(from).length
            assert.ok(n >= 5 && n <= 7, `${n} reports in 6 s at REPORT_MS=1000\n${dev.tail()}`)
            for (const r of reports(from)) checkReport(r, { interval: 1000 })
        })

        await t.test("set interval changes the cadence", async () => {
            const two = await send("set", JSON.stringify({ id: "iv-2000", params: { interval: 2000 } }), "iv-2000")
            assert.equal(two.reply.code, 200, two.rx.text)
            assert.deepEqual(two.reply.data, { interval: 2000 })
            checkReport(await nextReport("the report after interval 2000", obs.msgs.indexOf(two.rx)), { interval: 2000 })
            await sleep(100)
            let from = obs.mark()
            await sleep(6000)
            const n = reports(from).length
            // at the old 1000 ms it would be 6
            assert.ok(n >= 2 && n <= 4, `${n} reports in 6 s at interval 2000\n${dev.tail()}`)
            for (const r of reports(from)) checkReport(r, { interval: 2000 })

            const long = await send("set", JSON.stringify({ id: "iv-60000", params: { interval: "60000" } }), "iv-60000")
            assert.equal(long.reply.code, 200, long.rx.text)
            assert.deepEqual(long.reply.data, { interval: 60000 })
            checkReport(await nextReport("the report after interval 60000", obs.msgs.indexOf(long.rx)), { interval: 60000 })
            await sleep(100)
            from = obs.mark()
            await sleep(3000)
            assert.equal(reports(from).length, 0, "no report within 3 s at interval 60000")
        })

        await t.test("report now sends a report at once", async () => {
            const now = await send("report", JSON.stringify({ id: "now-1" }), "now-1")
            assert.equal(now.reply.code, 200, now.rx.text)
            // the schedule's next report is a minute away: this one is the command's
            checkReport(await nextReport("the report asked for", now.from, 5000), { interval: 60000 })
            // an empty payload is fine for report (id "")
            const empty = await send("report", "", "")
            assert.equal(empty.reply.code, 200, empty.rx.text)
            await nextReport("the report asked for with an empty payload", empty.from, 5000)
        })

        // issue 17 item 1: every command is read (flow control) and answered: the brokers' PUBACKs for
        // the replies come back behind the commands already sent, so replies beyond the outbox bound
        // (32) are written in their turn and not kept for a resend, rather than dropped
        await t.test(`a burst of 200 QoS 1 commands (${broker.kind}): each answered exactly once, reports go on`, async () => {
            // the same value as now: no report per command, only replies
            const off = await send("set", JSON.stringify({ id: "b-off", params: { led: false } }), "b-off")
            assert.equal(off.reply.code, 200, off.rx.text)
            const from = obs.mark()
            const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
            const N = 200
            // published at once: far more than Mosquitto's window of 20 and the client's inbox of 16
            await Promise.all(Array.from({ length: N }, (_, i) =>
                pub.publishAsync(cmd("set"), JSON.stringify({ id: `b${i}`, params: { led: false } }), { qos: 1 })))
            await pub.endAsync()
            const answered = () => new Set(obs.after(from, replies).map(m => m.json?.id).filter(id => /^b\d+$/.test(id))).size
            const deadline = Date.now() + 20000
            while (answered() < N && Date.now() < deadline && !dev.exited) await sleep(200)
            await sleep(1500)
            const ids = obs.after(from, replies).map(m => m.json?.id).filter(id => /^b\d+$/.test(id))
            const missing = Array.from({ length: N }, (_, i) => `b${i}`).filter(id => !ids.includes(id))
            assert.deepEqual(missing, [], `${missing.length} of ${N} commands never answered\n${dev.tail()}`)
            // the observer's QoS 1 subscription may see a reply twice only if the device sent it twice
            assert.equal(ids.length, N, `replies: ${ids.length} for ${N} commands (each exactly once)`)
            // the interval is a minute now (set above): ask for a report, which must come at once
            const now = await send("report", JSON.stringify({ id: "after-burst" }), "after-burst")
            assert.equal(now.reply.code, 200, now.rx.text)
            await nextReport("a report after the burst", now.from, 5000)
        })

        await t.test(`broker down 10 s (${broker.kind}): reconnect, online again, the reports made meanwhile arrive after it, none missing`, async () => {
            const back = await send("set", JSON.stringify({ id: "iv-1000", params: { interval: 1000 } }), "iv-1000")
            assert.equal(back.reply.code, 200, back.rx.text)
            await sleep(300)
            const connectsBefore = dev.lines.filter(l => l.startsWith("mqtt: connected to ")).length
            let observerBack = 0
            const onConnect = () => (observerBack ||= Date.now())
            obs.client.on("connect", onConnect)
            const from = obs.mark()
            const stopAt = Date.now()
            await broker.stop()
            // a 10 s outage at a 1 s interval: no sample may be lost (the backlog holds 32)
            await sleep(10000)
            const startAt = Date.now()
            await broker.start()
            // live (not retained) online: the device announced itself again
            const online = await obs.waitFor("status online after the restart", from,
                m => m.topic === status && m.text === "online" && !m.retain, 20000, dev)
            await sleep(4500)
            obs.client.off("connect", onConnect)
            assert.ok(online.at >= startAt)
            assert.ok(dev.lines.filter(l => l.startsWith("mqtt: connected to ")).length > connectsBefore, `the device logged its reconnect\n${dev.tail()}`)

            // store and forward: the device sampled on while the broker was down, and those reports
            // arrive after the recovery, so the device's timestamps have no gap (1 s interval)
            const fresh = reports(from).filter(m => m.at >= startAt)
            assert.ok(fresh.length > 0, `no report after the restart\n${dev.tail()}`)
            const all = reports(from)
            const ts = [...new Set(all.map(m => m.json?.ts as number))].sort((a, b) => a - b)
            const gaps = ts.slice(1).map((t, i) => t - ts[i])
            assert.ok(ts.length >= 6, `reports across the restart: ${ts.length}`)
            assert.ok(Math.max(...gaps) < 1600, `a gap in the reports' timestamps across the restart: ${gaps.join(", ")} ms\n${dev.tail()}`)
            const made = all.filter(m => m.json.ts > stopAt && m.json.ts < startAt)
            assert.ok(made.length >= 9, `${made.length} reports made during the 10 s outage arrived (expected about 10)`)
            // and the schedule goes on at 1000 ms
            const first = fresh[0]
            const resumed = fresh.filter(m => m.at >= first.at + 1000 && m.at < first.at + 4000)
            assert.ok(resumed.length >= 2 && resumed.length <= 5, `${resumed.length} reports in the 3 s after the first second of recovery\n${dev.tail()}`)
            for (const r of fresh) checkReport(r, { interval: 1000 })
            const st = await retained(broker.url, status, 1)
            assert.equal(st.length, 1)
            assert.equal(st[0].text, "online", "the retained status is online again")
        })

        await t.test("status: the will publishes offline when the VM is killed", async () => {
            const from = obs.mark()
            await dev.kill()
            const off = await obs.waitFor("offline from the will", from, m => m.topic === status, 15000)
            assert.equal(off.text, "offline")
            const st = await retained(broker.url, status, 1)
            assert.equal(st.length, 1)
            assert.equal(st[0].text, "offline", "the will is retained")
            assert.equal(st[0].retain, true)
        })
    } finally {
        await dev.kill()
        await closeObs()
    }
}

// generous: the host link may first wait up to 2 minutes for another simulator run to finish
const T = { timeout: 300000 }

test("firmware end to end against aedes", T, async t => {
    const broker = await startAedes()
    onCleanup(() => broker.close())
    try {
        await scenario(t, broker)
    } finally {
        await broker.close()
    }
})

test("firmware end to end against Mosquitto", { ...T, skip: skipUnless("mosquitto") }, async t => {
    const broker = await startMosquitto({ persistence: true })
    onCleanup(() => broker.close())
    try {
        await scenario(t, broker)
    } catch (e) {
        t.diagnostic(`mosquitto log:\n${broker.logTail(30)}`)
        throw e
    } finally {
        await broker.close()
    }
})

test("config error: a bad MQTT_PORT stops boot with a message naming the key, no connection", { timeout: 200000 }, async t => {
    const link = await hostLink(settingsFor(1883, { DEVICE_ID: "e2e-badport", MQTT_PORT: "abc" }))
    // a device that ignored the error would use the default port 1883: watch it when it is free
    let attempts = 0
    const watch = net.createServer(s => {
        attempts++
        s.destroy()
    })
    const watching = await new Promise<boolean>(r => {
        watch.once("error", () => r(false))
        watch.listen(1883, "127.0.0.1", () => r(true))
    })
    if (!watching) t.diagnostic("127.0.0.1:1883 is taken: connection attempts are checked from the console only")
    const dev = new Device()
    let haltedAt = 0
    try {
        await boot(dev, link, 40000, l => {
            if (!haltedAt && l.startsWith("boot: halted")) haltedAt = Date.now()
        })
        const deadline = Date.now() + 30000
        while (!haltedAt && !dev.exited && Date.now() < deadline) await sleep(50)
        assert.ok(haltedAt, `the device did not halt\n${dev.tail()}`)
        // give a wrong implementation time to try the network
        await sleep(1500)
        const msg = dev.lines.find(l => l.includes("MQTT_PORT"))
        assert.ok(msg, `a line names MQTT_PORT\n${dev.tail()}`)
        assert.match(msg, /^config: MQTT_PORT must be an integer 1\.\.65535, got "abc"$/)
        assert.ok(dev.lines.some(l => /^boot: halted: fix the settings/.test(l)), "the halt says what to do")
        const bad = dev.lines.filter(l => /^boot: (config|network|time|ready|mqtt|subscribe|reporting)|^mqtt: |connect/i.test(l))
        assert.deepEqual(bad, [], "no bring-up after the config error")
        assert.ok(!dev.exited, "the device waits (halted), it does not crash or restart")
        if (watching) assert.equal(attempts, 0, "no connection attempt to 127.0.0.1:1883")
    } finally {
        await dev.kill()
        if (watching) await new Promise<void>(r => watch.close(() => r()))
    }
})
