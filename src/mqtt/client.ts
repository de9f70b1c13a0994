/**
 * The MQTT 3.1.1 client session: connects over any `NetStack`, keeps the connection up by itself
 * (keepalive, outage detection, reconnect with backoff), delivers QoS 0/1/2 in both directions and
 * keeps QoS 1/2 messages in a bounded outbox across outages.
 */
import * as ds from "@devicescript/core"
import { Connection, NetStack } from "../net/stack"
import { Signal } from "../util/signal"
import { encode, encodeConnect, MqttError, Packet, PacketReader, PacketType, toBytes, Will } from "./packet"
import { topicMatches, topicNameError } from "./topic"
import { words } from "../util/words"
import { millis, sleep, suspend } from "../util/rt"

/** An incoming application message. */
export interface MqttMessage {
    topic: string
    payload: Buffer
    qos: number
    retain: boolean
}

/** Called for each message matching a subscription. */
export type MessageHandler = (msg: MqttMessage) => ds.AsyncVoid

/** What `MqttOptions.credentials` returns. */
export interface Credentials {
    clientId: string
    username?: string
    password?: string
}

/** Client options; only `net`, `host` and `clientId` are required. */
export interface MqttOptions {
    /** the network the connection is opened on */
    net: NetStack
    host: string
    /** default 1883, or 8883 with tls */
    port?: number
    tls?: boolean
    clientId: string
    username?: string
    /** a string, or a function called at every connect (for tokens that expire) */
    password?: string | (() => ds.AsyncValue<string>)
    /**
     * Called at every connect; the client id, user name and password it returns replace the
     * options' (platforms whose client id or user name carry a timestamp or an expiry).
     */
    credentials?: () => ds.AsyncValue<Credentials>
    /** seconds, 0..65535; 0 disables keepalive (default 60) */
    keepAlive?: number
    /** default true */
    cleanSession?: boolean
    will?: Will
    /** QoS 1/2 messages in flight at once (default 8) */
    inflightWindow?: number
    /** QoS 1/2 messages held (in flight + waiting) before the drop policy applies (default 32) */
    outboxLimit?: number
    /** when the outbox is full: "oldest" drops the oldest waiting message, "newest" refuses the new one (default "oldest") */
    dropPolicy?: "oldest" | "newest"
    /**
     * largest packet accepted or sent, bytes (default 8192). Larger limits work (20,000-byte
     * messages round-trip) but need one contiguous buffer of that size: on the 64 KB heap, after a
     * flood of small messages, a 20 KB buffer was not always to be had (OutOfMemory in `npm run fuzz`)
     */
    maxPacketSize?: number
    /** reconnect backoff bounds, ms (default 1000 .. 60000), with jitter */
    backoff?: { min: number; max: number }
    /** TCP connect and CONNACK timeout, ms (default 10000) */
    connectTimeoutMs?: number
    /** log a line per connection event (default true); never logs payloads or secrets */
    log?: boolean
}

/** Counters since the client was created. */
export interface MqttStats {
    /** PUBLISH packets sent for the first time */
    sent: number
    /** QoS 1/2 publishes completed (PUBACK / PUBCOMP) */
    acked: number
    /** PUBLISH or PUBREL packets sent again after an outage */
    retransmitted: number
    /** successful connections after the first */
    reconnects: number
    /** connection attempts, successful or not */
    connectAttempts: number
    /** messages dropped: outbox overflow (while offline), QoS 0 while offline */
    dropped: number
    /** PUBLISH packets received */
    received: number
    /** malformed, unexpected or oversized packets from the broker */
    malformed: number
    /** QoS 1/2 messages waiting or in flight now */
    outbox: number
}

/** Connection state events. */
export interface MqttEvent {
    type: "connected" | "disconnected" | "error"
    sessionPresent?: boolean
    reason?: string
}

/** Describes a CONNACK return code. */
export function connackReason(code: number): string {
    const r = words("|unacceptable protocol version|identifier rejected|server unavailable|bad user name or password|not authorized", "|")[code]
    return `broker refused connection: ${r || "unknown reason"} (CONNACK ${code})`
}

