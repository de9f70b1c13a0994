/**
 * The W5500 emulator against the datasheet: SPI frames, registers, interrupts, buffers and
 * pointers, the TCP and UDP state machines over real loopback connections, the emulated LAN's
 * DHCP/DNS/NTP servers (probed with packets built here, independently of the servers' code), the
 * PHY link, the pins, and the bridge protocol over a real TCP connection.
 */
import { describe, test, type TestContext } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { W5500, type ChipNetwork, type UdpDatagram, type W5500Options } from "../../sim/w5500/chip.ts"
import { Lan, type LanOptions } from "../../sim/w5500/lan.ts"
import { compressNames } from "../../sim/w5500/dns-server.ts"
import dnsPacket from "dns-packet"
import { startBridge, OP, BRIDGE_MAGIC } from "../../sim/w5500/bridge.ts"
import { BSB, CMD, COMMON, IR, SN, SN_IR, SN_MR, SOCK, control } from "../../sim/w5500/registers.ts"

// ------------------------------------------------------------------ a tiny driver for the tests

interface Env {
    chip: W5500
    lan: Lan
    logs: string[]
    close(): void
}

function setup(opts: { chip?: W5500Options; lan?: LanOptions } = {}): Env {
    const logs: string[] = []
    const log = (level: string, msg: string) => { logs.push(`${level}: ${msg}`) }
    const lan = new Lan({ log, ...opts.lan })
    const chip = new W5500({ log, ...opts.chip, network: lan })
    lan.attach(chip)
    return { chip, lan, logs, close: () => { chip.close(); lan.close() } }
}

const S = (n: number) => BSB.sreg(n)
const r8 = (c: W5500, bsb: number, a: number) => c.read(bsb, a, 1)[0]
const r16 = (c: W5500, bsb: number, a: number) => { const b = c.read(bsb, a, 2); return (b[0] << 8) | b[1] }
const w8 = (c: W5500, bsb: number, a: number, v: number) => c.write(bsb, a, [v])
const w16 = (c: W5500, bsb: number, a: number, v: number) => c.write(bsb, a, [(v >> 8) & 0xff, v & 0xff])
const ipb = (s: string) => s.split(".").map(Number)
const ipOf = (b: Uint8Array, o = 0) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms
    while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await new Promise(r => setTimeout(r, 2))
    }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

function configure(c: W5500, ip = "192.168.50.100", mask = "255.255.255.0", gw = "192.168.50.1"): void {
    c.write(BSB.COMMON, COMMON.GAR, [...ipb(gw), ...ipb(mask), 0x02, 0x00, 0x00, 0x12, 0x34, 0x56, ...ipb(ip)])
}

async function cmd(c: W5500, n: number, v: number): Promise<void> {
    w8(c, S(n), SN.CR, v)
    await until(() => r8(c, S(n), SN.CR) === 0, `Sn_CR 0x${v.toString(16)} to clear`)
}

async function waitIr(c: W5500, n: number, mask: number): Promise<number> {
    await until(() => (r8(c, S(n), SN.IR) & mask) !== 0, `Sn_IR & 0x${mask.toString(16)}`)
    return r8(c, S(n), SN.IR)
}

async function openSocket(c: W5500, n: number, mode: number, port: number): Promise<void> {
    w8(c, S(n), SN.MR, mode)
    w16(c, S(n), SN.PORT, port)
    await cmd(c, n, CMD.OPEN)
}

function txWrite(c: W5500, n: number, data: ArrayLike<number>): void {
    const wr = r16(c, S(n), SN.TX_WR)
    c.write(BSB.stx(n), wr, data)
    w16(c, S(n), SN.TX_WR, (wr + data.length) & 0xffff)
}

async function udpSend(c: W5500, n: number, ip: string, port: number, data: ArrayLike<number>): Promise<"ok" | "timeout"> {
    assert.ok(r16(c, S(n), SN.TX_FSR) >= data.length)
    c.write(S(n), SN.DIPR, ipb(ip))
    w16(c, S(n), SN.DPORT, port)
    txWrite(c, n, data)
    await cmd(c, n, CMD.SEND)
    const ir = await waitIr(c, n, SN_IR.SEND_OK | SN_IR.TIMEOUT)
    w8(c, S(n), SN.IR, SN_IR.SEND_OK | SN_IR.TIMEOUT)
    return ir & SN_IR.SEND_OK ? "ok" : "timeout"
}

async function udpRecv(c: W5500, n: number): Promise<{ ip: string; port: number; data: Uint8Array }> {
    await until(() => r16(c, S(n), SN.RX_RSR) >= 8, `a datagram on socket ${n}`)
    const rd = r16(c, S(n), SN.RX_RD)
    const h = c.read(BSB.srx(n), rd, 8)
    const len = (h[6] << 8) | h[7]
    const data = c.read(BSB.srx(n), (rd + 8) & 0xffff, len)
    w16(c, S(n), SN.RX_RD, (rd + 8 + len) & 0xffff)
    await cmd(c, n, CMD.RECV)
    w8(c, S(n), SN.IR, SN_IR.RECV)
    return { ip: ipOf(h), port: (h[4] << 8) | h[5], data: Uint8Array.from(data) }
}

async function tcpConnect(c: W5500, n: number, ip: string, port: number): Promise<number> {
    await openSocket(c, n, SN_MR.TCP, 40000 + n)
    assert.equal(r8(c, S(n), SN.SR), SOCK.INIT)
    c.write(S(n), SN.DIPR, ipb(ip))
    w16(c, S(n), SN.DPORT, port)
    await cmd(c, n, CMD.CONNECT)
    await until(() => r8(c, S(n), SN.SR) !== SOCK.SYNSENT, "leaving SYNSENT")
    return r8(c, S(n), SN.SR)
}

async function tcpSend(c: W5500, n: number, data: ArrayLike<number>): Promise<void> {
    await until(() => r16(c, S(n), SN.TX_FSR) >= data.length, "TX space")
    txWrite(c, n, data)
    await cmd(c, n, CMD.SEND)
    await waitIr(c, n, SN_IR.SEND_OK)
    w8(c, S(n), SN.IR, SN_IR.SEND_OK)
}

/** Reads whatever is in the RX buffer (RX_RD, RECV). */
async function tcpRead(c: W5500, n: number): Promise<Uint8Array> {
    const len = r16(c, S(n), SN.RX_RSR)
    const rd = r16(c, S(n), SN.RX_RD)
    const data = Uint8Array.from(c.read(BSB.srx(n), rd, len))
    w16(c, S(n), SN.RX_RD, (rd + len) & 0xffff)
    await cmd(c, n, CMD.RECV)
    return data
}

/** A loopback TCP server that records its connections and what they sent. */
async function server(onConn?: (s: net.Socket) => void): Promise<{ port: number; conns: net.Socket[]; data: () => string; ended: () => boolean; close: () => Promise<void> }> {
    const conns: net.Socket[] = []
    let got = ""
    let ended = false
    const srv = net.createServer({ allowHalfOpen: true }, s => {
        conns.push(s)
        s.on("data", d => { got += d.toString("latin1") })
        s.on("end", () => { ended = true })
        s.on("error", () => {})
        onConn?.(s)
    })
    await new Promise<void>(r => srv.listen(0, "127.0.0.1", () => r()))
    return {
        port: (srv.address() as net.AddressInfo).port,
        conns,
        data: () => got,
        ended: () => ended,
        close: () => new Promise<void>(r => { for (const s of conns) s.destroy(); srv.close(() => r()) }),
    }
}

/** A loopback server, a chip on a LAN with its addresses set, and its socket `n` connected to the server; all closed after the test. */
async function connected(t: TestContext, onConn?: (s: net.Socket) => void, opts: { chip?: W5500Options; lan?: LanOptions } = {}, n = 0) {
    const srv = await server(onConn)
    const env = setup(opts)
    t.after(async () => { env.close(); await srv.close() })
    configure(env.chip)
    assert.equal(await tcpConnect(env.chip, n, "127.0.0.1", srv.port), SOCK.ESTABLISHED)
    return { ...env, srv }
}

