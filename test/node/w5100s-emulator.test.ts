/**
 * The W5100S emulator (sim/w5100s/) against its datasheet, for what differs from the W5500: the
 * SPI frame (OP-code 0xF0/0x0F, burst), the flat address map (VERR 0x51 at 0x0080, IR with the
 * socket bits, IMR, RTR/RCR/RMSR/TMSR, PHYSR, Sn_KPALVTR at 0x30), 4 sockets, physically
 * addressed TX/RX memory that the host must wrap itself, and the bridge serving it. The socket
 * engine it shares with the W5500 model is tested in w5500-emulator.test.ts; here a UDP exchange
 * with the LAN's DHCP server and a TCP echo over loopback run through the W5100S address map.
 */
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { W5100S } from "../../sim/w5100s/chip.ts"
import { startW5100SSim } from "../../sim/w5100s/index.ts"
import { Lan } from "../../sim/w5500/lan.ts"
import { COMMON, MEMORY, OP, PHYSR, RX_BASE, SN, TX_BASE, VERSION, sreg } from "../../sim/w5100s/registers.ts"

const CR = { OPEN: 0x01, CONNECT: 0x04, CLOSE: 0x10, SEND: 0x20, RECV: 0x40 }
const SOCK = { CLOSED: 0x00, INIT: 0x13, ESTABLISHED: 0x17, UDP: 0x22 }

function setup() {
    const logs: string[] = []
    const log = (level: string, msg: string) => { logs.push(`${level}: ${msg}`) }
    const lan = new Lan({ log })
    const chip = new W5100S({ log, network: lan })
    lan.attach(chip.core)
    return { chip, lan, logs, close: () => { chip.close(); lan.close() } }
}

const r8 = (c: W5100S, a: number) => c.read(a, 1)[0]
const r16 = (c: W5100S, a: number) => { const b = c.read(a, 2); return (b[0] << 8) | b[1] }
const w8 = (c: W5100S, a: number, v: number) => c.write(a, [v])
const w16 = (c: W5100S, a: number, v: number) => c.write(a, [(v >> 8) & 0xff, v & 0xff])
const ipb = (s: string) => s.split(".").map(Number)

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms
    while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await new Promise(r => setTimeout(r, 2))
    }
}

async function cmd(c: W5100S, n: number, v: number) {
    w8(c, sreg(n) + SN.CR, v)
    await until(() => r8(c, sreg(n) + SN.CR) === 0, `Sn_CR 0x${v.toString(16)} to clear`)
}

/** The host's side of the wrap: writes `data` at the socket's TX pointer, split at the buffer's end. */
function txWrite(c: W5100S, n: number, data: number[], size = 2048) {
    const wr = r16(c, sreg(n) + SN.TX_WR)
    const off = wr & (size - 1)
    const base = TX_BASE + n * size
    const first = Math.min(data.length, size - off)
    c.write(base + off, data.slice(0, first))
    if (first < data.length) c.write(base, data.slice(first))
    w16(c, sreg(n) + SN.TX_WR, (wr + data.length) & 0xffff)
}

function rxRead(c: W5100S, n: number, len: number, size = 2048): number[] {
    const rd = r16(c, sreg(n) + SN.RX_RD)
    const off = rd & (size - 1)
    const base = RX_BASE + n * size
    const first = Math.min(len, size - off)
    const out = [...c.read(base + off, first)]
    if (first < len) out.push(...c.read(base, len - first))
    w16(c, sreg(n) + SN.RX_RD, (rd + len) & 0xffff)
    return out
}

