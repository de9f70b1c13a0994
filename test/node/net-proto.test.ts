/**
 * DHCP, DNS and SNTP protocol code (src/net/dhcp.ts, dns.ts, sntp.ts) in the VM, against packets
 * built here with independent code (hand-written BOOTP/NTP encoders, the `dns-packet` package and
 * a small compressing DNS writer). The vectors travel to the VM over the host link, chunked
 * (a setting value must stay under ~200 bytes); packets the VM builds come back as `##P>` lines
 * and are decoded here.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import dnsPacket from "dns-packet"
import { startHostLink, type Settings } from "../../sim/hostlink.ts"
import { runVmSuite } from "./lib/vm.ts"

// ---- shared constants (the VM suite uses the same values) ----
const MAC = Buffer.from("020000123456", "hex")
const XID = 0x89abcdef
const SERVER = "192.168.1.1"
const YIADDR = "192.168.1.50"
const COOKIE = 0x63825363

const ip4 = (s: string) => Buffer.from(s.split(".").map(Number))
const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
}
const opt = (code: number, data: Buffer | number[] | string) => {
    const d = typeof data === "string" ? Buffer.from(data) : Buffer.from(data)
    return Buffer.concat([Buffer.from([code, d.length]), d])
}
const END = Buffer.from([255])

// ---- DHCP: a BOOTREPLY writer ----
interface ReplyOpts {
    options: Buffer[]
    xid?: number
    yiaddr?: string
    op?: number
    cookie?: number
    file?: Buffer
    pad?: number
}
function dhcpReply(o: ReplyOpts): Buffer {
    const h = Buffer.alloc(240)
    h[0] = o.op ?? 2
    h[1] = 1
    h[2] = 6
    h.writeUInt32BE(o.xid ?? XID, 4)
    ip4(o.yiaddr ?? YIADDR).copy(h, 16)
    ip4(SERVER).copy(h, 20)
    MAC.copy(h, 28)
    if (o.file) o.file.copy(h, 108)
    h.writeUInt32BE(o.cookie ?? COOKIE, 236)
    return Buffer.concat([h, ...o.options, Buffer.alloc(o.pad ?? 0)])
}

function dhcpVectors() {
    const srv = opt(54, ip4(SERVER))
    const mask = opt(1, ip4("255.255.255.0"))
    const v: Record<string, Buffer> = {
        d_offer: dhcpReply({
            options: [opt(53, [2]), Buffer.from([0, 0]), srv, opt(51, u32(3600)), mask, opt(3, ip4(SERVER)),
                opt(6, Buffer.concat([ip4(SERVER), ip4("8.8.8.8")])), END],
            pad: 20,
        }),
        d_ack: dhcpReply({
            options: [opt(53, [5]), srv, opt(51, u32(7200)), opt(58, u32(1000)), opt(59, u32(5000)), mask,
                opt(3, Buffer.concat([ip4(SERVER), ip4("192.168.1.2")])),
                opt(6, Buffer.concat([ip4("192.168.1.1"), ip4("8.8.8.8"), ip4("1.1.1.1")])), opt(15, "lan"), END],
        }),
        d_ack_min: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(600)), END], pad: 60 }),
        d_ack_inf: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(0xffffffff)), END] }),
        d_ack_nol: dhcpReply({ options: [opt(53, [5]), srv, END] }),
        d_nak: dhcpReply({ options: [opt(53, [6]), srv, opt(56, "address not available"), END], yiaddr: "0.0.0.0" }),
        // a NAK whose message (option 56) is not UTF-8: logging it as text would crash the VM
        d_nak_utf8: dhcpReply({ options: [opt(53, [6]), srv, opt(56, [0x6e, 0x6f, 0xc3, 0x28]), END], yiaddr: "0.0.0.0" }),
        d_overload: dhcpReply({
            options: [opt(53, [5]), opt(52, [1]), srv, opt(51, u32(1200)), END],
            file: Buffer.concat([mask, opt(3, ip4("192.168.1.254")), END]),
        }),
        d_badlen: dhcpReply({ options: [opt(53, [5]), srv, opt(51, [0, 0, 14]), END] }),
        d_dnslen: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(60)), opt(6, [1, 2, 3, 4, 5]), END] }),
        d_past: dhcpReply({ options: [opt(53, [5]), srv, Buffer.from([51, 10, 0, 0])] }),
        d_nolen: dhcpReply({ options: [opt(53, [5]), Buffer.from([54])] }),
        d_noend: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(60))] }),
        d_cookie: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(60)), END], cookie: 0x63825364 }),
        d_notype: dhcpReply({ options: [srv, opt(51, u32(60)), END] }),
        d_type3: dhcpReply({ options: [opt(53, [3]), srv, END] }),
        d_nosrv: dhcpReply({ options: [opt(53, [2]), opt(51, u32(60)), END] }),
        // options past 59 (which the client skips), odd lengths and an empty one among them
        d_ack_high: dhcpReply({
            options: [opt(53, [5]), opt(60, "abc"), srv, opt(61, [1, 2, 0, 0, 0x12, 0x34, 0x56]), opt(51, u32(600)),
                opt(119, [3, 0x6c, 0x61, 0x6e, 0]), opt(252, [10]), opt(254, []), mask, END],
        }),
        d_zeroip: dhcpReply({ options: [opt(53, [5]), srv, opt(51, u32(60)), END], yiaddr: "0.0.0.0" }),
    }
    return v
}

// ---- DNS: a writer with name compression (dns-packet does not compress) ----
class DnsWriter {
    bytes: number[] = []
    private suffixes = new Map<string, number>()
    u8(...v: number[]) {
        this.bytes.push(...v)
    }
    u16(v: number) {
        this.u8(v >> 8, v & 255)
    }
    u32(v: number) {
        this.u16(Math.floor(v / 65536))
        this.u16(v & 0xffff)
    }
    name(n: string) {
        const labels = n.split(".")
        for (let i = 0; i < labels.length; i++) {
            const key = labels.slice(i).join(".").toLowerCase()
            const at = this.suffixes.get(key)
            if (at !== undefined) return this.u16(0xc000 | at)
            this.suffixes.set(key, this.bytes.length)
            this.u8(labels[i].length, ...Buffer.from(labels[i]))
        }
        this.u8(0)
    }
    buf() {
        return Buffer.from(this.bytes)
    }
}
interface Rr {
    name: string
    type: number
    ttl: number
    data: string
}
function compressedResponse(id: number, qname: string, answers: Rr[], flags = 0x8180) {
    const w = new DnsWriter()
    w.u16(id)
    w.u16(flags)
    w.u16(1)
    w.u16(answers.length)
    w.u16(0)
    w.u16(0)
    w.name(qname)
    w.u16(1)
    w.u16(1)
    for (const a of answers) {
        w.name(a.name)
        w.u16(a.type)
        w.u16(1)
        w.u32(a.ttl)
        const at = w.bytes.length
        w.u16(0)
        if (a.type === 1) w.u8(...ip4(a.data))
        else if (a.type === 5) w.name(a.data)
        else w.u8(...Buffer.from(a.data, "hex"))
        const len = w.bytes.length - at - 2
        w.bytes[at] = len >> 8
        w.bytes[at + 1] = len & 255
    }
    return w.buf()
}

/** Header + question "a.com" (ends at 23) for hand-made broken answers. */
function brokenHead(ancount: number) {
    return [0x01, 0x01, 0x81, 0x80, 0, 1, 0, ancount, 0, 0, 0, 0, 1, 97, 3, 99, 111, 109, 0, 0, 1, 0, 1]
}
const A_TAIL = [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4] // type A, class IN, ttl 60, 1.2.3.4

