/**
 * End to end over the emulated W5500: the real firmware image (src/main.ts, the generic simulator
 * image) runs its W5500 driver, DHCP, SNTP and DNS through the emulator bridge against the emulated
 * LAN's independent servers (sim/w5500/), exactly as `npm start` runs it, and reports to aedes.
 * Three boots: the normal path (lease, time, name, reports, a command, lease renewals with a 10 s
 * lease, link down and up), a LAN without DHCP (retries with backoff, then the static fallback),
 * and a broker name that does not resolve (NXDOMAIN, logged, retried until the name appears).
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, type AedesBroker } from "../../sim/brokers.ts"
import { startEmulatedNetwork, BROKER_LAN_IP } from "../../sim/start.ts"
import type { LanOptions, W5500Sim } from "../../sim/w5500/index.ts"
import { Device, Observer, boot, checkReport, hostLink, onCleanup, settingsFor, sleep } from "./lib/e2e.ts"

const T = { timeout: 240000 }

interface Rig {
    broker: AedesBroker
    sim: W5500Sim
    dev: Device
    obs: Observer
    base: string
    /** CONNECTs the broker accepted from the device */
    connects: () => number
    /** device console lines matching `re` */
    lines: (re: RegExp) => string[]
    waitLine: (what: string, re: RegExp, timeoutMs: number) => Promise<string>
    /** stops the device, the LAN (and its bridge) and the broker */
    close: () => Promise<void>
}

/** aedes, the emulated W5500 and LAN, an observer, and the device booted with `over` settings. */
async function rig(name: string, over: Record<string, string | number | boolean>, lan: LanOptions = {}, prep?: (sim: W5500Sim) => void): Promise<Rig> {
    const id = `w5500-${name}-${process.pid}`
    const base = `devices/${id}`
    const broker = await startAedes()
    const closeBroker = onCleanup(() => broker.close())
    let connects = 0
    broker.aedes.on("client", c => {
        if (c.id === id) connects++
    })
    const sim = await startEmulatedNetwork({ lan: { log: () => {}, ...lan } })
    const closeSim = onCleanup(() => sim.close())
    prep?.(sim)
    const obs = await Observer.open(broker.url, {}, [`${base}/#`])
    const closeObs = onCleanup(() => obs.close())
    const link = await hostLink(settingsFor(broker.port, { DEVICE_ID: id, REPORT_MS: 1000, LOG_LEVEL: "info", ...over }, "w5500"), { time: false })
    const dev = new Device("src/main.ts")
    await boot(dev, link, 200000)
    const lines = (re: RegExp) => dev.lines.filter(l => re.test(l))
    const waitLine = async (what: string, re: RegExp, timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            const l = dev.lines.find(x => re.test(x))
            if (l) return l
            if (dev.exited) throw new Error(`waiting for ${what}: the VM exited\n${dev.tail()}`)
            if (Date.now() > deadline) throw new Error(`waiting for ${what}: no line matching ${re} after ${timeoutMs} ms\n${dev.tail(40)}`)
            await sleep(50)
        }
    }
    const close = async () => {
        await dev.kill()
        await closeObs()
        await closeSim()
        await closeBroker()
    }
    return { broker, sim, dev, obs, base, connects: () => connects, lines, waitLine, close }
}

