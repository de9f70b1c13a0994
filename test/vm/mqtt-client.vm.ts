/**
 * The MQTT client against a real broker (aedes or Mosquitto, chosen by the Node side), directly
 * and through the fault proxy. `##CTL <action>` lines ask the Node side (test/node/mqtt-client.test.ts)
 * to act on the proxy or the broker; the Node side also checks the wire log afterwards.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "./settings"
import { MqttClient, MqttMessage, MqttOptions } from "../../src/mqtt"
import { HostStack } from "../../src/net/host"
import { loadSimSettings } from "../../src/simdev/hostlink"
import { afterEach } from "@devicescript/test"
import { describe, expect, test } from "./harness"

await loadSimSettings()
const KIND: string = await readSetting("BROKER", "aedes")
const BROKER_PORT: number = await readSetting("B_PORT", 1883)
const PROXY_PORT: number = await readSetting("P_PORT", 0)
const GARBAGE_PORT: number = await readSetting("G_PORT", 0)
const SUBACK_PORT: number = await readSetting("S_PORT", 0)
const SESSION_PORT: number = await readSetting("Q_PORT", 0)
const DROP_PORT: number = await readSetting("D_PORT", 0)
const net = new HostStack()
let seq = 0
let live: MqttClient[] = []

function client(opts: Partial<MqttOptions>, viaProxy = false): MqttClient {
    const o: MqttOptions = {
        net,
        host: "127.0.0.1",
        port: viaProxy ? PROXY_PORT : BROKER_PORT,
        clientId: `vm-${KIND}-${++seq}`,
        backoff: { min: 200, max: 1000 },
        keepAlive: 30,
    }
    const keys = Object.keys(opts)
    for (const k of keys) (o as any)[k] = (opts as any)[k]
    const c = new MqttClient(o)
    live.push(c)
    return c
}

/** Asks the Node side for an action, then gives it `ms` to happen. */
async function ctl(action: string, ms = 300) {
    console.log(`##CTL ${action}`)
    await ds.sleep(ms)
}

async function until(what: string, cond: () => boolean, ms = 10000) {
    const end = ds.millis() + ms
    while (!cond()) {
        if (ds.millis() > end) throw new Error(`timed out waiting for ${what}`)
        await ds.sleep(20)
    }
}

class Inbox {
    msgs: MqttMessage[] = []
    handler: (m: MqttMessage) => void
    constructor() {
        const msgs = this.msgs
        this.handler = (m: MqttMessage) => {
            msgs.push(m)
        }
    }
}

function pattern(n: number, salt: number) {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i += 61) b[i] = (i + salt) & 0xff
    return b
}

function checkPattern(b: Buffer, n: number, salt: number) {
    if (b.length !== n) throw new Error(`payload length ${b.length}, expected ${n}`)
    for (let i = 0; i < n; i += 61) if (b[i] !== ((i + salt) & 0xff)) throw new Error(`payload byte ${i} differs`)
}

/**
 * Up: the VM publishes and the Node side checks what arrived; down: once the publish completed,
 * the Node side sends the same bytes back. One 20 KB message at a time: the outgoing payload is
 * released before the incoming one arrives (a 64 KB heap holds two 20 KB buffers, not three).
 */
async function roundTrip(c: MqttClient, box: Inbox, qos: number, size: number, n: number) {
    console.log(`round trip: QoS ${qos}, ${size} bytes`)
    await send(c, `rt/up/${qos}/${size}`, size, qos)
    await ctl(`echo ${qos}/${size}`, 0)
    await until(`echo of ${size} bytes at QoS ${qos}`, () => box.msgs.length >= n)
    checkMessage(box.msgs[n - 1], `rt/down/${qos}/${size}`, qos, size)
    box.msgs[n - 1] = undefined
}

async function send(c: MqttClient, topic: string, size: number, qos: number) {
    await c.publish(topic, pattern(size, qos + size), { qos })
}