function dnsVectors() {
    const RDRA = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE
    const resp = (id: number, flags: number, name: string, answers: dnsPacket.Answer[]) =>
        dnsPacket.encode({ type: "response", id, flags, questions: [{ type: "A", name }], answers })
    const v: Record<string, Buffer> = {
        n_simple: resp(0x1234, RDRA, "example.com", [
            { type: "A", name: "example.com", ttl: 300, data: "93.184.216.34" },
            { type: "A", name: "example.com", ttl: 200, data: "93.184.216.35" },
        ]),
        n_cname: compressedResponse(0xbeef, "WWW.Example.COM", [
            { name: "edge.example.net", type: 5, ttl: 60, data: "a1.cdn.example.net" },
            { name: "www.example.com", type: 5, ttl: 600, data: "edge.example.net" },
            { name: "a1.cdn.example.net", type: 1, ttl: 120, data: "10.1.2.3" },
            { name: "evil.example.org", type: 1, ttl: 999, data: "6.6.6.6" },
            { name: "a1.cdn.example.net", type: 28, ttl: 120, data: "20010db8000000000000000000000001" },
            { name: "a1.cdn.example.net", type: 1, ttl: 300, data: "10.1.2.4" },
        ]),
        n_cloop: compressedResponse(0x0202, "a.example.com", [
            { name: "a.example.com", type: 5, ttl: 60, data: "b.example.com" },
            { name: "b.example.com", type: 5, ttl: 60, data: "a.example.com" },
            { name: "c.example.com", type: 1, ttl: 60, data: "1.2.3.4" },
        ]),
        n_ttltop: compressedResponse(0x0303, "t.example.com", [
            { name: "t.example.com", type: 1, ttl: 0x80000001, data: "1.2.3.4" },
        ]),
        n_nx: resp(0x1234, RDRA | 3, "nope.example.com", []),
        n_servfail: resp(0x1234, RDRA | 2, "example.com", []),
        n_nx_other: resp(0x1234, RDRA | 3, "other.example.com", []),
        n_refused_noq: dnsPacket.encode({ type: "response", id: 0x1234, flags: RDRA | 5, questions: [] }),
        n_refused: resp(0x1234, RDRA | 5, "example.com", []),
        n_tc: resp(0x1234, RDRA | dnsPacket.TRUNCATED_RESPONSE, "example.com", [
            { type: "A", name: "example.com", ttl: 300, data: "93.184.216.34" },
        ]),
        n_noa: resp(0x1234, RDRA, "example.com", [
            { type: "AAAA", name: "example.com", ttl: 300, data: "2001:db8::1" },
        ]),
        n_q: resp(0x1234, RDRA, "other.example.com", [
            { type: "A", name: "other.example.com", ttl: 300, data: "1.1.1.1" },
        ]),
        n_qr0: dnsPacket.encode({ type: "query", id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: "example.com" }] }),
        // answer owner is a pointer to itself
        n_loop: Buffer.from([...brokenHead(1), 0xc0, 23, ...A_TAIL]),
        // label "x" then a pointer back to it
        n_loop2: Buffer.from([...brokenHead(1), 1, 120, 0xc0, 23, ...A_TAIL]),
        n_oob: Buffer.from([...brokenHead(1), 0xc0, 0xff, ...A_TAIL]),
        n_oob2: Buffer.from([...brokenHead(1), 0xff, 0xff, ...A_TAIL]),
        n_bits01: Buffer.from([...brokenHead(1), 0x41, ...A_TAIL]),
        n_bits10: Buffer.from([...brokenHead(1), 0x81, ...A_TAIL]),
        // an answer name whose label is not UTF-8 (0xff 0xfe)
        n_utf8: Buffer.from([...brokenHead(1), 2, 0xff, 0xfe, 0, ...A_TAIL]),
        // the question name points to itself
        n_qloop: Buffer.from([0x01, 0x01, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]),
        n_alen: Buffer.from([...brokenHead(1), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5]),
        n_rdpast: Buffer.from([...brokenHead(1), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 100, 1, 2, 3, 4]),
        // CNAME rdlength 2 but the name inside is longer
        n_cnpast: Buffer.from([...brokenHead(1), 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 1, 98, 0xc0, 14]),
    }
    // a name longer than 255 bytes: 5 labels of 63
    const long: number[] = []
    for (let i = 0; i < 5; i++) long.push(63, ...Buffer.alloc(63, 97))
    v.n_long = Buffer.from([...brokenHead(1), ...long, 0, ...A_TAIL])
    // 20 chained pointers inside an unknown record's data (type 99), then an owner pointing at the last
    const chain: number[] = [0xc0, 12]
    for (let i = 1; i < 20; i++) chain.push(0xc0, 23 + 12 + 2 * (i - 1))
    const unknown = [0xc0, 12, 0, 99, 0, 1, 0, 0, 0, 60, 0, chain.length, ...chain]
    v.n_jumps = Buffer.from([...brokenHead(2), ...unknown, 0xc0, 23 + 12 + 2 * 19, ...A_TAIL])
    return v
}

