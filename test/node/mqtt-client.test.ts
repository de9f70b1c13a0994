/**
 * The MQTT client in the VM against aedes and Mosquitto, directly and through the fault proxy.
 * The VM suite (test/vm/mqtt-client.vm.ts) prints `##CTL <action>` lines; this side carries them
 * out on the proxy and the broker, and afterwards checks what crossed the wire.
 */
import { test, type TestContext } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import mqtt from "mqtt"
import mqttPacket from "mqtt-packet"
import { startAedes, startMosquitto, type Broker } from "../../sim/brokers.ts"
import { FaultProxy } from "../../sim/faultproxy.ts"
import { WireLog } from "../../sim/mqttwire.ts"
import { startHostLink } from "../../sim/hostlink.ts"
import { runVmSuite } from "./lib/vm.ts"
import { skipUnless } from "./lib/tools.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** The payload pattern of test/vm/mqtt-client.vm.ts: byte i (every 61st) is (i + salt) & 255, others 0. */
function pattern(n: number, salt: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i += 61) b[i] = (i + salt) & 0xff
    return b
}

/** A raw TCP "broker" that accepts CONNECT and then sends garbage (a different kind each time). */
function garbageBroker(): Promise<{ port: number; close(): void }> {
    const kinds = [
        Buffer.from([0x3f, 0xff, 0xff, 0xff, 0xff, 0x01]), // 5-byte remaining length
        Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]), // QoS 3 publish
        Buffer.from([0x30, 0x04, 0x00, 0x02, 0xc3, 0x28]), // invalid UTF-8 topic
        Buffer.from([0x40, 0x05, 0x00, 0x01, 0x02, 0x03, 0x04]), // PUBACK of wrong length
        Buffer.from("GET / HTTP/1.1\r\n\r\n"), // not MQTT at all
    ]
    let n = 0
    const server = net.createServer(sock => {
        sock.on("error", () => {})
        sock.once("data", () => {
            sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
            sock.write(kinds[n++ % kinds.length])
            setTimeout(() => sock.destroy(), 3000)
        })
    })
    return new Promise(resolve =>
        server.listen(0, "127.0.0.1", () =>
            resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })))
}

/**
 * A scripted broker for SUBACK return codes: CONNACK 0 to every CONNECT, and SUBACK 0x80 for
 * filters under forbidden/, 0 for filters under downgrade/, else the requested QoS.
 */
function subackBroker(): Promise<{ port: number; close(): void }> {
    const server = net.createServer(sock => {
        sock.on("error", () => {})
        const parser = mqttPacket.parser({ protocolVersion: 4 })
        parser.on("packet", (p: any) => {
            if (p.cmd === "connect") sock.write(mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false } as any))
            else if (p.cmd === "subscribe") {
                const granted = p.subscriptions.map((s: any) =>
                    s.topic.startsWith("forbidden/") ? 0x80 : s.topic.startsWith("downgrade/") ? 0 : s.qos)
                sock.write(mqttPacket.generate({ cmd: "suback", messageId: p.messageId, granted } as any))
            } else if (p.cmd === "pingreq") sock.write(mqttPacket.generate({ cmd: "pingresp" } as any))
            else if (p.cmd === "disconnect") sock.end()
        })
        parser.on("error", () => sock.destroy())
        sock.on("data", d => parser.parse(d))
    })
    return new Promise(resolve =>
        server.listen(0, "127.0.0.1", () =>
            resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })))
}

/**
 * A scripted broker for discarded sessions: every CONNACK says session-present 0. Connection 1,
 * after the SUBSCRIBE: "first" (QoS 2, id 7) and "slow" (QoS 1, id 9), then the socket is
 * destroyed 300 ms later (the handler of "slow" still runs); connection 2, 2.5 s after its
 * SUBSCRIBE: "second" (QoS 2, id 7) and "other" (QoS 1, id 9). `acks` logs what the client sent
 * per connection ("2:puback 9").
 */