async function freePort(): Promise<number> {
    const s = net.createServer()
    await new Promise<void>(r => s.listen(0, "127.0.0.1", () => r()))
    const p = (s.address() as net.AddressInfo).port
    await new Promise<void>(r => s.close(() => r()))
    return p
}

// ------------------------------------------------------------------ packets built by the tests

function dhcpPacket(type: number, mac: number[], xid: number, o: { broadcast?: boolean; ciaddr?: string; requested?: string; server?: string } = {}): Uint8Array {
    const b = new Uint8Array(300)
    b[0] = 1; b[1] = 1; b[2] = 6
    b[4] = xid >>> 24; b[5] = (xid >>> 16) & 0xff; b[6] = (xid >>> 8) & 0xff; b[7] = xid & 0xff
    if (o.broadcast ?? true) b[10] = 0x80
    if (o.ciaddr) b.set(ipb(o.ciaddr), 12)
    b.set(mac, 28)
    b.set([0x63, 0x82, 0x53, 0x63], 236)
    const opts = [53, 1, type, 61, 7, 1, ...mac, 55, 4, 1, 3, 6, 51]
    if (o.requested) opts.push(50, 4, ...ipb(o.requested))
    if (o.server) opts.push(54, 4, ...ipb(o.server))
    opts.push(255)
    b.set(opts, 240)
    return b
}

function dhcpParse(b: Uint8Array): { op: number; xid: number; yiaddr: string; chaddr: number[]; opts: Map<number, number[]> } {
    assert.ok(b.length >= 240, `DHCP reply of ${b.length} bytes`)
    assert.deepEqual([...b.subarray(236, 240)], [0x63, 0x82, 0x53, 0x63])
    const opts = new Map<number, number[]>()
    let i = 240
    while (i < b.length && b[i] !== 255) {
        if (b[i] === 0) { i++; continue }
        opts.set(b[i], [...b.subarray(i + 2, i + 2 + b[i + 1])])
        i += 2 + b[i + 1]
    }
    const xid = ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0
    return { op: b[0], xid, yiaddr: ipOf(b, 16), chaddr: [...b.subarray(28, 34)], opts }
}

const be32 = (a: number[]) => ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0

function dnsQuery(id: number, name: string, qtype = 1): Uint8Array {
    const labels = name.split(".").flatMap(l => [l.length, ...Buffer.from(l, "ascii")])
    return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, qtype, 0, 1])
}

function dnsSkipName(b: Uint8Array, i: number): number {
    for (let guard = 0; guard < 64; guard++) {
        const l = b[i]
        if (l === 0) return i + 1
        if ((l & 0xc0) === 0xc0) return i + 2
        i += 1 + l
    }
    throw new Error("name too long")
}

function dnsParse(b: Uint8Array): { id: number; qr: boolean; rcode: number; answers: { type: number; data: number[] }[] } {
    const id = (b[0] << 8) | b[1]
    const qd = (b[4] << 8) | b[5]
    const an = (b[6] << 8) | b[7]
    let i = 12
    for (let k = 0; k < qd; k++) i = dnsSkipName(b, i) + 4
    const answers: { type: number; data: number[] }[] = []
    for (let k = 0; k < an; k++) {
        i = dnsSkipName(b, i)
        const type = (b[i] << 8) | b[i + 1]
        const rdlen = (b[i + 8] << 8) | b[i + 9]
        answers.push({ type, data: [...b.subarray(i + 10, i + 10 + rdlen)] })
        i += 10 + rdlen
    }
    return { id, qr: (b[2] & 0x80) !== 0, rcode: b[3] & 0x0f, answers }
}

// ------------------------------------------------------------------ SPI frame and registers

describe("SPI frame format", () => {
    test("VERSIONR reads 0x04; MISO carries 01 02 03 during the header (as real chips do)", t => {
        const { chip, close } = setup()
        t.after(close)
        const out = chip.transfer(Uint8Array.of(0x00, 0x39, 0x00, 0xaa))
        assert.deepEqual([...out], [0x01, 0x02, 0x03, 0x04])
    })

    test("VDM auto-increments across register boundaries (common and socket blocks)", t => {
        const { chip, close } = setup()
        t.after(close)
        // GAR, SUBR, SHAR, SIPR in one frame starting at 0x0001
        const bytes = [192, 168, 50, 1, 255, 255, 255, 0, 2, 0, 0, 0xaa, 0xbb, 0xcc, 192, 168, 50, 123]
        chip.transfer(Uint8Array.from([0x00, 0x01, control(0, true), ...bytes]))
        assert.deepEqual([...chip.read(0, COMMON.GAR, 4)], [192, 168, 50, 1])
        assert.deepEqual([...chip.read(0, COMMON.SUBR, 4)], [255, 255, 255, 0])
        assert.deepEqual([...chip.read(0, COMMON.SHAR, 6)], [2, 0, 0, 0xaa, 0xbb, 0xcc])
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [192, 168, 50, 123])
        // the whole common block in one read
        const all = chip.read(0, 0, 0x3a)
        assert.deepEqual([...all.subarray(1, 19)], bytes)
        assert.equal((all[COMMON.RTR] << 8) | all[COMMON.RTR + 1], 2000)
        assert.equal(all[COMMON.RCR], 8)
        assert.equal(all[COMMON.PHYCFGR], 0xbf, "link up, 100M, full duplex, all-capable")
        assert.equal(all[COMMON.VERSIONR], 4)
        // socket 3's whole register block in one read: reset values
        const s = chip.read(S(3), 0, 0x30)
        assert.equal(s[SN.SR], SOCK.CLOSED)
        assert.deepEqual([...s.subarray(SN.DHAR, SN.DHAR + 6)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        assert.equal(s[SN.TTL], 0x80)
        assert.equal(s[SN.RXBUF_SIZE], 2)
        assert.equal(s[SN.TXBUF_SIZE], 2)
        assert.equal((s[SN.TX_FSR] << 8) | s[SN.TX_FSR + 1], 2048)
        assert.equal((s[SN.RX_RSR] << 8) | s[SN.RX_RSR + 1], 0)
        assert.equal(s[SN.IMR], 0xff)
        assert.equal((s[SN.FRAG] << 8) | s[SN.FRAG + 1], 0x4000)
    })

    test("fixed-length modes OM=01/10/11 run back to back in one CS-low period", t => {
        const { chip, close } = setup()
        t.after(close)
        const f = Uint8Array.from([
            0x00, 0x39, control(0, false, 1), 0x00, // VERSIONR, 1 byte
            0x00, 0x19, control(0, false, 2), 0x00, 0x00, // RTR, 2 bytes
            0x00, 0x0f, control(0, true, 3), 10, 1, 2, 3, // SIPR, 4 bytes written
            0x00, 0x1b, control(0, false, 1), // a header whose data phase never comes
        ])
        const out = chip.transfer(f)
        assert.equal(out[3], 0x04)
        assert.deepEqual([...out.subarray(7, 9)], [0x07, 0xd0])
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [10, 1, 2, 3])
        // in FDM the data phase ends after its fixed length even if more bytes follow: they start a new frame
        chip.transfer(Uint8Array.from([0x00, 0x0f, control(0, true, 1), 99, 0x00, 0x10, control(0, true, 1), 98]))
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [99, 98, 2, 3])
    })

    test("read-only registers ignore writes; reserved blocks read zero", t => {
        const { chip, close } = setup()
        t.after(close)
        w8(chip, 0, COMMON.VERSIONR, 0x55)
        assert.equal(r8(chip, 0, COMMON.VERSIONR), 4)
        w8(chip, S(0), SN.SR, 0x17)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
        w16(chip, S(0), SN.TX_FSR, 5)
        assert.equal(r16(chip, S(0), SN.TX_FSR), 2048)
        w8(chip, S(0), SN.TXBUF_SIZE, 3)
        assert.equal(r8(chip, S(0), SN.TXBUF_SIZE), 2, "3 KB is not a valid size")
        assert.deepEqual([...chip.read(4, 0, 4)], [0, 0, 0, 0], "block 4 is reserved")
    })

    test("counts SPI transactions and bytes", t => {
        const { chip, close } = setup()
        t.after(close)
        chip.resetCounters()
        chip.read(0, COMMON.VERSIONR, 1)
        chip.write(0, COMMON.SIPR, [1, 2, 3, 4])
        assert.equal(chip.counters.frames, 2)
        assert.equal(chip.counters.bytes, 4 + 7)
        assert.equal(chip.counters.dataBytesRead, 1)
        assert.equal(chip.counters.dataBytesWritten, 4)
    })
})