// ---- SNTP: an NTP reply writer ----
const NTP_UNIX = 2208988800
/** Our transmit timestamp as the VM encodes it (same formula: the reply must echo it bit for bit). */
function ntpEncode(ms: number): [number, number] {
    const s = Math.floor(ms / 1000)
    return [(s + NTP_UNIX) % 2 ** 32, Math.floor((ms - s * 1000) * 4294967.296)]
}
/** Unix ms of a raw NTP timestamp, with BigInt arithmetic (RFC 4330 era rule). */
function ntpToUnixMs(secs: number, frac: number) {
    let s = BigInt(secs)
    if (s < 0x80000000n) s += 1n << 32n
    return Number((s - BigInt(NTP_UNIX)) * 1000n) + (frac * 1000) / 2 ** 32
}
interface NtpOpts {
    origin: [number, number]
    rx: [number, number]
    tx: [number, number]
    li?: number
    vn?: number
    mode?: number
    stratum?: number
    refid?: string
    len?: number
}
function ntpReply(o: NtpOpts) {
    const b = Buffer.alloc(Math.max(48, o.len ?? 48))
    b[0] = ((o.li ?? 0) << 6) | ((o.vn ?? 4) << 3) | (o.mode ?? 4)
    b[1] = o.stratum ?? 2
    b[2] = 6
    b[3] = 0xec
    Buffer.from(o.refid ?? "GPS\0").copy(b, 12)
    b.writeUInt32BE(o.rx[0], 16) // reference time: anything
    b.writeUInt32BE(o.origin[0], 24)
    b.writeUInt32BE(o.origin[1], 28)
    b.writeUInt32BE(o.rx[0], 32)
    b.writeUInt32BE(o.rx[1], 36)
    b.writeUInt32BE(o.tx[0], 40)
    b.writeUInt32BE(o.tx[1], 44)
    return b.subarray(0, o.len ?? 48)
}

