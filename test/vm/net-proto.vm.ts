/**
 * DHCP, DNS and SNTP protocol code against vectors built by test/node/net-proto.test.ts (passed
 * over the host link), malformed input, and walks of the state machines with a fake clock.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "./settings"
import { loadSimSettings } from "../../src/simdev/hostlink"
import { formatIp, getU16, getU32, isIp, parseIp, setU16, setU32, tryParseIp } from "../../src/net/ip"
import { buildDhcp, DhcpClient, dhcpGiveBack, DhcpKind, OPTIONS_AT, parseDhcp, SNAME_AT } from "../../src/net/dhcp"
import { buildQuery, cacheGet, cachePut, dnsCache, DnsResolver, nameError, parseResponse } from "../../src/net/dns"
import { buildRequest, parseReply, readNtpTime, SntpClient } from "../../src/net/sntp"
import { describe, test } from "./harness"
import { eq, has } from "./asserts"

// ---- helpers ----
function near(actual: number, expected: number, what: string) {
    if (!(Math.abs(actual - expected) < 0.01)) throw new Error(`${what}: expected ${expected}, got ${actual}`)
}
function check(cond: boolean, what: string) {
    if (!cond) throw new Error(what)
}
function throws(f: () => void, part: string, what: string) {
    let msg: string = undefined
    try {
        f()
    } catch (e: any) {
        msg = "" + e.message
    }
    if (msg === undefined) throw new Error(`${what}: did not throw`)
    has(msg, part, what)
}
/** Prints a packet for the Node side, 160 hex characters a line (console lines are cut near 300). */
function emit(name: string, b: Buffer) {
    const h = b.toString("hex")
    for (let p = 0; p < h.length; p += 160) console.log(`##P> ${name} ${h.slice(p, p + 160)}`)
}

let V: any
let bins: any
/** The vectors from the Node side: `V.meta` (JSON) and `vec(name)`. */
async function vectors() {
    if (V) return V
    const n = await loadSimSettings()
    if (n < 1) throw new Error("no vectors: run this suite from test/node/net-proto.test.ts (host link)")
    const count: number = await readSetting("vn", 0)
    let s = ""
    for (let i = 0; i < count; i++) s += await readSetting("v" + i, "")
    const nl = s.indexOf("\n")
    const meta = JSON.parse(s.slice(0, nl))
    bins = {}
    // (String.split is bytecode in DeviceScript: too many steps for this text)
    for (let p = nl + 1; p < s.length; ) {
        let end = s.indexOf(";", p)
        if (end < 0) end = s.length
        const c = s.indexOf(":", p)
        bins[s.slice(p, c)] = unzero(s.slice(c + 1, end))
        p = end + 1
        await ds.sleep(0)
    }
    V = { meta }
    return V
}
/** Decodes hex where "z" + two hex digits stands for that many zero bytes. */
function unzero(s: string) {
    const bufs: Buffer[] = []
    let len = 0
    let p = 0
    for (;;) {
        let z = s.indexOf("z", p)
        if (z < 0) z = s.length
        const b = Buffer.from(s.slice(p, z), "hex")
        bufs.push(b)
        len += b.length
        if (z >= s.length) break
        const zeros = Buffer.from(s.slice(z + 1, z + 3), "hex")[0]
        bufs.push(Buffer.alloc(zeros))
        len += zeros
        p = z + 3
    }
    const out = Buffer.alloc(len)
    let at = 0
    for (const b of bufs) {
        out.blitAt(at, b, 0, b.length)
        at += b.length
    }
    return out
}
/** A fresh copy of vector `name`. */
function vec(name: string): Buffer {
    const b: Buffer = bins[name]
    if (!b) throw new Error(`no vector ${name}`)
    return b.slice(0)
}
/** A deterministic [0, 1) generator. */
function lcg(seed: number) {
    let s = seed
    return () => {
        s = s * 16807
        s -= Math.floor(s / 2147483647) * 2147483647 // DeviceScript's % is wrong past 2^31
        return s / 2147483647
    }
}
function constant(v: number) {
    return () => v
}
const half = constant(0.5)

const MAC = Buffer.from("020000123456", "hex")
const XID = 0x89abcdef
const SERVER = "192.168.1.1"
const YIADDR = "192.168.1.50"

/** Offset of DHCP option `code` in a client packet, -1 when absent. */
function findOpt(b: Buffer, code: number) {
    let i = 240
    while (i < b.length && b[i] !== 255) {
        if (b[i] === code) return i
        i += b[i] ? 2 + b[i + 1] : 1
    }
    return -1
}
function optIp(b: Buffer, code: number) {
    const i = findOpt(b, code)
    return i < 0 ? "" : formatIp(b, i + 2)
}
/** A copy of vector `name` with its xid replaced. */
function reply(name: string, xid: number) {
    const b = vec(name)
    setU32(b, 4, xid)
    return b
}

describe("ip", () => {
    test("parse and format", () => {
        eq(formatIp(parseIp("192.168.1.254")), "192.168.1.254", "round trip")
        eq(formatIp(parseIp("0.0.0.0")), "0.0.0.0", "zeros")
        eq(formatIp(Buffer.from([9, 10, 255, 255, 0, 1]), 2), "255.255.0.1", "offset")
        for (const bad of ["", "1.2.3", "1.2.3.4.5", "1.2.3.256", "a.b.c.d", "1..2.3", "01.2.3.4", " 1.2.3.4", "1.2.3.4."])
            eq(tryParseIp(bad), undefined, `"${bad}"`)
        check(isIp("10.0.0.1") && !isIp("example.com"), "isIp")
        throws(() => parseIp("300.1.1.1"), '"300.1.1.1" is not an IPv4 address', "parseIp error")
        throws(() => formatIp(Buffer.alloc(3)), "need 4 bytes", "formatIp short")
    })
    test("big-endian accessors", () => {
        const b = Buffer.alloc(8)
        setU32(b, 0, 0xfedcba98)
        eq(b.toString("hex").slice(0, 8), "fedcba98", "setU32")
        eq(getU32(b, 0), 0xfedcba98, "getU32 above 2^31")
        setU32(b, 4, 4294967296 + 5)
        eq(getU32(b, 4), 5, "setU32 wraps modulo 2^32")
        setU16(b, 0, 0xabcd)
        eq(getU16(b, 0), 0xabcd, "u16")
    })
})