describe("W5100S SPI frame and address map", () => {
    test("VERR at 0x0080 reads 0x51; the frame is OP addr_hi addr_lo data, MISO zero in the header", t => {
        const { chip, close } = setup()
        t.after(close)
        assert.equal(VERSION, 0x51)
        assert.deepEqual([...chip.transfer(Uint8Array.of(OP.READ, 0x00, 0x80, 0))], [0, 0, 0, 0x51])
        // a W5500-style frame (address first, then a control byte) is not a W5100S frame: nothing is read or written
        assert.deepEqual([...chip.transfer(Uint8Array.of(0x00, 0x80, 0x00, 0))], [0, 0, 0, 0])
        chip.transfer(Uint8Array.of(0x00, 0x0f, 0x04, 1, 2, 3, 4))
        assert.deepEqual([...chip.read(COMMON.SIPR, 4)], [0, 0, 0, 0])
    })

    test("burst: the address auto-increments while SCSn is low (GAR..SIPR in one frame)", t => {
        const { chip, close } = setup()
        t.after(close)
        const bytes = [...ipb("192.168.50.1"), ...ipb("255.255.255.0"), 2, 0, 0, 0x12, 0x34, 0x56, ...ipb("192.168.50.100")]
        chip.write(COMMON.GAR, bytes)
        assert.deepEqual([...chip.read(COMMON.GAR, bytes.length)], bytes)
        assert.equal(chip.sourceIp, "192.168.50.100")
        assert.equal(chip.counters.frames, 2)
        assert.equal(chip.counters.bytes, 2 * (3 + bytes.length))
    })

    test("on the wire, byte by byte: each MISO byte is out before its MOSI byte is in; a written byte is stored as it arrives, before SCSn rises", t => {
        const { chip, close } = setup()
        t.after(close)
        chip.write(COMMON.GAR, ipb("10.1.2.3"))
        // a READ burst clocked one byte at a time, as the emulated board's SPI0 does
        chip.select()
        const miso: number[] = []
        for (const b of [OP.READ, 0x00, COMMON.GAR, 0xff, 0xff, 0xff, 0xff]) {
            miso.push(chip.misoNext())
            chip.take(b)
        }
        chip.deselect()
        assert.deepEqual(miso, [0, 0, 0, 10, 1, 2, 3], "zeros in the header, then GAR from the address the header set")
        // WRITE: the data byte lands as its 8th bit is in, with SCSn still low (no burst buffering)
        chip.select()
        for (const b of [OP.WRITE, 0x00, COMMON.GAR, 192]) assert.equal(chip.shift(b), 0, "MISO zero in a WRITE frame")
        assert.equal(chip.core.busByte(0, COMMON.GAR, false), 192, "GAR[0] written before SCSn rises")
        chip.deselect()
        assert.deepEqual([...chip.read(COMMON.GAR, 4)], [192, 1, 2, 3])
        // one frame per SCSn-low period, whatever its length
        assert.equal(chip.counters.frames, 4)
    })

    test("reset values: RTR 0x07D0 at 0x0017, RCR 8 at 0x0019, RMSR/TMSR 0x55 (2 KB x 4), PHYSR link; VERR read-only", t => {
        const { chip, close } = setup()
        t.after(close)
        assert.equal(r16(chip, COMMON.RTR), 0x07d0)
        assert.equal(r8(chip, COMMON.RCR), 8)
        assert.equal(r8(chip, COMMON.RMSR), 0x55)
        assert.equal(r8(chip, COMMON.TMSR), 0x55)
        for (let n = 0; n < 4; n++) assert.equal(r8(chip, sreg(n) + SN.RXBUF_SIZE), 2)
        assert.equal(r8(chip, COMMON.PHYSR) & PHYSR.LNK, PHYSR.LNK)
        w8(chip, COMMON.VERR, 0)
        assert.equal(r8(chip, COMMON.VERR), 0x51)
        chip.setLink(false)
        assert.equal(r8(chip, COMMON.PHYSR) & PHYSR.LNK, 0)
    })

    test("MR.RST self-clears and restores the registers; RSTn low makes every read zero", t => {
        const { chip, close } = setup()
        t.after(close)
        chip.write(COMMON.SIPR, ipb("10.0.0.2"))
        w8(chip, COMMON.MR2, 0x40)
        w8(chip, COMMON.MR, 0x80)
        assert.equal(r8(chip, COMMON.MR) & 0x80, 0)
        assert.deepEqual([...chip.read(COMMON.SIPR, 4)], [0, 0, 0, 0])
        assert.equal(r8(chip, COMMON.MR2), 0)
        chip.setResetPin(false)
        assert.equal(r8(chip, COMMON.VERR), 0)
        chip.setResetPin(true)
        assert.equal(r8(chip, COMMON.VERR), 0x51)
    })

    test("RMSR/TMSR and Sn_RXBUF_SIZE/Sn_TXBUF_SIZE are two views of one setting; 16 KB is not a W5100S size", t => {
        const { chip, logs, close } = setup()
        t.after(close)
        w8(chip, COMMON.RMSR, 0b00_00_10_10) // 4, 4, 1, 1 KB
        assert.deepEqual([0, 1, 2, 3].map(n => r8(chip, sreg(n) + SN.RXBUF_SIZE)), [4, 4, 1, 1])
        w8(chip, sreg(3) + SN.TXBUF_SIZE, 16)
        assert.equal(r8(chip, sreg(3) + SN.TXBUF_SIZE), 2)
        assert.ok(logs.some(l => l.includes("TXBUF_SIZE 16")), logs.join("\n"))
        w8(chip, sreg(3) + SN.TXBUF_SIZE, 8)
        assert.ok(logs.some(l => l.includes("TX buffers add up to 14 KB")), logs.join("\n"))
    })

    test("only 4 sockets: 0x0800 and up are no socket's registers; Sn_KPALVTR sits at 0x30, Sn_MR2 at 0x2F", t => {
        const { chip, close } = setup()
        t.after(close)
        w8(chip, 0x0800 + SN.MR, 0x01)
        assert.equal(r8(chip, 0x0800 + SN.MR), 0)
        w8(chip, sreg(1) + SN.KPALVTR, 3)
        w8(chip, sreg(1) + SN.MR2, 0x02)
        assert.equal(r8(chip, sreg(1) + SN.KPALVTR), 3)
        assert.equal(r8(chip, sreg(1) + SN.MR2), 0x02)
        assert.equal(r8(chip, sreg(2) + SN.KPALVTR), 0)
    })
})