function ntpVectors() {
    // "ok": a local clock in ms since boot (any clock works for T1/T4)
    const sentTx = 5000123.25
    const t4 = sentTx + 42.5
    const rx: [number, number] = [1700000000 + NTP_UNIX, 2 ** 31]
    const tx: [number, number] = [1700000000 + NTP_UNIX, 2 ** 31 + 2 ** 22]
    const T2 = ntpToUnixMs(...rx)
    const T3 = ntpToUnixMs(...tx)
    const offset = (T2 - sentTx + (T3 - t4)) / 2
    const ok = { sentTx, t4, T2, T3, offset, delay: t4 - sentTx - (T3 - T2), unixMs: t4 + offset }
    const origin = ntpEncode(sentTx)
    const base = { origin, rx, tx }
    // era 1: 2036-07-18 (seconds wrapped past 2^32); our own clock is Unix time here
    const eraSent = 2099999999990
    const eraRaw: [number, number] = [(2100000000 + NTP_UNIX) % 2 ** 32, 2 ** 30]
    assert.ok(eraRaw[0] < 0x80000000)
    const eraT = ntpToUnixMs(...eraRaw)
    const eraT4 = eraSent + 20
    // server rx = tx = eraT: Unix time at t4 = t4 + ((eraT - sent) + (eraT - t4)) / 2
    const era = { sentTx: eraSent, t4: eraT4, unixMs: eraT4 + (eraT - eraSent + (eraT - eraT4)) / 2 }
    const v: Record<string, Buffer> = {
        t_ok: ntpReply(base),
        t_v3: ntpReply({ ...base, vn: 3 }),
        t_long: ntpReply({ ...base, len: 68 }),
        t_era: ntpReply({ origin: ntpEncode(eraSent), rx: eraRaw, tx: eraRaw }),
        t_kod: ntpReply({ ...base, stratum: 0, li: 3, refid: "RATE", tx: [0, 0] }),
        t_li3: ntpReply({ ...base, li: 3 }),
        t_zero: ntpReply({ ...base, tx: [0, 0] }),
        t_mode3: ntpReply({ ...base, mode: 3 }),
        t_str16: ntpReply({ ...base, stratum: 16 }),
        t_origin: ntpReply({ ...base, origin: [origin[0], origin[1] + 1] }),
        t_short: ntpReply({ ...base, len: 47 }),
    }
    return { v, ok, era }
}