describe("dhcp packets", () => {
    test("built packets (checked in Node)", () => {
        const f = { xid: XID, mac: MAC, hostname: "w55rp20", secs: 7, ip: YIADDR, server: SERVER }
        const kinds: DhcpKind[] = ["discover", "select", "renew", "rebind", "reboot", "decline", "release"]
        for (const kind of kinds) {
            const b = buildDhcp(kind, f)
            check(b.length >= 300, `${kind} padded`)
            emit("dhcp-" + kind, b)
        }
        const d = buildDhcp("discover", { xid: 1, mac: MAC })
        eq(findOpt(d, 12), -1, "no hostname option without a hostname")
        throws(() => buildDhcp("discover", { xid: 1, mac: Buffer.alloc(5) }), "mac must be 6 bytes, got 5", "short MAC")
        throws(() => buildDhcp("discover", { xid: 1, mac: undefined }), "mac must be 6 bytes, got none", "no MAC")
        throws(() => buildDhcp("select", { xid: 1, mac: MAC, ip: YIADDR }), "select needs server", "select")
        throws(() => buildDhcp("decline", { xid: 1, mac: MAC, server: SERVER }), "decline needs ip", "decline")
        throws(() => buildDhcp("renew", { xid: 1, mac: MAC }), "renew needs ip (ciaddr", "renew")
        throws(() => buildDhcp("discover", { xid: 1, mac: MAC, hostname: "bad name" }), 'hostname "bad name"', "hostname")
        throws(() => buildDhcp("discover", { xid: 1, mac: MAC, hostname: "a\rb" }), "hostname", "CR in the hostname")
        throws(() => buildDhcp("discover", { xid: 1, mac: MAC, hostname: "a\x10" }), "hostname", "control character")
        throws(() => buildDhcp("select", { xid: 1, mac: MAC, ip: "1.2.3", server: SERVER }), '"1.2.3"', "bad ip")
    })
    test("OFFER, ACK, NAK from Node", async () => {
        await vectors()
        const o = parseDhcp(vec("d_offer"), XID, MAC)
        check(o.ok, "offer ok: " + o.message)
        eq(o.type, 2, "offer type")
        eq(o.ip, YIADDR, "yiaddr")
        eq(o.server, SERVER, "server id")
        eq(o.lease, 3600, "lease")
        eq(o.t1, -1, "no T1")
        eq(o.dns.join(","), "192.168.1.1,8.8.8.8", "dns")
        const a = parseDhcp(vec("d_ack"), XID, MAC)
        check(a.ok, "ack ok: " + a.message)
        eq(a.type, 5, "ack type")
        eq(a.mask, "255.255.255.0", "mask")
        eq(a.gateway, "192.168.1.1", "first router")
        eq(a.dns.join(","), "192.168.1.1,8.8.8.8,1.1.1.1", "dns")
        eq(a.lease + "/" + a.t1 + "/" + a.t2, "7200/1000/5000", "times")
        const n = parseDhcp(vec("d_nak"), XID, MAC)
        check(n.ok, "nak ok: " + n.message)
        eq(n.type, 6, "nak type")
        eq(n.text, "address not available", "nak message")
        const v = parseDhcp(vec("d_overload"), XID, MAC)
        check(v.ok, "overload ok: " + v.message)
        eq(v.mask + " " + v.gateway + " " + v.lease, "255.255.255.0 192.168.1.254 1200", "options from the file field")
        eq(parseDhcp(vec("d_ack_inf"), XID, MAC).lease, 0xffffffff, "infinite lease")
    })
    test("a reply read without sname and file (zeros there): parsed, unless option 52 puts options there", async () => {
        await vectors()
        const holed = (name: string) => {
            const b = reply(name, XID)
            b.fillAt(SNAME_AT, OPTIONS_AT - SNAME_AT, 0)
            return b
        }
        const a = parseDhcp(holed("d_ack"), XID, MAC, true)
        check(a.ok, "ack ok: " + a.message)
        eq(a.gateway + " " + a.dns.join(",") + " " + a.lease, "192.168.1.1 192.168.1.1,8.8.8.8,1.1.1.1 7200", "the same fields as whole")
        const v = parseDhcp(holed("d_overload"), XID, MAC, true)
        check(!v.ok && !v.foreign, "an overloaded reply read in part is refused")
        eq(v.overload, 1, "overload says why")
        has(v.message, "option 52", "message")
        check(parseDhcp(vec("d_overload"), XID, MAC, false).ok, "the same reply read whole parses")
    })
    test("foreign and malformed replies", async () => {
        await vectors()
        const foreign = (b: Buffer, part: string, what: string) => {
            const r = parseDhcp(b, XID, MAC)
            check(!r.ok && r.foreign, `${what}: foreign`)
            has(r.message, part, what)
        }
        const bad = (b: Buffer, part: string, what: string) => {
            const r = parseDhcp(b, XID, MAC)
            check(!r.ok && !r.foreign, `${what}: rejected as malformed (${r.message})`)
            has(r.message, part, what)
        }
        check(parseDhcp(vec("d_ack"), XID, MAC).ok, "control: the unmodified ACK parses")
        const high = parseDhcp(vec("d_ack_high"), XID, MAC)
        check(high.ok, "options 60..254 are skipped: " + high.message)
        eq(`${high.lease} ${high.server} ${high.mask} "${high.gateway}" ${high.dns.length}`, '600 192.168.1.1 255.255.255.0 "" 0', "fields of the ACK with high options")
        foreign(reply("d_ack", XID + 1), "xid", "xid off by one")
        const other = vec("d_ack")
        other[33] ^= 1
        foreign(other, "chaddr 020000123457", "other MAC")
        const req = vec("d_ack")
        req[0] = 1
        foreign(req, "op 1", "a request")
        bad(vec("d_cookie"), "magic cookie 63825364", "cookie")
        bad(vec("d_badlen"), "option 51 must be 4 bytes, got 3", "lease length")
        bad(vec("d_dnslen"), "option 6 must be a multiple of 4 bytes, got 5", "dns length")
        bad(vec("d_past"), "option 51 at offset", "option past the end")
        bad(vec("d_nolen"), "has no length byte", "no length byte")
        bad(vec("d_noend"), "no end option", "no end option")
        bad(vec("d_notype"), "no message type", "no type")
        bad(vec("d_type3"), "message type 3", "type 3")
        bad(vec("d_nosrv"), "without server identifier", "offer without 54")
        bad(vec("d_zeroip"), "no address", "ACK without yiaddr")
        const hw = vec("d_ack")
        hw[2] = 16
        bad(hw, "htype/hlen 1/16", "hlen")
    })
    test("truncated at every length", async () => {
        await vectors()
        const full = vec("d_ack")
        const len: number = V.meta.ackLen
        eq(full.length, len, "vector length")
        for (let cut = 0; cut < len; cut++) {
            const r = parseDhcp(full.slice(0, cut), XID, MAC)
            if (r.ok) throw new Error(`ACK cut to ${cut} of ${len} bytes was accepted`)
            check(typeof r.message === "string" && r.message.length > 0, `cut ${cut}: message`)
            if (!(cut & 7)) await ds.sleep(0)
        }
        check(parseDhcp(full, XID, MAC).ok, "whole ACK")
    })
})