describe("reset, commands, interrupts", () => {
    test("MR.RST self-clears and restores every register", async t => {
        const { chip, close } = setup()
        t.after(close)
        configure(chip)
        w16(chip, 0, COMMON.RTR, 100)
        await openSocket(chip, 2, SN_MR.UDP, 5000)
        assert.equal(r8(chip, S(2), SN.SR), SOCK.UDP)
        w8(chip, 0, COMMON.MR, 0x80)
        assert.equal(r8(chip, 0, COMMON.MR), 0)
        assert.deepEqual([...chip.read(0, COMMON.SHAR, 6)], [0, 0, 0, 0, 0, 0])
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [0, 0, 0, 0])
        assert.equal(r16(chip, 0, COMMON.RTR), 2000)
        assert.equal(r8(chip, S(2), SN.SR), SOCK.CLOSED)
        assert.equal(r16(chip, S(2), SN.PORT), 0)
        assert.equal(r8(chip, 0, COMMON.VERSIONR), 4)
    })

    test("RSTn low holds the chip in reset (SPI reads zero); release restores reset values", t => {
        const { chip, close } = setup()
        t.after(close)
        configure(chip)
        chip.setResetPin(false)
        assert.equal(r8(chip, 0, COMMON.VERSIONR), 0)
        chip.write(0, COMMON.SIPR, [1, 2, 3, 4])
        chip.setResetPin(true)
        assert.equal(r8(chip, 0, COMMON.VERSIONR), 4)
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [0, 0, 0, 0])
        assert.equal(r8(chip, 0, COMMON.PHYCFGR) & 1, 1)
    })

    test("Sn_CR clears itself once accepted; Sn_SR follows", async t => {
        const { chip, close } = setup()
        t.after(close)
        w8(chip, S(0), SN.MR, SN_MR.TCP)
        w8(chip, S(0), SN.CR, CMD.OPEN)
        assert.equal(r8(chip, S(0), SN.CR), 0)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.INIT)
        w8(chip, S(0), SN.CR, CMD.CLOSE)
        assert.equal(r8(chip, S(0), SN.CR), 0)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
    })

    test("crDelayFrames/srDelayFrames make the command read back while polled, then take effect", t => {
        const { chip, close } = setup({ chip: { crDelayFrames: 3, srDelayFrames: 2 } })
        t.after(close)
        w8(chip, S(1), SN.MR, SN_MR.UDP)
        w8(chip, S(1), SN.CR, CMD.OPEN)
        const seen: number[] = []
        for (let i = 0; i < 4; i++) seen.push(r8(chip, S(1), SN.CR))
        assert.deepEqual(seen, [CMD.OPEN, CMD.OPEN, CMD.OPEN, 0])
        // cleared, but still being processed for two more frames
        assert.equal(r8(chip, S(1), SN.SR), SOCK.CLOSED)
        assert.equal(r8(chip, S(1), SN.SR), SOCK.UDP)
    })

    test("with the PHY powered down, Sn_CR never clears", t => {
        const { chip, close } = setup()
        t.after(close)
        w8(chip, 0, COMMON.PHYCFGR, 0x80 | 0x40 | (6 << 3))
        assert.equal(r8(chip, 0, COMMON.PHYCFGR) & 1, 0, "no link while powered down")
        w8(chip, S(0), SN.MR, SN_MR.UDP)
        w8(chip, S(0), SN.CR, CMD.OPEN)
        for (let i = 0; i < 5; i++) assert.equal(r8(chip, S(0), SN.CR), CMD.OPEN)
        w8(chip, 0, COMMON.PHYCFGR, 0xb8) // back to all-capable auto-negotiation
        assert.equal(r8(chip, S(0), SN.CR), 0)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.UDP)
    })

    test("Sn_IR is write-1-to-clear; SIR and INTn follow Sn_IMR/SIMR", async t => {
        const { chip, close } = setup()
        t.after(close)
        configure(chip)
        await openSocket(chip, 1, SN_MR.UDP, 5353)
        assert.equal(await udpSend(chip, 1, "192.168.50.1", 53, dnsQuery(1, "router.lan")), "ok")
        await until(() => (r8(chip, S(1), SN.IR) & SN_IR.RECV) !== 0, "RECV")
        assert.equal(r8(chip, 0, COMMON.SIR), 0x02)
        assert.equal(chip.intPin(), 1, "SIMR is 0: INTn stays high")
        w8(chip, 0, COMMON.SIMR, 0x02)
        assert.equal(chip.intPin(), 0)
        w8(chip, S(1), SN.IR, 0x00)
        assert.equal(r8(chip, S(1), SN.IR) & SN_IR.RECV, SN_IR.RECV, "writing 0 clears nothing")
        w8(chip, S(1), SN.IR, SN_IR.RECV)
        assert.equal(r8(chip, S(1), SN.IR), 0)
        assert.equal(r8(chip, 0, COMMON.SIR), 0)
        assert.equal(chip.intPin(), 1)
        // with Sn_IMR clear, the datasheet says the Sn_IR bit is not set at all
        w8(chip, S(1), SN.IMR, 0x00)
        chip.write(S(1), SN.DIPR, ipb("192.168.50.1"))
        w16(chip, S(1), SN.DPORT, 53)
        txWrite(chip, 1, dnsQuery(2, "router.lan"))
        await cmd(chip, 1, CMD.SEND)
        await until(() => r16(chip, S(1), SN.RX_RSR) > 0, "the DNS answer")
        assert.equal(r8(chip, S(1), SN.IR), 0)
    })

    test("optional delays: resetReadyMs, udpSendDelayMs and the LAN's replyDelayMs", async t => {
        const { chip, close } = setup({ chip: { resetReadyMs: 20, udpSendDelayMs: 10 }, lan: { replyDelayMs: 10 } })
        t.after(close)
        chip.setResetPin(false)
        chip.setResetPin(true)
        assert.equal(r8(chip, 0, COMMON.VERSIONR), 0, "not ready right after RSTn rises")
        await until(() => r8(chip, 0, COMMON.VERSIONR) === 4, "VERSIONR after the ready delay")
        configure(chip)
        await openSocket(chip, 0, SN_MR.UDP, 5000)
        chip.write(S(0), SN.DIPR, ipb("192.168.50.1"))
        w16(chip, S(0), SN.DPORT, 53)
        txWrite(chip, 0, dnsQuery(5, "router.lan"))
        await cmd(chip, 0, CMD.SEND)
        assert.equal(r8(chip, S(0), SN.IR), 0, "SEND_OK comes later")
        await waitIr(chip, 0, SN_IR.SEND_OK)
        await until(() => r16(chip, S(0), SN.RX_RSR) > 0, "the delayed answer")
    })

    test("LISTEN shows SOCK_LISTEN but is not emulated; MACRAW stays CLOSED; both are logged", async t => {
        const { chip, logs, close } = setup()
        t.after(close)
        await openSocket(chip, 0, SN_MR.TCP, 80)
        await cmd(chip, 0, CMD.LISTEN)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.LISTEN)
        await openSocket(chip, 0, SN_MR.MACRAW, 0)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
        assert.ok(logs.some(l => l.includes("LISTEN is not emulated")))
        assert.ok(logs.some(l => l.includes("MACRAW")))
    })

    test("IR.UNREACH on ICMP port-unreachable is write-1-to-clear; UIPR/UPORTR name the target", async t => {
        const { chip, lan, close } = setup()
        t.after(close)
        configure(chip)
        w8(chip, 0, COMMON.IMR, IR.UNREACH)
        await openSocket(chip, 0, SN_MR.UDP, 6000)
        assert.equal(await udpSend(chip, 0, "192.168.50.1", 9999, [1, 2, 3]), "ok")
        await until(() => (r8(chip, 0, COMMON.IR) & IR.UNREACH) !== 0, "IR.UNREACH")
        assert.equal(lan.counters.unreachable, 1)
        assert.deepEqual([...chip.read(0, COMMON.UIPR, 4)], [192, 168, 50, 1])
        assert.equal(r16(chip, 0, COMMON.UPORTR), 9999)
        assert.equal(chip.intPin(), 0)
        w8(chip, 0, COMMON.IR, IR.UNREACH)
        assert.equal(r8(chip, 0, COMMON.IR), 0)
        assert.equal(chip.intPin(), 1)
    })
})

