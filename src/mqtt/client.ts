/**
 * The MQTT 3.1.1 client session: connects over any `NetStack`, keeps the connection up by itself
 * (keepalive, outage detection, reconnect with backoff), delivers QoS 0/1/2 in both directions and
 * keeps QoS 1/2 messages in a bounded outbox across outages.
 */
import * as ds from "@devicescript/core"
import { Connection, NetStack } from "../net/stack"
import { Signal } from "../util/signal"
import {
    encodeAck,
    encodeConnect,
    encodeEmpty,
    encodePublish,
    encodeSubscribe,
    encodeUnsubscribe,
    MqttError,
    Packet,
    PacketReader,
    PacketType,
    toBytes,
    Will,
} from "./packet"
import { topicFilterError, topicMatches, topicNameError } from "./topic"

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
    /** largest packet accepted or sent, bytes (default 20480) */
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
    /** messages dropped: outbox overflow, QoS 0 while offline, incoming while the inbox was full */
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

const CONNACK_REASONS = [
    "",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
]

/** Describes a CONNACK return code. */
export function connackReason(code: number): string {
    return `broker refused connection: ${CONNACK_REASONS[code] || "unknown reason"} (CONNACK ${code})`
}

const enum St {
    Queued = 0, // waiting for a window slot or a connection
    Sent = 1, // PUBLISH sent, waiting for PUBACK / PUBREC
    Released = 2, // PUBREL sent, waiting for PUBCOMP
}

class OutMsg {
    id = 0
    state = St.Queued
    done = false
    error: string
    /** the publisher waiting for this message (woken alone: no herd of publishers per ack) */
    waiter: ds.Fiber
    /** offset of the packet id in `pkt` */
    idOff = 0
    /** `pkt` is the whole PUBLISH, or its head when the payload travels separately in `tail` */
    constructor(public pkt: Buffer, public tail: Buffer, public qos: number) {}
}

// payloads at least this large are written after the packet head instead of copied into it
const SPLIT_PAYLOAD = 512

class Sub {
    acked = false
    granted = -1
    refused = false
    handlers: MessageHandler[] = []
    constructor(public filter: string, public qos: number) {}
}

// pending SUBSCRIBE / UNSUBSCRIBE waiting for its ack
class Pending {
    done = false
    result: Buffer
    constructor(public id: number, public type: number, public sub: Sub) {}
}

async function closeConn(c: Connection) {
    await c.close()
}

const INBOX_LIMIT = 16
const QOS2_IN_LIMIT = 64

/** An MQTT 3.1.1 client that keeps its promises; see the README for the guarantees. */
export class MqttClient {
    private listeners: ((ev: MqttEvent) => void)[] = []
    private o: MqttOptions
    private conn: Connection
    private reader: PacketReader
    private running = false
    private supervisor: ds.Fiber
    private wake = new Signal() // outbox, acks, connection state
    private stopped = new Signal()
    private outbox: OutMsg[] = []
    private subs: Sub[] = []
    private pending: Pending[] = []
    private inbox: Packet[] = []
    private inboxSignal = new Signal()
    private dispatcher: ds.Fiber
    private qos2In: number[] = []
    private lastId = 0
    private writing = false
    private writeSignal = new Signal()
    private writesSinceYield = 0
    private lastSent = 0
    private lastRecv = 0
    private pingSentAt = 0
    private connectedOnce = false
    /** messages in flight: the first `inflight` entries of the outbox */
    private inflight = 0
    private lastTopic: string
    private lastTopicBytes: Buffer
    private renewing = false
    private st: MqttStats = {
        sent: 0,
        acked: 0,
        retransmitted: 0,
        reconnects: 0,
        connectAttempts: 0,
        dropped: 0,
        received: 0,
        malformed: 0,
        outbox: 0,
    }
    /** true while a CONNACK-accepted connection is up */
    connected = false
    /** session-present flag of the last CONNACK */
    sessionPresent = false
    /** the reason of the last disconnection or failed attempt */
    lastError: string

