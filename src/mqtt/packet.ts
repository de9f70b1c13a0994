/**
 * MQTT 3.1.1 packets: pure encoders, and a streaming reader that frames packets from the byte
 * stream. No I/O and no timers here.
 */
import { utf8ErrorAt } from "../util/utf8"

/** MQTT control packet types (spec 2.2.1). */
export const enum PacketType {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
}

/** Largest remaining length the 4-byte varint can carry. */
export const MAX_REMAINING_LENGTH = 268435455

/** A protocol violation by the peer or an invalid argument to an encoder. */
export class MqttError extends Error {
    constructor(message: string) {
        super(message)
        this.name = "MqttError"
    }
}

/** Number of bytes the remaining-length varint takes for `n`. */
export function varintSize(n: number): number {
    if (n < 0 || n > MAX_REMAINING_LENGTH || n !== Math.floor(n))
        throw new MqttError(`remaining length must be 0..${MAX_REMAINING_LENGTH}, got ${n}`)
    return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4
}

/** Writes the varint for `n` at `off`; returns the offset after it. */
export function writeVarint(buf: Buffer, off: number, n: number): number {
    for (;;) {
        let b = n & 0x7f
        n = n >> 7
        if (n > 0) b |= 0x80
        buf[off++] = b
        if (n === 0) return off
    }
}

/**
 * Reads a varint at `off`: returns [value, bytesUsed], or [-1, 0] when more bytes are needed.
 * Throws MqttError on a fifth continuation byte.
 */
export function readVarint(buf: Buffer, off: number, end: number): number[] {
    let value = 0
    let mult = 1
    for (let i = 0; i < 4; i++) {
        if (off + i >= end) return [-1, 0]
        const b = buf[off + i]
        value += (b & 0x7f) * mult
        if (!(b & 0x80)) return [value, i + 1]
        mult *= 128
    }
    throw new MqttError("malformed remaining length (more than 4 bytes)")
}

/** UTF-8 bytes of a string, or the buffer itself. */
export function toBytes(s: string | Buffer): Buffer {
    if (s === undefined || s === null) return Buffer.alloc(0)
    return typeof s === "string" ? Buffer.from(s) : s
}

function fixedHeader(type: number, flags: number, remaining: number): Buffer {
    const buf = Buffer.alloc(1 + varintSize(remaining) + remaining)
    buf[0] = (type << 4) | flags
    writeVarint(buf, 1, remaining)
    return buf
}

function putU16(buf: Buffer, off: number, v: number) {
    buf[off] = (v >> 8) & 0xff
    buf[off + 1] = v & 0xff
    return off + 2
}

function putField(buf: Buffer, off: number, b: Buffer) {
    if (b.length > 65535) throw new MqttError(`string field longer than 65535 bytes (${b.length})`)
    off = putU16(buf, off, b.length)
    buf.blitAt(off, b, 0, b.length)
    return off + b.length
}

/** The will message of a CONNECT. */
export interface Will {
    topic: string
    payload: string | Buffer
    qos?: number
    retain?: boolean
}

/** CONNECT fields. */
export interface ConnectFields {
    clientId: string
    username?: string
    password?: string
    keepAlive: number
    cleanSession: boolean
    will?: Will
}

/** Encodes CONNECT (protocol level 4). */
export function encodeConnect(f: ConnectFields): Buffer {
    const ka = f.keepAlive
    if (!(ka >= 0 && ka <= 65535) || ka !== Math.floor(ka))
        throw new MqttError(`keepAlive must be an integer 0..65535 seconds, got ${ka}`)
    const id = toBytes(f.clientId)
    let flags = f.cleanSession ? 0x02 : 0
    let len = 10 + 2 + id.length
    let wt: Buffer, wp: Buffer, user: Buffer, pass: Buffer
    if (f.will) {
        wt = toBytes(f.will.topic)
        wp = toBytes(f.will.payload)
        const q = f.will.qos || 0
        if (q < 0 || q > 2) throw new MqttError(`will qos must be 0, 1 or 2, got ${q}`)
        flags |= 0x04 | (q << 3) | (f.will.retain ? 0x20 : 0)
        len += 4 + wt.length + wp.length
    }
    if (f.username !== undefined && f.username !== null) {
        user = toBytes(f.username)
        flags |= 0x80
        len += 2 + user.length
    }
    if (f.password !== undefined && f.password !== null) {
        pass = toBytes(f.password)
        flags |= 0x40
        len += 2 + pass.length
    }
    const buf = fixedHeader(PacketType.Connect, 0, len)
    let off = buf.length - len
    off = putField(buf, off, Buffer.from("MQTT"))
    buf[off++] = 4
    buf[off++] = flags
    off = putU16(buf, off, ka)
    off = putField(buf, off, id)
    if (wt) {
        off = putField(buf, off, wt)
        off = putField(buf, off, wp)
    }
    if (user) off = putField(buf, off, user)
    if (pass) off = putField(buf, off, pass)
    return buf
}

