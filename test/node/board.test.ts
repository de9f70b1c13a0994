/**
 * The emulated board (sim/board/): the stock DeviceScript RP2040 runtime and the UF2 `npm run
 * bundle` machinery makes from this project's settings, on rp2040js, with the W5500 (or W5100S)
 * model, the LAN, the AHT20/SHT30 models and the embedded aedes broker. One boot per board (the
 * W5500 boards also a reboot), several steps each; every failure names its step.
 *
 * The stock runtime loses timer wake-ups (docs/runtime.md, docs/hardware.md): without help the board freezes
 * within seconds. The W55RP20 run first shows that the rig detects and reports the freeze (no
 * bridging), then turns --bridge-lost-wakeups on to get through the other steps; the W5500-EVB-Pico
 * and W5100S-EVB-Pico runs bridge from the start. All count the lost wake-ups.
 *
 * Needs the runtime folder (../shared/rp2040 or $W55_RP2040_DIR): skipped with the reason when it is
 * missing, except under CI, where that is a failure.
 */
import { after, before, test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, type AedesBroker } from "../../sim/brokers.ts"
import { EmulatedBoard, runtimeUnavailable, type Climate } from "../../sim/board/index.ts"
import { boardLan, bundleForEmulatedBoard } from "../../sim/board/firmware.ts"
import { HeapWatch } from "../../sim/board/heap.ts"
import { runtimeElfPath } from "../../sim/board/runtime.ts"

const missing = runtimeUnavailable()
const skip = missing && !process.env.CI ? `${missing} (skipped: outside CI the emulated board is optional)` : false

/** A climate the test can check reports against (changes over time, as the models must). */
const climate: Climate = {
    temperature: t => 21 + 0.1 * t,
    humidity: t => 40 + 0.05 * t,
}

interface Pub {
    topic: string
    payload: string
    client?: string
}

let broker: AedesBroker
const pubs: Pub[] = []
const clients: string[] = []

before(async () => {
    if (missing && process.env.CI) throw new Error(`CI: the emulated board cannot run: ${missing}`)
    if (skip) return
    broker = await startAedes({ port: 0 })
    broker.aedes.on("publish", (p, c) => pubs.push({ topic: p.topic, payload: String(p.payload), client: c?.id }))
    broker.aedes.on("client", c => clients.push(c.id))
})

after(async () => {
    await broker?.close()
})

/** Runs `fn` as the named step: a failure says which step. */
async function step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    try {
        return await fn()
    } catch (e) {
        const err = e as Error
        err.message = `step "${name}": ${err.message}`
        throw err
    }
}

function lanFor(): ReturnType<typeof boardLan> {
    return boardLan(broker.port)
}

/** The telemetry published by `id` after index `from` of pubs, parsed. */
function telemetry(id: string, from = 0): { i: number; v: Record<string, unknown> }[] {
    const out: { i: number; v: Record<string, unknown> }[] = []
    for (let i = from; i < pubs.length; i++) if (pubs[i].topic === `devices/${id}/telemetry`) out.push({ i, v: JSON.parse(pubs[i].payload) })
    return out
}

const ids: string[] = []

/** The chip line of each board's driver at boot: name, version register, bus. */
const CHIP_LINE = {
    w5500: /^w5500: chip version 0x04 on (gpio|spi0)/,
    w5100s: /^w5100s: chip version 0x51 on spi0/,
}