function sessionBroker(): Promise<{ port: number; acks: string[]; close(): void }> {
    const acks: string[] = []
    let n = 0
    const server = net.createServer(sock => {
        const conn = ++n
        sock.on("error", () => {})
        const parser = mqttPacket.parser({ protocolVersion: 4 })
        const send = (p: any) => sock.destroyed || sock.write(mqttPacket.generate(p))
        const publish = (topic: string, payload: string, qos: number, messageId: number) =>
            send({ cmd: "publish", topic, payload: Buffer.from(payload), qos, messageId, dup: false, retain: false })
        parser.on("packet", (p: any) => {
            if (p.cmd === "connect") send({ cmd: "connack", returnCode: 0, sessionPresent: false })
            else if (p.cmd === "subscribe") {
                send({ cmd: "suback", messageId: p.messageId, granted: p.subscriptions.map((s: any) => s.qos) })
                if (conn === 1) {
                    publish("s/a", "first", 2, 7)
                    publish("s/slow", "slow", 1, 9)
                    setTimeout(() => sock.destroy(), 300)
                } else if (conn === 2)
                    setTimeout(() => {
                        publish("s/a", "second", 2, 7)
                        publish("s/b", "other", 1, 9)
                    }, 2500)
            } else if (p.cmd === "pubrec") {
                acks.push(`${conn}:pubrec ${p.messageId}`)
                // no PUBREL on connection 1: id 7 stays in the client's QoS 2 state when the connection dies
                if (conn > 1) send({ cmd: "pubrel", messageId: p.messageId })
            } else if (p.cmd === "puback" || p.cmd === "pubcomp") acks.push(`${conn}:${p.cmd} ${p.messageId}`)
            else if (p.cmd === "pingreq") send({ cmd: "pingresp" })
            else if (p.cmd === "disconnect") sock.end()
        })
        parser.on("error", () => sock.destroy())
        sock.on("data", d => parser.parse(d))
    })
    return new Promise(resolve =>
        server.listen(0, "127.0.0.1", () =>
            resolve({ port: (server.address() as net.AddressInfo).port, acks, close: () => server.close() })))
}

/** A "broker" that accepts every CONNECT (CONNACK 0) and closes the connection at once. */
function dropBroker(): Promise<{ port: number; close(): void }> {
    const server = net.createServer(sock => {
        sock.on("error", () => {})
        sock.once("data", () => {
            sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
            sock.destroy()
        })
    })
    return new Promise(resolve =>
        server.listen(0, "127.0.0.1", () =>
            resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })))
}

async function mqttClient(port: number, opts: mqtt.IClientOptions = {}) {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 200, ...opts })
    c.on("error", () => {})
    return c
}

