/**
 * The Raspberry Pi Pico W image in the simulator (src/images/sim-picow-generic.ts): the Wi-Fi
 * settings are checked at boot, then the simulator's own socket stands in for the Wi-Fi (which is
 * not emulated), as `npm start -- --board pico_w` runs it: reports and a command round trip
 * with aedes; a WPA2 passphrase that is too short halts the boot with the reason.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes } from "../../sim/brokers.ts"
import { Device, Observer, boot, checkReport, hostLink, onCleanup, settingsFor, sleep } from "./lib/e2e.ts"

const T = { timeout: 240000 }
const IMAGE = "src/images/sim-picow-generic.ts"

test("Pico W image over the simulator's sockets: Wi-Fi settings checked, reports, a command round trip", T, async t => {
    const id = `picow-${process.pid}`
    const base = `devices/${id}`
    const broker = await startAedes()
    t.after(onCleanup(() => broker.close()))
    const obs = await Observer.open(broker.url, {}, [`${base}/#`])
    t.after(onCleanup(() => obs.close()))
    const link = await hostLink(settingsFor(broker.port, { DEVICE_ID: id, REPORT_MS: 1000, WIFI_SSID: "lab-net", WIFI_PWD: "a-long-passphrase" }, "host"))
    const dev = new Device(IMAGE)
    await boot(dev, link, 200000)
    t.after(() => dev.kill())
    const first = await obs.waitFor("the first report", 0, m => m.topic === `${base}/telemetry`, 60000, dev)
    checkReport(first)
    assert.ok(dev.lines.some(l => /wifi: "lab-net" \(Wi-Fi is not emulated/.test(l)), `the Wi-Fi line\n${dev.tail(30)}`)
    assert.ok(!dev.lines.some(l => /a-long-passphrase/.test(l)), "the passphrase is never logged")
    assert.ok(!dev.lines.some(l => /w5500/i.test(l)), `no W5500 in the Pico W image\n${dev.tail(30)}`)
    const from = obs.mark()
    await obs.client.publishAsync(`${base}/commands/set`, JSON.stringify({ id: "p1", params: { led: true } }), { qos: 1 })
    const reply = await obs.waitFor("the reply", from, m => m.topic === `${base}/replies` && m.json?.id === "p1", 20000, dev)
    assert.equal(reply.json.code, 200, reply.text)
})

test("Pico W image: a WPA2 passphrase of 5 characters stops the boot with the reason", T, async t => {
    const broker = await startAedes()
    t.after(onCleanup(() => broker.close()))
    const link = await hostLink(settingsFor(broker.port, { DEVICE_ID: `picow-bad-${process.pid}`, WIFI_SSID: "lab-net", WIFI_PWD: "short" }, "host"))
    const dev = new Device(IMAGE)
    await boot(dev, link, 200000)
    t.after(() => dev.kill())
    const deadline = Date.now() + 60000
    const re = /WIFI_PWD has 5 characters, a WPA2 passphrase has 8\.\.63/
    while (!dev.lines.some(l => re.test(l)) && Date.now() < deadline && !dev.exited) await sleep(100)
    assert.ok(dev.lines.some(l => re.test(l)), `the reason is logged\n${dev.tail(30)}`)
    assert.ok(!dev.lines.some(l => l.includes("short")), "the passphrase itself is not logged")
})