const enum St {
    Queued = 0, // waiting for a window slot or a connection
    Sent = 1, // PUBLISH sent, waiting for PUBACK / PUBREC
    Released = 2, // PUBREL sent, waiting for PUBCOMP
}

/** A QoS 1/2 message in the outbox. */
interface OutMsg {
    /** packet id; 0 while queued (ids are assigned when the message goes in flight) */
    id: number
    state: St
    qos: number
    /** the whole PUBLISH, or its head when the payload travels separately in `tail` */
    pkt: Buffer
    tail: Buffer
    /** offset of the packet id in `pkt` */
    idOff: number
    done?: boolean
    error?: string
    /** the publisher waiting for this message (woken alone: no herd of publishers per ack) */
    waiter?: ds.Fiber
}

// payloads at least this large are written after the packet head instead of copied into it
const SPLIT_PAYLOAD = 512

interface Sub {
    filter: string
    qos: number
    /** granted QoS once acknowledged, 0x80 when refused, -1 until the SUBACK */
    granted: number
    handlers: MessageHandler[]
}

/** A SUBSCRIBE (for `sub`) or UNSUBSCRIBE (no `sub`) waiting for its ack. */
interface Pending {
    id: number
    sub: Sub
}

const PINGREQ = hex`c000`
const DISCONNECT = hex`e000`
const INBOX_LIMIT = 16
const QOS2_IN_LIMIT = 64
/** ids of messages sent beyond the outbox bound whose acks are still expected (numbers: 8 bytes each) */
const LOOSE_LIMIT = 256

async function closeConn(c: Connection) {
    await c.close()
}

/** Removes `x` from `list` (when it is there). */
function drop<T>(list: T[], x: T) {
    const i = list.indexOf(x)
    if (i >= 0) list.insert(i, -1)
}

/** The first entry of `list` whose `key` is `value`. */
function find<T>(list: T[], key: string, value: any): T {
    for (const x of list) if ((x as any)[key] === value) return x
    return undefined
}

/** Throws when `topic` is not a valid topic name (with `filter`, topic filter). */
function checkTopic(topic: string, filter?: boolean) {
    const err = topicNameError(topic, filter)
    if (err) throw new Error(`mqtt: ${err}`)
}

function qosOf(opts: { qos?: number }): number {
    const q = (opts && opts.qos) || 0
    if (q !== (q & 3) || q === 3) throw new Error(`mqtt: qos must be 0, 1 or 2, got ${q}`)
    return q
}

/** Gives `m` packet id `id` (the next free one), written into its PUBLISH; returns the id. */
function stamp(m: OutMsg, id: number) {
    m.id = id
    const pkt = m.pkt
    pkt[m.idOff] = id >> 8
    pkt[m.idOff + 1] = id & 0xff
    return id
}

/**
 * Feeds the next chunk (if any arrives within `ms`) to `reader`; throws once the connection is
 * closed (`connected`: the CONNACK came).
 */
async function pull(conn: Connection, reader: PacketReader, ms: number, connected: boolean) {
    // a helper, so no frame keeps the chunk alive after it is parsed
    const chunk = await conn.recv(ms)
    if (chunk === null)
        throw new Error(`connection closed by the broker${connected ? "" : " before CONNACK"}${conn.error ? ": " + conn.error : ""}`)
    if (chunk) reader.push(chunk)
}

/** Marks `m` done and wakes its publisher, if one waits. */
function release(m: OutMsg) {
    m.done = true
    const w = m.waiter
    if (w) {
        if (w.suspended) w.resume(true)
    }
}