    constructor(options: MqttOptions) {
        const o = options
        if (!o.net) throw new Error("mqtt: options.net is required")
        if (!o.host) throw new Error("mqtt: options.host is required")
        if (o.clientId === undefined || o.clientId === null) throw new Error("mqtt: options.clientId is required")
        if (o.cleanSession === undefined) o.cleanSession = true
        if (!o.clientId && !o.cleanSession) throw new Error("mqtt: an empty clientId needs cleanSession true")
        if (o.keepAlive === undefined) o.keepAlive = 60
        if (!(o.keepAlive >= 0 && o.keepAlive <= 65535) || o.keepAlive !== Math.floor(o.keepAlive))
            throw new Error(`mqtt: keepAlive must be an integer 0..65535 seconds, got ${o.keepAlive}`)
        if (!o.port) o.port = o.tls ? 8883 : 1883
        if (!(o.inflightWindow >= 1)) o.inflightWindow = 8
        if (!(o.outboxLimit >= 1)) o.outboxLimit = 32
        if (!o.dropPolicy) o.dropPolicy = "oldest"
        if (!(o.maxPacketSize >= 64)) o.maxPacketSize = 20480
        if (!o.backoff) o.backoff = { min: 1000, max: 60000 }
        if (!o.connectTimeoutMs) o.connectTimeoutMs = 10000
        if (o.log === undefined) o.log = true
        this.o = o
        this.reader = new PacketReader(o.maxPacketSize)
    }

    /**
     * Calls `listener` synchronously, in order, for every connected / disconnected / error event
     * (no event is coalesced or lost); returns a function that removes it.
     */
    on(listener: (ev: MqttEvent) => void): () => void {
        const ls = this.listeners
        ls.push(listener)
        return () => {
            const i = ls.indexOf(listener)
            if (i >= 0) ls.insert(i, -1)
        }
    }

    private emit(ev: MqttEvent) {
        for (const l of this.listeners.slice(0)) {
            try {
                l(ev)
            } catch (e) {
                console.log(`mqtt: event listener failed: ${(e as Error).message}`)
            }
        }
    }

    /** Counters (a copy). */
    stats(): MqttStats {
        const s = this.st
        return {
            sent: s.sent,
            acked: s.acked,
            retransmitted: s.retransmitted,
            reconnects: s.reconnects,
            connectAttempts: s.connectAttempts,
            dropped: s.dropped,
            received: s.received,
            malformed: s.malformed + this.reader.oversized,
            outbox: this.outbox.length,
        }
    }

    /** Starts connecting; from then on the client keeps the connection up until `stop()`. */
    start() {
        if (this.running) return
        this.running = true
        if (!this.dispatcher) this.dispatcher = this.dispatchLoop.start()
        this.supervisor = this.supervise.start()
    }

    /** Sends DISCONNECT (so the will is not published), closes the connection and ends the client's tasks. QoS 1/2 messages stay queued for a later `start()`. */
    async stop() {
        if (!this.running) return
        this.running = false
        const c = this.conn
        if (c && this.connected) {
            try {
                await this.write(encodeEmpty(PacketType.Disconnect))
            } catch (e) {}
        }
        if (c) await c.close()
        this.wake.notify()
        this.inboxSignal.notify()
        while (this.supervisor || this.dispatcher) await this.stopped.wait(1000)
        // undelivered messages stay unacknowledged: the broker redelivers them to a session
        this.inbox = []
    }

    /**
     * Ends the current connection with a DISCONNECT (no will) and connects again at once, with
     * fresh credentials: for tokens about to expire. Queued messages and subscriptions carry over.
     */
    async reconnect() {
        if (!this.running || !this.connected) return
        this.renewing = true
        try {
            await this.write(encodeEmpty(PacketType.Disconnect))
        } catch (e) {}
        this.dropConnection("reconnecting with fresh credentials")
    }

