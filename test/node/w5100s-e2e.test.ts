/**
 * End to end over the emulated W5100S (the W5100S-EVB-Pico's chip): the W5100S simulator image
 * (src/images/sim-w5100s-generic.ts) runs the W5100S driver, DHCP, SNTP and DNS through the
 * emulator bridge against the emulated LAN's servers (the W5500's LAN, shared), exactly as
 * `npm start -- --chip w5100s` runs it, and reports to aedes: a lease, the time, broker.lan by
 * DNS, reports, a command round trip; then the SPI cost of one report against the W5500's.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes } from "../../sim/brokers.ts"
import { startEmulatedNetwork } from "../../sim/start.ts"
import { Device, Observer, boot, checkReport, hostLink, onCleanup, settingsFor } from "./lib/e2e.ts"

const T = { timeout: 240000 }

test("over the emulated W5100S: DHCP lease, SNTP, DNS, reports, a command round trip", T, async t => {
    const id = `w5100s-${process.pid}`
    const base = `devices/${id}`
    const broker = await startAedes()
    t.after(onCleanup(() => broker.close()))
    const sim = await startEmulatedNetwork({ kind: "w5100s", lan: { log: () => {} } })
    t.after(onCleanup(() => sim.close()))
    assert.equal(sim.chip.read.length, 2, "a W5100S model (read(addr, len))")
    const obs = await Observer.open(broker.url, {}, [`${base}/#`])
    t.after(onCleanup(() => obs.close()))
    const link = await hostLink(settingsFor(broker.port, { DEVICE_ID: id, REPORT_MS: 1000, LOG_LEVEL: "info" }, "w5500"), { time: false })
    const dev = new Device("src/images/sim-w5100s-generic.ts")
    await boot(dev, link, 200000)
    t.after(() => dev.kill())
    const telemetry = `${base}/telemetry`
    const lines = (re: RegExp) => dev.lines.filter(l => re.test(l))

    const first = await obs.waitFor("the first report", 0, m => m.topic === telemetry, 90000, dev)
    checkReport(first)
    assert.ok(lines(/w5100s: chip version 0x51 on bridge/).length > 0, `the driver found a W5100S (VERR 0x51)\n${dev.tail(40)}`)
    assert.ok(sim.lan.dhcp.counters.ack >= 1, "the LAN's DHCP server acknowledged a lease")
    assert.ok(lines(/192\.168\.50\.1\d\d/).length > 0, `the device logs its DHCP address\n${dev.tail(40)}`)
    assert.ok(sim.lan.ntp.counters.replies >= 1, "the LAN's NTP server answered")
    assert.ok(lines(/boot: time: .*sntp/i).length > 0, `the clock came from SNTP\n${dev.tail(40)}`)
    assert.ok(sim.lan.dns.counters.answered >= 1, "the LAN's DNS server answered (broker.lan)")
    assert.ok(lines(/mqtt: connected to broker\.lan/).length > 0, `connected to broker.lan\n${dev.tail(40)}`)

    const from = obs.mark()
    await obs.client.publishAsync(`${base}/commands/set`, JSON.stringify({ id: "s1", params: { led: true } }), { qos: 1 })
    const reply = await obs.waitFor("the reply", from, m => m.topic === `${base}/replies` && m.json?.id === "s1", 20000, dev)
    assert.equal(reply.json.code, 200, reply.text)
    const rep = await obs.waitFor("a report with the LED on", from, m => m.topic === telemetry && m.json?.led === true, 20000, dev)
    checkReport(rep, { led: true })

    // SPI cost of steady reporting (bytes clocked per report, headers included)
    const c0 = { ...sim.chip.counters }
    const mark = obs.mark()
    await obs.waitFor("5 more reports", mark, () => obs.after(mark, telemetry).length >= 5, 20000, dev)
    const n = obs.after(mark, telemetry).length
    t.diagnostic(`W5100S: ${Math.round((sim.chip.counters.bytes - c0.bytes) / n)} SPI bytes and ${Math.round((sim.chip.counters.frames - c0.frames) / n)} frames per report (${n} reports, includes interrupt polling)`)
})