/** An MQTT 3.1.1 client that keeps its promises; see docs/mqtt-client.md for the guarantees. */
export class MqttClient {
    private listeners: ((ev: MqttEvent) => void)[] = []
    private o: MqttOptions
    private conn: Connection
    private running: boolean
    private supervisor: ds.Fiber
    private dispatcher: ds.Fiber
    /** outbox, acks, inbox, connection state, fibers ending */
    private wake = new Signal()
    private outbox: OutMsg[] = []
    /** messages in flight: the first `inflight` entries of the outbox */
    private inflight = 0
    private subs: Sub[] = []
    private pending: Pending[] = []
    private inbox: Packet[] = []
    /** ids of QoS 2 messages delivered, until their PUBREL */
    private qos2In: number[] = []
    /** ids of QoS 1/2 messages sent beyond the outbox bound, not kept: their acks are expected, nothing else (set at every CONNACK) */
    private loose: number[]
    /** the broker's session: counts CONNACKs without session-present; inbox entries carry it in `s` */
    private session = 0
    private lastId = 0
    private writing: boolean
    private written = new Signal()
    private writes = 0
    private lastSent: number
    private lastRecv: number
    private pingSentAt: number
    private connectedOnce: boolean
    private lastTopic: string
    private lastTopicBytes: Buffer
    private renewing: boolean
    /** the current connection got a SUBACK or a PUBACK / PUBCOMP */
    private good: boolean
    private st: MqttStats = { sent: 0, acked: 0, retransmitted: 0, reconnects: 0, connectAttempts: 0, dropped: 0, received: 0, malformed: 0, outbox: 0 }
    /** true while a CONNACK-accepted connection is up */
    connected = false
    /** session-present flag of the last CONNACK */
    sessionPresent: boolean
    /** the reason of the last disconnection or failed attempt */
    lastError: string

    constructor(o: MqttOptions) {
        if (!o.net) throw new Error("mqtt: options.net is required")
        if (!o.host) throw new Error("mqtt: options.host is required")
        if (typeof o.clientId !== "string") throw new Error("mqtt: options.clientId is required")
        if (o.cleanSession === undefined) o.cleanSession = true
        if (!o.clientId) {
            if (!o.cleanSession) throw new Error("mqtt: an empty clientId needs cleanSession true")
        }
        if (o.keepAlive === undefined) o.keepAlive = 60
        const ka = o.keepAlive
        if (!(ka >= 0 && ka <= 65535 && ka === Math.floor(ka))) throw new Error(`mqtt: keepAlive must be an integer 0..65535 seconds, got ${ka}`)
        if (!o.port) o.port = o.tls ? 8883 : 1883
        if (!(o.inflightWindow >= 1)) o.inflightWindow = 8
        if (!(o.outboxLimit >= 1)) o.outboxLimit = 32
        if (!(o.maxPacketSize >= 64)) o.maxPacketSize = 8192
        if (!o.backoff) o.backoff = { min: 1000, max: 60000 }
        if (!o.connectTimeoutMs) o.connectTimeoutMs = 10000
        if (o.log === undefined) o.log = true
        this.o = o
    }

    /**
     * Calls `listener` synchronously, in order, for every connected / disconnected / error event
     * (no event is coalesced or lost); returns a function that removes it.
     */
    on(listener: (ev: MqttEvent) => void): () => void {
        const ls = this.listeners
        ls.push(listener)
        return () => drop(ls, listener)
    }

    /** Logs `line` (when logging is on), then tells the listeners. */
    private event(type: string, line: string, reason?: string, sessionPresent?: boolean) {
        if (this.o.log) console.log(`mqtt: ${line}`)
        const ev = { type, reason, sessionPresent } as MqttEvent
        for (const l of this.listeners.slice(0)) {
            try {
                l(ev)
            } catch (e) {
                console.log(`mqtt: event listener failed: ${(e as Error).message}`)
            }
        }
        this.wake.notify()
    }

    private count(counter: string) {
        ;(this.st as any)[counter]++
    }

    /** Counters (a copy). */
    stats(): MqttStats {
        this.st.outbox = this.outbox.length
        return Object.assign({}, this.st)
    }

    /** QoS 1/2 messages waiting or in flight now (`stats().outbox` without the copy). */
    backlog(): number {
        return this.outbox.length
    }

    /** Starts connecting; from then on the client keeps the connection up until `stop()`. */
    start() {
        if (this.running) return
        this.running = true
        if (!this.dispatcher) this.dispatcher = this.dispatch.start()
        this.supervisor = this.supervise.start()
    }