    /**
     * Publishes a message. Resolves when it is delivered as its QoS promises (QoS 0: written to
     * the connection; QoS 1: PUBACK; QoS 2: PUBCOMP). QoS 1/2 messages wait in the outbox while
     * offline. Throws only when the message is dropped (outbox full, QoS 0 while offline) or invalid.
     */
    async publish(topic: string, payload: string | Buffer, opts?: { qos?: number; retain?: boolean }) {
        const qos = opts && opts.qos ? opts.qos : 0
        if (topic !== this.lastTopic) {
            // devices publish to a few topics over and over: validate and encode each once
            const err = topicNameError(topic)
            if (err) throw new Error(`mqtt: ${err}`)
            this.lastTopicBytes = Buffer.from(topic)
            this.lastTopic = topic
        }
        if (qos !== 0 && qos !== 1 && qos !== 2) throw new Error(`mqtt: qos must be 0, 1 or 2, got ${qos}`)
        const body = toBytes(payload)
        const split = body.length >= SPLIT_PAYLOAD
        const pkt = encodePublish(this.lastTopicBytes, body, qos, !!(opts && opts.retain), 0, split)
        const size = pkt.length + (split ? body.length : 0)
        if (size > this.o.maxPacketSize)
            throw new Error(`mqtt: message to "${topic}" is ${size} bytes, above maxPacketSize ${this.o.maxPacketSize}`)
        const tail = split ? body : undefined
        if (qos === 0) {
            if (!this.connected) {
                this.st.dropped++
                throw new Error("mqtt: not connected (QoS 0 messages are not queued)")
            }
            await this.write(pkt, tail)
            this.st.sent++
            return
        }
        const m = new OutMsg(pkt, tail, qos)
        if (this.outbox.length >= this.o.outboxLimit) {
            this.st.dropped++
            if (this.o.dropPolicy === "newest") throw new Error(`mqtt: outbox full (${this.o.outboxLimit}), message dropped`)
            let victim = -1
            for (let i = this.inflight; i < this.outbox.length; i++)
                if (this.outbox[i].state === St.Queued) {
                    victim = i
                    break
                }
            if (victim < 0) throw new Error(`mqtt: outbox full (${this.o.outboxLimit} in flight), message dropped`)
            const v = this.outbox[victim]
            this.outbox.insert(victim, -1)
            this.finish(v, `outbox full (${this.o.outboxLimit}), dropped as the oldest waiting message`)
        }
        m.idOff = pkt.length - (split ? 2 : body.length + 2)
        this.outbox.push(m)
        await this.pump()
        m.waiter = ds.Fiber.self()
        while (!m.done) await ds.suspend()
        m.waiter = undefined
        if (m.error) throw new Error(`mqtt: ${m.error}`)
    }

    /**
     * Subscribes `handler` to `filter`; resolves with the granted QoS once the broker acknowledges
     * (after a reconnect if offline). Throws when the broker refuses (SUBACK 0x80). The
     * subscription is renewed by itself after a reconnect without a session.
     */
    async subscribe(filter: string, handler: MessageHandler, opts?: { qos?: number; timeoutMs?: number }): Promise<number> {
        const err = topicFilterError(filter)
        if (err) throw new Error(`mqtt: ${err}`)
        const qos = opts && opts.qos ? opts.qos : 0
        if (qos !== 0 && qos !== 1 && qos !== 2) throw new Error(`mqtt: qos must be 0, 1 or 2, got ${qos}`)
        let sub = this.findSub(filter)
        if (sub && sub.qos !== qos) {
            sub.qos = qos
            sub.acked = false
        }
        if (!sub) {
            sub = new Sub(filter, qos)
            this.subs.push(sub)
        }
        sub.handlers.push(handler)
        const deadline = ds.millis() + (opts && opts.timeoutMs ? opts.timeoutMs : 30000)
        for (;;) {
            if (sub.refused) {
                this.removeSub(sub)
                throw new Error(`mqtt: subscription to "${filter}" refused by the broker (SUBACK 0x80)`)
            }
            if (sub.acked) return sub.granted
            if (this.connected && !this.pendingFor(sub)) await this.sendSubscribe(sub)
            const left = deadline - ds.millis()
            if (left <= 0) {
                // the caller may retry: do not leave this handler behind to be called twice
                const i = sub.handlers.indexOf(handler)
                if (i >= 0) sub.handlers.insert(i, -1)
                if (!sub.handlers.length) this.removeSub(sub)
                throw new Error(`mqtt: no SUBACK for "${filter}" within the timeout`)
            }
            await this.wake.wait(left)
        }
    }