async function runAgainst(t: TestContext, broker: Broker) {
    const proxy = await FaultProxy.start({ targetHost: "127.0.0.1", targetPort: broker.port })
    const wire = new WireLog()
    proxy.tap(wire.feed)
    const garbage = await garbageBroker()
    const suback = await subackBroker()
    const session = await sessionBroker()
    const dropper = await dropBroker()
    // a persistent subscriber on the broker that sees the stream and the wills
    const observer = await mqttClient(broker.port, { clientId: `obs-${broker.kind}`, clean: false })
    const stream = new Set<string>()
    const wills: { t: number; payload: string }[] = []
    const roundTrips = new Map<string, Buffer>()
    observer.on("message", (topic, payload) => {
        if (topic.startsWith("rt/up/")) roundTrips.set(topic.slice(6), payload)
        if (topic.startsWith("stream/")) stream.add(topic)
        if (topic.startsWith("will/")) wills.push({ t: Date.now(), payload: payload.toString() })
    })
    await observer.subscribeAsync({ "stream/#": { qos: 1 }, "will/#": { qos: 1 }, "rt/up/#": { qos: 2 } })
    const roundTripErrors: string[] = []
    const marks: Record<string, number> = {}
    const actions: Promise<void>[] = []
    let failure: Error | undefined

    const act = async (line: string) => {
        const [action, arg] = line.split(" ")
        marks[action] = wire.packets.length
        marks[action + "@t"] = Date.now()
        switch (action) {
            case "window-start":
                return proxy.setDelay(300)
            case "window-end":
                return proxy.setDelay(0)
            case "blackhole":
                return proxy.blackhole()
            case "pass":
                return proxy.pass()
            case "reset":
            case "drop-all":
                return proxy.resetAll()
            case "split-1":
                return proxy.setSplit(1)
            case "split-0":
                return proxy.setSplit(0)
            case "blackhole-restart":
                proxy.blackhole()
                await sleep(400)
                await broker.stop()
                await sleep(300)
                await broker.start()
                proxy.pass()
                return
            case "echo": {
                // the VM's publish completed: check what arrived, then send it back at the same QoS
                for (let i = 0; i < 100 && !roundTrips.has(arg); i++) await sleep(50)
                const got = roundTrips.get(arg)
                const [qos, size] = arg.split("/").map(Number)
                if (!got) roundTripErrors.push(`rt/up/${arg} never arrived`)
                else if (!got.equals(pattern(size, qos + size))) roundTripErrors.push(`rt/up/${arg} arrived altered`)
                roundTrips.delete(arg)
                await observer.publishAsync(`rt/down/${arg}`, got ?? Buffer.alloc(0), { qos: qos as 0 | 1 | 2 })
                return
            }
            case "publish-away": {
                const c = await mqttClient(broker.port)
                for (let i = 1; i <= 3; i++) await c.publishAsync(`away/${i}`, `m${i}`, { qos: 1 })
                await c.endAsync()
                return
            }
            case "publish-away-again": {
                const c = await mqttClient(broker.port)
                await c.publishAsync("away/4", "m4", { qos: 1 })
                await c.endAsync()
                return
            }
            case "wipe-session": {
                const c = await mqttClient(broker.port, { clientId: arg, clean: true, reconnectPeriod: 0 })
                await c.endAsync()
                return
            }
            case "burst": {
                // published at once: more than the broker's window (Mosquitto: 20) and the client's inbox (16)
                const c = await mqttClient(broker.port)
                await Promise.all(Array.from({ length: Number(arg) }, (_, i) => c.publishAsync(`burst/${i}`, String(i), { qos: 1 })))
                await c.endAsync()
                return
            }
            case "publish-big": {
                const c = await mqttClient(broker.port)
                await c.publishAsync("big/x", Buffer.alloc(5000, 0x41), { qos: 1 })
                await c.publishAsync("big/y", "small", { qos: 1 })
                await c.endAsync()
                return
            }
        }
    }

    const link = await startHostLink(
        { BROKER: broker.kind, B_PORT: broker.port, P_PORT: proxy.port, G_PORT: garbage.port, S_PORT: suback.port, Q_PORT: session.port, D_PORT: dropper.port },
        { waitMs: 120000 })
    try {
        await runVmSuite(t, "test/vm/mqtt-client.vm.ts", {
            timeoutMs: 150000,
            onLine: line => {
                const i = line.indexOf("##CTL ")
                if (i < 0) return
                actions.push(act(line.slice(i + 6).trim()).catch(e => { failure = e }))
            },
        })
    } finally {
        await Promise.all(actions)
        await link.close()
        await observer.endAsync(true)
        garbage.close()
        suback.close()
        session.close()
        dropper.close()
        await proxy.close()
    }
    assert.equal(failure, undefined, `a control action failed: ${failure}`)

    await t.test("broker: every round-trip message arrived intact from the VM", () => {
        assert.ok(marks["rt-done"] !== undefined, "the round-trip test did not finish")
        assert.deepEqual(roundTripErrors, [])
    })
    await t.test("wire: keepalive 300 s encoded in two bytes", () => {
        const c = wire.filter("up", "connect").find(e => e.packet.clientId === "vm-ka300")
        assert.ok(c, "CONNECT of vm-ka300 seen")
        assert.equal(c.packet.keepalive, 300)
    })
    await t.test("wire: ids wrap 65535 -> 1, never 0; the window fills to 8 in flight and no further", () => {
        const entries = wire.packets.slice(marks["window-start"], marks["window-end"]) as any[]
        const pubs = entries.filter(e => e.dir === "up" && e.packet.cmd === "publish")
        const ids = pubs.map(e => e.packet.messageId)
        assert.deepEqual(ids, [65531, 65532, 65533, 65534, 65535, 1, 2, 3, 4, 5, 6, 7])
        let inFlight = 0, most = 0
        for (const e of entries) {
            if (e.dir === "up" && e.packet.cmd === "publish") inFlight++
            if (e.dir === "down" && e.packet.cmd === "puback") inFlight--
            most = Math.max(most, inFlight)
        }
        assert.equal(most, 8, "QoS 1 messages in flight at once (inflightWindow 8)")
    })
    await t.test("wire: no PINGREQ while busy, PINGREQ when idle", () => {
        const busy = wire.packets.slice(marks["busy-start"], marks["busy-end"])
        assert.equal(busy.filter(e => e.packet.cmd === "pingreq").length, 0, "PINGREQ while publishing")
        const idle = wire.packets.slice(marks["busy-end"], marks["blackhole"])
        assert.ok(idle.filter(e => e.packet.cmd === "pingreq").length >= 1, "no PINGREQ while idle")
    })
    await t.test("wire: unacked messages resent with DUP=1 and the same id", () => {
        const before = wire.packets.slice(0, marks["blackhole-restart"])
        const after = wire.packets.slice(marks["blackhole-restart"])
        const dups = after.filter(e => e.dir === "up" && e.packet.cmd === "publish" && (e.packet as any).dup) as any[]
        assert.ok(dups.length >= 1, "no DUP publish after the restart")
        const firstSends = new Map<number, string>()
        for (const e of wire.packets as any[])
            if (e.dir === "up" && e.packet.cmd === "publish" && !e.packet.dup && e.packet.topic.startsWith("stream/"))
                firstSends.set(e.packet.messageId, e.packet.topic)
        for (const d of dups) assert.equal(firstSends.get(d.packet.messageId), d.packet.topic, "DUP with a different id")
        assert.ok(before.length > 0)
    })
    await t.test("broker: every stream message arrived at least once", () => {
        for (let i = 0; i < 40; i++) assert.ok(stream.has(`stream/${i}`), `stream/${i} never arrived`)
    })
    await t.test("discarded session: nothing of connection 1 acknowledged on connection 2", () => {
        // "slow" (id 9) was still in its handler when connection 1 died: its PUBACK must not go out
        // on connection 2, where id 9 is "other"; "second" (id 7) was delivered, then acknowledged
        const two = session.acks.filter(a => a.startsWith("2:"))
        assert.deepEqual(two.filter(a => a === "2:puback 9"), ["2:puback 9"], `acks on connection 2: ${two.join(", ")}`)
        assert.ok(two.includes("2:pubrec 7"), `acks on connection 2: ${two.join(", ")}`)
    })
    await t.test("broker: will only after the abrupt close", () => {
        const noWillT = marks["expect-no-will@t"], resetT = marks["reset@t"]
        assert.equal(wills.filter(w => w.t < resetT).length, 0, "a will was published after stop()")
        assert.ok(noWillT < resetT)
        assert.ok(wills.filter(w => w.t >= resetT && w.payload === "gone").length >= 1, "no will after the reset")
    })
}

const T = { timeout: 240000 }

test("MQTT client against aedes", T, async t => {
    const broker = await startAedes()
    try {
        await runAgainst(t, broker)
    } finally {
        await broker.close()
    }
})

test("MQTT client against Mosquitto", { ...T, skip: skipUnless("mosquitto") }, async t => {
    const broker = await startMosquitto({
        persistence: true,
        config: ["allow_anonymous true"],
        users: { dev: "dev-pass" },
    })
    try {
        await runAgainst(t, broker)
    } finally {
        await broker.close()
    }
})