/**
 * Encodes PUBLISH; `id` is ignored at QoS 0. The DUP flag is bit 3 of byte 0. With `headOnly`
 * the result stops before the payload (the caller writes the payload after it), so a large
 * payload is never copied.
 */
export function encodePublish(topic: Buffer, payload: Buffer, qos: number, retain: boolean, id: number, headOnly?: boolean): Buffer {
    const len = 2 + topic.length + (qos ? 2 : 0) + payload.length
    const hl = 1 + varintSize(len) + len - (headOnly ? payload.length : 0)
    const buf = Buffer.alloc(hl)
    buf[0] = (PacketType.Publish << 4) | (qos << 1) | (retain ? 1 : 0)
    let off = putField(buf, writeVarint(buf, 1, len), topic)
    if (qos) off = putU16(buf, off, id)
    if (!headOnly) buf.blitAt(off, payload, 0, payload.length)
    return buf
}

/** Encodes a 4-byte acknowledgement: PUBACK, PUBREC, PUBREL (flags 2), PUBCOMP. */
export function encodeAck(type: number, id: number): Buffer {
    const buf = Buffer.alloc(4)
    buf[0] = (type << 4) | (type === PacketType.Pubrel ? 2 : 0)
    buf[1] = 2
    putU16(buf, 2, id)
    return buf
}

/** Encodes SUBSCRIBE for one filter. */
export function encodeSubscribe(id: number, filter: Buffer, qos: number): Buffer {
    const len = 2 + 2 + filter.length + 1
    const buf = fixedHeader(PacketType.Subscribe, 2, len)
    let off = putU16(buf, buf.length - len, id)
    off = putField(buf, off, filter)
    buf[off] = qos
    return buf
}

/** Encodes UNSUBSCRIBE for one filter. */
export function encodeUnsubscribe(id: number, filter: Buffer): Buffer {
    const len = 2 + 2 + filter.length
    const buf = fixedHeader(PacketType.Unsubscribe, 2, len)
    putField(buf, putU16(buf, buf.length - len, id), filter)
    return buf
}

/** Encodes a packet with no variable header (PINGREQ, DISCONNECT). */
export function encodeEmpty(type: number): Buffer {
    const buf = Buffer.alloc(2)
    buf[0] = type << 4
    return buf
}

/** One framed incoming packet. `body` is set for CONNACK, PUBLISH and SUBACK. */
export interface Packet {
    type: number
    flags: number
    /** packet id for acks and QoS>0 PUBLISH; return code for CONNACK */
    id: number
    body?: Buffer
    /** PUBLISH only: QoS, retain, dup, topic and payload */
    qos?: number
    retain?: boolean
    dup?: boolean
    topic?: string
    payload?: Buffer
    /** CONNACK only */
    sessionPresent?: boolean
    /** PUBLISH larger than maxPacketSize: consumed without keeping it (topic/payload absent) */
    oversized?: boolean
}

/**
 * Frames incoming packets from a byte stream: feed chunks with `push`, take packets with `next`.
 * Packets longer than `maxPacketSize` are skipped as they stream past, never buffered whole; an
 * oversized QoS>0 PUBLISH still yields its id (flagged `oversized`) so it can be acknowledged.
 */
export class PacketReader {
    private buf: Buffer
    private pos = 0
    // skipping an oversized packet
    private skipLeft = 0
    private skipOff = 0
    private skipHdr = 0
    private skipTl = -1
    private skipId = 0
    // a large packet's payload (or whole body) collected straight into a buffer of its final size
    private big: Buffer
    private bigFill = 0
    private bigHdr = 0
    private bigPkt: Packet
    /** packets skipped for being larger than maxPacketSize */
    oversized = 0

    constructor(public maxPacketSize: number) {}