    /** Removes every handler of `filter` (delivery stops at once) and tells the broker. */
    async unsubscribe(filter: string) {
        const sub = this.findSub(filter)
        if (!sub) return
        this.removeSub(sub)
        if (!this.connected) return
        const p = new Pending(this.nextId(), PacketType.Unsubscribe, undefined)
        this.pending.push(p)
        try {
            await this.write(encodeUnsubscribe(p.id, toBytes(filter)))
            const deadline = ds.millis() + 10000
            while (!p.done && this.connected && ds.millis() < deadline) await this.wake.wait(deadline - ds.millis())
        } finally {
            this.dropPending(p)
        }
    }

    // ---- internals ----

    private log(msg: string) {
        if (this.o.log) console.log(`mqtt: ${msg}`)
    }

    private findSub(filter: string) {
        for (const s of this.subs) if (s.filter === filter) return s
        return undefined
    }

    private removeSub(sub: Sub) {
        const i = this.subs.indexOf(sub)
        if (i >= 0) this.subs.insert(i, -1)
    }

    private pendingFor(sub: Sub) {
        for (const p of this.pending) if (p.sub === sub) return p
        return undefined
    }

    private dropPending(p: Pending) {
        const i = this.pending.indexOf(p)
        if (i >= 0) this.pending.insert(i, -1)
    }

    private async sendSubscribe(sub: Sub) {
        const p = new Pending(this.nextId(), PacketType.Subscribe, sub)
        this.pending.push(p)
        try {
            await this.write(encodeSubscribe(p.id, toBytes(sub.filter), sub.qos))
        } catch (e) {
            this.dropPending(p)
        }
    }

    /** Next free packet id: never 0, wraps 65535 -> 1, skips ids in flight. */
    private nextId(): number {
        for (;;) {
            this.lastId = this.lastId >= 65535 ? 1 : this.lastId + 1
            const id = this.lastId
            let used = false
            // messages go in flight in outbox order: the in-flight ones are at the front
            for (const m of this.outbox) {
                if (m.state === St.Queued) break
                if (m.id === id) {
                    used = true
                    break
                }
            }
            if (!used)
                for (const p of this.pending)
                    if (p.id === id) {
                        used = true
                        break
                    }
            if (!used) return id
        }
    }

    private finish(m: OutMsg, error: string) {
        m.done = true
        m.error = error
        const w = m.waiter
        if (w && w.suspended) w.resume(true)
    }

    /** Writes one packet (and its separate payload); writes are serialized so packets never interleave. */
    private async write(pkt: Buffer, tail?: Buffer) {
        while (this.writing) await this.writeSignal.wait()
        const c = this.conn
        if (!c) throw new Error("not connected")
        this.writing = true
        try {
            await c.send(pkt)
            if (tail) await c.send(tail)
            this.lastSent = ds.millis()
        } catch (e) {
            this.dropConnection(`write failed: ${(e as Error).message}`)
            throw e
        } finally {
            this.writing = false
            this.writeSignal.notify()
        }
        // a socket write does not yield: give other fibers (and the VM watchdog) a turn now and then
        if (++this.writesSinceYield >= 64) {
            this.writesSinceYield = 0
            await ds.sleep(0)
        }
    }

