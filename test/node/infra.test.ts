/**
 * Proves the MQTT test infrastructure against itself with mqtt.js as the client: the fault proxy
 * (sim/faultproxy.ts), the wire decoder (sim/mqttwire.ts) and the brokers (sim/brokers.ts).
 */
import { test, type TestContext } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import mqtt, { type IClientOptions, type MqttClient } from "mqtt"
import { FaultProxy } from "../../sim/faultproxy.ts"
import { WireLog } from "../../sim/mqttwire.ts"
import { startAedes, startMosquitto, type Broker } from "../../sim/brokers.ts"
import { skipUnless } from "./lib/tools.ts"

const T = { timeout: 20000 }

/** Rejects after `ms` naming `what` unless `p` settles first. */
function within<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    })
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves when `pred()` holds, polling; rejects after `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms
    while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
        await new Promise(r => setTimeout(r, 10))
    }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** Connects mqtt.js (no auto-reconnect) and closes it when the test ends; rejects on CONNACK refusal. */
async function client(t: TestContext, port: number, opts: IClientOptions = {}): Promise<MqttClient> {
    const c = mqtt.connect({ host: "127.0.0.1", port, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ...opts })
    c.on("error", () => {})
    t.after(() => within(c.endAsync(true), 2000, "client end").catch(() => {}))
    await within(new Promise<void>((resolve, reject) => {
        c.once("connect", () => resolve())
        c.once("error", reject)
        c.once("close", () => reject(new Error("connection closed before CONNACK")))
    }), 4000, `mqtt connect to port ${port}`)
    return c
}

/** The next message on `topic`. */
function nextMessage(c: MqttClient, topic: string, ms = 3000): Promise<Buffer> {
    return within(new Promise<Buffer>(resolve => {
        const on = (tp: string, payload: Buffer) => {
            if (tp !== topic) return
            c.off("message", on)
            resolve(payload)
        }
        c.on("message", on)
    }), ms, `message on ${topic}`)
}

async function aedes(t: TestContext, opts: Parameters<typeof startAedes>[0] = {}) {
    const b = await startAedes(opts)
    t.after(() => b.close())
    return b
}

async function proxyTo(t: TestContext, b: Broker): Promise<FaultProxy> {
    const p = await FaultProxy.start({ targetHost: b.host, targetPort: b.port })
    t.after(() => p.close())
    return p
}

test("proxy: pass-through roundtrip both ways", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const viaProxy = await client(t, p.port, { clientId: "pass-a" })
    const direct = await client(t, b.port, { clientId: "pass-b" })
    await viaProxy.subscribeAsync("rt/down", { qos: 1 })
    await direct.subscribeAsync("rt/up", { qos: 1 })

    const down = nextMessage(viaProxy, "rt/down")
    await direct.publishAsync("rt/down", "to-proxy-client", { qos: 1 })
    assert.equal((await down).toString(), "to-proxy-client")

    const up = nextMessage(direct, "rt/up")
    await viaProxy.publishAsync("rt/up", "from-proxy-client", { qos: 1 })
    assert.equal((await up).toString(), "from-proxy-client")

    const s = p.stats()
    assert.equal(s.accepted, 1)
    assert.equal(s.live, 1)
    assert.ok(s.bytesUp > 0 && s.bytesDown > 0, JSON.stringify(s))
    assert.equal(s.droppedUp + s.droppedDown, 0)
})

test("proxy: blackhole drops bytes both ways without closing, pass() restores", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const viaProxy = await client(t, p.port, { clientId: "bh-a", keepalive: 60 })
    const direct = await client(t, b.port, { clientId: "bh-b" })
    await viaProxy.subscribeAsync("bh/down")
    await direct.subscribeAsync("bh/up")
    let closed = false
    viaProxy.on("close", () => { closed = true })
    const got: string[] = []
    viaProxy.on("message", tp => got.push(tp))
    direct.on("message", tp => got.push(tp))

    p.blackhole()
    const before = p.stats()
    direct.publish("bh/down", "lost")
    await p.waitFor(s => s.droppedDown > before.droppedDown, 3000, "broker bytes to be dropped")
    viaProxy.publish("bh/up", "lost too")
    await p.waitFor(s => s.droppedUp > before.droppedUp, 3000, "client bytes to be dropped")
    await sleep(200)
    assert.deepEqual(got, [], "nothing crosses a black-holed link")
    const during = p.stats()
    assert.equal(during.bytesUp, before.bytesUp)
    assert.equal(during.bytesDown, before.bytesDown)
    assert.equal(during.live, 1)
    assert.equal(closed, false, "the client socket stays open")
    assert.ok(viaProxy.connected)

    p.pass()
    const up = nextMessage(direct, "bh/up")
    viaProxy.publish("bh/up", "after")
    assert.equal((await up).toString(), "after")
})

test("proxy: a FIN sent into a blackhole is lost; pass() then resets the other side", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const c = await client(t, p.port, { clientId: "half-a", keepalive: 60 })
    await until(() => b.aedes.connectedClients === 1, 2000, "aedes to register the client")
    let brokerSawDisconnect = false
    b.aedes.on("clientDisconnect", () => { brokerSawDisconnect = true })
    p.blackhole()
    // a forced end closes the socket (FIN) without waiting for the broker, which never answers now
    await within(c.endAsync(true), 2000, "mqtt.js forced end")
    await sleep(200)
    assert.equal(brokerSawDisconnect, false, "the broker must not learn of the close through a dead link")
    assert.equal(b.aedes.connectedClients, 1)
    assert.equal(p.stats().live, 1)
    p.pass()
    await until(() => brokerSawDisconnect, 3000, "aedes clientDisconnect after pass()")
    await p.waitFor(s => s.live === 0, 2000, "no live connections")
})

test("proxy: resetAll gives the client an ECONNRESET close", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const c = await client(t, p.port, { clientId: "rst-a" })
    const errors: string[] = []
    c.on("error", e => errors.push((e as NodeJS.ErrnoException).code ?? e.message))
    const closed = within(new Promise<void>(r => c.once("close", () => r())), 3000, "mqtt.js close")
    const brokerSaw = within(new Promise<void>(r => b.aedes.once("clientDisconnect", () => r())), 3000, "aedes clientDisconnect")

    // a raw socket shows the exact error code
    const raw = net.connect({ host: "127.0.0.1", port: p.port })
    t.after(() => { raw.destroy() })
    await within(new Promise(r => raw.once("connect", r)), 2000, "raw connect")
    await p.waitFor(s => s.live === 2, 2000, "2 live connections")
    const rawErr = within(new Promise<NodeJS.ErrnoException>(r => raw.once("error", r)), 3000, "raw socket error")

    p.resetAll()
    assert.equal((await rawErr).code, "ECONNRESET")
    await closed
    await brokerSaw
    assert.ok(errors.includes("ECONNRESET"), `mqtt.js errors: ${JSON.stringify(errors)}`)
    await p.waitFor(s => s.live === 0, 2000, "no live connections")
})

test("proxy: split delivers every byte, in order, both ways (with a tap)", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    p.setSplit(7)
    const log = new WireLog()
    p.tap(log.feed)
    const viaProxy = await client(t, p.port, { clientId: "split-a" })
    const direct = await client(t, b.port, { clientId: "split-b" })
    await viaProxy.subscribeAsync("sp/down", { qos: 1 })
    await direct.subscribeAsync("sp/up", { qos: 1 })
    const big = Buffer.alloc(5000, 0)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff

    const down = nextMessage(viaProxy, "sp/down")
    await direct.publishAsync("sp/down", big, { qos: 1 })
    assert.ok((await down).equals(big))
    const up = nextMessage(direct, "sp/up")
    await viaProxy.publishAsync("sp/up", big, { qos: 1 })
    assert.ok((await up).equals(big))
    assert.deepEqual(log.errors, [])
    assert.equal(log.count("up", "publish"), 1)
    assert.equal(log.count("down", "publish"), 1)
})

test("proxy: delay keeps order", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const viaProxy = await client(t, p.port, { clientId: "dl-a" })
    const direct = await client(t, b.port, { clientId: "dl-b" })
    await viaProxy.subscribeAsync("dl/x", { qos: 1 })
    p.setDelay(50)
    const got: string[] = []
    viaProxy.on("message", (_tp, m) => got.push(m.toString()))
    const sent: string[] = []
    for (let i = 0; i < 20; i++) {
        sent.push(`m${i}`)
        direct.publish("dl/x", `m${i}`, { qos: 1 })
    }
    await until(() => got.length === sent.length, 4000, "20 delayed messages")
    assert.deepEqual(got, sent)
})

test("proxy: refuse closes new connections; existing ones live on", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const old = await client(t, p.port, { clientId: "ref-old" })
    p.refuse(true)
    await assert.rejects(client(t, p.port, { clientId: "ref-new" }), /closed before CONNACK|ECONNRESET|EPIPE/)
    const s = p.stats()
    assert.equal(s.refused, 1)
    assert.equal(s.accepted, 2)
    assert.ok(old.connected)
    p.refuse(false)
    const again = await client(t, p.port, { clientId: "ref-again" })
    assert.ok(again.connected)
})

test("proxy: unreachable broker resets the client; FIN propagates", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const c = await client(t, p.port, { clientId: "fin-a" })
    const gone = within(new Promise<void>(r => b.aedes.once("clientDisconnect", () => r())), 3000, "aedes clientDisconnect")
    await c.endAsync()
    await gone
    await p.waitFor(s => s.live === 0, 3000, "both sides closed")

    await b.stop()
    const raw = net.connect({ host: "127.0.0.1", port: p.port })
    t.after(() => { raw.destroy() })
    const err = await within(new Promise<NodeJS.ErrnoException>(r => raw.once("error", r)), 3000, "raw socket error")
    assert.equal(err.code, "ECONNRESET")
})

/** Persistent session across a broker restart: a QoS 1 message published while the subscriber is away arrives after. */
async function sessionSurvivesRestart(t: TestContext, b: Broker, tag: string) {
    const id = `persist-${tag}`
    const topic = `persist/${tag}`
    const sub = await client(t, b.port, { clientId: id, clean: false })
    await sub.subscribeAsync(topic, { qos: 1 })
    await sub.endAsync()
    const pub = await client(t, b.port, { clientId: `pub-${tag}` })
    await pub.publishAsync(topic, "queued while away", { qos: 1 })
    await pub.endAsync()

    await b.stop()
    assert.equal(b.running, false)
    await b.start()
    assert.equal(b.running, true)

    const c = mqtt.connect({ host: "127.0.0.1", port: b.port, clientId: id, clean: false, protocolVersion: 4, reconnectPeriod: 0 })
    t.after(() => within(c.endAsync(true), 2000, "client end").catch(() => {}))
    c.on("error", () => {})
    const msg = nextMessage(c, topic, 4000)
    const connack = await within(new Promise<{ sessionPresent: boolean }>(r => c.once("connect", r)), 4000, "reconnect")
    assert.equal(connack.sessionPresent, true)
    assert.equal((await msg).toString(), "queued while away")
}

test("aedes: restart keeps a persistent session's queued QoS 1 message", T, async t => {
    const b = await aedes(t)
    const port = b.port
    await sessionSurvivesRestart(t, b, "aedes")
    assert.equal(b.port, port)
})

test("aedes: authenticate maps to CONNACK return codes", T, async t => {
    const seen: string[] = []
    const b = await aedes(t, {
        authenticate: (id, user, pass) => {
            seen.push(`${id}:${user}`)
            if (user !== "dev") return 5
            return pass?.toString() === "good" ? 0 : 4
        },
    })
    await assert.rejects(client(t, b.port, { clientId: "au-1", username: "dev", password: "bad" }),
        (e: Error & { code?: number }) => e.code === 4)
    await assert.rejects(client(t, b.port, { clientId: "au-2", username: "eve", password: "x" }),
        (e: Error & { code?: number }) => e.code === 5)
    const ok = await client(t, b.port, { clientId: "au-3", username: "dev", password: "good" })
    assert.ok(ok.connected)
    assert.deepEqual(seen, ["au-1:dev", "au-2:eve", "au-3:dev"])
})

const noMosquitto = skipUnless("mosquitto")

test("mosquitto: restart with persistence keeps the session's queued QoS 1 message", { ...T, skip: noMosquitto }, async t => {
    const b = await startMosquitto({ persistence: true })
    t.after(() => b.close())
    await sessionSurvivesRestart(t, b, "mosq")
})

test("mosquitto: users refuse a bad password and accept the good one", { ...T, skip: noMosquitto }, async t => {
    const b = await startMosquitto({ users: { dev: "s3cret-pass", other: "x" } })
    t.after(() => b.close())
    await assert.rejects(client(t, b.port, { clientId: "mu-1", username: "dev", password: "wrong" }),
        (e: Error & { code?: number }) => e.code === 4 || e.code === 5)
    await assert.rejects(client(t, b.port, { clientId: "mu-2" }),
        (e: Error & { code?: number }) => e.code === 4 || e.code === 5)
    const ok = await client(t, b.port, { clientId: "mu-3", username: "dev", password: "s3cret-pass" })
    assert.ok(ok.connected)
    assert.doesNotMatch(b.logTail(200), /s3cret-pass/)
})

test("wirelog: decodes CONNECT/PUBLISH/acks seen through a tap", T, async t => {
    const b = await aedes(t)
    const p = await proxyTo(t, b)
    const log = new WireLog()
    p.tap(log.feed)
    const c = await client(t, p.port, { clientId: "wire-1", keepalive: 30, username: "u" })
    await c.publishAsync("wire/t", "payload!", { qos: 1 })

    const connect = log.filter("up", "connect")
    assert.equal(connect.length, 1, log.describe())
    assert.equal(connect[0].packet.clientId, "wire-1")
    assert.equal(connect[0].packet.keepalive, 30)
    assert.equal(connect[0].packet.username, "u")
    assert.equal(connect[0].connId, 1)
    const connack = log.filter("down", "connack")
    assert.equal(connack[0]?.packet.returnCode, 0, log.describe())
    const pub = log.filter("up", "publish")
    assert.equal(pub.length, 1)
    assert.equal(pub[0].packet.topic, "wire/t")
    assert.equal(pub[0].packet.qos, 1)
    assert.equal(pub[0].packet.dup, false)
    assert.equal(pub[0].packet.payload.toString(), "payload!")
    await log.waitFor(e => e.dir === "down" && e.packet.cmd === "puback" && e.packet.messageId === pub[0].packet.messageId,
        2000, "PUBACK")
    assert.equal(log.count("up", "pingreq"), 0)
    assert.deepEqual(log.errors, [])
})

test("wirelog: byte-by-byte feeding and garbage never throw", () => {
    const log = new WireLog()
    // PINGREQ, then a QoS 1 PUBLISH "a/b" mid 7 dup=1, fed one byte at a time
    const bytes = Buffer.from([0xc0, 0x00, 0x3a, 0x0a, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x07, 0x68, 0x69, 0x21])
    for (const x of bytes) log.feed("up", Buffer.from([x]), 3)
    assert.equal(log.count("up", "pingreq"), 1)
    const pub = log.filter("up", "publish")
    assert.equal(pub.length, 1)
    assert.equal(pub[0].packet.dup, true)
    assert.equal(pub[0].packet.messageId, 7)
    assert.equal(pub[0].packet.payload.toString(), "hi!")
    // reserved packet type 0, then a varint length that never ends
    assert.doesNotThrow(() => log.feed("down", Buffer.from([0x00, 0x00]), 4))
    assert.doesNotThrow(() => log.feed("up", Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0xff]), 5))
    assert.doesNotThrow(() => log.feed("up", Buffer.from("more garbage after the error"), 5))
    assert.equal(log.errors.length, 2, JSON.stringify(log.errors))
    assert.deepEqual(log.errors.map(e => `${e.dir}:${e.connId}`), ["down:4", "up:5"])
    assert.equal(log.count("any", "publish"), 1)
})