    /** Appends bytes received from the peer. */
    push(chunk: Buffer) {
        const big = this.big
        if (big && this.bigFill < big.length) {
            const n = Math.min(chunk.length, big.length - this.bigFill)
            big.blitAt(this.bigFill, chunk, 0, n)
            this.bigFill += n
            if (n === chunk.length) return
            chunk = chunk.slice(n)
        }
        if (!this.buf || this.pos >= this.buf.length) {
            this.buf = chunk
            this.pos = 0
        } else {
            this.buf = Buffer.concat(this.buf.slice(this.pos), chunk)
            this.pos = 0
        }
    }

    /** Drops buffered bytes (after a connection ends). */
    reset() {
        this.buf = undefined
        this.pos = 0
        this.skipLeft = 0
        this.big = undefined
    }

    /** Returns the next complete packet, or undefined until more bytes arrive. Throws MqttError on malformed input. */
    next(): Packet {
        const big = this.big
        if (big) {
            if (this.bigFill < big.length) return undefined
            this.big = undefined
            const bp = this.bigPkt
            if (!bp) return decodePacket(this.bigHdr, big, 0, big.length)
            this.bigPkt = undefined
            bp.payload = big
            return bp
        }
        const buf = this.buf
        if (!buf) return undefined
        const end = buf.length
        if (this.skipLeft > 0) {
            if (!this.skipSome(buf, end)) return undefined
            return this.finishSkip()
        }
        if (this.pos >= end) return undefined
        const start = this.pos
        const r = readVarint(buf, start + 1, end)
        if (r[0] < 0) return undefined
        const remaining = r[0]
        const bodyStart = start + 1 + r[1]
        const hdr = buf[start]
        if (1 + r[1] + remaining > this.maxPacketSize) {
            return this.beginSkip(hdr, remaining, buf, bodyStart, end)
        }
        if (bodyStart + remaining > end) {
            if (remaining >= BIG_PACKET) return this.startBig(hdr, buf, bodyStart, end, remaining)
            return undefined
        }
        this.pos = bodyStart + remaining
        // let go of a consumed chunk at once: on a 64 KB heap a stale 16 KB chunk matters
        if (this.pos >= end) this.buf = undefined
        return decodePacket(hdr, buf, bodyStart, remaining)
    }

    /** Starts collecting a large packet whose start is in `buf` (or skipping it when its topic is too long). */
    private startBig(hdr: number, buf: Buffer, bodyStart: number, end: number, remaining: number): Packet {
        let head = 0
        if (hdr >> 4 === PacketType.Publish) {
            // decode topic and id first, then collect only the payload
            if (end - bodyStart < 2) return undefined
            const tl = u16(buf, bodyStart)
            if (tl > MAX_TOPIC_BYTES) {
                // never collect a long topic (chunk by chunk it costs twice its size in copies): skip it
                return this.beginSkip(hdr, remaining, buf, bodyStart, end)
            }
            head = 2 + tl + ((hdr >> 1) & 3 ? 2 : 0)
            if (head > remaining) head = remaining
            if (end - bodyStart < head) return undefined
            this.bigPkt = decodePacket(hdr, buf, bodyStart, head)
        }
        const b = Buffer.alloc(remaining - head)
        b.blitAt(0, buf, bodyStart + head, end - bodyStart - head)
        this.big = b
        this.bigFill = end - bodyStart - head
        this.bigHdr = hdr
        this.buf = undefined
        this.pos = 0
        return undefined
    }

    /** Starts skipping a packet as it streams past (counted as oversized); its id, if any, is kept. */
    private beginSkip(hdr: number, remaining: number, buf: Buffer, bodyStart: number, end: number): Packet {
        this.oversized++
        this.skipLeft = remaining
        this.skipOff = 0
        this.skipHdr = hdr
        this.skipTl = -1
        this.skipId = 0
        this.pos = bodyStart
        if (!this.skipSome(buf, end)) return undefined
        return this.finishSkip()
    }

    private skipSome(buf: Buffer, end: number): boolean {
        const n = Math.min(this.skipLeft, end - this.pos)
        // capture the topic length (body offsets 0-1) and packet id (right after the topic) of a PUBLISH
        if (this.skipHdr >> 4 === PacketType.Publish) {
            const s = this.skipOff
            const e = s + n
            const p = this.pos - s // buffer index of body offset o is p + o
            for (let o = s; o < e && o < 2; o++) this.skipTl = o === 0 ? buf[p + o] << 8 : this.skipTl | buf[p + o]
            if (e > 2) {
                const a = this.skipTl + 2
                for (let o = Math.max(s, a); o < e && o < a + 2; o++)
                    this.skipId = o === a ? buf[p + o] << 8 : this.skipId | buf[p + o]
            }
        }
        this.skipOff += n
        this.skipLeft -= n
        this.pos += n
        return this.skipLeft === 0
    }

