import * as ds from "@devicescript/core"
import { decodePacket, encode, encodeConnect, MqttError, PacketReader, PacketType, readVarint, writeVarint } from "../../src/mqtt/packet"
import { topicFilterError, topicMatches, topicNameError } from "../../src/mqtt/topic"
import { utf8ErrorAt } from "../../src/util/utf8"
import { describe, expect, test } from "./harness"

// Buffer.slice in DeviceScript 2.16.4 does not clamp `to` (it pads with zeros)
function part(b: Buffer, from: number, to: number) {
    return b.slice(from, Math.min(to, b.length))
}

function hexOf(b: Buffer) {
    return b.toString("hex")
}

function throwsMqtt(f: () => void): string {
    try {
        f()
    } catch (e) {
        if (e instanceof MqttError) return (e as Error).message
        throw e
    }
    throw new Error("expected an MqttError")
}

function publishPkt(topic: string, payload: Buffer, qos: number, id: number) {
    return encode(0x30 | (qos << 1), qos ? [Buffer.from(topic), id] : [Buffer.from(topic)], payload)
}

/** A PUBACK, PUBREC, PUBREL (flags 2) or PUBCOMP. */
function ack(type: number, id: number) {
    return encode((type << 4) | (type === PacketType.Pubrel ? 2 : 0), [id])
}

describe("remaining length varint", () => {
    test("vectors of 1 to 4 bytes", () => {
        const cases = [
            [0, "00"],
            [127, "7f"],
            [128, "8001"],
            [16383, "ff7f"],
            [16384, "808001"],
            [2097151, "ffff7f"],
            [2097152, "80808001"],
            [268435455, "ffffff7f"],
        ]
        for (const c of cases) {
            const n = c[0] as number
            const buf = Buffer.alloc(4)
            const end = writeVarint(buf, 0, n)
            expect(end).toBe((c[1] as string).length / 2)
            expect(hexOf(buf.slice(0, end))).toBe(c[1] as string)
            const r = readVarint(buf, 0, end)
            expect(r[0]).toBe(n)
            expect(r[1]).toBe(end)
        }
    })
    test("a fifth continuation byte is a protocol error", () => {
        const msg = throwsMqtt(() => readVarint(hex`ffffffff7f`, 0, 5))
        expect(msg.indexOf("more than 4 bytes") >= 0).toBe(true)
    })
    test("too large to encode", () => {
        throwsMqtt(() => writeVarint(Buffer.alloc(5), 0, 268435456))
        throwsMqtt(() => writeVarint(Buffer.alloc(5), 0, -1))
    })
    test("incomplete varint asks for more bytes", () => {
        expect(readVarint(hex`80`, 0, 1)[0]).toBe(-1)
    })
})

describe("encoders", () => {
    test("CONNECT with keepalive above 255 uses two bytes", () => {
        const p = encodeConnect("d1", undefined, undefined, 300, true)
        // 10 0e | 00 04 MQTT | 04 | 02 | 01 2c | 00 02 d1
        expect(hexOf(p)).toBe("100e00044d5154540402012c00026431")
    })
    test("CONNECT flags: will, user, password, persistent session", () => {
        const p = encodeConnect("c", "u", "p", 65535, false, { topic: "w", payload: "x", qos: 1, retain: true })
        expect(p[9]).toBe(0x80 | 0x40 | 0x20 | 0x08 | 0x04)
        expect(p[10]).toBe(0xff)
        expect(p[11]).toBe(0xff)
        expect(hexOf(p)).toBe("101900044d51545404ec" + "ffff" + "000163" + "000177" + "000178" + "000175" + "000170")
        // an empty user name still counts; no password flag without a password
        expect(encodeConnect("c", "", undefined, 60, true)[9]).toBe(0x80 | 0x02)
        throwsMqtt(() => encodeConnect("c", undefined, undefined, 60, true, { topic: "w", payload: "x", qos: 3 }))
    })
    test("PUBLISH QoS 1, whole and head only", () => {
        const p = publishPkt("a/b", Buffer.from("hi"), 1, 0x1234)
        expect(hexOf(p)).toBe("3209" + "0003612f62" + "1234" + "6869")
        const h = encode(0x33, [Buffer.from("a/b"), 0x1234], Buffer.from("hi"), true)
        expect(hexOf(h)).toBe("3309" + "0003612f62" + "1234")
        // the remaining length counts a head-only payload; 2-byte varint
        const big = encode(0x30, [Buffer.from("t")], Buffer.alloc(200), true)
        expect(hexOf(big)).toBe("30cb01" + "000174")
    })
    test("acks, SUBSCRIBE, UNSUBSCRIBE, PINGREQ", () => {
        expect(hexOf(ack(PacketType.Puback, 7))).toBe("40020007")
        expect(hexOf(ack(PacketType.Pubrel, 7))).toBe("62020007")
        expect(hexOf(encode(0x82, [1, Buffer.from("a/#")], hex`02`))).toBe("820800010003612f2302")
        expect(hexOf(encode(0xa2, [2, Buffer.from("a")]))).toBe("a20500020001" + "61")
        expect(hexOf(encode(0xc0, []))).toBe("c000")
    })
})

