/**
 * MQTT 3.1.1 packets: one generic encoder, and a streaming reader that frames packets from the
 * byte stream. No I/O and no timers here.
 */
import { joinBytes } from "../util/bytes"
import { utf8ErrorAt } from "../util/utf8"
import { topicNameError } from "./topic"
import { words } from "../util/words"

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

/** Longest incoming topic accepted, bytes; a PUBLISH with a longer one is treated as oversized. */
export const MAX_TOPIC_BYTES = 1024

// bodies at least this large are collected in their own buffer
const BIG_PACKET = 1024

/** A protocol violation by the peer or an invalid argument to an encoder. */
export class MqttError extends Error {
    constructor(message: string) {
        super(message)
        this.name = "MqttError"
    }
}

/** Writes the remaining-length varint for `n` at `off`; returns the offset after it. */
export function writeVarint(buf: Buffer, off: number, n: number): number {
    if (!(n >= 0 && n <= MAX_REMAINING_LENGTH)) throw new MqttError(`remaining length must be 0..${MAX_REMAINING_LENGTH}, got ${n}`)
    for (;;) {
        let b = n & 0x7f
        n = n >> 7
        if (n) b |= 0x80 // more bytes follow
        buf[off++] = b
        if (!n) return off
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
        if (b < 0x80) return [value, i + 1]
        mult *= 128
    }
    throw new MqttError("malformed remaining length (more than 4 bytes)")
}

/** UTF-8 bytes of a string, or the buffer itself. */
export function toBytes(s: string | Buffer): Buffer {
    if (typeof s === "string") return Buffer.from(s)
    return s || Buffer.alloc(0)
}

/**
 * Encodes a packet: the fixed header byte `hdr` (type << 4 | flags), the remaining length, then
 * each part in order (a number as a 16-bit integer, a Buffer as a length-prefixed field), then
 * `raw` as it is. With `headOnly` the result stops before `raw` (the caller writes it after the
 * head), so a large payload is never copied.
 */
export function encode(hdr: number, parts: (number | Buffer)[], raw?: Buffer, headOnly?: boolean): Buffer {
    let rl = 0
    if (raw) rl = raw.length
    let len = rl
    for (const p of parts) {
        len += 2
        if (typeof p !== "number") len += (p as Buffer).length
    }
    // 1 + the size of the varint (a packet reaches neither 2 MB nor the heap's 64 KB)
    const buf = Buffer.alloc((len < 128 ? 2 : len < 16384 ? 3 : 4) + len - (headOnly ? rl : 0))
    buf[0] = hdr
    let off = writeVarint(buf, 1, len)
    // (callers check the values; no string can reach 64 KB on a 64 KB heap)
    for (const p of parts) {
        const num = typeof p === "number"
        let n = p as number
        if (!num) n = (p as Buffer).length
        buf[off] = n >> 8
        buf[off + 1] = n & 0xff
        off += 2
        if (!num) {
            buf.blitAt(off, p as Buffer, 0, n)
            off += n
        }
    }
    if (rl && !headOnly) buf.blitAt(off, raw, 0, rl)
    return buf
}

/** The will message of a CONNECT. */
export interface Will {
    topic: string
    payload: string | Buffer
    qos?: number
    retain?: boolean
}

/** Encodes CONNECT (protocol level 4); a user name or password is sent when it is a string. */
export function encodeConnect(clientId: string, username: string, password: string, keepAlive: number, cleanSession: boolean, will?: Will): Buffer {
    let flags = 0
    if (cleanSession) flags = 0x02
    const parts: (number | Buffer)[] = [Buffer.from("MQTT"), 0, keepAlive, toBytes(clientId)]
    if (will) {
        const q = will.qos || 0
        if (!(q >= 0 && q <= 2)) throw new MqttError(`will qos must be 0, 1 or 2, got ${q}`)
        flags |= 0x04 | (q << 3)
        if (will.retain) flags |= 0x20
        parts.push(toBytes(will.topic), toBytes(will.payload))
    }
    if (typeof username === "string") {
        flags |= 0x80
        parts.push(Buffer.from(username))
    }
    if (typeof password === "string") {
        flags |= 0x40
        parts.push(Buffer.from(password))
    }
    parts[1] = 0x400 | flags // protocol level 4, connect flags
    return encode(0x10, parts)
}