function checkMessage(m: MqttMessage, topic: string, qos: number, size: number) {
    expect(m.topic).toBe(topic)
    expect(m.qos).toBe(qos)
    checkPattern(m.payload, size, qos + size)
}

describe(`mqtt client (${KIND})`, () => {
    // a failed test must not leave its client running into the next one
    afterEach(async () => {
        for (const c of live) await c.stop()
        live = []
    })

    test("packet ids skip ids still in flight and are never 0", () => {
        const c = client({})
        const box: any = c
        box.outbox.push({ id: 2, state: 1 })
        box.outbox.push({ id: 3, state: 2 })
        box.lastId = 65534
        const got = [box.nextId(), box.nextId(), box.nextId(), box.nextId()]
        expect(got.join(",")).toBe("65535,1,4,5")
    })

    test("options are checked: keepAlive must fit 16 bits, qos 0..2, topics without wildcards", async () => {
        let msg = ""
        try {
            new MqttClient({ net, host: "127.0.0.1", clientId: "x", keepAlive: 65536 })
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg.indexOf("keepAlive must be an integer 0..65535") >= 0).toBe(true)
        const c = client({})
        for (let i = 0; i < 3; i++) {
            msg = ""
            try {
                if (i === 0) await c.publish("a/+", "x")
                else if (i === 1) await c.publish("a", "x", { qos: 3 })
                else await c.subscribe("a/b#", () => {})
            } catch (e) {
                msg = (e as Error).message
            }
            expect(msg.indexOf("mqtt: ") === 0).toBe(true)
        }
    })

    test("round trips at QoS 0, 1 and 2 with payloads of 0 to 20,000 bytes", async () => {
        const c = client({ maxPacketSize: 21000 })
        c.start()
        await until("connect", () => c.connected)
        const box = new Inbox()
        expect(await c.subscribe("rt/down/#", box.handler, { qos: 2 })).toBe(2)
        const sizes = [0, 127, 128, 16383, 16384, 20000]
        let n = 0
        for (let qos = 0; qos <= 2; qos++) {
            for (const size of sizes) {
                // one message at a time, in a helper: locals live until overwritten, and two 20 KB
                // copies plus the echo would not fit a 64 KB heap
                await roundTrip(c, box, qos, size, ++n)
            }
        }
        const s = c.stats()
        expect(s.received).toBe(n)
        expect(s.acked).toBe(2 * sizes.length)
        await ctl("rt-done", 0)
        expect(s.malformed).toBe(0)
        await c.stop()
    })

    test("several QoS 1 publishes in flight at once, ids wrap 65535 -> 1 and skip ids in flight", async () => {
        const c = client({ clientId: "vm-window", inflightWindow: 8 }, true)
        c.start()
        await until("connect", () => c.connected)
        ;(c as any).lastId = 65530
        await ctl("window-start", 200) // the proxy delays traffic: acks come late, the window fills
        let done = 0
        const pub = async (i: number) => {
            await c.publish(`win/${i}`, `m${i}`, { qos: 1 })
            done++
        }
        for (let i = 0; i < 12; i++) pub.start(i)
        await until("12 acks", () => done === 12)
        await ctl("window-end", 0)
        expect(c.stats().acked).toBe(12)
        await c.stop()
    })

    test("keepalive of 300 s goes out in two bytes", async () => {
        const c = client({ keepAlive: 300, clientId: "vm-ka300" }, true)
        c.start()
        await until("connect", () => c.connected)
        await c.stop()
    })

    test("PINGREQ only when idle; a silent broker is declared dead and the client reconnects", async () => {
        const c = client({ keepAlive: 2, clientId: `vm-ping-${KIND}` }, true)
        let reason = ""
        c.on(ev => {
            if (ev.type === "disconnected") reason = ev.reason
        })
        c.start()
        await until("connect", () => c.connected)
        // busy for 3 s: a QoS 1 publish every 250 ms keeps PUBACKs coming, so no PINGREQ
        console.log("##CTL busy-start")
        for (let i = 0; i < 12; i++) {
            await c.publish("ka/busy", "x", { qos: 1 })
            await ds.sleep(250)
        }
        console.log("##CTL busy-end")
        // idle: PINGREQs keep the connection up
        await ds.sleep(3500)
        expect(c.connected).toBe(true)
        // silent peer
        const t0 = ds.millis()
        await ctl("blackhole", 0)
        await until("dead connection", () => !c.connected, 8000)
        const dead = ds.millis() - t0
        console.log(`declared dead after ${dead} ms (keepalive 2000 ms)`)
        expect(reason.indexOf("PINGRESP") >= 0).toBe(true)
        // the limit is 1.5 x keepalive from the last traffic; allow scheduling slack
        expect(dead <= 3000 + 1000).toBe(true)
        await ctl("pass", 0)
        await until("reconnect", () => c.connected, 8000)
        expect(c.stats().reconnects >= 1).toBe(true)
        await c.stop()
    })

    test("broker restart during a QoS 1 stream: every message arrives, unacked ones resent with DUP", async () => {
        const c = client({ clientId: `vm-stream-${KIND}`, cleanSession: false, inflightWindow: 8, outboxLimit: 64 }, true)
        c.start()
        await until("connect", () => c.connected)
        let done = 0
        let failed = 0
        const pub = async (i: number) => {
            try {
                await c.publish(`stream/${i}`, `${i}`, { qos: 1 })
                done++
            } catch (e) {
                failed++
            }
        }
        for (let i = 0; i < 40; i++) {
            if (i === 15) await ctl("blackhole-restart", 100) // acks stop: messages stay in flight
            pub.start(i)
            await ds.sleep(20)
        }
        await until("all 40 acknowledged", () => done + failed === 40, 30000)
        expect(failed).toBe(0)
        const s = c.stats()
        expect(s.retransmitted >= 1).toBe(true)
        expect(s.reconnects >= 1).toBe(true)
        console.log(`stream stats: retransmitted ${s.retransmitted} reconnects ${s.reconnects}`)
        await c.stop()
    })

    test("persistent session: messages sent while away arrive; without a session it resubscribes", async () => {
        const id = `vm-persist-${KIND}`
        const box = new Inbox()
        let present = false
        const c = client({ clientId: id, cleanSession: false })
        c.on(ev => {
            if (ev.type === "connected") present = ev.sessionPresent
        })
        c.start()
        await until("connect", () => c.connected)
        await c.subscribe("away/#", box.handler, { qos: 1 })
        await c.stop()
        await ctl("publish-away", 1500) // the Node side publishes away/1..3 at QoS 1
        c.start()
        await until("3 messages from while away", () => box.msgs.length >= 3)
        expect(present).toBe(true)
        // the broker forgets the session (a clean connect under our id), we resubscribe by ourselves
        await ctl(`wipe-session ${id}`, 0)
        await until("the session to be taken over", () => !c.connected, 5000)
        await until("reconnect", () => c.connected, 10000)
        expect(present).toBe(false)
        await ds.sleep(500)
        const before = box.msgs.length
        await ctl("publish-away-again", 0)
        await until("a message after resubscribing", () => box.msgs.length > before)
        await c.stop()
    })

    test("will is published when the socket dies, not after stop()", async () => {
        const c = client({ clientId: `vm-will-${KIND}`, will: { topic: `will/${KIND}`, payload: "gone", qos: 1 } }, true)
        c.start()
        await until("connect", () => c.connected)
        await c.stop()
        await ctl("expect-no-will", 1000)
        c.start()
        await until("connect", () => c.connected)
        await ctl("reset", 0)
        await until("disconnect", () => !c.connected, 5000)
        await ctl("expect-will", 500)
        await c.stop()
    })

    test("byte-at-a-time delivery and oversized incoming packets do not desync", async () => {
        const c = client({ clientId: `vm-split-${KIND}`, maxPacketSize: 1024 }, true)
        c.start()
        await until("connect", () => c.connected)
        await ctl("split-1", 0)
        const box = new Inbox()
        await c.subscribe("big/#", box.handler, { qos: 1 })
        await ctl("publish-big", 0) // 5000 bytes (dropped), then "small"
        await until("the small message", () => box.msgs.length >= 1)
        expect(box.msgs[0].payload.toString()).toBe("small")
        expect(c.stats().malformed >= 1).toBe(true)
        expect(c.stats().reconnects).toBe(0)
        await c.publish("big/echo", "after", { qos: 1 })
        await until("echo", () => box.msgs.length >= 2)
        await ctl("split-0", 0)
        await c.stop()
    })

    test("SUBACK refusal throws, a lower granted QoS is returned, unsubscribe stops delivery", async () => {
        // SUBACK codes come from a scripted broker; unsubscribe is checked on the real one
        const s = client({ port: SUBACK_PORT })
        s.start()
        await until("connect to the scripted broker", () => s.connected)
        let msg = ""
        try {
            await s.subscribe("forbidden/x", () => {}, { qos: 1 })
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg.indexOf("refused") >= 0).toBe(true)
        expect(await s.subscribe("downgrade/x", () => {}, { qos: 2 })).toBe(0)
        expect(await s.subscribe("fine/x", () => {}, { qos: 1 })).toBe(1)
        await s.stop()
        const c = client({})
        c.start()
        await until("connect", () => c.connected)
        const box = new Inbox()
        await c.subscribe("unsub/t", box.handler, { qos: 1 })
        await c.publish("unsub/t", "1", { qos: 1 })
        await until("first", () => box.msgs.length === 1)
        await c.unsubscribe("unsub/t")
        await c.publish("unsub/t", "2", { qos: 1 })
        await ds.sleep(800)
        expect(box.msgs.length).toBe(1)
        await c.stop()
    })

    test("CONNACK refusal names the reason and retries back off", async () => {
        if (KIND !== "mosquitto") return
        const c = client({ username: "dev", password: "wrong-password", backoff: { min: 200, max: 800 } })
        let reason = ""
        c.on(ev => {
            if (ev.type === "error") reason = ev.reason
        })
        c.start()
        await ds.sleep(4000)
        const attempts = c.stats().connectAttempts
        await c.stop()
        console.log(`refused: "${reason}" after ${attempts} attempts in 4 s`)
        expect(reason.indexOf("bad user name or password") >= 0 || reason.indexOf("not authorized") >= 0).toBe(true)
        // backoff 200..800 ms with jitter: no tight loop (a tight loop makes hundreds)
        expect(attempts >= 3 && attempts <= 20).toBe(true)
        const ok = client({ username: "dev", password: "dev-pass" })
        ok.start()
        await until("connect with the right password", () => ok.connected)
        await ok.stop()
    })

    test("credentials are asked for at every connect; reconnect() renews them", async () => {
        let n = 0
        const c = client({ credentials: () => ({ clientId: `vm-cred-${KIND}-${++n}` }) })
        c.start()
        await until("connect", () => c.connected)
        expect(n).toBe(1)
        await c.reconnect()
        await until("reconnect with fresh credentials", () => c.connected && n === 2)
        expect(c.stats().reconnects).toBe(1)
        await c.stop()
    })

    test("garbage from the peer closes the connection cleanly and the client reconnects", async () => {
        if (!GARBAGE_PORT) return
        const c = client({ port: GARBAGE_PORT, backoff: { min: 100, max: 300 } })
        c.start()
        await until("3 connections to the garbage broker", () => c.stats().connectAttempts >= 6, 20000)
        expect(c.stats().malformed >= 1).toBe(true)
        await c.stop()
    })

    test("a burst of 200 QoS 1 messages to a slow handler: each delivered once (flow control, no drop)", async () => {
        const c = client({})
        c.start()
        await until("connect", () => c.connected)
        const seen: number[] = []
        let dup = 0
        await c.subscribe("burst/#", async m => {
            const n = parseInt(m.payload.toString())
            if (seen[n]) dup++
            seen[n] = 1
            // slower than the broker: the inbox fills up
            await ds.sleep(5)
        }, { qos: 1 })
        await ctl("burst 200", 0)
        let got = 0
        await until("200 messages", () => {
            got = 0
            for (let i = 0; i < 200; i++) if (seen[i]) got++
            return got === 200
        }, 60000)
        expect(dup).toBe(0)
        expect(c.stats().dropped).toBe(0)
        await c.stop()
    })

    test("a discarded session: a QoS 2 id is delivered again, an old inbox entry is not acknowledged on the new connection", async () => {
        if (!SESSION_PORT) return
        const c = client({ port: SESSION_PORT, backoff: { min: 200, max: 400 } })
        const got: string[] = []
        c.start()
        await c.subscribe("s/#", async m => {
            got.push(m.payload.toString())
            // the first connection ends while this handler runs
            if (m.topic === "s/slow") await ds.sleep(1500)
        }, { qos: 2 })
        // the scripted broker: connection 1 sends "first" (QoS 2, id 7) and "slow" (QoS 1, id 9),
        // then drops; connection 2 (session-present 0), 2.5 s later, "second" (QoS 2, id 7) and
        // "other" (QoS 1, id 9)
        await until("the messages of the second connection", () => got.indexOf("other") >= 0, 15000)
        await until("QoS 2 id 7 delivered again", () => got.indexOf("second") >= 0, 3000)
        expect(got.join(",")).toBe("first,slow,second,other")
        await c.stop()
    })

    test("stop() during a reconnect backoff returns at once", async () => {
        // nothing listens on port 1: every attempt fails, then a backoff of 10 to 20 s
        const c = client({ port: 1, backoff: { min: 20000, max: 20000 } })
        c.start()
        await until("the first attempt", () => c.stats().connectAttempts >= 1 && !c.connected)
        await ds.sleep(500)
        const t0 = ds.millis()
        await c.stop()
        const took = ds.millis() - t0
        console.log(`stop() during the backoff took ${took} ms`)
        expect(took < 1000).toBe(true)
    })

    test("backoff: after a connection with an acknowledged exchange it starts again from the minimum", async () => {
        if (!PROXY_PORT) return
        const min = 600
        const c = client({ backoff: { min, max: 8000 } }, true)
        let downAt = 0
        const gaps: number[] = []
        c.on(ev => {
            if (ev.type === "disconnected") downAt = ds.millis()
            if (ev.type === "connected" && downAt) gaps.push(ds.millis() - downAt)
        })
        c.start()
        await until("connect", () => c.connected)
        await c.subscribe("bk/x", () => {}, { qos: 1 })
        let n = 0
        while (n < 3) {
            await ds.sleep(3000)
            // every connection is dropped; the broker stays there (a restart as short as it gets)
            await ctl("drop-all", 0)
            n++
            await until(`reconnect ${n}`, () => gaps.length === n, 15000)
        }
        console.log(`recoveries after 3 resets 3 s apart: ${gaps.join(", ")} ms`)
        // the delay is at most the minimum each time; 500 ms for the reconnect itself
        for (const g of gaps) expect(g <= min + 500).toBe(true)
        await c.stop()
    })

    test("backoff: a broker that accepts and drops at once still gets growing delays", async () => {
        if (!DROP_PORT) return
        const c = client({ port: DROP_PORT, backoff: { min: 200, max: 3200 } })
        const at: number[] = []
        c.on(ev => {
            if (ev.type === "disconnected") at.push(ds.millis())
        })
        c.start()
        await until("5 accepted-and-dropped connections", () => at.length >= 5, 20000)
        await c.stop()
        const gaps: number[] = []
        for (let i = 1; i < at.length; i++) gaps.push(at[i] - at[i - 1])
        console.log(`gaps between accept-and-drop connections: ${gaps.join(", ")} ms`)
        // delays 200, 400, 800, 1600 ms, each with jitter down to half: the fourth is at least 800
        expect(gaps[3] >= 800).toBe(true)
        expect(c.stats().reconnects >= 4).toBe(true)
    })
})