describe("reader", () => {
    test("packets split one byte at a time", () => {
        const stream = Buffer.concat(
            publishPkt("t/1", Buffer.from("one"), 1, 1),
            ack(PacketType.Puback, 9),
            hex`d000`,
            publishPkt("t/2", Buffer.alloc(200), 0, 0)
        )
        const r = new PacketReader(1000)
        const got: number[] = []
        for (let i = 0; i < stream.length; i++) {
            r.push(part(stream, i, i + 1))
            let p
            while ((p = r.next())) got.push(p.type)
        }
        expect(got.join(",")).toBe("3,4,13,3")
    })
    test("many packets in one chunk", async () => {
        const parts: Buffer[] = []
        for (let i = 1; i <= 50; i++) parts.push(ack(PacketType.Puback, i))
        const r = new PacketReader(1000)
        r.push(Buffer.concat(...parts))
        let n = 0
        let p
        while ((p = r.next())) {
            n++
            if (p.id !== n) throw new Error(`packet ${n} has id ${p.id}`)
            if (n % 10 === 0) await ds.sleep(0)
        }
        expect(n).toBe(50)
    })
    test("payload sizes around varint boundaries", async () => {
        // 64 KB heap: the chunked case makes the packet bytes on the fly, so only the decoded
        // payload is held whole, as when a message arrives from the network
        const sizes = [0, 127, 128, 16383, 16384, 20000]
        for (const sz of sizes) {
            const head = publishPkt("s", Buffer.alloc(0), 0, 0)
            const hl = writeVarint(Buffer.alloc(5), 1, 3 + sz)
            const total = hl + 3 + sz
            for (const step of sz <= 16384 ? [0, 1000] : [1000]) {
                const r = new PacketReader(30000)
                let p
                for (let i = 0; i < total; i += step || total) {
                    const n = Math.min(step || total, total - i)
                    const c = Buffer.alloc(n)
                    for (let k = 0; k < n; k++) {
                        const j = i + k
                        c[k] = j === 0 ? 0x30 : j < hl ? 0 : j < hl + 3 ? head[j - hl + 2] : (j - hl - 3) & 0xff
                        if ((k & 1023) === 1023) await ds.sleep(0)
                    }
                    if (i === 0) writeVarint(c, 1, 3 + sz)
                    r.push(c)
                    p = r.next()
                    await ds.sleep(0)
                }
                expect(p.payload.length).toBe(sz)
                expect(p.topic).toBe("s")
                for (let i = 0; i < sz; i += 97) if (p.payload[i] !== (i & 0xff)) throw new Error(`byte ${i} differs`)
                p = undefined
            }
        }
    })

    test("oversized packets are skipped without desync, QoS 1 id kept", () => {
        const big = publishPkt("big/topic", Buffer.alloc(3000), 1, 4242)
        const after = ack(PacketType.Puback, 5)
        const r = new PacketReader(1024)
        const stream = Buffer.concat(big, after)
        let seen: number[] = []
        let oversized = 0
        for (let i = 0; i < stream.length; i += 97) {
            r.push(part(stream, i, i + 97))
            let p
            while ((p = r.next())) {
                if (p.oversized) {
                    oversized++
                    expect(p.id).toBe(4242)
                    expect(p.qos).toBe(1)
                    expect(p.payload).toBe(undefined)
                }
                seen.push(p.type)
            }
        }
        expect(seen.join(",")).toBe("3,4")
        expect(oversized).toBe(1)
    })
    test("a topic above 1,024 bytes is skipped as it streams past, whole or in pieces; its id is kept", () => {
        const long = Buffer.alloc(2000)
        long.fillAt(0, 2000, 0x61)
        const pkt = encode(0x34, [long, 321], Buffer.from("payload"))
        for (const step of [pkt.length, 500, 7]) {
            const r = new PacketReader(30000)
            const got: string[] = []
            for (let i = 0; i < pkt.length; i += step) {
                r.push(part(pkt, i, i + step))
                let p
                while ((p = r.next())) got.push(`${p.type}/${p.qos}/${p.id}/${p.oversized}/${!!p.topic}`)
            }
            r.push(ack(PacketType.Puback, 9))
            expect(got.join(",")).toBe("3/2/321/true/false")
            expect(r.next().id).toBe(9)
        }
    })
    test("skipped packets: QoS 0 PUBLISH stays a PUBLISH without id, other types become type 0", () => {
        const r = new PacketReader(100)
        r.push(Buffer.concat(publishPkt("q0", Buffer.alloc(200), 0, 0), encode(0x90, [5], Buffer.alloc(300))))
        const a = r.next()
        expect(`${a.type}/${a.qos}/${a.id}/${a.oversized}`).toBe("3/0/0/true")
        const b = r.next()
        expect(`${b.type}/${b.oversized}`).toBe("0/true")
        expect(r.next()).toBe(undefined)
    })
    test("oversized packet header split at every position keeps the id", () => {
        const big = publishPkt("x", Buffer.alloc(300), 2, 777)
        for (let cut = 1; cut < 12; cut++) {
            const r = new PacketReader(100)
            r.push(part(big, 0, cut))
            let p = r.next()
            if (!p) {
                r.push(big.slice(cut))
                p = r.next()
            }
            expect(p.id).toBe(777)
        }
    })
    test("unknown packet types are returned for the caller to skip", () => {
        const r = new PacketReader(100)
        r.push(hex`f0 03 010203 40 02 0001`)
        expect(r.next().type).toBe(15)
        expect(r.next().id).toBe(1)
    })
})