    private finishSkip(): Packet {
        const hdr = this.skipHdr
        const qos = (hdr >> 1) & 3
        if (hdr >> 4 !== PacketType.Publish || qos === 0) return { type: 0, flags: 0, id: 0, oversized: true }
        return { type: PacketType.Publish, flags: hdr & 15, id: this.skipId, qos, oversized: true }
    }
}

// bodies at least this large are collected in their own buffer
const BIG_PACKET = 1024

function u16(buf: Buffer, off: number) {
    return (buf[off] << 8) | buf[off + 1]
}

function malformed(what: string): MqttError {
    return new MqttError(`malformed ${what}`)
}

/** Longest incoming topic accepted, bytes; a PUBLISH with a longer one is treated as oversized. */
export const MAX_TOPIC_BYTES = 1024

/**
 * Decodes one framed packet of the kinds a broker sends to a client. Unknown or client-only
 * types are returned with `type` set and no fields (the caller counts and ignores them).
 */
export function decodePacket(hdr: number, buf: Buffer, off: number, len: number): Packet {
    const type = hdr >> 4
    const flags = hdr & 15
    const p: Packet = { type, flags, id: 0 }
    switch (type) {
        case PacketType.Connack:
            if (len !== 2 || flags) throw malformed("CONNACK")
            if (buf[off] & 0xfe) throw malformed("CONNACK flags")
            p.sessionPresent = (buf[off] & 1) === 1
            p.id = buf[off + 1]
            return p
        case PacketType.Publish: {
            const qos = (flags >> 1) & 3
            if (qos === 3) throw malformed("PUBLISH (QoS 3)")
            if (len < 2) throw malformed("PUBLISH (no topic)")
            const tl = u16(buf, off)
            const idLen = qos ? 2 : 0
            if (2 + tl + idLen > len) throw malformed("PUBLISH (topic longer than packet)")
            if (tl > MAX_TOPIC_BYTES) {
                // validating a longer topic would overrun the VM's step budget (InfiniteLoop panic):
                // handled like an oversized packet (acknowledged, counted, not delivered)
                p.qos = qos
                p.id = qos ? u16(buf, off + 2 + tl) : 0
                p.oversized = true
                return p
            }
            // MQTT 1.5.3: well-formed UTF-8 without U+0000 (invalid bytes would also crash string code)
            if (tl === 0 || utf8ErrorAt(buf, off + 2, off + 2 + tl) >= 0) throw malformed("PUBLISH topic (empty or invalid UTF-8)")
            const topic = buf.slice(off + 2, off + 2 + tl).toString()
            if (topic.indexOf("\u0000") >= 0) throw malformed("PUBLISH topic (NUL)")
            if (topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0) throw malformed("PUBLISH topic (wildcard)")
            if (qos) {
                p.id = u16(buf, off + 2 + tl)
                if (p.id === 0) throw malformed("PUBLISH (packet id 0)")
            }
            p.qos = qos
            p.retain = (flags & 1) === 1
            p.dup = (flags & 8) === 8
            p.topic = topic
            p.payload = buf.slice(off + 2 + tl + idLen, off + len)
            return p
        }
        case PacketType.Puback:
        case PacketType.Pubrec:
        case PacketType.Pubrel:
        case PacketType.Pubcomp:
        case PacketType.Unsuback:
            if (len !== 2 || flags !== (type === PacketType.Pubrel ? 2 : 0)) throw malformed(`acknowledgement (type ${type})`)
            p.id = u16(buf, off)
            return p
        case PacketType.Suback:
            if (len < 3 || flags) throw malformed("SUBACK")
            p.id = u16(buf, off)
            p.body = buf.slice(off + 2, off + len)
            return p
        case PacketType.Pingresp:
            if (len !== 0 || flags) throw malformed("PINGRESP")
            return p
        default:
            // CONNECT, SUBSCRIBE, PINGREQ... from a broker, or reserved types 0 and 15
            return p
    }
}