    /** Sends DISCONNECT (so the will is not published), closes the connection and ends the client's tasks. QoS 1/2 messages stay queued for a later `start()`. */
    async stop() {
        if (!this.running) return
        this.running = false
        // wakes a reconnect backoff at once
        this.wake.notify()
        await this.hangUp("stopped")
        while (this.supervisor || this.dispatcher) await this.wake.wait(1000)
        // undelivered messages stay unacknowledged: a persistent session gets them again
        this.inbox = []
    }

    /**
     * Ends the current connection with a DISCONNECT (no will) and connects again at once, with
     * fresh credentials: for tokens about to expire. Queued messages and subscriptions carry over.
     */
    async reconnect() {
        if (!this.running || !this.connected) return
        this.renewing = true
        await this.hangUp("reconnecting with fresh credentials")
    }

    /** Sends DISCONNECT when connected, then closes the connection. */
    private async hangUp(reason: string) {
        const c = this.conn
        if (this.connected)
            try {
                await this.write(DISCONNECT)
            } catch (e) {}
        this.dropConnection(reason)
        if (c) await c.close()
    }

    /**
     * Publishes a message. Resolves when it is delivered as its QoS promises (QoS 0: written to
     * the connection; QoS 1: PUBACK; QoS 2: PUBCOMP). QoS 1/2 messages wait in the outbox while
     * offline. Throws only when the message is dropped (outbox full, QoS 0 while offline) or invalid.
     * `wait: false` (QoS 1/2): resolve once the message is in the outbox; its delivery then shows
     * in `stats()` only. A device that reports and replies uses it: a waiting caller per message
     * is a fiber per message, and on a 64 KB heap a burst of them runs out of memory.
     */
    async publish(topic: string, payload: string | Buffer, opts?: { qos?: number; retain?: boolean; wait?: boolean }) {
        if (topic !== this.lastTopic) {
            // devices publish to a few topics over and over: validate and encode each once
            checkTopic(topic)
            this.lastTopicBytes = Buffer.from(topic)
            this.lastTopic = topic
        }
        const qos = qosOf(opts)
        const body = toBytes(payload)
        const split = body.length >= SPLIT_PAYLOAD
        let tail: Buffer
        let size = 0 // of the whole PUBLISH
        if (split) {
            tail = body
            size = body.length
        }
        const parts: (number | Buffer)[] = [this.lastTopicBytes]
        if (qos) parts.push(0) // the packet id, set when the message goes in flight
        let hdr = 0x30 | (qos << 1)
        if (opts && opts.retain) hdr |= 1
        const pkt = encode(hdr, parts, body, split)
        size += pkt.length
        const o = this.o
        if (size > o.maxPacketSize) throw new Error(`mqtt: message to "${topic}" is ${size} bytes, above maxPacketSize ${o.maxPacketSize}`)
        if (!qos) {
            if (!this.connected) {
                this.count("dropped")
                throw new Error("mqtt: not connected (QoS 0 messages are not queued)")
            }
            await this.write(pkt, tail)
            this.count("sent")
            return
        }
        const box = this.outbox
        if (box.length >= o.outboxLimit) {
            // the queued messages follow the ones in flight: the first of them is the oldest waiting
            const v = box[this.inflight]
            if (o.dropPolicy === "newest" || !v) {
                this.count("dropped")
                throw new Error(`mqtt: outbox full (${o.outboxLimit} messages, ${this.inflight} in flight), message dropped`)
            }
            if (this.connected) {
                // sent loose: the outbox is full while connected, so its oldest waiting message is
                // written now, in its turn (every older one is in flight already), and no longer
                // kept for a resend after a reconnect. A burst of commands needs it: the PUBACKs of
                // their replies come back behind the commands the broker has already sent, so the
                // device must answer them all before it can see one ack.
                box.insert(this.inflight, -1)
                const l = this.loose
                l.push(stamp(v, this.nextId()))
                if (l.length > LOOSE_LIMIT) l.shift()
                release(v)
                try {
                    await this.write(v.pkt, v.tail)
                    this.count("sent")
                } catch (e) {
                    // connection gone: the message is lost with it (the caller was told the outbox was full)
                    this.count("dropped")
                }
            } else {
                this.count("dropped")
                this.finish(v, `outbox full (${o.outboxLimit}), dropped as the oldest waiting message`)
            }
        }
        const m: OutMsg = { id: 0, state: St.Queued, qos, pkt, tail, idOff: size - body.length - 2 }
        box.push(m)
        await this.pump()
        if (opts && opts.wait === false) return
        m.waiter = ds.Fiber.self()
        while (!m.done) await suspend()
        if (m.error) throw new Error(`mqtt: ${m.error}`)
    }