describe("decoder rejects malformed packets", () => {
    function decode(b: Buffer) {
        const r = new PacketReader(1000)
        r.push(b)
        return r.next()
    }
    test("QoS 3 publish", () => {
        throwsMqtt(() => decode(hex`36 05 0001 61 0001`))
    })
    test("topic longer than the packet", () => {
        throwsMqtt(() => decode(hex`30 03 00ff 61`))
    })
    test("wildcard and invalid UTF-8 topics", () => {
        throwsMqtt(() => decode(hex`30 03 0001 23`))
        throwsMqtt(() => decode(hex`30 04 0002 c328`))
        throwsMqtt(() => decode(hex`30 03 0001 00`))
    })
    test("packet id 0 at QoS 1", () => {
        throwsMqtt(() => decode(hex`32 05 0001 61 0000`))
    })
    test("bad ack lengths and flags", () => {
        throwsMqtt(() => decode(hex`40 03 000100`))
        throwsMqtt(() => decode(hex`60 02 0001`))
        throwsMqtt(() => decode(hex`20 03 000000`))
        throwsMqtt(() => decode(hex`d0 01 00`))
        throwsMqtt(() => decode(hex`90 02 0001`))
    })
    test("random garbage never escapes as anything but MqttError", async () => {
        let errors = 0
        for (let round = 0; round < 300; round++) {
            const len = 1 + Math.floor(Math.random() * 40)
            const b = Buffer.alloc(len)
            for (let i = 0; i < len; i++) b[i] = Math.floor(Math.random() * 256)
            const r = new PacketReader(64)
            r.push(b)
            try {
                for (let k = 0; k < 50 && r.next(); k++);
            } catch (e) {
                if (!(e instanceof MqttError)) throw e
                errors++
            }
            if (round % 50 === 0) await ds.sleep(0)
        }
        expect(errors > 0).toBe(true)
    })
    test("UTF-8 validator", () => {
        const ok = Buffer.from("héllo ☃ 😀")
        expect(utf8ErrorAt(ok)).toBe(-1)
        expect(utf8ErrorAt(hex`61e282`)).toBe(1) // truncated
        expect(utf8ErrorAt(hex`c0af`)).toBe(0) // overlong
        expect(utf8ErrorAt(hex`eda080`)).toBe(0) // surrogate
        expect(utf8ErrorAt(hex`f4908080`)).toBe(0) // above U+10FFFF
        expect(utf8ErrorAt(hex`ff61`, 1, 2)).toBe(-1) // a range
        // the eight-bytes-at-a-time ASCII path: a bad byte at every place of a longer text, ranges
        const text = "0123456789abcdefghijklmnopqrstuvwxyz"
        for (let at = 0; at < text.length; at++) {
            const b = Buffer.from(text)
            b[at] = 0x80
            expect(utf8ErrorAt(b)).toBe(at)
            expect(utf8ErrorAt(b, 0, at)).toBe(-1)
            expect(utf8ErrorAt(b, at + 1)).toBe(-1)
            b[at] = 0xff
            expect(utf8ErrorAt(b)).toBe(at)
        }
        expect(utf8ErrorAt(Buffer.from(text + "héllo ☃ 😀" + text))).toBe(-1)
        const cut = Buffer.from(text + "☃")
        expect(utf8ErrorAt(cut, 0, cut.length - 1)).toBe(text.length)
    })
    test("direct decode of a CONNACK and a SUBACK", () => {
        const p = decodePacket(0x20, hex`0105`, 0, 2)
        expect(p.sessionPresent).toBe(true)
        expect(p.id).toBe(5)
        const s = decodePacket(0x90, hex`1234 80`, 0, 3)
        expect(s.id).toBe(0x1234)
        expect(s.qos).toBe(0x80)
    })
})