/** Runs a DhcpClient to BOUND with the d_offer and `ack` vectors; returns it and the time. */
function bind(c: DhcpClient, ack = "d_ack") {
    const d = c.poll(0)
    const xid = getU32(d.send.data, 4)
    c.poll(100, reply("d_offer", xid))
    const a = c.poll(200, reply(ack, xid))
    eq(a.event, "bound", "bound event")
    return a
}

describe("dhcp client", () => {
    test("replies read without sname and file until a server overloads them: then whole", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", lcg(5))
        const xid = getU32(c.poll(0).send.data, 4)
        const offer = reply("d_offer", xid)
        offer.fillAt(SNAME_AT, OPTIONS_AT - SNAME_AT, 0)
        c.poll(100, offer, true)
        eq(c.state, "requesting", "an OFFER read in part")
        check(!c.readWhole, "no reason to read whole yet")
        const ack = reply("d_overload", xid)
        const part = reply("d_overload", xid)
        part.fillAt(SNAME_AT, OPTIONS_AT - SNAME_AT, 0)
        let a = c.poll(200, part, true)
        check(a.event === undefined && c.state === "requesting", "the overloaded ACK read in part is dropped")
        check(c.readWhole, "readWhole set")
        eq(c.counters.bad, 1, "counted as bad")
        a = c.poll(300, ack, false)
        eq(a.event, "bound", "the ACK read whole binds")
        eq(c.lease.gateway + " " + c.lease.lease, "192.168.1.254 1200", "options from the file field")
    })
    test("full lease cycle: bound, renew at T1, rebind at T2, lost at the end", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", lcg(7))
        eq(c.state, "init", "starts in INIT")
        let a = c.poll(0)
        eq(c.state, "selecting", "state")
        eq(a.send.to, "255.255.255.255", "discover is broadcast")
        eq(a.send.port, 67, "to port 67")
        eq(a.send.data[242], 1, "DHCPDISCOVER")
        check(a.wakeAt >= 3000 && a.wakeAt <= 5000, `first retransmission at 4 s +/- 1 s, got ${a.wakeAt}`)
        const xid = getU32(a.send.data, 4)
        // someone else's offer
        a = c.poll(50, reply("d_offer", xid + 1))
        check(!a.send && c.state === "selecting", "foreign offer ignored")
        eq(c.counters.foreign, 1, "foreign counted")
        a = c.poll(100, reply("d_offer", xid))
        eq(c.state, "requesting", "state after OFFER")
        eq(a.send.to, "255.255.255.255", "request is broadcast")
        const req = a.send.data
        eq(req[242], 3, "DHCPREQUEST")
        eq(getU32(req, 4), xid, "same xid")
        eq(optIp(req, 50), YIADDR, "option 50")
        eq(optIp(req, 54), SERVER, "option 54")
        eq(getU32(req, 12), 0, "no ciaddr while selecting")
        a = c.poll(200, reply("d_ack", xid))
        eq(a.event, "bound", "event")
        eq(c.state, "bound", "state")
        const l = c.lease
        eq(`${l.ip} ${l.mask} ${l.gateway} ${l.dns.join(",")} ${l.server}`, "192.168.1.50 255.255.255.0 192.168.1.1 192.168.1.1,8.8.8.8,1.1.1.1 192.168.1.1", "lease")
        eq(`${l.lease} ${l.t1} ${l.t2}`, "7200 1000 5000", "times from options 51, 58, 59")
        eq(a.wakeAt, 200 + 1000000, "wake at T1")
        a = c.poll(500000)
        check(!a.send && a.wakeAt === 1000200, "nothing to do before T1")
        a = c.poll(1000200)
        eq(c.state, "renewing", "T1: renewing")
        eq(a.send.to, SERVER, "renew is unicast to the server")
        eq(a.send.data[242], 3, "renew is a REQUEST")
        eq(formatIp(a.send.data, 12), YIADDR, "ciaddr")
        check(findOpt(a.send.data, 50) < 0 && findOpt(a.send.data, 54) < 0, "no 50/54 when renewing")
        eq(getU16(a.send.data, 10), 0, "no broadcast flag")
        let renews = 1
        let now = a.wakeAt
        eq(now, 1000200 + 2000000, "first renew retransmission after half the time to T2")
        for (let i = 0; i < 40 && c.state === "renewing"; i++) {
            a = c.poll(now)
            check(!!a.send, "a retransmission at each wake")
            if (c.state === "renewing") {
                renews++
                eq(a.send.to, SERVER, "renew retransmission unicast")
                check(now < 5000200, "renewing only before T2")
                check(a.wakeAt - now >= 60000 || a.wakeAt === 5000200, `retransmit >= 60 s apart or at T2 (${now} -> ${a.wakeAt})`)
            }
            now = a.wakeAt
        }
        eq(c.state, "rebinding", "T2: rebinding")
        check(renews >= 5, `renew retransmitted (${renews})`)
        eq(a.send.to, "255.255.255.255", "rebind is broadcast")
        eq(formatIp(a.send.data, 12), YIADDR, "rebind ciaddr")
        check(findOpt(a.send.data, 54) < 0, "no server id when rebinding")
        for (let i = 0; i < 40 && c.state === "rebinding"; i++) {
            a = c.poll(now)
            if (c.state === "rebinding") check(now < 7200200, "rebinding only before the lease ends")
            now = a.wakeAt
        }
        eq(a.event, "lost", "lease end: lost")
        eq(c.state, "selecting", "back to INIT -> SELECTING")
        eq(c.lease, undefined, "lease gone")
        eq(a.send.data[242], 1, "a new DISCOVER")
        eq(c.counters.lost, 1, "lost counted")
        has(c.lastError, "expired", "why")
    })
    test("renew and rebind succeed", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", lcg(3))
        bind(c)
        let a = c.poll(1000200)
        let x = getU32(a.send.data, 4)
        a = c.poll(1000300, reply("d_ack", x))
        eq(a.event, "renewed", "renewed")
        eq(c.state, "bound", "bound again")
        eq(a.wakeAt, 1000300 + 1000000, "next T1 from the renewal")
        // silent until T2, then the ACK to the rebind
        let now = a.wakeAt
        for (let i = 0; i < 40 && c.state !== "rebinding"; i++) {
            a = c.poll(now)
            now = a.wakeAt
        }
        eq(c.state, "rebinding", "rebinding")
        x = getU32(a.send.data, 4)
        // an ACK for another exchange is ignored
        a = c.poll(now - 10, reply("d_ack", x + 1))
        eq(c.state, "rebinding", "stale ACK ignored")
        const moved = reply("d_ack", x)
        moved[19] = 77 // yiaddr 192.168.1.77
        a = c.poll(now - 5, moved)
        eq(a.event, "bound", "a different address is a new binding")
        eq(c.lease.ip, "192.168.1.77", "new address")
        eq(c.counters.acks, 3, "acks")
    })
    test("backoff 4, 8, 16, 32 s with +/-1 s jitter", () => {
        for (const r of [0, 0.5, 0.999999]) {
            const c = new DhcpClient(MAC, "", constant(r))
            let a = c.poll(0)
            let now = 0
            const delays: number[] = []
            for (let i = 0; i < 6; i++) {
                delays.push(a.wakeAt - now)
                now = a.wakeAt
                a = c.poll(now)
                eq(a.send.data[242], 1, "retransmits DISCOVER")
            }
            const j = Math.round((r * 2 - 1) * 1000)
            eq(delays.join(","), [4000 + j, 8000 + j, 16000 + j, 32000 + j, 32000 + j, 32000 + j].join(","), `schedule with random ${r}`)
            eq(c.counters.timeouts, 6, "timeouts")
        }
    })
    test("REQUEST retried 4 times, then a new DISCOVER", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "", half)
        const x = getU32(c.poll(0).send.data, 4)
        let a = c.poll(10, reply("d_offer", x))
        const kinds: number[] = [a.send.data[242]]
        const gaps: number[] = []
        let now = 10
        for (let i = 0; i < 4; i++) {
            gaps.push(a.wakeAt - now)
            now = a.wakeAt
            a = c.poll(now)
            kinds.push(a.send.data[242])
        }
        eq(kinds.join(","), "3,3,3,3,1", "REQUEST x4 then DISCOVER")
        eq(gaps.join(","), "4000,8000,16000,32000", "request backoff")
        eq(c.state, "selecting", "selecting again")
    })
    test("NAK while requesting restarts, NAK while renewing loses the lease", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", lcg(11))
        const x = getU32(c.poll(0).send.data, 4)
        c.poll(10, reply("d_offer", x))
        let a = c.poll(20, reply("d_nak", x))
        eq(c.state, "selecting", "NAK -> INIT -> SELECTING")
        eq(a.send.data[242], 1, "DISCOVER at once")
        eq(a.event, undefined, "no event: nothing was bound")
        has(c.lastError, "NAK: address not available", "why")
        eq(c.counters.naks, 1, "naks")
        const b = new DhcpClient(MAC, "w55rp20", lcg(12))
        bind(b)
        a = b.poll(1000200)
        a = b.poll(1000300, reply("d_nak", getU32(a.send.data, 4)))
        eq(a.event, "lost", "NAK while renewing: lost")
        eq(b.state, "selecting", "starts over")
        eq(b.lease, undefined, "no lease")
        // a NAK text that is not UTF-8 is kept as hex, so logging lastError cannot crash the VM
        const u = new DhcpClient(MAC, "w55rp20", lcg(13))
        const ux = getU32(u.poll(0).send.data, 4)
        u.poll(10, reply("d_offer", ux))
        u.poll(20, reply("d_nak_utf8", ux))
        has(u.lastError, "(not UTF-8: 6e6fc328)", "NAK text as hex")
        console.log(`lastError: ${u.lastError}`)
    })
    test("INIT-REBOOT after a link outage: REQUEST for the lease; ACK keeps it, NAK or silence loses it", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", half)
        c.reboot(0)
        eq(c.state, "init", "nothing to confirm without a lease")
        bind(c)
        c.reboot(5000)
        eq(c.state, "rebooting", "state")
        let a = c.poll(5000)
        const req = a.send.data
        eq(a.send.to, "255.255.255.255", "broadcast")
        eq(req[242], 3, "DHCPREQUEST")
        eq(optIp(req, 50), YIADDR, "option 50: the leased address")
        eq(findOpt(req, 54), -1, "no server identifier")
        eq(getU32(req, 12), 0, "ciaddr 0")
        eq(req[10], 0x80, "BROADCAST flag")
        eq(c.counters.timeouts, 0, "the first request is no retransmission")
        eq(c.lease.ip, YIADDR, "the lease is kept while it is confirmed")
        a = c.poll(5100, reply("d_ack", getU32(req, 4)))
        eq(a.event, "renewed", "ACK: same address")
        eq(c.state, "bound", "bound again")
        // NAK: another network
        c.reboot(6000)
        a = c.poll(6000)
        a = c.poll(6100, reply("d_nak", getU32(a.send.data, 4)))
        eq(a.event, "lost", "NAK loses the lease")
        eq(c.state, "selecting", "discovery")
        eq(a.send.data[242], 1, "DISCOVER at once")
        // silence: 4 REQUESTs 4, 8, 16, 32 s apart, then the lease is lost
        const s = new DhcpClient(MAC, "", half)
        bind(s)
        s.reboot(1000)
        a = s.poll(1000)
        const kinds: number[] = [a.send.data[242]]
        const gaps: number[] = []
        let now = 1000
        for (let i = 0; i < 4; i++) {
            gaps.push(a.wakeAt - now)
            now = a.wakeAt
            a = s.poll(now)
            kinds.push(a.send.data[242])
        }
        eq(kinds.join(","), "3,3,3,3,1", "REQUEST x4 then DISCOVER")
        eq(gaps.join(","), "4000,8000,16000,32000", "backoff")
        eq(a.event, "lost", "lost after ~60 s of silence")
        has(s.lastError, "no answer to INIT-REBOOT for " + YIADDR, "why")
    })

    test("lease defaults, infinite lease, unusable ACKs", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "", lcg(5))
        let a = bind(c, "d_ack_min")
        eq(`${c.lease.t1} ${c.lease.t2} ${c.lease.mask} "${c.lease.gateway}"`, '300 525 255.255.255.0 ""', "T1 = lease/2, T2 = 7/8 lease")
        eq(a.wakeAt, 200 + 300000, "wake at T1")
        const f = new DhcpClient(MAC, "", lcg(6))
        a = bind(f, "d_ack_inf")
        check(a.wakeAt > 1e11, "an infinite lease never renews in practice")
        const n = new DhcpClient(MAC, "", lcg(8))
        const x = getU32(n.poll(0).send.data, 4)
        n.poll(10, reply("d_offer", x))
        a = n.poll(20, reply("d_ack_nol", x))
        eq(n.state, "requesting", "ACK without lease time ignored")
        has(n.lastError, "without lease time", "why")
        const other = reply("d_ack", x)
        other[findOpt(other, 54) + 5] = 2 // server id 192.168.1.2
        a = n.poll(30, other)
        eq(n.state, "requesting", "ACK from a server we did not choose ignored")
        n.poll(40, Buffer.alloc(3))
        n.poll(50, reply("d_cookie", x))
        eq(n.counters.bad, 3, "bad replies counted")
        eq(n.state, "requesting", "still requesting")
        check(n.poll(60, reply("d_ack", x)).event === "bound", "the right ACK binds")
        throws(() => new DhcpClient(Buffer.alloc(4), "x", half), "mac must be 6 bytes", "bad MAC")
    })
    test("decline and release", async () => {
        await vectors()
        const c = new DhcpClient(MAC, "w55rp20", lcg(9))
        bind(c)
        let a = dhcpGiveBack(c, "decline", 1000)
        eq(a.event, "lost", "decline drops the address")
        eq(a.send.to, "255.255.255.255", "DECLINE is broadcast")
        eq(a.send.data[242], 4, "DHCPDECLINE")
        eq(optIp(a.send.data, 50) + " " + optIp(a.send.data, 54), "192.168.1.50 192.168.1.1", "50 and 54")
        eq(findOpt(a.send.data, 55), -1, "no parameter list")
        eq(a.wakeAt, 11000, "waits 10 s")
        check(!c.poll(5000).send, "quiet for 10 s")
        eq(c.poll(11000).send.data[242], 1, "then DISCOVER")
        const r = new DhcpClient(MAC, "w55rp20", lcg(10))
        bind(r)
        a = dhcpGiveBack(r, "release", 2000)
        eq(a.send.to, SERVER, "RELEASE unicast to the server")
        eq(a.send.data[242], 7, "DHCPRELEASE")
        eq(formatIp(a.send.data, 12), YIADDR, "ciaddr")
        eq(optIp(a.send.data, 54), SERVER, "server id")
        eq(r.lease, undefined, "lease given back")
        check(!dhcpGiveBack(r, "release", 2001).send, "nothing to release twice")
    })
})