// ------------------------------------------------------------------ buffers and pointers

describe("buffers and pointers", () => {
    test("buffer offsets wrap inside the socket's buffer; sockets' buffers are separate", t => {
        const { chip, close } = setup()
        t.after(close)
        const data = Array.from({ length: 20 }, (_, i) => i + 1)
        chip.write(BSB.stx(0), 0x07f8, data)
        assert.deepEqual([...chip.read(BSB.stx(0), 0x0000, 12)], data.slice(8), "2 KB buffer: 0x0800 is 0x0000")
        assert.deepEqual([...chip.read(BSB.stx(0), 0xfff8, 8)], data.slice(0, 8), "the 16-bit offset is masked")
        assert.deepEqual([...chip.read(BSB.stx(1), 0x0000, 4)], [0, 0, 0, 0])
        // a 1 KB buffer wraps at 0x400
        w8(chip, S(1), SN.TXBUF_SIZE, 1)
        chip.write(BSB.stx(1), 0x03ff, [7, 8])
        assert.deepEqual([...chip.read(BSB.stx(1), 0x0000, 1)], [8])
    })

    test("pointerStart 0xFFF0: TX/RX pointers wrap at 16 bits, FSR/RSR derived from them (TCP echo)", async t => {
        const { chip, srv } = await connected(t, s => s.on("data", d => s.write(d)), { chip: { pointerStart: 0xfff0 } })
        assert.equal(r16(chip, S(0), SN.TX_WR), 0xfff0)
        assert.equal(r16(chip, S(0), SN.RX_RD), 0xfff0)
        const msg = Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff)
        txWrite(chip, 0, msg)
        assert.equal(r16(chip, S(0), SN.TX_WR), 0x0054)
        assert.equal(r16(chip, S(0), SN.TX_FSR), 2048 - 100, "FSR counts written but unsent data")
        await cmd(chip, 0, CMD.SEND)
        await waitIr(chip, 0, SN_IR.SEND_OK)
        assert.equal(r16(chip, S(0), SN.TX_RD), 0x0054)
        assert.equal(r16(chip, S(0), SN.TX_FSR), 2048)
        await until(() => r16(chip, S(0), SN.RX_RSR) === 100, "the echo")
        assert.equal(r16(chip, S(0), SN.RX_WR), 0x0054)
        const got = await tcpRead(chip, 0)
        assert.deepEqual([...got], msg)
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
        assert.equal(srv.data(), Buffer.from(msg).toString("latin1"))
    })

    test("RX_RSR only drops on RECV, and a fast peer is paced by the 2 KB RX buffer", async t => {
        const big = Buffer.alloc(10_000)
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff
        const { chip } = await connected(t, s => s.write(big))
        await until(() => r16(chip, S(0), SN.RX_RSR) === 2048, "a full RX buffer")
        w16(chip, S(0), SN.RX_RD, (r16(chip, S(0), SN.RX_RD) + 100) & 0xffff)
        assert.equal(r16(chip, S(0), SN.RX_RSR), 2048, "RX_RD alone does not free space")
        w16(chip, S(0), SN.RX_RD, (r16(chip, S(0), SN.RX_RD) - 100) & 0xffff)
        const parts: number[] = []
        while (parts.length < big.length) {
            await until(() => r16(chip, S(0), SN.RX_RSR) > 0, "more data")
            assert.ok(r16(chip, S(0), SN.RX_RSR) <= 2048)
            parts.push(...(await tcpRead(chip, 0)))
        }
        assert.deepEqual(Buffer.from(parts), big)
    })

    test("a SEND of more than the TX buffer sends one buffer's worth, logged, and Sn_TX_RD moves to Sn_TX_WR (TCP and UDP)", async t => {
        const srv = await server()
        const logs: string[] = []
        const sent: UdpDatagram[] = []
        const network: ChipNetwork = { arp: () => true, transmitUdp: d => sent.push(d), routeTcp: (_ip, port) => ({ host: "127.0.0.1", port }) }
        const chip = new W5500({ log: (level, msg) => logs.push(`${level}: ${msg}`), network })
        t.after(async () => { chip.close(); await srv.close() })
        configure(chip)
        const pattern = Buffer.alloc(1024)
        for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 0xff
        /** 1 KB TX buffer holding `pattern`, then Sn_TX_WR moved 1500 bytes on */
        const overfill = (n: number) => {
            const wr = r16(chip, S(n), SN.TX_WR)
            chip.write(BSB.stx(n), wr, pattern)
            w16(chip, S(n), SN.TX_WR, (wr + 1500) & 0xffff)
            return (wr + 1500) & 0xffff
        }
        w8(chip, S(0), SN.TXBUF_SIZE, 1)
        assert.equal(await tcpConnect(chip, 0, "127.0.0.1", srv.port), SOCK.ESTABLISHED)
        const tcpWr = overfill(0)
        await cmd(chip, 0, CMD.SEND)
        await waitIr(chip, 0, SN_IR.SEND_OK)
        await until(() => srv.data().length === 1024, "the server to get 1024 bytes")
        assert.deepEqual(Buffer.from(srv.data(), "latin1"), pattern)
        assert.equal(r16(chip, S(0), SN.TX_RD), tcpWr)
        w8(chip, S(1), SN.TXBUF_SIZE, 1)
        await openSocket(chip, 1, SN_MR.UDP, 7000)
        chip.write(S(1), SN.DIPR, ipb("192.168.50.7"))
        w16(chip, S(1), SN.DPORT, 9)
        const udpWr = overfill(1)
        await cmd(chip, 1, CMD.SEND)
        await waitIr(chip, 1, SN_IR.SEND_OK)
        assert.equal(sent.length, 1)
        assert.deepEqual(Buffer.from(sent[0].data), pattern)
        assert.equal(r16(chip, S(1), SN.TX_RD), udpWr)
        assert.deepEqual(logs.filter(l => l.includes("exceeds")), [
            "warn: socket 0: SEND of 1500 bytes exceeds the 1024-byte TX buffer: sending 1024",
            "warn: socket 1: SEND of 1500 bytes exceeds the 1024-byte TX buffer: sending 1024",
        ])
    })
})

// ------------------------------------------------------------------ TCP