describe("W5100S sockets", () => {
    test("UDP: DHCP DISCOVER to the LAN, OFFER in socket 2's RX memory; IR bit 2 and INTn follow Sn_IR and IMR", async t => {
        const { chip, close } = setup()
        t.after(close)
        chip.write(COMMON.SHAR, [2, 0, 0, 0x12, 0x34, 0x56])
        w8(chip, COMMON.IMR, 0x0f)
        const s = sreg(2)
        w8(chip, s + SN.MR, 0x02)
        w16(chip, s + SN.PORT, 68)
        await cmd(chip, 2, CR.OPEN)
        assert.equal(r8(chip, s + SN.SR), SOCK.UDP)
        const p = new Array(300).fill(0)
        p[0] = 1; p[1] = 1; p[2] = 6; p[4] = 0x12; p[5] = 0x34; p[10] = 0x80
        p.splice(28, 6, 2, 0, 0, 0x12, 0x34, 0x56)
        p.splice(236, 7, 0x63, 0x82, 0x53, 0x63, 53, 1, 1)
        p[243] = 255
        chip.write(s + SN.DIPR, [255, 255, 255, 255])
        w16(chip, s + SN.DPORT, 67)
        txWrite(chip, 2, p)
        await cmd(chip, 2, CR.SEND)
        await until(() => (r8(chip, s + SN.IR) & 0x04) !== 0, "RECV")
        assert.equal(r8(chip, COMMON.IR) & 0x0f, 1 << 2)
        assert.equal(chip.intPin(), 0)
        const rsr = r16(chip, s + SN.RX_RSR)
        const hdr = rxRead(chip, 2, 8)
        const len = (hdr[6] << 8) | hdr[7]
        assert.equal(rsr, 8 + len)
        const body = rxRead(chip, 2, len)
        assert.equal(body[0], 2) // BOOTREPLY
        assert.deepEqual(body.slice(4, 6), [0x12, 0x34])
        await cmd(chip, 2, CR.RECV)
        assert.equal(r16(chip, s + SN.RX_RSR), 0)
        w8(chip, s + SN.IR, 0xff)
        assert.equal(r8(chip, COMMON.IR) & 0x0f, 0)
        assert.equal(chip.intPin(), 1)
        // the socket bits are not cleared through IR: only through Sn_IR
        w8(chip, COMMON.IR, 0x0f)
    })

    test("TCP echo over loopback with pointers starting at 0xFFF0: the host splits accesses at the buffer's end", async t => {
        const server = net.createServer(c => c.pipe(c))
        await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()))
        const port = (server.address() as net.AddressInfo).port
        const lan = new Lan({ log: () => {} })
        const chip = new W5100S({ log: () => {}, network: lan, pointerStart: 0xfff0 })
        lan.attach(chip.core)
        t.after(() => { chip.close(); lan.close(); server.close() })
        chip.write(COMMON.GAR, [...ipb("192.168.50.1"), ...ipb("255.255.255.0"), 2, 0, 0, 1, 2, 3, ...ipb("192.168.50.100")])
        const s = sreg(1)
        w8(chip, s + SN.MR, 0x01)
        w16(chip, s + SN.PORT, 50000)
        await cmd(chip, 1, CR.OPEN)
        assert.equal(r8(chip, s + SN.SR), SOCK.INIT)
        assert.equal(r16(chip, s + SN.TX_WR), 0xfff0)
        chip.write(s + SN.DIPR, ipb("127.0.0.1"))
        w16(chip, s + SN.DPORT, port)
        await cmd(chip, 1, CR.CONNECT)
        await until(() => r8(chip, s + SN.SR) === SOCK.ESTABLISHED, "ESTABLISHED")
        // 0xFFF0 & 2047 = 2032: 16 bytes fit before the end of socket 1's 2 KB, the rest at its start
        const data = Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff)
        txWrite(chip, 1, data)
        await cmd(chip, 1, CR.SEND)
        await until(() => r16(chip, s + SN.RX_RSR) === data.length, "the echo")
        assert.equal(r16(chip, s + SN.TX_FSR), 2048)
        // the chip does not wrap a burst: reading on past socket 1's end gives socket 2's memory, not the echo
        const rd = r16(chip, s + SN.RX_RD) & 2047
        const naive = [...chip.read(RX_BASE + 2048 + rd, data.length)]
        assert.notDeepEqual(naive, data)
        assert.deepEqual(rxRead(chip, 1, data.length), data)
        await cmd(chip, 1, CR.RECV)
        assert.equal(r16(chip, s + SN.RX_RD), (0xfff0 + 100) & 0xffff)
        await cmd(chip, 1, CR.CLOSE)
        assert.equal(r8(chip, s + SN.SR), SOCK.CLOSED)
        assert.ok(TX_BASE + 4 * 2048 === TX_BASE + MEMORY)
    })
})

