/**
 * Throughput of our MQTT client and of the stock @devicescript/net client, in one VM run, against
 * the broker whose port the host link gives (B_PORT). Prints `##BENCH <client> <mode> <n> <ms>`.
 * Run by sim/bench.ts (`npm run bench`).
 */
import * as ds from "@devicescript/core"
import { startMQTTClient } from "@devicescript/net"
import { readSetting } from "../vm/settings"
import { MqttClient } from "../../src/mqtt"
import { HostStack } from "../../src/net/host"
import { loadSimSettings } from "../../src/simdev/hostlink"

await loadSimSettings()
const PORT: number = await readSetting("B_PORT", 1883)
const N: number = await readSetting("BENCH_N", 1000)
// a 120-byte JSON report, the size of the firmware's telemetry
const PAYLOAD = '{"ts":1795313469733,"temperature":21.92,"humidity":44.85,"led":false,"interval":5000,"uptime":12345,"pad":"0123456"}'

function result(client: string, mode: string, n: number, t0: number) {
    console.log(`##BENCH ${client} ${mode} ${n} ${Math.round(ds.millis() - t0)}`)
}

async function ours() {
    const c = new MqttClient({ net: new HostStack(), host: "127.0.0.1", port: PORT, clientId: "bench-ours", log: false, inflightWindow: 32, outboxLimit: 64 })
    c.start()
    while (!c.connected) await ds.sleep(10)
    for (let i = 0; i < 20; i++) await c.publish("bench/ours/warm", PAYLOAD)
    let t0 = ds.millis()
    for (let i = 0; i < N; i++) await c.publish("bench/ours/q0", PAYLOAD)
    result("ours", "qos0", N, t0)
    // QoS 1, pipelined: 32 publishers at once (window 32), each waits for its PUBACK before the next
    let done = 0
    const worker = async (k: number) => {
        for (let i = k; i < N; i += 32) {
            await c.publish("bench/ours/q1", PAYLOAD, { qos: 1 })
            done++
        }
    }
    t0 = ds.millis()
    for (let k = 0; k < 32; k++) worker.start(k)
    while (done < N) await ds.sleep(1)
    result("ours", "qos1-acked", N, t0)
    // QoS 1 as the firmware publishes: one fiber, wait: false, the outbox kept under its limit (64);
    // done when every PUBACK is in (the outbox empty again)
    t0 = ds.millis()
    for (let i = 0; i < N; i++) {
        while (c.backlog() >= 48) await ds.sleep(1)
        await c.publish("bench/ours/q1w", PAYLOAD, { qos: 1, wait: false })
        if ((i & 63) === 63) await ds.sleep(0)
    }
    while (c.backlog() > 0) await ds.sleep(1)
    result("ours", "qos1-nowait", N, t0)
    await c.stop()
}

async function stock() {
    const c = await startMQTTClient({ host: "127.0.0.1", port: PORT, proto: "tcp", clientId: "bench-stock" })
    // start() returns before the CONNACK: publishes are refused until then
    const until = ds.millis() + 10000
    while (!(await c.publish("bench/stock/warm", PAYLOAD, 0)) && ds.millis() < until) await ds.sleep(50)
    for (let i = 0; i < 20; i++) await c.publish("bench/stock/warm", PAYLOAD, 0)
    const t0 = ds.millis()
    let refused = 0
    for (let i = 0; i < N; i++) {
        if (!(await c.publish("bench/stock/q0", PAYLOAD, 0))) refused++
        // the stock client never yields on a write: without this the VM kills the loop (ours yields every 64 writes too)
        if ((i & 63) === 63) await ds.sleep(0)
    }
    result("stock", "qos0", N - refused, t0)
    await c.stop()
}

await ours()
await ds.sleep(500)
await stock()
console.log("##BENCH done")
await ds.sleep(200)
ds.restart()