describe("TCP client state machine", () => {
    test("connect, send, receive, peer FIN -> CLOSE_WAIT + DISCON, DISCON -> CLOSED", async t => {
        const srv = await server()
        const { chip, lan, close } = setup()
        t.after(async () => { close(); await srv.close() })
        configure(chip)
        await openSocket(chip, 0, SN_MR.TCP, 40000)
        chip.write(S(0), SN.DIPR, ipb("127.0.0.1"))
        w16(chip, S(0), SN.DPORT, srv.port)
        w8(chip, S(0), SN.CR, CMD.CONNECT)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.SYNSENT)
        await until(() => r8(chip, S(0), SN.SR) === SOCK.ESTABLISHED, "ESTABLISHED")
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.CON, SN_IR.CON)
        assert.equal(r16(chip, S(0), SN.MSSR), 1460)
        assert.equal(lan.counters.tcpRouted, 1)
        w8(chip, S(0), SN.IR, SN_IR.CON)
        await tcpSend(chip, 0, Buffer.from("hello"))
        await until(() => srv.data() === "hello", "the server to get hello")
        srv.conns[0].write("world")
        await waitIr(chip, 0, SN_IR.RECV)
        assert.equal(Buffer.from(await tcpRead(chip, 0)).toString(), "world")
        srv.conns[0].write("bye")
        srv.conns[0].end()
        await until(() => r8(chip, S(0), SN.SR) === SOCK.CLOSE_WAIT, "CLOSE_WAIT")
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.DISCON, SN_IR.DISCON)
        assert.equal(Buffer.from(await tcpRead(chip, 0)).toString(), "bye", "data before the FIN is still readable")
        await tcpSend(chip, 0, Buffer.from("late")) // half-close: we may still send
        await cmd(chip, 0, CMD.DISCON)
        await until(() => r8(chip, S(0), SN.SR) === SOCK.CLOSED, "CLOSED")
        await until(() => srv.ended(), "the server to see our FIN")
        assert.equal(srv.data(), "hellolate")
    })

    test("active close: DISCON -> FIN_WAIT, peer's FIN -> CLOSED with DISCON", async t => {
        const { chip } = await connected(t, s => s.on("end", () => s.end()), {}, 3)
        w8(chip, S(3), SN.IR, 0xff)
        w8(chip, S(3), SN.CR, CMD.DISCON)
        assert.equal(r8(chip, S(3), SN.SR), SOCK.FIN_WAIT)
        await until(() => r8(chip, S(3), SN.SR) === SOCK.CLOSED, "CLOSED")
        assert.equal(r8(chip, S(3), SN.IR) & SN_IR.DISCON, SN_IR.DISCON)
    })

    test("DISCON with a peer that never sends its FIN -> CLOSED + TIMEOUT", async t => {
        const { chip, srv } = await connected(t)
        w16(chip, 0, COMMON.RTR, 10)
        w8(chip, 0, COMMON.RCR, 1)
        await cmd(chip, 0, CMD.DISCON)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.FIN_WAIT)
        await waitIr(chip, 0, SN_IR.TIMEOUT)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
        await until(() => srv.ended(), "the peer to see our FIN")
    })

    test("a peer reset -> CLOSED + DISCON", async t => {
        const { chip, srv } = await connected(t)
        await until(() => srv.conns.length === 1, "the server side")
        srv.conns[0].resetAndDestroy()
        await until(() => r8(chip, S(0), SN.SR) === SOCK.CLOSED, "CLOSED")
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.DISCON, SN_IR.DISCON)
    })

    test("CLOSE drops the connection at once", async t => {
        const { chip, srv } = await connected(t)
        await cmd(chip, 0, CMD.CLOSE)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
        await until(() => srv.conns[0]?.destroyed || srv.ended() || srv.conns[0]?.readableEnded === true, "the server to see the close")
    })

    test("refused connect -> CLOSED + TIMEOUT", async t => {
        const port = await freePort()
        const { chip, close } = setup()
        t.after(close)
        configure(chip)
        assert.equal(await tcpConnect(chip, 0, "127.0.0.1", port), SOCK.CLOSED)
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.TIMEOUT, SN_IR.TIMEOUT)
    })

    test("a blocked destination behaves like an unreachable host: TIMEOUT after the TCP retries, logged", async t => {
        const { chip, lan, logs, close } = setup()
        t.after(close)
        configure(chip)
        w16(chip, 0, COMMON.RTR, 10) // 1 ms
        w8(chip, 0, COMMON.RCR, 2)
        assert.equal(chip.tcpTimeoutMs(), (10 + 20 + 40) / 10)
        assert.equal(await tcpConnect(chip, 0, "203.0.113.9", 443), SOCK.CLOSED)
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.TIMEOUT, SN_IR.TIMEOUT)
        assert.equal(lan.counters.tcpBlocked, 1)
        assert.equal(chip.counters.tcpConnects, 0, "no host connection was attempted")
        assert.ok(logs.some(l => l.includes("203.0.113.9:443 blocked")), logs.join("\n"))
    })

    test("the TCP timeout follows the datasheet formula (31.8 s by default)", t => {
        const { chip, close } = setup()
        t.after(close)
        assert.equal(chip.tcpTimeoutMs(), 31800)
        assert.equal(chip.arpTimeoutMs(), 1800)
    })

    test("no ARP reply (unknown LAN host, or no gateway for off-subnet) -> CLOSED + TIMEOUT", async t => {
        const { chip, close } = setup()
        t.after(close)
        configure(chip)
        w16(chip, 0, COMMON.RTR, 10)
        w8(chip, 0, COMMON.RCR, 1)
        assert.equal(await tcpConnect(chip, 0, "192.168.50.77", 80), SOCK.CLOSED)
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.TIMEOUT, SN_IR.TIMEOUT)
        chip.write(0, COMMON.GAR, [0, 0, 0, 0])
        assert.equal(await tcpConnect(chip, 1, "127.0.0.1", 80), SOCK.CLOSED)
        assert.equal(chip.counters.tcpConnects, 0)
    })

    test("TCP to the gateway or a DNS-mapped LAN host reaches 127.0.0.1; tcpMap cannot point off loopback", async t => {
        const srv = await server()
        const { chip, lan, logs, close } = setup({ lan: { dns: { "broker.lan": "192.168.50.10" }, tcpMap: { "192.168.50.20": "10.1.2.3" }, hosts: ["192.168.50.20"] } })
        t.after(async () => { close(); await srv.close() })
        configure(chip)
        assert.equal(await tcpConnect(chip, 0, "192.168.50.1", srv.port), SOCK.ESTABLISHED)
        assert.equal(await tcpConnect(chip, 1, "192.168.50.10", srv.port), SOCK.ESTABLISHED)
        await until(() => srv.conns.length === 2, "two connections")
        assert.equal(lan.routeTcp("192.168.50.20", 80), null)
        assert.ok(logs.some(l => l.includes("not loopback")))
    })
})

// ------------------------------------------------------------------ UDP and the LAN's servers