describe("W5100S behind the bridge", () => {
    test("HELLO, READ and WRITE with W5100S frames; a W5500 control byte is refused with the reason", async t => {
        const sim = await startW5100SSim({ bridge: { port: 0 }, chip: { log: () => {} }, lan: { log: () => {} } })
        t.after(() => sim.close())
        const sock = net.connect(sim.bridge.port, "127.0.0.1")
        t.after(() => sock.destroy())
        await new Promise<void>(r => sock.once("connect", () => r()))
        let acc = Buffer.alloc(0)
        sock.on("data", d => { acc = Buffer.concat([acc, d]) })
        const req = async (type: number, payload: number[]) => {
            const h = Buffer.from([type, payload.length >> 8, payload.length & 0xff])
            sock.write(Buffer.concat([h, Buffer.from(payload)]))
            await until(() => acc.length >= 3 && acc.length >= 3 + acc.readUInt16BE(1), "a response")
            const n = acc.readUInt16BE(1)
            const r = { type: acc[0], body: acc.subarray(3, 3 + n) }
            acc = acc.subarray(3 + n)
            return r
        }
        const hello = await req(0x01, [])
        assert.equal(hello.body.subarray(0, 8).toString(), "W5500EMU")
        const v = await req(0x03, [OP.READ, 0x00, 0x80, 0, 1])
        assert.deepEqual([v.type, ...v.body], [0x83, 0x51])
        const w = await req(0x04, [OP.WRITE, 0x00, 0x0f, 10, 0, 0, 9])
        assert.equal(w.type, 0x84)
        assert.equal(sim.chip.sourceIp, "10.0.0.9")
        const bad = await req(0x03, [0x00, 0x39, 0x00, 0, 1])
        assert.equal(bad.type, 0xff)
        assert.match(bad.body.toString(), /READ: W5100S OP-code 0x0, expected 0xf/)
    })
})