    /**
     * Subscribes `handler` to `filter`; resolves with the granted QoS once the broker acknowledges
     * (after a reconnect if offline). Throws when the broker refuses (SUBACK 0x80). The
     * subscription is renewed by itself after a reconnect without a session.
     */
    async subscribe(filter: string, handler: MessageHandler, opts?: { qos?: number; timeoutMs?: number }): Promise<number> {
        checkTopic(filter, true)
        const qos = qosOf(opts)
        const subs = this.subs
        let sub = find(subs, "filter", filter)
        if (!sub) subs.push((sub = { filter, qos, granted: -1, handlers: [] }))
        if (sub.qos !== qos) {
            sub.qos = qos
            sub.granted = -1
        }
        sub.handlers.push(handler)
        const deadline = millis() + ((opts && opts.timeoutMs) || 30000)
        for (;;) {
            const g = sub.granted
            if (g === 0x80) {
                drop(subs, sub)
                throw new Error(`mqtt: subscription to "${filter}" refused by the broker (SUBACK 0x80)`)
            }
            if (g >= 0) return g
            if (this.connected) await this.request(sub, filter)
            const left = deadline - millis()
            if (left <= 0) {
                // the caller may retry: do not leave this handler behind to be called twice
                drop(sub.handlers, handler)
                if (!sub.handlers.length) drop(subs, sub)
                throw new Error(`mqtt: no SUBACK for "${filter}" within the timeout`)
            }
            await this.wake.wait(left)
        }
    }

    /**
     * Removes every handler of `filter` (delivery stops at once) and sends UNSUBSCRIBE when
     * connected (its UNSUBACK is not waited for).
     */
    async unsubscribe(filter: string) {
        const sub = find(this.subs, "filter", filter)
        if (!sub) return
        drop(this.subs, sub)
        if (this.connected) await this.request(undefined, filter)
    }

    // ---- internals ----

    /**
     * Sends SUBSCRIBE for `sub` (unless one is already waiting for its SUBACK), or UNSUBSCRIBE
     * for `filter` without `sub`, and registers it as waiting for its ack.
     */
    private async request(sub: Sub, filter: string) {
        if (sub) {
            if (find(this.pending, "sub", sub)) return
        }
        const p: Pending = { id: this.nextId(), sub }
        this.pending.push(p)
        let hdr = 0xa2 // UNSUBSCRIBE
        let qos: Buffer
        if (sub) {
            // SUBSCRIBE ends with the requested QoS
            hdr = 0x82
            qos = hex`000102`.slice(sub.qos, sub.qos + 1)
        }
        try {
            await this.write(encode(hdr, [p.id, Buffer.from(filter)], qos))
        } catch (e) {
            drop(this.pending, p)
        }
    }

    /** Next free packet id: never 0, wraps 65535 -> 1, skips ids in flight. */
    private nextId(): number {
        for (;;) {
            const id = (this.lastId = (this.lastId % 65535) + 1)
            // ids of `loose` messages are not checked: ids go up one at a time, and their acks come
            // long before the id comes round again (65,535 packets later)
            if (!find(this.outbox, "id", id)) {
                if (!find(this.pending, "id", id)) return id
            }
        }
    }

    /** Ends a message: removed from the outbox, its publisher woken; without `error` it was delivered. */
    private finish(m: OutMsg, error?: string) {
        const i = this.outbox.indexOf(m)
        if (i >= 0) {
            this.outbox.insert(i, -1)
            if (i < this.inflight) this.inflight--
        }
        if (!error) this.count("acked")
        m.error = error
        release(m)
    }