describe("dns", () => {
    test("query bytes (checked in Node) and name validation", () => {
        const q = buildQuery(0xbeef, "www.example.com")
        eq(q.toString("hex"), "beef0100000100000000000003777777076578616d706c6503636f6d0000010001", "query bytes")
        emit("dns-query", q)
        eq(buildQuery(0xbeef, "WWW.Example.COM.").toString("hex"), q.toString("hex"), "case and trailing dot")
        eq(nameError("a-b_c.example"), "", "- and _ allowed")
        let l63 = ""
        for (let i = 0; i < 63; i++) l63 += "a"
        eq(nameError(l63 + ".com"), "", "63-character label")
        has(nameError(l63 + "a.com"), "label longer than 63", "64-character label")
        const total = `${l63}.${l63}.${l63}.${l63.slice(0, 61)}`
        eq(total.length, 253, "test name length")
        eq(nameError(total), "", "253 characters")
        has(nameError(total + "a"), "254 characters long (at most 253)", "254 characters")
        has(nameError(""), "is empty", "empty")
        has(nameError("."), "is empty", "root")
        has(nameError("a..b"), "empty label at position 2", "empty label")
        has(nameError(".a"), "empty label at position 0", "leading dot")
        has(nameError("a b.com"), 'bad character " " at position 1', "space")
        throws(() => buildQuery(1, "a..b"), 'dns: name "a..b" has an empty label', "buildQuery validates")
    })
    test("answers: plain, compressed CNAME chain, case", async () => {
        await vectors()
        let r = parseResponse(vec("n_simple"), 0x1234, "example.com")
        check(r.ok, "simple: " + r.message)
        eq(r.addresses.join(","), "93.184.216.34,93.184.216.35", "addresses")
        eq(r.ttl, 200, "smallest TTL")
        r = parseResponse(vec("n_cname"), 0xbeef, "WWW.EXAMPLE.COM.")
        check(r.ok, "cname: " + r.message)
        eq(r.addresses.join(","), "10.1.2.3,10.1.2.4", "only the chain's A records (not evil.example.org)")
        eq(r.ttl, 60, "TTL is the chain's minimum")
        r = parseResponse(vec("n_ttltop"), 0x0303, "t.example.com")
        check(r.ok && r.ttl === 0, "a TTL with the top bit set counts as 0")
    })
    test("errors: id, QR, RCODE, TC, question, no A record", async () => {
        await vectors()
        const err = (name: string, id: number, q: string, kind: string, part: string) => {
            const r = parseResponse(vec(name), id, q)
            check(!r.ok, `${name} rejected`)
            eq(r.error, kind, `${name} error kind`)
            has(r.message, part, name)
            return r
        }
        err("n_simple", 0x1235, "example.com", "id", "response id 4660 is not our query's (4661)")
        err("n_qr0", 0x1234, "example.com", "notResponse", "not a response")
        eq(err("n_nx", 0x1234, "nope.example.com", "nxdomain", "nope.example.com does not exist").rcode, 3, "rcode 3")
        eq(err("n_servfail", 0x1234, "example.com", "rcode", "SERVFAIL (RCODE 2)").rcode, 2, "rcode 2")
        err("n_refused", 0x1234, "example.com", "rcode", "REFUSED")
        err("n_refused_noq", 0x1234, "example.com", "rcode", "REFUSED (RCODE 5)")
        err("n_nx_other", 0x1234, "example.com", "question", '"other.example.com"')
        err("n_tc", 0x1234, "example.com", "truncated", "truncated")
        err("n_noa", 0x1234, "example.com", "noAddress", "no A record for example.com")
        err("n_q", 0x1234, "example.com", "question", '"other.example.com"')
        err("n_cloop", 0x0202, "a.example.com", "noAddress", "a.example.com -> b.example.com -> a.example.com")
    })
    test("malformed names and records", async () => {
        await vectors()
        const bad = (name: string, part: string) => {
            const r = parseResponse(vec(name), 0x0101, "a.com")
            check(!r.ok, `${name} rejected`)
            eq(r.error, "format", `${name} kind (${r.message})`)
            has(r.message, part, name)
        }
        bad("n_loop", "more than 16 compression pointers")
        bad("n_loop2", "more than 16 compression pointers")
        bad("n_qloop", "more than 16 compression pointers")
        bad("n_jumps", "more than 16 compression pointers")
        bad("n_oob", "pointer at 23 to 255 is outside")
        bad("n_oob2", "to 16383 is outside")
        bad("n_bits01", "label length byte 65 at 23 uses the reserved top bits")
        bad("n_bits10", "label length byte 129")
        bad("n_utf8", "is not valid UTF-8")
        bad("n_long", "longer than 255 bytes")
        bad("n_alen", "5 bytes of data, expected 4")
        bad("n_rdpast", "data runs past the end")
        bad("n_cnpast", "CNAME 0 runs past its data")
        const short = parseResponse(Buffer.alloc(11), 0, "a.com")
        check(!short.ok && short.error === "format", "11 bytes")
        has(short.message, "shorter than the 12-byte header", "short message")
    })
    test("truncated at every length", async () => {
        await vectors()
        const full = vec("n_cname")
        for (let cut = 0; cut < full.length; cut++) {
            const r = parseResponse(full.slice(0, cut), 0xbeef, "www.example.com")
            if (r.ok || (cut >= 12 && r.error !== "format")) throw new Error(`cut ${cut}: ${r.ok ? "accepted" : r.error}`)
            if (!(cut & 7)) await ds.sleep(0)
        }
        check(parseResponse(full, 0xbeef, "www.example.com").ok, "whole message")
    })
    test("cache: TTL, bound, eviction", () => {
        const c = dnsCache(2, 100)
        cachePut(c, "A.example.com.", ["1.1.1.1"], 10, 0)
        eq(cacheGet(c, "a.example.com", 9999).join(","), "1.1.1.1", "hit before the TTL (any case)")
        eq(cacheGet(c, "a.example.com", 10000), undefined, "expired")
        eq(c.entries.length, 0, "expired entry dropped")
        cachePut(c, "zero.example.com", ["1.1.1.1"], 0, 0)
        eq(c.entries.length, 0, "TTL 0 is not cached")
        cachePut(c, "b.example.com", ["2.2.2.2"], 50, 0)
        cachePut(c, "c.example.com", ["3.3.3.3"], 20, 0)
        cachePut(c, "d.example.com", ["4.4.4.4"], 30, 0)
        eq(c.entries.length, 2, "bounded")
        eq(cacheGet(c, "c.example.com", 1), undefined, "the entry expiring first was evicted")
        eq(cacheGet(c, "b.example.com", 1).join(","), "2.2.2.2", "b kept")
        cachePut(c, "b.example.com", ["5.5.5.5"], 100000, 0)
        eq(c.entries.length, 2, "replaced, not added")
        eq(cacheGet(c, "b.example.com", 99999).join(","), "5.5.5.5", "replaced value")
        eq(cacheGet(c, "b.example.com", 100000), undefined, "TTL capped at maxTtl")
    })
    test("resolver: timeout, next server, stray answers, cache", async () => {
        await vectors()
        const r = new DnsResolver(["10.0.0.1", "10.0.0.2"], lcg(21), { timeoutMs: 2000, tries: 2 })
        let a = r.lookup("example.com", 0)
        eq(a.send.to, "10.0.0.1", "first server")
        eq(a.send.port, 53, "port 53")
        eq(a.wakeAt, 2000, "timeout")
        check((r as any).id >= 0, "busy (a query id while a lookup is under way)")
        const id1 = getU16(a.send.data, 0)
        a = r.poll(1000)
        check(!a.send && !a.result, "waiting")
        const stray = vec("n_simple")
        setU16(stray, 0, id1 ^ 1)
        a = r.poll(2000, stray)
        eq(a.send.to, "10.0.0.2", "timeout (with a stray datagram arriving): second server")
        const id2 = getU16(a.send.data, 0)
        const late = vec("n_simple")
        setU16(late, 0, id1)
        check(id1 !== id2, "a new id for each attempt")
        a = r.poll(2100, late)
        check(!a.result, "the first query's late answer is ignored")
        eq(r.counters.foreign, 2, "foreign counted")
        const good = vec("n_simple")
        setU16(good, 0, id2)
        a = r.poll(2200, good)
        check(a.result && a.result.ok, "answer")
        eq(a.result.addresses.join(","), "93.184.216.34,93.184.216.35", "addresses")
        check((r as any).id < 0, "idle")
        a = r.lookup("EXAMPLE.com", 3000)
        check(!a.send && a.result.ok && a.result.addresses.length === 2, "second lookup from the cache")
        eq(r.counters.cacheHits, 1, "cache hit")
        eq(r.counters.timeouts, 1, "timeouts")
    })
    test("resolver: SERVFAIL moves on, NXDOMAIN ends, all silent times out", async () => {
        await vectors()
        const r = new DnsResolver(["10.0.0.1", "10.0.0.2"], lcg(22), { timeoutMs: 1000, tries: 2 })
        let a = r.lookup("example.com", 0)
        const sf = vec("n_servfail")
        setU16(sf, 0, getU16(a.send.data, 0))
        a = r.poll(10, sf)
        eq(a.send.to, "10.0.0.2", "SERVFAIL: next server at once")
        const nx = vec("n_nx")
        a = r.lookup("nope.example.com", 20)
        setU16(nx, 0, getU16(a.send.data, 0))
        a = r.poll(30, nx)
        check(a.result && !a.result.ok && a.result.error === "nxdomain", "NXDOMAIN ends the lookup")
        a = r.lookup("silent.example.com", 100)
        const to: string[] = [a.send.to]
        let now = 100
        for (let i = 0; i < 10 && !a.result; i++) {
            now = a.wakeAt
            a = r.poll(now)
            if (a.send) to.push(a.send.to)
        }
        eq(to.join(","), "10.0.0.1,10.0.0.2,10.0.0.1,10.0.0.2", "two rounds over both servers")
        check(a.result && a.result.error === "timeout", "timeout")
        has(a.result.message, "no answer for silent.example.com from 10.0.0.1, 10.0.0.2 after 4 tries", "message")
        eq(now, 100 + 4000, "after four timeouts")
        const lit = r.lookup("192.168.1.9", 0)
        check(lit.result.ok && lit.result.addresses[0] === "192.168.1.9", "IP literal")
        eq(r.lookup("bad..name", 0).result.error, "name", "bad name")
        eq(new DnsResolver([], half).lookup("example.com", 0).result.error, "noServer", "no server")
    })
})