describe("UDP and the emulated LAN", () => {
    const MAC = [0x02, 0x00, 0x00, 0x12, 0x34, 0x56]

    async function dhcpClient(env: Env): Promise<void> {
        const { chip } = env
        chip.write(0, COMMON.SHAR, MAC)
        await openSocket(chip, 0, SN_MR.UDP, 68)
    }

    test("DHCP: DISCOVER -> OFFER, REQUEST -> ACK, with the 8-byte header per datagram", async t => {
        const env = setup({ lan: { t1Seconds: 1800, t2Seconds: 3150 } })
        t.after(env.close)
        const { chip, lan } = env
        await dhcpClient(env)
        assert.equal(await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(1, MAC, 0x11223344)), "ok")
        const offer = await udpRecv(chip, 0)
        assert.equal(offer.ip, "192.168.50.1")
        assert.equal(offer.port, 67)
        const o = dhcpParse(offer.data)
        assert.equal(o.op, 2)
        assert.equal(o.xid, 0x11223344)
        assert.deepEqual(o.chaddr, MAC)
        assert.deepEqual(o.opts.get(53), [2])
        assert.equal(o.yiaddr, "192.168.50.100")
        assert.deepEqual(o.opts.get(54), [192, 168, 50, 1])
        assert.deepEqual(o.opts.get(1), [255, 255, 255, 0])
        assert.deepEqual(o.opts.get(3), [192, 168, 50, 1])
        assert.deepEqual(o.opts.get(6), [192, 168, 50, 1])
        assert.equal(be32(o.opts.get(51)!), 3600)
        assert.equal(be32(o.opts.get(58)!), 1800)
        assert.equal(be32(o.opts.get(59)!), 3150)
        await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(3, MAC, 0x11223345, { requested: o.yiaddr, server: "192.168.50.1" }))
        const a = dhcpParse((await udpRecv(chip, 0)).data)
        assert.deepEqual(a.opts.get(53), [5])
        assert.equal(a.yiaddr, "192.168.50.100")
        assert.equal(a.xid, 0x11223345)
        assert.deepEqual(lan.dhcp.leases().map(l => [l.ip, l.bound]), [["192.168.50.100", true]])
        // RENEWING: unicast to the server with ciaddr, a short lease set from the test
        lan.dhcp.leaseSeconds = 20
        configure(chip, "192.168.50.100")
        await udpSend(chip, 0, "192.168.50.1", 67, dhcpPacket(3, MAC, 7, { ciaddr: "192.168.50.100", broadcast: false }))
        const r = await udpRecv(chip, 0)
        assert.deepEqual(dhcpParse(r.data).opts.get(53), [5])
        assert.equal(be32(dhcpParse(r.data).opts.get(51)!), 20)
    })

    test("DHCP: NAK on demand and silence", async t => {
        const env = setup()
        t.after(env.close)
        const { chip, lan } = env
        await dhcpClient(env)
        lan.dhcp.nak = 1
        await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(3, MAC, 1, { requested: "192.168.50.150" }))
        assert.deepEqual(dhcpParse((await udpRecv(chip, 0)).data).opts.get(53), [6])
        await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(3, MAC, 2, { requested: "192.168.50.150" }))
        assert.deepEqual(dhcpParse((await udpRecv(chip, 0)).data).opts.get(53), [5], "INIT-REBOOT for a free address is ACKed")
        lan.dhcp.silent = true
        const before = lan.counters.udpToChip
        await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(1, MAC, 3))
        await sleep(30)
        assert.equal(lan.counters.udpToChip, before)
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
    })

    test("DHCP replies: broadcast with the BROADCAST flag, unicast to yiaddr/chaddr without it; the chip takes both before it has an address", async t => {
        const env = setup()
        t.after(env.close)
        const { chip, lan } = env
        await dhcpClient(env)
        const from = { srcIp: "0.0.0.0", srcPort: 68, dstIp: "255.255.255.255", dstPort: 67 }
        // the server's choice of destination, seen directly (ISC dhcpd and dnsmasq do the same)
        const [b] = lan.dhcp.handle({ ...from, data: dhcpPacket(1, MAC, 10) }, Date.now())
        assert.equal(b.dstIp, "255.255.255.255")
        assert.equal(b.dstMac, undefined)
        const [u] = lan.dhcp.handle({ ...from, data: dhcpPacket(1, MAC, 11, { broadcast: false }) }, Date.now())
        assert.equal(u.dstIp, dhcpParse(u.data).yiaddr)
        assert.deepEqual([...u.dstMac!], MAC)
        // over the wire: both OFFERs reach the UDP socket on port 68 while SIPR is 0.0.0.0
        for (const [xid, broadcast] of [[12, true], [13, false]] as const) {
            await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(1, MAC, xid, { broadcast }))
            const o = dhcpParse((await udpRecv(chip, 0)).data)
            assert.equal(o.xid, xid)
            assert.deepEqual(o.opts.get(53), [2])
            await udpSend(chip, 0, "255.255.255.255", 67, dhcpPacket(3, MAC, xid, { broadcast, requested: o.yiaddr, server: "192.168.50.1" }))
            assert.deepEqual(dhcpParse((await udpRecv(chip, 0)).data).opts.get(53), [5], `ACK with broadcast ${broadcast}`)
        }
        // a frame for another MAC never reaches the chip; once SIPR is set, a unicast for another IP is dropped
        let dropped = chip.counters.udpDropped
        lan.sendToChip({ ...u, dstMac: Uint8Array.from([2, 0, 0, 0, 0, 9]) })
        await until(() => chip.counters.udpDropped > dropped, "the frame for another MAC to be dropped")
        configure(chip)
        dropped = chip.counters.udpDropped
        lan.sendToChip({ ...u, dstIp: "192.168.50.177", dstMac: undefined })
        await until(() => chip.counters.udpDropped > dropped, "the unicast for another IP to be dropped")
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
    })

    test("DNS: A from the map (with CNAME), NXDOMAIN otherwise, silence", async t => {
        const env = setup({ lan: { dns: { "broker.lan": "127.0.0.1", "mqtt.example.com": "broker.lan" } } })
        t.after(env.close)
        const { chip, lan } = env
        configure(chip)
        await openSocket(chip, 2, SN_MR.UDP, 50000)
        await udpSend(chip, 2, "192.168.50.1", 53, dnsQuery(0x1234, "broker.lan"))
        const r1 = await udpRecv(chip, 2)
        assert.equal(r1.ip, "192.168.50.1")
        assert.equal(r1.port, 53)
        const a = dnsParse(r1.data)
        assert.equal(a.id, 0x1234)
        assert.ok(a.qr)
        assert.equal(a.rcode, 0)
        assert.deepEqual(a.answers, [{ type: 1, data: [127, 0, 0, 1] }])
        // the answer's name points back to the question (C0 0C), as BIND, dnsmasq and Unbound write it
        const qEnd = dnsSkipName(r1.data, 12) + 4
        assert.deepEqual([...r1.data.subarray(qEnd, qEnd + 2)], [0xc0, 0x0c])
        assert.equal(r1.data.length, qEnd + 2 + 10 + 4)
        await udpSend(chip, 2, "192.168.50.1", 53, dnsQuery(0x2222, "MQTT.example.com"))
        const c = dnsParse((await udpRecv(chip, 2)).data)
        assert.deepEqual(c.answers.map(x => x.type), [5, 1])
        assert.deepEqual(c.answers[1].data, [127, 0, 0, 1])
        // the same reply with every name in full (the second form a resolver must read), equal once decoded
        lan.dns.compress = false
        await udpSend(chip, 2, "192.168.50.1", 53, dnsQuery(0x2223, "MQTT.example.com"))
        const full = (await udpRecv(chip, 2)).data
        lan.dns.compress = true
        const fq = dnsSkipName(full, 12) + 4
        assert.equal(full[fq], 4, "the CNAME's owner name written in full (label 'mqtt')")
        assert.deepEqual(dnsParse(full).answers, c.answers)
        assert.ok(full.length > compressNames(full).length)
        // equal once decoded, but for case: a pointer to the question carries the client's spelling, as in BIND
        const decoded = (b: Uint8Array) => JSON.stringify(dnsPacket.decode(Buffer.from(b))).toLowerCase()
        assert.equal(decoded(compressNames(full)), decoded(full))
        await udpSend(chip, 2, "192.168.50.1", 53, dnsQuery(0x3333, "nothing.lan"))
        const n = dnsParse((await udpRecv(chip, 2)).data)
        assert.equal(n.rcode, 3)
        assert.equal(n.answers.length, 0)
        lan.dns.silent = true
        await udpSend(chip, 2, "192.168.50.1", 53, dnsQuery(0x4444, "broker.lan"))
        await sleep(30)
        assert.equal(r16(chip, S(2), SN.RX_RSR), 0)
        assert.equal(lan.dns.counters.queries, 4)
    })

    test("NTP: 48-byte stratum-2 reply echoing the transmit timestamp; kiss-o'-death; silence", async t => {
        const env = setup()
        t.after(env.close)
        const { chip, lan } = env
        configure(chip)
        await openSocket(chip, 4, SN_MR.UDP, 12345)
        const req = new Uint8Array(48)
        req[0] = 0x23
        req.set([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04], 40)
        await udpSend(chip, 4, "192.168.50.1", 123, req)
        const r = await udpRecv(chip, 4)
        assert.equal(r.port, 123)
        assert.equal(r.data.length, 48)
        assert.equal(r.data[0] & 0x07, 4, "server mode")
        assert.equal((r.data[0] >> 3) & 0x07, 4, "version echoed")
        assert.equal(r.data[0] >> 6, 0, "no leap warning")
        assert.equal(r.data[1], 2, "stratum 2")
        assert.deepEqual([...r.data.subarray(24, 32)], [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        const secs = be32([...r.data.subarray(40, 44)])
        const unix = secs - 2208988800 + (secs < 0x80000000 ? 2 ** 32 : 0)
        assert.ok(Math.abs(unix - Date.now() / 1000) < 3600, `transmit time ${unix} is near now`)
        lan.ntp.mode = "kod"
        await udpSend(chip, 4, "192.168.50.1", 123, req)
        const k = await udpRecv(chip, 4)
        assert.equal(k.data[1], 0, "stratum 0")
        assert.equal(Buffer.from(k.data.subarray(12, 16)).toString("ascii"), "RATE")
        lan.ntp.mode = "silent"
        await udpSend(chip, 4, "192.168.50.1", 123, req)
        await sleep(30)
        assert.equal(r16(chip, S(4), SN.RX_RSR), 0)
        assert.equal(lan.ntp.counters.requests, 3)
    })

    test("UDP to an unknown LAN host times out after the ARP retries; Sn_SR stays UDP", async t => {
        const env = setup()
        t.after(env.close)
        const { chip } = env
        configure(chip)
        w16(chip, 0, COMMON.RTR, 20)
        w8(chip, 0, COMMON.RCR, 1)
        await openSocket(chip, 0, SN_MR.UDP, 7000)
        assert.equal(await udpSend(chip, 0, "192.168.50.99", 9, [1]), "timeout")
        assert.equal(r8(chip, S(0), SN.SR), SOCK.UDP)
        assert.equal(r16(chip, S(0), SN.TX_FSR), 2048)
    })

    test("broadcast datagrams are blocked by Sn_MR.BCASTB", async t => {
        const env = setup()
        t.after(env.close)
        const { chip, lan } = env
        configure(chip)
        w8(chip, S(0), SN.MR, SN_MR.UDP | SN_MR.BCASTB)
        w16(chip, S(0), SN.PORT, 68)
        await cmd(chip, 0, CMD.OPEN)
        await openSocket(chip, 1, SN_MR.UDP, 69)
        lan.sendToChip({ srcIp: "192.168.50.1", srcPort: 67, dstIp: "255.255.255.255", dstPort: 68, data: Uint8Array.of(1) })
        lan.sendToChip({ srcIp: "192.168.50.1", srcPort: 67, dstIp: "192.168.50.255", dstPort: 69, data: Uint8Array.of(2) })
        const got = await udpRecv(chip, 1)
        assert.deepEqual([...got.data], [2])
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
    })
})