    /** Writes one packet (and its separate payload); writes are serialized so packets never interleave. */
    private async write(pkt: Buffer, tail?: Buffer) {
        while (this.writing) await this.written.wait()
        const c = this.conn
        if (!c) throw new Error("not connected")
        this.writing = true
        try {
            await c.send(pkt)
            if (tail) await c.send(tail)
            this.lastSent = millis()
        } catch (e) {
            this.dropConnection(`write failed: ${(e as Error).message}`)
            throw e
        } finally {
            this.writing = false
            this.written.notify()
        }
        // a socket write does not yield: give other fibers (and the VM watchdog) a turn now and then
        if (!(++this.writes & 63)) await sleep(0)
    }

    private async ack(hdr: number, id: number) {
        await this.write(encode(hdr, [id]))
    }

    /**
     * Sends queued QoS 1/2 messages while the window has room; with `resend` (after a reconnect)
     * first PUBLISH again (DUP) or PUBREL again every message in flight.
     */
    private async pump(resend?: boolean) {
        const box = this.outbox
        if (resend)
            for (const m of box) {
                if (m.state === St.Queued || !this.conn) break
                const pkt = m.pkt
                if (pkt) pkt[0] |= 0x08
                await this.write(pkt || encode(0x62, [m.id]), m.tail)
                this.count("retransmitted")
            }
        // in-flight messages come first in the outbox, the queued ones after them
        while (this.connected && this.inflight < Math.min(box.length, this.o.inflightWindow)) {
            const m = box[this.inflight++]
            stamp(m, this.nextId())
            m.state = St.Sent
            try {
                await this.write(m.pkt, m.tail)
            } catch (e) {
                return // stays Sent: retransmitted with DUP after the reconnect
            }
            this.count("sent")
        }
    }

    private dropConnection(reason: string) {
        const c = this.conn
        if (!c) return
        if (!this.lastError || this.connected) this.lastError = reason
        this.conn = undefined
        closeConn.start(c)
        this.wake.notify()
    }

    /** Connects, runs the session, and reconnects with backoff until `stop()`. */
    private async supervise() {
        const o = this.o
        let d = 0 // the last backoff, ms
        try {
            while (this.running) {
                // the backoff starts again from its minimum after a connection that completed an
                // acknowledged exchange; one that a broker accepts and drops at once does not count
                if ((await this.connectOnce()) && this.good) d = 0
                if (!this.running) break
                if (this.renewing) {
                    this.renewing = false
                    continue
                }
                // back off: min, doubling up to max, with jitter in [d/2, d]
                const b = o.backoff
                d = Math.min(b.max, d ? d * 2 : b.min)
                const delay = Math.round(d / 2 + (Math.random() * d) / 2)
                if (o.log) console.log(`mqtt: reconnecting in ${delay} ms`)
                const until = millis() + delay
                while (this.running && millis() < until) await this.wake.wait(until - millis())
            }
        } finally {
            this.supervisor = undefined
            this.wake.notify()
        }
    }