/** One framed incoming packet; a PUBLISH is also the message handed to the application. */
export interface Packet {
    type: number
    flags: number
    /** packet id for acks and QoS>0 PUBLISH; return code for CONNACK */
    id: number
    /** PUBLISH: QoS; SUBACK: the first return code */
    qos?: number
    /** PUBLISH only: retain, topic and payload */
    retain?: boolean
    topic?: string
    payload?: Buffer
    /** CONNACK only */
    sessionPresent?: boolean
    /** PUBLISH larger than maxPacketSize or with a topic above MAX_TOPIC_BYTES, or another packet larger than maxPacketSize: consumed without keeping it (no topic, no payload) */
    oversized?: boolean
    /** PUBLISH in the client's inbox: the broker session it arrived in */
    s?: number
}

/**
 * Frames incoming packets from a byte stream: feed chunks with `push`, take packets with `next`.
 * Packets longer than `maxPacketSize` (and PUBLISH packets whose topic is longer than
 * MAX_TOPIC_BYTES) are skipped as they stream past, never buffered whole; a skipped QoS>0 PUBLISH
 * still yields its id (flagged `oversized`) so it can be acknowledged. Large packets are collected
 * straight into a buffer of their final size (a PUBLISH: its payload, after its head is decoded).
 */
export class PacketReader {
    private buf: Buffer
    private pos: number
    // a packet streaming past: its header byte (-1: none), the bytes still to come, collected into
    // `big` or skipped; `head` is a large PUBLISH's decoded head
    private hdr = -1
    private left = 0
    private big: Buffer
    private head: Packet
    // while skipping a PUBLISH: body offset reached, topic length and packet id read so far
    private off: number
    private tl: number
    private id: number

    constructor(public maxPacketSize: number) {}

    /** Appends bytes received from the peer. */
    push(chunk: Buffer) {
        const n = this.consume(chunk, 0, chunk.length)
        if (n === chunk.length) return
        const b = this.buf
        let rest = chunk
        if (b && this.pos < b.length) rest = joinBytes(b, this.pos, chunk, n)
        else if (n) rest = chunk.slice(n)
        this.buf = rest
        this.pos = 0
    }

    /** Takes up to `left` bytes of `b[from..end)` for the packet streaming past; returns how many. */
    private consume(b: Buffer, from: number, end: number): number {
        const n = Math.min(this.left, end - from)
        const big = this.big
        if (big) big.blitAt(big.length - this.left, b, from, n)
        else if (this.hdr >> 4 === PacketType.Publish) {
            // keep the topic length (body offsets 0-1) and the packet id right after the topic
            const s = this.off
            const e = s + n
            const p = from - s // index in b of body offset o: p + o
            let tl = this.tl
            for (let o = s; o < Math.min(e, 2); o++) tl = (tl << 8) | b[p + o]
            this.tl = tl
            // (nothing before the topic length is whole: the id starts at tl + 2 >= 2)
            for (let o = Math.max(s, tl + 2); o < Math.min(e, tl + 4); o++) this.id = (this.id << 8) | b[p + o]
        }
        this.off += n
        this.left -= n
        return n
    }