/** Hex with runs of 3..255 zero bytes written as "z" + the count in two hex digits. */
function zeroRle(b: Buffer) {
    let out = ""
    for (let i = 0; i < b.length; ) {
        let n = 0
        while (i + n < b.length && b[i + n] === 0 && n < 255) n++
        if (n >= 3) {
            out += "z" + n.toString(16).padStart(2, "0")
            i += n
        } else out += b.toString("hex", i, ++i)
    }
    return out
}

/**
 * Everything the VM suite needs, as settings: a text (first line the JSON meta data, then
 * `name:zeroRle;...`) cut into chunks `v0..` (a setting value must stay under ~200 bytes), their
 * count in `vn`. The simulator's settings line is parsed in a 64 KB heap: keep the total small.
 */
function makeSettings() {
    const d = dhcpVectors()
    const n = dnsVectors()
    const t = ntpVectors()
    const meta = { ackLen: d.d_ack.length, ntpOk: t.ok, ntpEra: t.era }
    const entries = Object.entries({ ...d, ...n, ...t.v }).map(([k, b]) => `${k}:${zeroRle(b)}`)
    const text = JSON.stringify(meta) + "\n" + entries.join(";")
    const settings: Settings = {}
    const CHUNK = 160
    let i = 0
    for (let p = 0; p < text.length; p += CHUNK) settings["v" + i++] = text.slice(p, p + CHUNK)
    settings.vn = i
    return { settings, text, d, n, t }
}

// ---- independent decoding of what the VM built ----
function dhcpOptions(b: Buffer) {
    const out = new Map<number, Buffer>()
    const order: number[] = []
    let i = 240
    while (i < b.length && b[i] !== 255) {
        if (b[i] === 0) {
            i++
            continue
        }
        order.push(b[i])
        out.set(b[i], b.subarray(i + 2, i + 2 + b[i + 1]))
        i += 2 + b[i + 1]
    }
    assert.equal(b[i], 255, "options end with 255")
    return { out, order }
}

function checkDhcpBuilt(kind: string, b: Buffer) {
    assert.ok(b.length >= 300, `${kind}: ${b.length} bytes, at least 300`)
    assert.equal(b[0], 1, "op BOOTREQUEST")
    assert.equal(b[1], 1)
    assert.equal(b[2], 6)
    assert.equal(b.readUInt32BE(4), XID, "xid")
    assert.equal(b.readUInt16BE(8), 7, "secs")
    assert.ok(MAC.equals(b.subarray(28, 34)), "chaddr")
    assert.ok(b.subarray(34, 44).equals(Buffer.alloc(10)), "chaddr padding")
    assert.equal(b.readUInt32BE(236), COOKIE, "cookie")
    const { out, order } = dhcpOptions(b)
    const type = { discover: 1, select: 3, renew: 3, rebind: 3, reboot: 3, decline: 4, release: 7 }[kind]
    assert.deepEqual([...out.get(53)!], [type], `${kind}: type`)
    assert.ok(out.get(61)!.equals(Buffer.concat([Buffer.from([1]), MAC])), "client id 01+MAC")
    const broadcast = kind === "discover" || kind === "select" || kind === "reboot"
    assert.equal(b.readUInt16BE(10), broadcast ? 0x8000 : 0, `${kind}: flags`)
    const ciaddr = kind === "renew" || kind === "rebind" || kind === "release" ? YIADDR : "0.0.0.0"
    assert.deepEqual([...b.subarray(12, 16)], [...ip4(ciaddr)], `${kind}: ciaddr`)
    for (const off of [16, 20, 24]) assert.equal(b.readUInt32BE(off), 0, `${kind}: address at ${off} is zero`)
    const expect: number[] = [53, 61]
    // INIT-REBOOT (RFC 2131 4.3.2): option 50, no server identifier, ciaddr 0
    if (kind === "select" || kind === "reboot" || kind === "decline") expect.push(50)
    if (kind === "select" || kind === "decline" || kind === "release") expect.push(54)
    if (type === 1 || type === 3) expect.push(12, 55)
    assert.deepEqual(order, expect, `${kind}: options`)
    if (out.has(50)) assert.ok(out.get(50)!.equals(ip4(YIADDR)))
    if (out.has(54)) assert.ok(out.get(54)!.equals(ip4(SERVER)))
    if (out.has(12)) assert.equal(out.get(12)!.toString(), "w55rp20")
    if (out.has(55)) assert.deepEqual([...out.get(55)!], [1, 3, 6, 15, 51, 58, 59])
}