for (const [board, name, sensor, freezeFirst, chip, reboot] of [
    // the freeze step runs on the W5500-EVB-Pico: its SPI transfers end in a DMA interrupt that
    // wakes a fiber "now", the runtime's lost wake-up; it froze at 2.04 virtual s in every boot we
    // ran, while the bit-banged W55RP20 (no DMA) went 45 virtual s without one
    ["w55rp20_evb_pico", "W55RP20-EVB-Pico", "aht20", false, "w5500", true],
    ["w5500_evb_pico", "W5500-EVB-Pico", "sht30", true, "w5500", true],
    // one boot, no reboot (the flash path is the same runtime's): keeps the file's run time down
    ["w5100s_evb_pico", "W5100S-EVB-Pico", "aht20", false, "w5100s", false],
] as const) {
    test(`emulated ${board}: boot from the UF2, ${chip.toUpperCase()} reset pulse, DHCP, SNTP, MQTT, I2C report, LED${reboot ? ", reboot keeping the settings" : ""}`, { skip, timeout: 240_000 }, async () => {
        const uf2 = await step("bundle the UF2 (npm run bundle machinery, .env.defaults + broker.lan)", async () => {
            const r = await bundleForEmulatedBoard(board, { local: false, extra: { REPORT_MS: 1000 } })
            assert.ok(r.hasW5500, "the firmware carries the WIZnet stack")
            return r.file
        })
        let b = await EmulatedBoard.create({ board, uf2, sensors: [sensor], climate, lan: lanFor(), bridgeLostWakeups: !freezeFirst })
        try {
            if (freezeFirst)
                await step("without bridging, the stock runtime's lost timer wake-up is detected and the board reported frozen", async () => {
                    // the moment may vary (the broker answers in wall time): up to four boots of 15 virtual s each
                    let stop = ""
                    for (let boot = 1; boot <= 4; boot++) {
                        if (boot > 1) {
                            b.close()
                            b = await EmulatedBoard.create({ board, uf2, sensors: [sensor], climate, lan: lanFor(), bridgeLostWakeups: false })
                        }
                        stop = await b.run({ seconds: 15, wallMs: 60_000 })
                        if (stop === "frozen") break
                        console.log(`# ${board}: boot ${boot} ran ${b.seconds.toFixed(2)} virtual s without a lost wake-up (${stop})`)
                    }
                    assert.equal(stop, "frozen", `four boots ended with ${stop}, none frozen`)
                    assert.ok(b.frozen, "a frozen report")
                    assert.ok(b.frozen.atSeconds > 1 && b.frozen.atSeconds < 15, `froze at ${b.frozen.atSeconds} virtual s`)
                    assert.equal(b.frozen.lostWakeups, 1)
                    assert.ok(b.frozen.lastLines.length > 0, "the last console lines")
                    // from here on, bridge the lost wake-ups to get through the other steps
                    b.bridgeLostWakeups = true
                })

            // the VM's heap, read from RAM after each collection from here on
            const heap = new HeapWatch(b.mcu, runtimeElfPath(), () => b.seconds)
            b.onBatch = () => heap.look()
            await step("boot from the UF2", async () => {
                assert.ok(await b.waitForLine(new RegExp(`^\\* ${name} v2\\.16\\.0; file v2\\.16\\.4`), { seconds: 5, wallMs: 60_000 }), "runtime banner with the board name")
                const image = chip === "w5100s" ? "board-w5100s-generic" : "board-generic"
                assert.ok(await b.waitForLine(new RegExp(`^boot: firmware image ${image}$`), { seconds: 5, wallMs: 60_000 }), `the firmware image ${image} starts`)
            })
            const id = await step("device id from the flash unique ID", async () => {
                const l = await b.waitForLine(/^boot: config: device=(\S+)/, { seconds: 5, wallMs: 60_000 })
                assert.ok(l, "boot: config line")
                const id = /device=(\S+)/.exec(l.text)![1]
                assert.equal(id, `w55-${Buffer.from(b.uid).toString("hex")}`)
                ids.push(id)
                return id
            })
            await step(`${chip.toUpperCase()} reset pulse at boot (RSTn low >= 500 us), then the chip answers its version register`, async () => {
                const l = await b.waitForLine(CHIP_LINE[chip], { seconds: 10, wallMs: 90_000 })
                assert.ok(l, `chip line ${CHIP_LINE[chip]}`)
                const { resetLowAt, resetHighAt } = b.counters.spi
                assert.ok(resetHighAt[0] < l.at, "the version was read after RSTn was released")
                assert.equal(resetLowAt.length, 1, "one reset pulse")
                assert.equal(resetHighAt.length, 1, "released")
                const us = (resetHighAt[0] - resetLowAt[0]) / 1000
                assert.ok(us >= 500, `RSTn low for ${us.toFixed(0)} us`)
            })
            await step("DHCP lease", async () => {
                // the IP services log as "w5500:" on both chips (they are the same code)
                const l = await b.waitForLine(/^w5500: address 192\.168\.50\.\d+ .*\(DHCP from 192\.168\.50\.1, lease 3600 s\)/, { seconds: 10, wallMs: 90_000 })
                assert.ok(l, "address line")
                assert.ok(b.lan.dhcp.counters.ack >= 1, "the LAN's DHCP server acknowledged a lease")
            })
            await step("SNTP time (the LAN's NTP server answers the board's virtual time)", async () => {
                const l = await b.waitForLine(/^w5500: time (\d+) ms since 1970 \(SNTP/, { seconds: 10, wallMs: 90_000 })
                assert.ok(l, "SNTP line")
                const ms = Number(/time (\d+) ms/.exec(l.text)![1])
                const virtualNow = b.clock.epochMs + l.at / 1e6
                assert.ok(Math.abs(ms - virtualNow) < 15_000, `SNTP time ${ms} vs the board's ${virtualNow}`)
            })
            await step("MQTT connect to aedes", async () => {
                await b.run({ until: () => clients.includes(id), seconds: 20, wallMs: 120_000 })
                assert.ok(clients.includes(id), `broker clients: ${clients.join(", ")}`)
            })
            await step(`report with temperature and humidity from the ${sensor.toUpperCase()} model`, async () => {
                assert.ok(await b.waitForLine(new RegExp(`^sensor: ${sensor} over I2C active`), { seconds: 10, wallMs: 60_000 }), "sensor active line")
                const from = pubs.length
                await b.run({ until: () => telemetry(id, from).length >= 2, seconds: 10, wallMs: 90_000 })
                const reports = telemetry(id, from)
                assert.ok(reports.length >= 2, "two reports")
                const t = b.seconds
                for (const { v } of reports) {
                    const temp = v.temperature as number
                    const rh = v.humidity as number
                    // the model's values at some moment of this run (they change: 0.1 C per virtual s)
                    assert.ok(temp > 21 && temp <= climate.temperature(t) + 0.05, `temperature ${temp} from the model (21 + 0.1/s, now ${t.toFixed(1)} s)`)
                    assert.ok(rh > 40 && rh <= climate.humidity(t) + 0.05, `humidity ${rh} from the model`)
                    assert.notDeepEqual([temp, rh], [25, 50], "not the fixed fallback")
                }
                const sensorCounters = sensor === "aht20" ? b.aht20!.counters : b.sht30!.counters
                assert.ok(sensorCounters.triggers >= 2 && sensorCounters.reads >= 2, JSON.stringify(sensorCounters))
            })
            await step("commands/set {led:true} drives the LED pin", async () => {
                assert.notEqual(b.led, true, "LED off before the command")
                broker.aedes.publish(
                    { cmd: "publish", topic: `devices/${id}/commands/set`, payload: Buffer.from('{"id":"rig-1","params":{"led":true}}'), qos: 1, dup: false, retain: false },
                    () => {}
                )
                await b.run({ until: () => b.led === true, seconds: 10, wallMs: 90_000 })
                assert.equal(b.led, true, "LED pin level")
                const from = pubs.length
                await b.run({ until: () => telemetry(id, from).length >= 1, seconds: 5, wallMs: 60_000 })
                assert.equal(telemetry(id, from)[0]?.v.led, true, "the next report says led: true")
            })
            await step("no exception in the firmware's output (the Home Assistant discovery after the first report included)", async () => {
                await b.run({ seconds: 2, wallMs: 60_000 })
                assert.deepEqual(b.lines.filter(l => /^! Exception/.test(l.text)).map(l => l.text), [])
            })
            await step("the VM's heap read from RAM: collections seen, every walk whole, the sizes adding up (sim/board/heap.ts)", () => {
                assert.ok(heap.gcs >= 3, `${heap.gcs} collections`)
                const p = heap.peak
                assert.ok(p, "a walk after a collection")
                assert.ok(p.totalBytes > 60_000 && p.totalBytes <= 65_536, `the heap is the runtime's 64 KB (JD_GC_KB): ${p.totalBytes} bytes of blocks`)
                const kinds = [...p.byKind.values()].reduce((x, y) => x + y, 0)
                assert.equal(kinds, p.usedBytes, "the kinds add up to the bytes in use")
                const survived = HeapWatch.survivors(p)
                assert.ok(survived > 8_192 && survived < p.totalBytes, `${survived} bytes survived the collection`)
                assert.ok(p.largestFreeBytes > 0 && p.largestFreeBytes <= p.totalBytes - p.usedBytes, `largest free block ${p.largestFreeBytes}`)
                assert.ok(p.frames.size >= 5, `call frames of ${p.frames.size} functions (the suspended fibers' chains)`)
                console.log(`# ${board}: heap: ${survived} of ${p.totalBytes} bytes survived the fullest collection (${heap.gcs} seen)`)
            })
            if (chip === "w5100s")
                await step("INTn: the W5100S pulled its interrupt pin low (socket interrupts unmasked in IMR)", () => {
                    assert.ok(b.counters.spi.intLow >= 1, `INTn went low ${b.counters.spi.intLow} times`)
                    assert.equal(b.counters.spi.stray, 0, "no bytes clocked on SPI0 with chip select high")
                })
            console.log(`# ${board}: ${b.counters.run.lostWakeups} lost wake-ups in ${b.seconds.toFixed(1)} virtual s (${freezeFirst ? "the first froze the board, the others were bridged" : "bridged"})`)
            if (reboot) await step("a setting written over USB survives a reboot (flash writes)", async () => {
                const kept = `rig-kept-${board.slice(0, 5)}`
                b.usb.setSetting("DEVICE_ID", kept)
                await b.run({ until: () => b.counters.flash.programs > 0, seconds: 3, wallMs: 60_000 })
                assert.ok(b.counters.flash.programs > 0, "the runtime programmed the flash")
                await b.run({ seconds: 0.5, wallMs: 30_000 }) // let the settings store finish writing
                b = await b.reboot()
                const l = await b.waitForLine(/^boot: config: device=(\S+)/, { seconds: 5, wallMs: 60_000 })
                assert.ok(l, "boot: config line after the reboot")
                assert.match(l.text, new RegExp(`device=${kept} `))
                assert.match(l.text, /broker=mqtt:\/\/broker\.lan:1883/, "the bundled settings are still there")
            })
        } finally {
            b.close()
        }
    })
}

test("the emulated boards have different unique IDs, hence different default DEVICE_IDs and MACs", { skip }, () => {
    assert.equal(ids.length, 3, `ids: ${ids.join(", ")}`)
    assert.equal(new Set(ids).size, ids.length, `ids: ${ids.join(", ")}`)
})

test("emulated board: a UF2 that is not one, and a runtime folder with the wrong file, get errors that say what is expected", async () => {
    const fs = await import("node:fs")
    const os = await import("node:os")
    const path = await import("node:path")
    const { readRuntimeUf2, RUNTIME_SHA256, RUNTIME_UF2 } = await import("../../sim/board/runtime.ts")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "w55-rt-"))
    const saved = process.env.W55_RP2040_DIR
    try {
        process.env.W55_RP2040_DIR = dir
        assert.throws(() => readRuntimeUf2(), (e: Error) => e.message.includes(path.join(dir, RUNTIME_UF2)) && e.message.includes(RUNTIME_SHA256) && /ENOENT/.test(e.message))
        fs.writeFileSync(path.join(dir, RUNTIME_UF2), "not the runtime")
        assert.throws(() => readRuntimeUf2(), new RegExp(`is not the runtime this project was checked with: SHA-256 [0-9a-f]{64}, expected ${RUNTIME_SHA256}`))
        // a patched runtime being measured is let through only when asked for
        process.env.W55_RP2040_UNCHECKED = "1"
        assert.equal(readRuntimeUf2().toString(), "not the runtime")
    } finally {
        delete process.env.W55_RP2040_UNCHECKED
        if (saved === undefined) delete process.env.W55_RP2040_DIR
        else process.env.W55_RP2040_DIR = saved
        fs.rmSync(dir, { recursive: true, force: true })
    }
    if (skip) return
    await assert.rejects(EmulatedBoard.create({ board: "w55rp20_evb_pico", uf2: Buffer.from("garbage, not a UF2") }), /UF2/)
    await assert.rejects(EmulatedBoard.create({ board: "nope", uf2: Buffer.alloc(0) }), /no board file boards\/nope\.board\.json; boards: w5100s_evb_pico, w5500_evb_pico, w55rp20_evb_pico/)
})