    /** Returns the next complete packet, or undefined until more bytes arrive. Throws MqttError on malformed input. */
    next(): Packet {
        const h = this.hdr
        if (h >= 0) {
            if (this.left) return undefined
            this.hdr = -1
            const big = this.big
            const p = this.head
            this.big = undefined
            this.head = undefined
            // skipped: a PUBLISH keeps its QoS and id (to be acknowledged), other types become type 0
            if (!big) return { type: h >> 4 === PacketType.Publish ? PacketType.Publish : 0, flags: h & 15, id: this.id, qos: (h >> 1) & 3, oversized: true }
            if (!p) return decodePacket(h, big, 0, big.length)
            p.payload = big
            return p
        }
        const buf = this.buf
        let pos = this.pos
        if (!buf) return undefined
        const end = buf.length
        if (pos >= end) return undefined
        const r = readVarint(buf, pos + 1, end)
        const remaining = r[0]
        if (remaining < 0) return undefined
        const hdr = buf[pos]
        const body = pos + 1 + r[1]
        const have = end - body
        const publish = hdr >> 4 === PacketType.Publish
        const large = remaining >= BIG_PACKET
        let skip = body - pos + remaining > this.maxPacketSize
        if (!skip && publish && large) {
            if (have < 2) return undefined
            // never collect nor validate a long topic (checking it would overrun the VM's step
            // budget): skipped like an oversized packet, acknowledged, not delivered
            skip = u16(buf, body) > MAX_TOPIC_BYTES && (hdr & 6) !== 6
        }
        if (skip || (large && have < remaining)) {
            // stream it past the buffer (`big` is undefined between packets)
            let head = 0
            if (!skip) {
                if (publish) {
                    // decode topic and id now, collect only the payload
                    head = Math.min(remaining, 2 + u16(buf, body) + (hdr & 6 ? 2 : 0))
                    if (have < head) return undefined
                    this.head = decodePacket(hdr, buf, body, head)
                }
                this.big = Buffer.alloc(remaining - head)
            }
            this.hdr = hdr
            this.left = remaining - head
            this.off = 0
            this.tl = 0
            this.id = 0
            pos = body + head
            pos += this.consume(buf, pos, end)
        } else if (have < remaining) return undefined
        else pos = body + remaining
        this.pos = pos
        // let go of a consumed chunk at once: on a 64 KB heap a stale 16 KB chunk matters
        if (pos >= end) this.buf = undefined
        if (this.hdr < 0) return decodePacket(hdr, buf, body, remaining)
        return this.next()
    }
}

/** The big-endian 16-bit integer at `off`. */
export function u16(buf: Buffer, off: number) {
    return (buf[off] << 8) | buf[off + 1]
}

function malformed(what: string): MqttError {
    return new MqttError(`malformed ${what}`)
}

// packet types a broker sends a client, besides PUBLISH (bit per type)
const FROM_BROKER = (1 << 2) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 9) | (1 << 11) | (1 << 13)

/**
 * Decodes one framed packet of the kinds a broker sends to a client. Unknown or client-only
 * types are returned with `type` set and no fields (the caller counts and ignores them).
 */
export function decodePacket(hdr: number, buf: Buffer, off: number, len: number): Packet {
    const type = hdr >> 4
    const flags = hdr & 15
    const p: Packet = { type, flags, id: 0 }
    if (type === PacketType.Publish) {
        const qos = (flags >> 1) & 3
        const ts = off + 2 // the topic: buf[ts..te)
        const te = ts + u16(buf, off)
        let start = te // of the payload
        if (qos) start += 2
        if (qos === 3 || len < 2 || start > off + len)
            throw malformed(`PUBLISH: QoS ${qos} (0..2 allowed), or a topic longer than the body of ${len} bytes`)
        // MQTT 1.5.3 and 4.7: well-formed UTF-8 (invalid bytes would also crash string code), no NUL, no wildcards
        if (utf8ErrorAt(buf, ts, te) >= 0) throw malformed("PUBLISH: topic is not valid UTF-8")
        const topic = buf.slice(ts, te).toString()
        const err = topicNameError(topic)
        if (err) throw malformed(`PUBLISH: ${err}`)
        if (qos) {
            p.id = u16(buf, start - 2)
            if (!p.id) throw malformed("PUBLISH (packet id 0)")
        }
        p.qos = qos
        p.retain = (flags & 1) === 1
        p.topic = topic
        p.payload = buf.slice(start, off + len)
        return p
    }
    // CONNECT, SUBSCRIBE, PINGREQ... from a broker, or reserved types 0 and 15: for the caller to count
    if (!((FROM_BROKER >> type) & 1)) return p
    // fixed body lengths (SUBACK: at least 3), flags 0 except PUBREL's 2
    if (flags !== (type === PacketType.Pubrel ? 2 : 0) || (type === PacketType.Suback ? len < 3 : len !== (type === PacketType.Pingresp ? 0 : 2)))
        throw malformed(`${words("- - CONNACK - PUBACK PUBREC PUBREL PUBCOMP - SUBACK - UNSUBACK - PINGRESP", " ")[type]}: body of ${len} bytes, flags ${flags}`)
    if (len) p.id = u16(buf, off)
    if (type === PacketType.Connack) {
        if (buf[off] > 1) throw malformed("CONNACK: acknowledge flags other than session present")
        p.sessionPresent = buf[off] === 1
        p.id = buf[off + 1]
    }
    if (type === PacketType.Suback) p.qos = buf[off + 2]
    return p
}