// ------------------------------------------------------------------ garbage

describe("garbage in", () => {
    function rng(seed: number) {
        return () => {
            seed = (seed * 1103515245 + 12345) >>> 0
            return seed >>> 8
        }
    }

    test("the LAN servers ignore malformed datagrams without throwing", () => {
        const lan = new Lan({ log: () => {} })
        const r = rng(1)
        const from = { srcIp: "192.168.50.100", srcPort: 68, dstIp: "255.255.255.255" }
        const valid = [dhcpPacket(1, [2, 0, 0, 0, 0, 1], 1), dnsQuery(1, "router.lan"), new Uint8Array(48).fill(0x23, 0, 1)]
        for (let i = 0; i < 3000; i++) {
            const base = valid[i % 3]
            const b = Uint8Array.from(base.subarray(0, r() % (base.length + 1)))
            for (let k = 0; k < 4; k++) if (b.length) b[r() % b.length] = r() & 0xff
            lan.dhcp.handle({ ...from, dstPort: 67, data: b }, Date.now())
            lan.dns.handle({ ...from, dstPort: 53, data: b })
            lan.ntp.handle({ ...from, dstPort: 123, data: b })
        }
        assert.ok(lan.dhcp.counters.ignored > 0 && lan.dns.counters.ignored > 0 && lan.ntp.counters.ignored > 0)
        lan.close()
    })

    test("random SPI frames never throw (chip on no network)", () => {
        const chip = new W5500({ log: () => {} })
        const r = rng(7)
        for (let i = 0; i < 5000; i++) {
            const f = new Uint8Array(r() % 12)
            for (let k = 0; k < f.length; k++) f[k] = r() & 0xff
            assert.equal(chip.transfer(f).length, f.length)
        }
        chip.close()
    })
})

// ------------------------------------------------------------------ link

describe("PHY link", () => {
    test("link down: LNK clears, unicast UDP times out, nothing is received; link up restores", async t => {
        const env = setup({ chip: { linkUpDelayMs: 20 } })
        t.after(env.close)
        const { chip, lan } = env
        await until(() => (r8(chip, 0, COMMON.PHYCFGR) & 1) === 1, "auto-negotiation")
        configure(chip)
        w16(chip, 0, COMMON.RTR, 20)
        w8(chip, 0, COMMON.RCR, 0)
        await openSocket(chip, 0, SN_MR.UDP, 5000)
        chip.setLink(false)
        assert.equal(r8(chip, 0, COMMON.PHYCFGR) & 0x07, 0)
        assert.equal(await udpSend(chip, 0, "192.168.50.1", 53, dnsQuery(1, "router.lan")), "timeout")
        lan.sendToChip({ srcIp: "192.168.50.1", srcPort: 53, dstIp: "192.168.50.100", dstPort: 5000, data: Uint8Array.of(1) })
        await sleep(20)
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
        chip.setLink(true)
        assert.equal(r8(chip, 0, COMMON.PHYCFGR) & 1, 0, "LNK waits for auto-negotiation")
        await until(() => (r8(chip, 0, COMMON.PHYCFGR) & 1) === 1, "LNK")
        assert.equal(await udpSend(chip, 0, "192.168.50.1", 53, dnsQuery(2, "router.lan")), "ok")
        assert.equal(dnsParse((await udpRecv(chip, 0)).data).id, 2)
    })

    test("TCP across a short link outage: data held while down, delivered after", async t => {
        const { chip, srv } = await connected(t)
        chip.setLink(false)
        srv.conns[0].write("while down")
        txWrite(chip, 0, Buffer.from("up?"))
        await cmd(chip, 0, CMD.SEND)
        await sleep(30)
        assert.equal(r16(chip, S(0), SN.RX_RSR), 0)
        assert.equal(srv.data(), "")
        assert.equal(r8(chip, S(0), SN.IR) & SN_IR.SEND_OK, 0)
        chip.setLink(true)
        await waitIr(chip, 0, SN_IR.SEND_OK)
        await until(() => srv.data() === "up?", "the held data")
        await until(() => r16(chip, S(0), SN.RX_RSR) === 10, "the peer's data")
        assert.equal(Buffer.from(await tcpRead(chip, 0)).toString(), "while down")
        assert.equal(r8(chip, S(0), SN.SR), SOCK.ESTABLISHED)
    })

    test("TCP with the link down past the retransmission timeout -> CLOSED + TIMEOUT", async t => {
        const srv = await server()
        const env = setup()
        t.after(async () => { env.close(); await srv.close() })
        const { chip } = env
        configure(chip)
        assert.equal(await tcpConnect(chip, 0, "127.0.0.1", srv.port), SOCK.ESTABLISHED)
        w16(chip, 0, COMMON.RTR, 10)
        w8(chip, 0, COMMON.RCR, 1)
        chip.setLink(false)
        txWrite(chip, 0, [1, 2, 3])
        await cmd(chip, 0, CMD.SEND)
        await waitIr(chip, 0, SN_IR.TIMEOUT)
        assert.equal(r8(chip, S(0), SN.SR), SOCK.CLOSED)
    })
})