    /** Sends queued QoS 1/2 messages while the window has room. */
    private async pump() {
        if (!this.connected) return
        const box = this.outbox
        // in-flight messages come first in the outbox, the queued ones after them
        while (this.inflight < box.length && this.inflight < this.o.inflightWindow) {
            const m = box[this.inflight++]
            m.id = this.nextId()
            m.pkt[m.idOff] = m.id >> 8
            m.pkt[m.idOff + 1] = m.id & 0xff
            m.state = St.Sent
            try {
                await this.write(m.pkt, m.tail)
            } catch (e) {
                return // stays Sent: retransmitted with DUP after the reconnect
            }
            this.st.sent++
            if (!this.connected) return
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

    private async supervise() {
        let attempt = 0
        try {
            while (this.running) {
                const upAt = ds.millis()
                const ok = await this.connectOnce()
                if (ok) {
                    await this.session()
                    if (ds.millis() - upAt >= 10000) attempt = 0
                }
                if (!this.running) break
                if (this.renewing) {
                    this.renewing = false
                    continue
                }
                // back off: min * 2^attempt, capped, with jitter in [delay/2, delay]
                const b = this.o.backoff
                const d = Math.min(b.max, b.min * Math.pow(2, attempt))
                attempt = Math.min(attempt + 1, 20)
                const delay = Math.round(d / 2 + (Math.random() * d) / 2)
                this.log(`reconnecting in ${delay} ms`)
                const until = ds.millis() + delay
                while (this.running && ds.millis() < until) await this.wake.wait(until - ds.millis())
            }
        } finally {
            this.supervisor = undefined
            this.stopped.notify()
        }
    }

    private fail(reason: string) {
        this.lastError = reason
        this.log(reason)
        this.emit({ type: "error", reason })
    }

    /** Opens the transport and completes CONNECT/CONNACK; true on success. */
    private async connectOnce(): Promise<boolean> {
        const o = this.o
        this.st.connectAttempts++
        let conn: Connection
        try {
            conn = await o.net.connect({ host: o.host, port: o.port, tls: o.tls, timeoutMs: o.connectTimeoutMs })
        } catch (e) {
            this.fail(`cannot reach ${o.host}:${o.port}: ${(e as Error).message}`)
            return false
        }
        this.conn = conn
        this.reader.reset()
        try {
            let id = o.clientId
            let user = o.username
            let pw = typeof o.password === "function" ? await o.password() : o.password
            if (o.credentials) {
                const cr = await o.credentials()
                id = cr.clientId
                user = cr.username
                pw = cr.password
            }
            await this.write(
                encodeConnect({
                    clientId: id,
                    username: user,
                    password: pw,
                    keepAlive: o.keepAlive,
                    cleanSession: o.cleanSession,
                    will: o.will,
                })
            )
            const deadline = ds.millis() + o.connectTimeoutMs
            let p: Packet
            while (!p) {
                p = this.reader.next()
                if (p) break
                const left = deadline - ds.millis()
                const chunk = left > 0 && this.conn ? await conn.recv(left) : undefined
                if (chunk === null) throw new Error(`connection closed before CONNACK${conn.error ? ": " + conn.error : ""}`)
                if (chunk === undefined) throw new Error("no CONNACK within the timeout")
                this.reader.push(chunk)
            }
            if (p.type !== PacketType.Connack) {
                this.st.malformed++
                throw new Error(`expected CONNACK, got packet type ${p.type}`)
            }
            if (p.id !== 0) throw new Error(connackReason(p.id))
            this.onConnected(p.sessionPresent)
            return true
        } catch (e) {
            this.conn = undefined
            await conn.close()
            this.fail((e as Error).message)
            return false
        }
    }

    private onConnected(sessionPresent: boolean) {
        this.connected = true
        this.sessionPresent = sessionPresent
        this.lastError = undefined
        if (this.connectedOnce) this.st.reconnects++
        this.connectedOnce = true
        this.lastRecv = ds.millis()
        this.pingSentAt = 0
        this.log(`connected to ${this.o.host}:${this.o.port}${sessionPresent ? " (session resumed)" : ""}`)
        // the broker forgot our subscriptions and in-flight ids without a session
        for (const s of this.subs) if (!sessionPresent) s.acked = false
        this.pending = []
        if (!sessionPresent) {
            for (let i = 0; i < this.outbox.length; i++) {
                const m = this.outbox[i]
                // PUBREC already received: the broker has the message; count it delivered
                if (m.state === St.Released) {
                    this.outbox.insert(i--, -1)
                    this.inflight--
                    this.st.acked++
                    this.finish(m, undefined)
                }
            }
        }
        this.emit({ type: "connected", sessionPresent })
        this.wake.notify()
    }

    /** Runs one connected session until the connection ends. */
    private async session() {
        const conn = this.conn
        try {
            await this.resend()
            for (const s of this.subs) if (!s.acked && !this.pendingFor(s)) await this.sendSubscribe(s)
            await this.pump()
            while (this.running && this.conn === conn) {
                let p: Packet
                let steps = 0
                while (this.conn === conn && (p = this.reader.next())) {
                    this.lastRecv = ds.millis()
                    await this.handle(p)
                    // a chunk full of packets must not run past the VM's step budget (InfiniteLoop):
                    // about 300 steps a packet plus 10 a topic byte (the UTF-8 check); yield at 60K
                    steps += 300 + (p.topic ? p.topic.length * 10 : 0)
                    if (steps > 60000) {
                        steps = 0
                        await ds.sleep(0)
                    }
                }
                if (this.conn !== conn) break
                const wait = this.keepaliveDue()
                if (wait < 0) break
                if (wait === 0) {
                    await this.write(encodeEmpty(PacketType.Pingreq))
                    continue
                }
                if (!(await this.pull(conn, wait))) {
                    this.dropConnection(`connection closed by the broker${conn.error ? ": " + conn.error : ""}`)
                    break
                }
            }
        } catch (e) {
            if (e instanceof MqttError) this.st.malformed++
            this.dropConnection(`protocol error: ${(e as Error).message}`)
        }
        if (!this.running) this.lastError = "stopped"
        if (this.conn === conn) this.dropConnection(this.running ? "session ended" : "stopped")
        this.connected = false
        this.reader.reset()
        const reason = this.lastError || "stopped"
        this.log(`disconnected: ${reason}`)
        this.emit({ type: "disconnected", reason })
        this.wake.notify()
    }

    /** Feeds the next chunk (if any arrives within `ms`) to the reader; false once the connection is closed. */
    private async pull(conn: Connection, ms: number): Promise<boolean> {
        // a helper, so no frame keeps the chunk alive after it is parsed
        const chunk = await conn.recv(ms)
        if (chunk === null) return false
        if (chunk) this.reader.push(chunk)
        return true
    }

    /**
     * Sends PINGREQ when nothing was sent (or nothing heard) for 3/4 of the keepalive; declares
     * the connection dead when a PINGRESP is missing for half a keepalive. Returns how long to
     * wait for data, 0 when a PINGREQ is to be sent now, or -1 when the connection was declared dead.
     */
    private keepaliveDue(): number {
        const ka = this.o.keepAlive * 1000
        if (!ka) return 60000
        const now = ds.millis()
        if (this.pingSentAt > 0) {
            const left = this.pingSentAt + ka / 2 - now
            if (left <= 0) {
                this.dropConnection(`no PINGRESP within ${ka / 2000} s: connection declared dead`)
                return -1
            }
            return left
        }
        const due = Math.min(this.lastSent, this.lastRecv) + (ka * 3) / 4 - now
        if (due > 0) return due
        this.pingSentAt = now
        return 0
    }

    /** After a reconnect: PUBLISH again (DUP) or PUBREL again every message in flight. */
    private async resend() {
        for (const m of this.outbox) {
            if (m.state === St.Queued) continue
            if (!this.conn) return
            if (m.state === St.Sent) {
                m.pkt[0] |= 0x08
                await this.write(m.pkt, m.tail)
            } else await this.write(encodeAck(PacketType.Pubrel, m.id))
            this.st.retransmitted++
        }
    }

    private findOut(id: number, state: number) {
        for (const m of this.outbox) if (m.id === id && m.state === state) return m
        return undefined
    }

    private complete(m: OutMsg) {
        const i = this.outbox.indexOf(m)
        if (i >= 0) {
            this.outbox.insert(i, -1)
            this.inflight--
        }
        this.st.acked++
        this.finish(m, undefined)
    }

    private async handle(p: Packet) {
        switch (p.type) {
            case PacketType.Publish:
                return await this.onPublish(p)
            case PacketType.Puback: {
                const m = this.findOut(p.id, St.Sent)
                if (m && m.qos === 1) {
                    this.complete(m)
                    await this.pump()
                } else this.st.malformed++
                return
            }
            case PacketType.Pubrec: {
                const m = this.findOut(p.id, St.Sent) || this.findOut(p.id, St.Released)
                if (m && m.qos === 2) {
                    // the broker has the message: from now on only PUBREL is resent
                    m.state = St.Released
                    m.pkt = undefined
                    m.tail = undefined
                } else this.st.malformed++
                // answer even an unknown id, so the broker can finish its side
                await this.write(encodeAck(PacketType.Pubrel, p.id))
                return
            }
            case PacketType.Pubcomp: {
                const m = this.findOut(p.id, St.Released)
                if (m) {
                    this.complete(m)
                    await this.pump()
                } else this.st.malformed++
                return
            }
            case PacketType.Pubrel: {
                const i = this.qos2In.indexOf(p.id)
                if (i >= 0) this.qos2In.insert(i, -1)
                await this.write(encodeAck(PacketType.Pubcomp, p.id))
                return
            }
            case PacketType.Suback:
            case PacketType.Unsuback: {
                let found: Pending
                for (const q of this.pending) if (q.id === p.id) found = q
                const want = p.type === PacketType.Suback ? PacketType.Subscribe : PacketType.Unsubscribe
                if (!found || found.type !== want) {
                    this.st.malformed++
                    return
                }
                this.dropPending(found)
                found.done = true
                if (found.sub) {
                    const code = p.body[0]
                    if (code === 0x80) found.sub.refused = true
                    else if (code > 2) throw new MqttError(`SUBACK return code ${code}`)
                    else {
                        found.sub.granted = code
                        found.sub.acked = true
                    }
                }
                this.wake.notify()
                return
            }
            case PacketType.Pingresp:
                this.pingSentAt = 0
                return
            default:
                // an oversized QoS 0 packet, or a packet a broker must not send: counted, skipped
                this.st.malformed++
        }
    }

    private async onPublish(p: Packet) {
        this.st.received++
        if (p.oversized) {
            this.st.malformed++
            // acknowledge so the broker does not redeliver it forever; the message is not delivered
            if (p.qos === 1) await this.write(encodeAck(PacketType.Puback, p.id))
            else if (p.qos === 2) await this.write(encodeAck(PacketType.Pubrec, p.id))
            return
        }
        if (p.qos === 2) {
            if (this.qos2In.indexOf(p.id) >= 0) {
                // a DUP of a message already delivered: answer without delivering again
                await this.write(encodeAck(PacketType.Pubrec, p.id))
                return
            }
        }
        if (this.inbox.length >= INBOX_LIMIT) {
            // the application is behind: leave QoS 1/2 unacknowledged (redelivered after a reconnect)
            this.st.dropped++
            return
        }
        this.inbox.push(p)
        this.inboxSignal.notify()
    }

    /** Runs message handlers one at a time, then acknowledges (at least once for QoS 1). */
    private async dispatchLoop() {
        try {
            while (this.running) {
                if (this.inbox.length) await this.deliver(this.inbox.shift())
                else await this.inboxSignal.wait()
            }
        } finally {
            this.dispatcher = undefined
            this.stopped.notify()
        }
    }

    private async deliver(p: Packet) {
        const msg: MqttMessage = { topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain }
        for (const s of this.subs.slice(0)) {
            if (!topicMatches(s.filter, p.topic)) continue
            for (const h of s.handlers.slice(0)) {
                try {
                    await h(msg)
                } catch (e) {
                    console.log(`mqtt: handler for "${s.filter}" failed: ${(e as Error).message}`)
                }
            }
        }
        try {
            if (p.qos === 1) await this.write(encodeAck(PacketType.Puback, p.id))
            else if (p.qos === 2) {
                this.qos2In.push(p.id)
                if (this.qos2In.length > QOS2_IN_LIMIT) this.qos2In.shift()
                await this.write(encodeAck(PacketType.Pubrec, p.id))
            }
        } catch (e) {
            // connection gone: the broker redelivers after the reconnect
        }
    }
}