test("over the emulated W5500: DHCP, SNTP, DNS, reports, a command, 10 s lease renewals, link down and up", T, async t => {
    const r = await rig("main", {}, { leaseSeconds: 10 })
    t.after(() => r.close())
    const { dev, obs, base, sim } = r
    const telemetry = `${base}/telemetry`

    await t.test("boot: a DHCP lease, the time by SNTP, broker.lan by DNS, then reports", async () => {
        const first = await obs.waitFor("the first report", 0, m => m.topic === telemetry, 90000, dev)
        checkReport(first)
        assert.ok(sim.lan.dhcp.counters.ack >= 1, "the LAN's DHCP server acknowledged a lease")
        assert.ok(r.lines(/192\.168\.50\.1\d\d/).length > 0, `the device logs its DHCP address\n${dev.tail(40)}`)
        assert.ok(sim.lan.ntp.counters.replies >= 1, "the LAN's NTP server answered")
        assert.ok(r.lines(/boot: time: .*sntp/i).length > 0, `the clock came from SNTP (the runner gave no time)\n${dev.tail(40)}`)
        assert.ok(sim.lan.dns.counters.answered >= 1, "the LAN's DNS server answered (broker.lan)")
        assert.ok(r.lines(/mqtt: connected to broker\.lan/).length > 0, `connected to broker.lan\n${dev.tail(40)}`)
        assert.equal(r.connects(), 1)
    })

    await t.test("a command round trip: LED on, reply 200, next report shows it", async () => {
        const from = obs.mark()
        await obs.client.publishAsync(`${base}/commands/set`, JSON.stringify({ id: "w1", params: { led: true } }), { qos: 1 })
        const reply = await obs.waitFor("the reply", from, m => m.topic === `${base}/replies` && m.json?.id === "w1", 20000, dev)
        assert.equal(reply.json.code, 200, reply.text)
        const rep = await obs.waitFor("a report with the LED on", from, m => m.topic === telemetry && m.json?.led === true, 20000, dev)
        checkReport(rep, { led: true })
    })

    await t.test("10 s lease: renewed at T1 while MQTT stays connected and reports keep coming", async () => {
        const acks = sim.lan.dhcp.counters.ack
        const from = obs.mark()
        await sleep(16000)
        assert.ok(sim.lan.dhcp.counters.ack >= acks + 2, `at least two renewals in 16 s of a 10 s lease (acks ${acks} -> ${sim.lan.dhcp.counters.ack})`)
        assert.ok(r.lines(/renew/i).length > 0, `the device logs the renewal\n${dev.tail(40)}`)
        assert.equal(r.connects(), 1, "no MQTT reconnect across the renewals")
        const reports = obs.after(from, telemetry).length
        assert.ok(reports >= 12, `reports kept coming at 1 s: ${reports} in 16 s`)
    })

    await t.test("link down for 5 s, then up: logged, and reporting resumes", async () => {
        sim.chip.setLink(false)
        await r.waitLine("the link-down log", /link down/i, 10000)
        await sleep(5000)
        const from = obs.mark()
        sim.chip.setLink(true)
        const t0 = Date.now()
        await r.waitLine("the link-up log", /link up/i, 10000)
        await obs.waitFor("a report after the link came back", from, m => m.topic === telemetry, 60000, dev)
        t.diagnostic(`reports resumed ${Date.now() - t0} ms after link up; MQTT connects so far: ${r.connects()}`)
    })
})

test("over the emulated W5500: no DHCP server -> retries with backoff, then the static fallback", T, async t => {
    const sent: number[] = []
    // the LAN's DHCP server ignores everything; every DHCP datagram the chip sends is timed
    const prep = (sim: W5500Sim) => {
        const dhcp = sim.lan.dhcp
        dhcp.silent = true
        const handle = dhcp.handle.bind(dhcp)
        dhcp.handle = (d, now) => {
            sent.push(Date.now())
            return handle(d, now)
        }
    }
    const r = await rig("static", { NET_IP: "192.168.50.60", NET_GATEWAY: "192.168.50.1", NET_DNS: "192.168.50.1", DHCP_WAIT_MS: 12000 }, {}, prep)
    t.after(() => r.close())
    // samples taken before the time was known (while DHCP was tried) are forwarded first, without ts
    const rep = await r.obs.waitFor("a report over the static address, with the time", 0, m => m.topic === `${r.base}/telemetry` && typeof m.json?.ts === "number", 120000, r.dev)
    checkReport(rep)
    await t.test("DHCP retried with growing gaps and a clear log, then the static address", () => {
        assert.ok(sent.length >= 3, `at least 3 DHCP attempts before the fallback, saw ${sent.length}`)
        const gaps = sent.slice(1).map((x, i) => x - sent[i])
        t.diagnostic(`gaps between DHCP attempts (ms): ${gaps.join(", ")}`)
        assert.ok(gaps[gaps.length - 1] > gaps[0], `backoff: the gaps grow (${gaps.join(", ")})`)
        assert.ok(r.lines(/DHCP.*(no answer|unanswered)/i).length > 0, `a log line says DHCP got no answer\n${r.dev.tail(40)}`)
        assert.ok(r.lines(/static/).length > 0 && r.lines(/192\.168\.50\.60/).length > 0, `the static fallback is logged\n${r.dev.tail(40)}`)
    })
    await t.test("DHCP goes on in the background: once the server answers, its lease replaces the static address", async () => {
        const n = sent.length
        r.sim.lan.dhcp.silent = false
        await r.waitLine("the move to the lease", /leaving the static address 192\.168\.50\.60/, 120000)
        assert.ok(sent.length > n, "DHCP was still tried after the fallback")
        const from = r.obs.mark()
        await r.obs.waitFor("a report over the leased address", from, m => m.topic === `${r.base}/telemetry`, 60000, r.dev)
    })
})

test("over the emulated W5500: the broker's name does not resolve -> NXDOMAIN logged, retried until it does", T, async t => {
    const r = await rig("nxdomain", { MQTT_HOST: "later.lan" })
    t.after(() => r.close())
    await r.waitLine("the NXDOMAIN log", /later\.lan.*(NXDOMAIN|does not exist|no such name)/i, 90000)
    assert.equal(r.connects(), 0)
    r.sim.lan.dns.set("later.lan", BROKER_LAN_IP)
    const rep = await r.obs.waitFor("a report once the name resolves", 0, m => m.topic === `${r.base}/telemetry`, 90000, r.dev)
    checkReport(rep)
})