// ------------------------------------------------------------------ bridge

describe("bridge protocol", () => {
    /** A bridge client: sends requests, yields responses in order. */
    async function client(port: number) {
        const sock = net.connect({ port, host: "127.0.0.1" })
        await new Promise<void>((res, rej) => { sock.once("connect", () => res()); sock.once("error", rej) })
        let acc = Buffer.alloc(0)
        const waiters: ((r: { type: number; payload: Buffer }) => void)[] = []
        const queue: { type: number; payload: Buffer }[] = []
        sock.on("data", d => {
            acc = Buffer.concat([acc, d])
            while (acc.length >= 3 && acc.length >= 3 + acc.readUInt16BE(1)) {
                const r = { type: acc[0], payload: acc.subarray(3, 3 + acc.readUInt16BE(1)) }
                acc = acc.subarray(3 + acc.readUInt16BE(1))
                const w = waiters.shift()
                if (w) w(r)
                else queue.push(r)
            }
        })
        const next = () => new Promise<{ type: number; payload: Buffer }>(res => {
            const r = queue.shift()
            if (r) res(r)
            else waiters.push(res)
        })
        const enc = (type: number, payload: ArrayLike<number> = []) => Buffer.from([type, (payload.length >> 8) & 0xff, payload.length & 0xff, ...Array.from(payload)])
        return {
            enc,
            send: (b: Buffer) => sock.write(b),
            next,
            req: async (type: number, payload: ArrayLike<number> = []) => {
                sock.write(enc(type, payload))
                return next()
            },
            close: () => sock.destroy(),
        }
    }

    test("HELLO, READ, WRITE, XFER, BATCH, RESET, INT, WAIT_INT, STATS, errors, pipelining", async t => {
        const env = setup()
        const bridge = await startBridge(env.chip, { port: 0 })
        const c = await client(bridge.port)
        t.after(async () => { c.close(); await bridge.close(); env.close() })
        const { chip } = env

        const hello = await c.req(OP.HELLO)
        assert.equal(hello.type, OP.HELLO | 0x80)
        assert.equal(hello.payload.subarray(0, 8).toString("ascii"), BRIDGE_MAGIC)
        assert.equal(hello.payload[8], 1)

        const v = await c.req(OP.READ, [0x00, 0x39, 0x00, 0x00, 0x01])
        assert.equal(v.type, OP.READ | 0x80)
        assert.deepEqual([...v.payload], [0x04])

        const w = await c.req(OP.WRITE, [0x00, 0x0f, control(0, true), 192, 168, 50, 100])
        assert.equal(w.type, OP.WRITE | 0x80)
        assert.equal(w.payload.length, 0)
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [192, 168, 50, 100])

        const x = await c.req(OP.XFER, [0x00, 0x0f, control(0, false), 0, 0, 0, 0])
        assert.deepEqual([...x.payload], [1, 2, 3, 192, 168, 50, 100])

        // one round trip: write SHAR, read it back, read INTn
        const batch = Buffer.concat([
            c.enc(OP.WRITE, [0x00, 0x09, control(0, true), 2, 0, 0, 1, 2, 3]),
            c.enc(OP.READ, [0x00, 0x09, 0x00, 0x00, 0x06]),
            c.enc(OP.XFER, [0x00, 0x39, 0x00, 0x00]),
            c.enc(OP.INT),
        ])
        const b = await c.req(OP.BATCH, batch)
        assert.equal(b.type, OP.BATCH | 0x80)
        assert.deepEqual([...b.payload], [2, 0, 0, 1, 2, 3, 1, 2, 3, 4, 1])

        assert.equal((await c.req(OP.RESET, [0])).type, OP.RESET | 0x80)
        assert.deepEqual([...(await c.req(OP.READ, [0x00, 0x39, 0x00, 0x00, 0x01])).payload], [0])
        await c.req(OP.RESET, [1])
        assert.deepEqual([...(await c.req(OP.READ, [0x00, 0x39, 0x00, 0x00, 0x01])).payload], [4])
        assert.deepEqual([...chip.read(0, COMMON.SIPR, 4)], [0, 0, 0, 0], "reset cleared SIPR")

        // errors: the connection stays usable
        const e1 = await c.req(0x42, [1, 2])
        assert.equal(e1.type, OP.ERROR)
        assert.match(e1.payload.toString("utf8"), /unknown request type 0x42/)
        const e2 = await c.req(OP.READ, [0x00, 0x39, control(0, true), 0, 1])
        assert.equal(e2.type, OP.ERROR)
        assert.match(e2.payload.toString("utf8"), /RWB=0/)
        const e3 = await c.req(OP.BATCH, [OP.READ, 0, 9, 1])
        assert.equal(e3.type, OP.ERROR)
        assert.match(e3.payload.toString("utf8"), /item 0/)

        // WAIT_INT: times out with INTn high, then returns low once an unmasked interrupt arrives
        assert.deepEqual([...(await c.req(OP.WAIT_INT, [0, 0])).payload], [1])
        configure(chip)
        w8(chip, 0, COMMON.SIMR, 0x01)
        await openSocket(chip, 0, SN_MR.UDP, 5000)
        chip.write(S(0), SN.DIPR, ipb("192.168.50.1"))
        w16(chip, S(0), SN.DPORT, 53)
        txWrite(chip, 0, dnsQuery(9, "router.lan"))
        const waiting = c.req(OP.WAIT_INT, [0x27, 0x10])
        w8(chip, S(0), SN.CR, CMD.SEND)
        const wi = await waiting
        assert.equal(wi.type, OP.WAIT_INT | 0x80)
        assert.deepEqual([...wi.payload], [0])

        // pipelining: two requests in one write, answered in order
        c.send(Buffer.concat([c.enc(OP.INT), c.enc(OP.READ, [0x00, 0x39, 0x00, 0x00, 0x01])]))
        assert.equal((await c.next()).type, OP.INT | 0x80)
        assert.deepEqual([...(await c.next()).payload], [4])

        const st = await c.req(OP.STATS)
        assert.equal(st.payload.length, 12)
        assert.equal(st.payload.readUInt32BE(0), chip.counters.frames)
        assert.equal(st.payload.readUInt32BE(4), chip.counters.bytes)
        assert.equal(st.payload.readUInt32BE(8), bridge.stats.requests)
        assert.equal(bridge.stats.frames, 9, "READ, WRITE, XFER, 3 in the batch, 2 around RESET, 1 pipelined")
    })

    test("a client that leaves during WAIT_INT leaves no waiter behind", async t => {
        const env = setup()
        const bridge = await startBridge(env.chip, { port: 0 })
        t.after(async () => { await bridge.close(); env.close() })
        const c = await client(bridge.port)
        c.send(c.enc(OP.WAIT_INT, [0xea, 0x60]))
        await until(() => env.chip.listenerCount("int") === 1, "the wait to start")
        c.close()
        await until(() => env.chip.listenerCount("int") === 0, "the wait to be cancelled")
    })

    test("a port in use is reported clearly", async t => {
        const env = setup()
        const a = await startBridge(env.chip, { port: 0 })
        t.after(async () => { await a.close(); env.close() })
        await assert.rejects(startBridge(env.chip, { port: a.port }), /port \d+ is in use/)
    })
})