describe("sntp", () => {
    test("request bytes (checked in Node) and the era rule", () => {
        const b = buildRequest(1700000000123.5)
        eq(b.length, 48, "48 bytes")
        eq(b[0], 0x23, "LI 0, VN 4, mode 3")
        emit("sntp-request", b)
        const t = Buffer.alloc(8)
        setU32(t, 0, 0x80000000)
        eq(readNtpTime(t, 0), (0x80000000 - 2208988800) * 1000, "top bit set: era 0 (1968..2036)")
        setU32(t, 0, 0x7fffffff)
        eq(readNtpTime(t, 0), (0x7fffffff + 4294967296 - 2208988800) * 1000, "top bit clear: era 1 (2036..2104)")
        setU32(t, 4, 0x80000000)
        const ms = readNtpTime(t, 0)
        eq(ms - Math.floor(ms / 1000) * 1000, 500, "fraction")
    })
    test("replies from Node: offset, delay, era rollover", async () => {
        await vectors()
        const m = V.meta.ntpOk
        let r = parseReply(vec("t_ok"), m.sentTx, m.t4)
        check(r.ok, "ok: " + r.message)
        near(r.offset, m.offset, "offset")
        near(r.delay, m.delay, "delay")
        near(r.unixMs, m.unixMs, "unix time at t4")
        eq(r.stratum, 2, "stratum")
        check(parseReply(vec("t_v3"), m.sentTx, m.t4).ok, "version 3 reply")
        check(parseReply(vec("t_long"), m.sentTx, m.t4).ok, "reply with extension bytes")
        const e = V.meta.ntpEra
        r = parseReply(vec("t_era"), e.sentTx, e.t4)
        check(r.ok, "era: " + r.message)
        near(r.unixMs, e.unixMs, "unix time after the 2036 rollover")
        check(r.unixMs > 2090000000000, "2036 rollover handled")
    })
    test("rejected replies", async () => {
        await vectors()
        const m = V.meta.ntpOk
        const bad = (name: string, kind: string, part: string) => {
            const r = parseReply(vec(name), m.sentTx, m.t4)
            check(!r.ok, `${name} rejected`)
            eq(r.error, kind, `${name} kind`)
            has(r.message, part, name)
            return r
        }
        eq(bad("t_kod", "kod", `kiss-o'-death "RATE"`).code, "RATE", "kiss code")
        bad("t_li3", "unsynced", "LI 3")
        bad("t_zero", "zeroTx", "transmit timestamp is zero")
        bad("t_mode3", "mode", "mode 3, expected 4")
        bad("t_str16", "stratum", "stratum 16, expected 1..15")
        bad("t_origin", "origin", "does not echo")
        bad("t_short", "format", "47 bytes")
        const full = vec("t_ok")
        for (let cut = 0; cut < 48; cut++) eq(parseReply(full.slice(0, cut), m.sentTx, m.t4).error, "format", `cut ${cut}`)
        eq(parseReply(vec("t_ok"), m.sentTx + 0.001, m.t4).error, "origin", "another request's echo")
    })
    test("client: servers in turn, kiss-o'-death, sync, resync, failure backoff", async () => {
        await vectors()
        const m = V.meta.ntpOk
        const c = new SntpClient(["10.0.0.1", "10.0.0.2", "10.0.0.3"], () => 0, { timeoutMs: 1000, tries: 1, intervalMs: 60000, retryMs: 5000 })
        eq(c.unixTime(0), -1, "no time before a sync")
        let a = c.poll(0)
        eq(a.send.to + ":" + a.send.port, "10.0.0.1:123", "first server")
        a = c.poll(1000)
        eq(a.send.to, "10.0.0.2", "timeout: next server")
        let sent = a.send.data
        // the reply template with our request's transmit timestamp echoed at 24
        const echo = (name: string) => {
            const b = vec(name)
            b.blitAt(24, sent, 40, 8)
            return b
        }
        a = c.poll(1100, echo("t_kod"))
        eq(a.send.to, "10.0.0.3", "kiss-o'-death: next server")
        sent = a.send.data
        has(c.lastError, "RATE", "why")
        a = c.poll(1150, echo("t_mode3"))
        check(!a.send && c.counters.foreign === 1, "a non-reply is ignored")
        const t4 = 1200
        a = c.poll(t4, echo("t_ok"))
        eq(a.event, "synced", "synced")
        const offset = (m.T2 - 1100 + (m.T3 - t4)) / 2
        near(c.offset, offset, "offset")
        near(c.unixTime(t4), t4 + offset, "unix time")
        eq(a.wakeAt, t4 + 60000, "resync after the interval")
        a = c.poll(t4 + 60000)
        eq(a.send.to, "10.0.0.3", "resync asks the server that answered")
        let now = t4 + 60000
        const fails: number[] = []
        for (let i = 0; i < 12 && fails.length < 3; i++) {
            now = a.wakeAt
            a = c.poll(now)
            if (a.event === "failed") fails.push(a.wakeAt - now)
        }
        eq(fails.join(","), "5000,10000,20000", "failed rounds back off")
        check(c.synced, "keeps the last offset after failures")
        eq(c.counters.failures, 3, "failures")
        const none = new SntpClient([], half)
        eq(none.poll(0).event, "failed", "no server")
        has(none.lastError, "no NTP server", "why")
    })

    test("client: kiss-o'-death DENY and RSTR stop requests to that server, RATE backs off", async () => {
        await vectors()
        const c = new SntpClient(["10.0.0.1", "10.0.0.2"], () => 0, { timeoutMs: 1000, tries: 2, intervalMs: 60000, retryMs: 5000 })
        // a kiss-o'-death reply to the request in `a`, with kiss code `code`
        const kiss = (a: any, code: string) => {
            const b = vec("t_kod")
            b.blitAt(24, a.send.data, 40, 8)
            b.blitAt(12, Buffer.from(code), 0, 4)
            return b
        }
        let a = c.poll(0)
        eq(a.send.to, "10.0.0.1", "first server")
        a = c.poll(100, kiss(a, "DENY"))
        eq(a.event, "kod", "reported")
        has(c.lastError, "10.0.0.1 sent kiss-o'-death DENY: no more requests to it", "why")
        eq(a.send.to, "10.0.0.2", "next server")
        a = c.poll(200, kiss(a, "RSTR"))
        eq(c.denied.join(), "10.0.0.1,10.0.0.2", "both refused")
        eq(a.event, "failed", "nobody left: the round fails at once")
        has(c.lastError, "RSTR", "why")
        eq(c.counters.sent, 2, "no request to a refusing server")
        for (let i = 0; i < 3; i++) {
            a = c.poll(a.wakeAt)
            eq(a.event, "failed", "still refused")
            eq(a.send, undefined, "nothing sent")
        }
        eq(c.counters.sent, 2, "never asked again")
        has(c.lastError, "refused by 10.0.0.1, 10.0.0.2", "why")
        // RATE: the next round waits the whole interval instead of the 5 s retry
        const r = new SntpClient(["10.0.0.3"], () => 0, { timeoutMs: 1000, tries: 1, intervalMs: 60000, retryMs: 5000 })
        a = r.poll(0)
        a = r.poll(100, kiss(a, "RATE"))
        eq(a.event, "failed", "the only server: round over")
        has(r.lastError, "RATE: asking less often", "why")
        eq(a.wakeAt, 100 + 60000, "backed off to the interval")
        eq(r.denied.length, 0, "RATE does not stop requests")
    })
})