    /** Opens the transport, completes CONNECT/CONNACK and runs the session; false when the connection failed. */
    private async connectOnce(): Promise<boolean> {
        const o = this.o
        this.count("connectAttempts")
        let conn: Connection
        let reason = `cannot reach ${o.host}:${o.port}: `
        let p: Packet
        let reader: PacketReader
        try {
            conn = await o.net.connect({ host: o.host, port: o.port, tls: o.tls, timeoutMs: o.connectTimeoutMs })
            reason = ""
            this.conn = conn
            reader = new PacketReader(o.maxPacketSize)
            let id = o.clientId
            let user = o.username
            let pw = o.password as string
            if (typeof o.password === "function") pw = await o.password()
            if (o.credentials) {
                const cr = await o.credentials()
                id = cr.clientId
                user = cr.username
                pw = cr.password
            }
            await this.write(encodeConnect(id, user, pw, o.keepAlive, o.cleanSession, o.will))
            const deadline = millis() + o.connectTimeoutMs
            while (!(p = reader.next())) {
                const left = deadline - millis()
                if (left <= 0 || !this.conn) throw new Error("no CONNACK within the timeout")
                await pull(conn, reader, left, false)
            }
            if (p.type !== PacketType.Connack) {
                this.count("malformed")
                throw new Error(`expected CONNACK, got packet type ${p.type}`)
            }
            if (p.id) throw new Error(connackReason(p.id))
        } catch (e) {
            this.conn = undefined
            if (conn) await conn.close()
            reason += (e as Error).message
            this.lastError = reason
            this.event("error", reason, reason)
            return false
        }
        const sp = p.sessionPresent
        this.connected = true
        this.sessionPresent = sp
        this.lastError = undefined
        if (this.connectedOnce) this.count("reconnects")
        this.connectedOnce = true
        this.lastRecv = millis()
        this.pingSentAt = 0
        this.good = false
        this.pending = []
        this.loose = []
        if (!sp) {
            // the broker forgot our subscriptions, and the QoS 2 messages it answered with PUBREC:
            // it has those, so they count as delivered
            for (const s of this.subs) s.granted = -1
            this.session++
            this.qos2In = []
            const box = this.outbox
            for (let i = 0; i < box.length; i++) if (box[i].state === St.Released) this.finish(box[i--])
        }
        this.event("connected", `connected to ${o.host}:${o.port}${sp ? " (session resumed)" : ""}`, undefined, sp)

        // the session, until the connection ends
        try {
            await this.pump(true)
            for (const s of this.subs) if (s.granted < 0) await this.request(s, s.filter)
            let steps = 0
            while (this.running && this.conn === conn) {
                // flow control: while the handlers are behind, nothing more is read, so TCP holds the broker back
                if (this.inbox.length >= INBOX_LIMIT) {
                    await this.wake.wait()
                    continue
                }
                const p = reader.next()
                if (p) {
                    this.lastRecv = millis()
                    if (!(await this.handle(p))) this.count("malformed")
                    // a chunk full of packets must not run past the VM's step budget (InfiniteLoop):
                    // about 300 steps a packet plus 10 a topic byte (the UTF-8 check), and an ack
                    // may send the next message (pump) without yielding: count 2,000; yield at 60K
                    steps += (p.topic ? 300 + p.topic.length * 10 : 2000)
                    if (steps > 60000) {
                        steps = 0
                        await sleep(0)
                    }
                    continue
                }
                // keepalive: PINGREQ once nothing was sent (or nothing heard) for 3/4 of it; the
                // connection is dead when the PINGRESP is missing for half of it
                const ka = o.keepAlive * 1000
                const now = millis()
                const ping = this.pingSentAt
                let wait = 60000
                if (ka) {
                    if (ping) {
                        wait = ping + ka / 2 - now
                        if (wait <= 0) {
                            this.dropConnection(`no PINGRESP within ${ka / 2000} s: connection declared dead`)
                            break
                        }
                    } else {
                        wait = Math.min(this.lastSent, this.lastRecv) + (ka * 3) / 4 - now
                        if (wait <= 0) {
                            this.pingSentAt = now
                            await this.write(PINGREQ)
                            continue
                        }
                    }
                }
                await pull(conn, reader, wait, true)
                steps = 0
            }
        } catch (e) {
            let msg = (e as Error).message
            if (e instanceof MqttError) {
                this.count("malformed")
                msg = `protocol error: ${msg}`
            }
            this.dropConnection(msg)
        }
        if (this.conn === conn) this.dropConnection("session ended")
        if (!this.running) this.lastError = "stopped"
        this.connected = false
        reason = this.lastError || "stopped"
        this.event("disconnected", `disconnected: ${reason}`, reason)
        return true
    }