test("vectors are what they claim (checked with dns-packet)", () => {
    const { n, settings, text } = makeSettings()
    const d = dnsPacket.decode(n.n_cname)
    assert.equal(d.id, 0xbeef)
    assert.deepEqual(
        d.answers!.map(a => {
            const r = a as { name: string; type: string; ttl: number; data: unknown }
            return `${r.name} ${r.type} ${r.ttl} ${r.data}`
        }),
        [
            "edge.example.net CNAME 60 a1.cdn.example.net",
            "WWW.Example.COM CNAME 600 edge.example.net", // compressed to the question's spelling
            "a1.cdn.example.net A 120 10.1.2.3",
            "evil.example.org A 999 6.6.6.6",
            "a1.cdn.example.net AAAA 120 2001:db8::1",
            "a1.cdn.example.net A 300 10.1.2.4",
        ],
    )
    assert.ok(n.n_cname.length < 200, "compression shrank the message")
    assert.equal((dnsPacket.decode(n.n_nx) as { rcode?: string }).rcode, "NXDOMAIN")
    assert.throws(() => dnsPacket.decode(n.n_oob))
    for (const [k, v] of Object.entries(settings)) {
        assert.ok(k.length <= 13, `setting key ${k}`)
        assert.ok(JSON.stringify(v).length < 200, `setting ${k} fits one settings packet`)
    }
    for (const b of [n.n_cname, Buffer.alloc(700), Buffer.from([0, 0, 1, 0, 0, 0, 0])]) {
        const z = zeroRle(b)
        const back = z.replace(/z(..)/g, (_, c: string) => "00".repeat(parseInt(c, 16)))
        assert.equal(back, b.toString("hex"), `zero run encoding of ${z}`)
    }
    assert.ok(text.length < 8000, `vectors (${text.length} chars) stay small for the VM's heap`)
})

test("DHCP, DNS and SNTP in the VM", async t => {
    const { settings } = makeSettings()
    const link = await startHostLink(settings, { waitMs: 120000 })
    let run
    try {
        run = await runVmSuite(t, "test/vm/net-proto.vm.ts", { timeoutMs: 180000 })
    } finally {
        await link.close()
    }
    // packets the VM built, printed as `##P> name hex` (several lines per packet)
    const built = new Map<string, string>()
    for (const line of run.lines) {
        const m = /##P> (\S+) ([0-9a-f]+)$/.exec(line)
        if (m) built.set(m[1], (built.get(m[1]) ?? "") + m[2])
    }
    await t.test("VM-built DHCP packets decode independently", () => {
        for (const kind of ["discover", "select", "renew", "rebind", "reboot", "decline", "release"]) {
            const hex = built.get("dhcp-" + kind)
            assert.ok(hex, `VM printed dhcp-${kind}`)
            checkDhcpBuilt(kind, Buffer.from(hex, "hex"))
        }
    })
    await t.test("VM-built DNS query decodes with dns-packet", () => {
        const b = Buffer.from(built.get("dns-query") ?? "", "hex")
        const q = dnsPacket.decode(b)
        assert.equal(q.id, 0xbeef)
        assert.equal(q.type, "query")
        assert.equal(q.flag_rd, true)
        assert.deepEqual(q.questions, [{ name: "www.example.com", type: "A", class: "IN" }])
        const ref = dnsPacket.encode({ type: "query", id: 0xbeef, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: "www.example.com" }] })
        assert.ok(b.equals(ref), `query bytes ${b.toString("hex")} match dns-packet's ${ref.toString("hex")}`)
    })
    await t.test("VM-built SNTP request has the right bytes", () => {
        const b = Buffer.from(built.get("sntp-request") ?? "", "hex")
        const [s, f] = ntpEncode(1700000000123.5)
        const ref = Buffer.alloc(48)
        ref[0] = 0x23
        ref.writeUInt32BE(s, 40)
        ref.writeUInt32BE(f, 44)
        assert.equal(b.toString("hex"), ref.toString("hex"))
    })
})