describe("fuzz", () => {
    test("mutated vectors never crash a parser", async () => {
        await vectors()
        const rnd = lcg(12345)
        const srcs = ["d_ack", "n_cname", "t_ok", "n_simple", "d_overload"]
        let accepted = 0
        for (let i = 0; i < 400; i++) {
            const name = srcs[i % srcs.length]
            let b = vec(name)
            const flips = 1 + Math.floor(rnd() * 3)
            for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256)
            if (rnd() < 0.3) b = b.slice(0, Math.floor(rnd() * b.length))
            let r: any
            const kind = name.slice(0, 1)
            if (kind === "d") r = parseDhcp(b, XID, MAC)
            else if (kind === "n") r = parseResponse(b, getU16(b, 0), "www.example.com")
            else r = parseReply(b, V.meta.ntpOk.sentTx, V.meta.ntpOk.t4)
            check(r.ok === true || (r.ok === false && typeof r.message === "string"), `${name} #${i}: a result`)
            if (r.ok) accepted++
            if (!(i & 7)) await ds.sleep(0)
        }
        check(accepted > 0 && accepted < 400, `some mutations accepted, most not (${accepted})`)
    })
    test("hostile packets cost a bounded number of VM steps", async () => {
        await vectors()
        // DNS: 1472 bytes, ~100 records whose owners point at a chain of 100 one-letter labels
        const m = Buffer.alloc(1472)
        m.blitAt(0, hex`0000 8180 0001 ffff 0000 0000 0161 03636f6d 00 0001 0001`, 0, 23)
        let p = 23
        m.blitAt(p, hex`c00c 0063 0001 00000000 00ca`, 0, 12)
        p += 12
        const chain = p
        for (let i = 0; i < 100; i++) {
            m[p++] = 1
            m[p++] = 98
        }
        m[p++] = 0xc0
        m[p++] = 12
        for (; p + 12 <= m.length; p += 12) {
            m.blitAt(p, hex`c000 0010 0001 00000000 0000`, 0, 12)
            m[p + 1] = chain
        }
        // DHCP: 1232 bytes of 2-byte options, and 1232 bytes of padding
        const d = Buffer.alloc(1472)
        d.blitAt(0, vec("d_ack"), 0, 240)
        const pads = d.slice(0)
        for (let i = 240; i < d.length; i += 2) d[i] = 15
        await ds.sleep(0)
        // four of each without a yield: each must stay well under a quarter of the ~128K step limit
        for (let k = 0; k < 4; k++) {
            const r = parseResponse(m, 0, "a.com")
            check(!r.ok, "hostile DNS rejected")
            has(r.message, "more than 256 labels", "label budget")
        }
        await ds.sleep(0)
        for (let k = 0; k < 4; k++) {
            has(parseDhcp(d, XID, MAC).message, "more than 100 options", "option cap")
            has(parseDhcp(pads, XID, MAC).message, "no end option", "padding only")
        }
    })
})