describe("topics", () => {
    test("matching per the specification", () => {
        const yes = [
            ["a/b", "a/b"],
            ["a/+", "a/b"],
            ["a/+", "a/"],
            ["+/+", "/"],
            ["a/#", "a"],
            ["a/#", "a/b/c"],
            ["#", "a/b"],
            ["+/b/#", "x/b"],
            ["$SYS/#", "$SYS/x"],
            ["a/+/c", "a/x/c"],
        ]
        const no = [
            ["a/b", "a/b/c"],
            ["a/b/c", "a/b"],
            ["a/+", "a/b/c"],
            ["+", "/a"],
            ["#", "$SYS/x"],
            ["+/x", "$x/x"],
            ["ab", "a"],
            ["a", "ab"],
            ["a/+/c", "a/x/d"],
        ]
        for (const c of yes) if (!topicMatches(c[0], c[1])) throw new Error(`${c[0]} should match ${c[1]}`)
        for (const c of no) if (topicMatches(c[0], c[1])) throw new Error(`${c[0]} should not match ${c[1]}`)
    })
    test("filter and name validation", () => {
        expect(topicFilterError("a/#")).toBe(undefined)
        expect(topicFilterError("+/+/#")).toBe(undefined)
        expect(!!topicFilterError("a/#/b")).toBe(true)
        expect(!!topicFilterError("a+")).toBe(true)
        expect(!!topicFilterError("")).toBe(true)
        expect(!!topicNameError("a/+")).toBe(true)
        expect(topicNameError("a/b")).toBe(undefined)
    })
})