    /** Acts on one packet from the broker; false when it is malformed, unexpected or oversized (to be counted). */
    private async handle(p: Packet): Promise<boolean> {
        const t = p.type
        const id = p.id
        const qos = p.qos
        if (t === PacketType.Publish) {
            this.count("received")
            // oversized (not delivered), or a DUP of a QoS 2 message already delivered: acknowledged
            // only, so the broker does not send it again
            if (p.oversized || (qos === 2 && this.qos2In.indexOf(id) >= 0)) {
                if (p.oversized) {
                    if (this.o.log) console.log(`mqtt: skipped an incoming message larger than ${this.o.maxPacketSize} bytes (maxPacketSize) or with a topic too long`)
                }
                if (qos === 1 || qos === 2) await this.ack(0x30 + (qos << 4), id) // PUBACK, PUBREC
                return !p.oversized
            }
            ;p.s = this.session
            this.inbox.push(p)
            this.wake.notify()
            return true
        }
        if (t === PacketType.Pubrel) {
            drop(this.qos2In, id)
            await this.ack(0x70, id) // PUBCOMP
            return true
        }
        if (t === PacketType.Pingresp) {
            this.pingSentAt = 0
            return true
        }
        if ((t | 2) === PacketType.Unsuback) {
            // SUBACK (9) or UNSUBACK (11)
            const q = find(this.pending, "id", id)
            if (!q) return false
            if (!q.sub !== (t === PacketType.Unsuback)) return false
            drop(this.pending, q)
            if (q.sub) {
                if (qos > 2 && qos !== 0x80) throw new MqttError(`SUBACK return code ${qos}`)
                q.sub.granted = qos // 0x80: refused
                this.good = true
                this.wake.notify()
            }
            return true
        }
        // PUBACK (4), PUBREC (5), PUBCOMP (7); the rest is a packet a broker must not send
        if (t >> 2 !== 1) return false
        const m = find(this.outbox, "id", id)
        let s = St.Queued
        if (m) s = m.state
        // PUBACK: a QoS 1 message sent; PUBREC: a QoS 2 message sent (or released: a repeat); PUBCOMP: released
        const ok = t === PacketType.Pubcomp ? s === St.Released : s === St.Sent ? m.qos === t - 3 : s === St.Released && t === PacketType.Pubrec
        if (t === PacketType.Pubrec) {
            if (ok) {
                // the broker has the message: from now on only PUBREL is resent
                m.state = St.Released
                m.pkt = undefined
                m.tail = undefined
            }
            // answer even an unknown id, so the broker can finish its side
            await this.ack(0x62, id)
            // a loose QoS 2 message: its PUBCOMP is still to come
            if (!m) {
                if (this.loose.indexOf(id) >= 0) return true
            }
        } else if (ok) {
            this.good = true
            this.finish(m)
            await this.pump()
        } else if (!m) {
            // the last ack (PUBACK, PUBCOMP) of a message sent beyond the outbox bound: its id is
            // forgotten (acks come in order as a rule: the first id is tried first)
            const l = this.loose
            let i = 0
            if (l[0] !== id) i = l.indexOf(id)
            if (i >= 0) {
                l.insert(i, -1)
                this.count("acked")
                return true
            }
        }
        return ok
    }

    /** Runs message handlers one at a time, then acknowledges (at least once for QoS 1). */
    private async dispatch() {
        let n = 0
        try {
            while (this.running) {
                // a received PUBLISH is the message itself
                const p = this.inbox.shift()
                if (!p) {
                    await this.wake.wait()
                    continue
                }
                // handlers whose writes do not yield: a full inbox must not run past the VM's step budget
                if (!(++n & 3)) await sleep(0)
                // the session loop may be waiting for room in the inbox
                this.wake.notify()
                for (const s of this.subs.slice(0)) {
                    if (!topicMatches(s.filter, p.topic)) continue
                    for (const h of s.handlers.slice(0)) {
                        try {
                            await h(p as MqttMessage)
                        } catch (e) {
                            console.log(`mqtt: handler for "${s.filter}" failed: ${(e as Error).message}`)
                        }
                    }
                }
                // a message of a session the broker discarded is not acknowledged: its id may be another message's now
                let qos = p.qos
                if (p.s !== this.session) qos = 0
                try {
                    if (qos === 2) {
                        const q2 = this.qos2In
                        q2.push(p.id)
                        if (q2.length > QOS2_IN_LIMIT) q2.shift()
                    }
                    if (qos) await this.ack(0x30 + (qos << 4), p.id) // PUBACK, PUBREC
                } catch (e) {
                    // connection gone: the broker redelivers after the reconnect
                }
            }
        } finally {
            this.dispatcher = undefined
            this.wake.notify()
        }
    }
}
