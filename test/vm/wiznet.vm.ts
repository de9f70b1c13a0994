/**
 * The W5500 driver and `WiznetStack` in the VM against the emulated chip (sim/w5500) over the
 * bridge: bring-up, DHCP, DNS, UDP, TCP with pointer and buffer wrap, SNTP, link down and up,
 * and an MQTT session to aedes. Run from test/node/wiznet.test.ts, which starts the emulator
 * (pointers starting at 0xFFF0), an echo server and aedes, and hands their ports over the host
 * link (W_BRIDGE, W_ECHO, W_MQTT; W_SUITE "delays" runs the subset for a chip with late
 * commands). `##CTL <action>` lines ask the Node side to act (link down/up, publish a command).
 */
import * as ds from "@devicescript/core"
import { readSetting } from "./settings"
import { BridgeSpiBus, BridgeStats, bridgeStats, openBridgeBus } from "../../src/simdev/bridge-spi"
import { SpiBatch, SpiBus } from "../../src/hal/spi"
import { BoardSpiBus, openBoardBus } from "../../src/hal/w5500-bus"
import { parseWiring, readWiring } from "../../src/hal/wiring"
import { MqttClient } from "../../src/mqtt/client"
import { buildQuery, parseResponse } from "../../src/net/dns"
import { Connection } from "../../src/net/stack"
import { Sn_CR_CONNECT, Sn_MR_TCP, Sn_RX_RD, Sn_TX_WR } from "../../src/net/wiznet/registers"
import { socketPolls } from "../../src/net/wiznet/socket"
import { startWiznet, WiznetEvent, WiznetStack } from "../../src/net/wiznet"
import { loadSimSettings } from "../../src/simdev/hostlink"
import { describe, test } from "./harness"
import { eq, has, ok } from "./asserts"

async function fails(p: () => Promise<any>, what: string): Promise<string> {
    try {
        await p()
    } catch (e: any) {
        return e.message
    }
    throw new Error(`${what}: expected an error`)
}

/** Byte i of test payload `salt`. */
function pattern(n: number, salt: number) {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + salt) & 0xff
    return b
}

/** Reads from `c` until `n` bytes came or `ms` passed. */
async function readN(c: Connection, n: number, ms: number): Promise<Buffer> {
    const parts: Buffer[] = []
    let got = 0
    const deadline = ds.millis() + ms
    while (got < n) {
        const left = deadline - ds.millis()
        if (left <= 0) break
        const b = await c.recv(left)
        if (b === null) break
        if (b) {
            parts.push(b)
            got += b.length
        }
    }
    const out = Buffer.alloc(got)
    let p = 0
    for (const b of parts) {
        out.blitAt(p, b, 0, b.length)
        p += b.length
    }
    return out
}

function sameBytes(a: Buffer, b: Buffer, what: string) {
    eq(a.length, b.length, `${what}: length`)
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`${what}: byte ${i} is ${a[i]}, expected ${b[i]}`)
}

async function until(cond: () => boolean, ms: number, what: string) {
    const deadline = ds.millis() + ms
    while (!cond()) {
        if (ds.millis() > deadline) throw new Error(`timed out waiting for ${what}`)
        await ds.sleep(20)
    }
}

// settings first: which tests exist depends on W_SUITE
const settingsLoaded = await loadSimSettings()
const bridgePort: number = await readSetting("W_BRIDGE", 0)
const echoPort: number = await readSetting("W_ECHO", 0)
const mqttPort: number = await readSetting("W_MQTT", 0)
const suite: string = await readSetting("W_SUITE", "full")
let bus: BridgeSpiBus
let stack: WiznetStack

/** The bridge as a bus without RSTn and INTn lines: the driver must use MR.RST and poll SIR. */
class NoPinsBus implements SpiBus {
    readonly name = "bridge without RSTn/INTn"
    frames = 0
    bytes = 0
    constructor(private readonly inner: SpiBus) {}
    async run(b: SpiBatch): Promise<Buffer> {
        const r = await this.inner.run(b)
        this.frames += b.frames
        this.bytes += b.spiBytes
        return r
    }
    async setReset(asserted: boolean): Promise<boolean> {
        return false
    }
    async interrupt(): Promise<number> {
        return -1
    }
    async close() {}
}
const events: WiznetEvent[] = []
let bootAt = 0
const logs: string[] = []

function countEvents(type: string, up?: boolean) {
    let n = 0
    for (const e of events) if (e.type === type && (up === undefined || e.up === up)) n++
    return n
}

describe("wiznet", () => {
    test("runner settings arrive", async () => {
        ok(settingsLoaded >= 4, "host link settings")
        ok(bridgePort > 0 && echoPort > 0 && mqttPort > 0, "ports")
    })

    test("SpiBatch encodes frames as bridge BATCH items", () => {
        const b = new SpiBatch()
        eq(b.add(0, 0x39, 1), 0, "first read offset")
        b.reg(1, 0x01, 0x20)
        eq(b.add(9, 0x24, 2), 1, "second read offset")
        b.add(2, 0xfff0, 2, hex`00 aa bb`, 1)
        b.reg(9, 0x24, 0x1234f, 2)
        const items = b.buf.slice(3, b.len).toString("hex")
        eq(items, "0300050039000001" + "04000400010c20" + "030005002448" + "0002" + "040005fff014aabb" + "04000500244c234f", "encoding")
        eq(b.readLen, 3, "readLen")
        eq(b.frames, 5, "frames")
        eq(b.spiBytes, 4 + 4 + 5 + 5 + 5, "spi bytes")
        b.clear()
        for (let i = 0; i < 40; i++) b.add(1, i, 30, pattern(30, i), 0)
        eq(b.len, 3 + 40 * 36, "a batch grows past its first buffer")
        eq(b.buf[3 + 39 * 36 + 6 + 29], pattern(30, 39)[29], "last byte after growing")
    })

    test("board wiring is parsed and checked", async () => {
        const rp20: any = { "w5500.cs": 20, "w5500.sck": 21, "w5500.miso": 22, "w5500.mosi": 23, "w5500.int": 24, "w5500.rst": 25 }
        const w = parseWiring("W55RP20-EVB-Pico", "gpio", l => rp20[l])
        eq(`${w.bus} ${w.cs} ${w.sck} ${w.miso} ${w.mosi} ${w.rst} ${w.int}`, "gpio 20 21 22 23 25 24", "W55RP20 wiring")
        const evb: any = { "w5500.miso": 16, "w5500.cs": 17, "w5500.sck": 18, "w5500.mosi": 19, "w5500.rst": 20, "w5500.int": 21 }
        const h = parseWiring("W5500-EVB-Pico", "spi0", l => evb[l])
        eq(`${h.bus} ${h.cs} ${h.sck} ${h.miso} ${h.mosi} ${h.rst} ${h.int}`, "spi0 17 18 16 19 20 21", "W5500-EVB-Pico wiring")
        has(parseWiringError("spi0", rp20), "not SPI0 pin roles", "W55RP20 pins on spi0")
        has(parseWiringError(undefined, rp20), `has no "w5500" section`, "no section")
        has(parseWiringError("pio", rp20), `w5500.bus is "pio"`, "bad bus")
        const noCs: any = { "w5500.sck": 21, "w5500.miso": 22, "w5500.mosi": 23 }
        has(parseWiringError("gpio", noCs), `no pin "w5500.cs"`, "missing cs")
        const twice: any = { "w5500.cs": 20, "w5500.sck": 20, "w5500.miso": 22, "w5500.mosi": 23 }
        has(parseWiringError("gpio", twice), "GPIO20 is used twice", "pin twice")
        const opt = parseWiring("x", "gpio", l => noCs[l] !== undefined ? noCs[l] : l === "w5500.cs" ? 9 : undefined)
        eq(opt.rst, -1, "rst not wired")
        // the simulator has no board configuration
        has(await fails(async () => readWiring(), "readWiring"), `has no "w5500" section`, "no wiring in the simulator")
    })

    test("GPIO and hardware SPI transports need a board (no pins in the simulator)", async () => {
        has(await fails(async () => new BoardSpiBus({ bus: "gpio", cs: 20, sck: 21, miso: 22, mosi: 23, rst: 25, int: 24 }), "gpio bus"), "not exposed", "gpio bus in the simulator")
        has(await fails(async () => new BoardSpiBus({ bus: "spi0", cs: 17, sck: 18, miso: 16, mosi: 19, rst: 20, int: 21 }), "spi bus"), "not exposed", "spi bus in the simulator")
        has(await fails(async () => await openBoardBus(), "openBoardBus"), `has no "w5500" section`, "no board bus in the simulator")
    })

    test("startWiznet closes the bus when the chip does not answer or an option is wrong", async () => {
        let closed = 0
        const dead: SpiBus = {
            name: "dead bus",
            run: async (b: SpiBatch) => Buffer.alloc(b.readLen),
            setReset: async (asserted: boolean) => false,
            interrupt: async () => -1,
            close: async () => {
                closed++
            },
        }
        has(await fails(async () => await startWiznet(dead), "no chip"), "VERSIONR reads 0x00", "no chip")
        eq(closed, 1, "bus closed after a failed start")
        has(await fails(async () => await startWiznet(dead, { bufferKB: 4 }), "bufferKB"), "expected 1 or 2", "bufferKB")
        has(await fails(async () => await startWiznet(dead, { static: { ip: "10.0.0.300" } }), "static"), "not an IPv4 address", "static address")
        eq(closed, 3, "bus closed after wrong options")
    })

    test("bridge HELLO, reset (RSTn) and VERSIONR 0x04", async () => {
        // the simulator image's path: openBridgeBus() then startWiznet()
        bus = await openBridgeBus({ port: bridgePort })
        eq(bus.name, "bridge", "bus in the simulator")
        bootAt = ds.millis()
        stack = await startWiznet(bus, { log: m => { logs.push(m); console.log(m) } })
        stack.on(e => { events.push(e) })
        eq(stack.chip.version, 4, "VERSIONR")
        const v = (await stack.chip.read(0, 0x39, 1))[0]
        eq(v, 4, "VERSIONR read again")
        const mac = await stack.chip.read(0, 0x09, 6)
        sameBytes(mac, stack.mac, "SHAR")
        eq(stack.mac[0] & 3, 2, "MAC locally administered unicast")
    })

    test("DHCP lease from the emulated LAN", async () => {
        ok(await stack.waitReady(20000), `ready: ${stack.notReadyReason()}`)
        console.log(`##STAT boot_to_address_ms=${ds.millis() - bootAt} (reset, link, DHCP; VM in test mode)`)
        const s = stack.status()
        has(s.ip, "192.168.50.", "address")
        eq(s.mask, "255.255.255.0", "mask")
        eq(s.gateway, "192.168.50.1", "gateway")
        eq(s.dns[0], "192.168.50.1", "DNS server")
        eq(s.source, "dhcp", "source")
        const sipr = await stack.chip.read(0, 0x0f, 4)
        eq(`${sipr[0]}.${sipr[1]}.${sipr[2]}.${sipr[3]}`, s.ip, "SIPR")
        eq(countEvents("address"), 1, "address events")
    })

    test("DNS resolves a LAN name to 127.0.0.1; NXDOMAIN is a clear error", async () => {
        eq(await stack.resolve("echo.lan"), "127.0.0.1", "echo.lan")
        // the emulated server compresses names as real ones do (C0 0C); a CNAME chain; then names in full
        eq(await stack.resolve("alias.lan"), "127.0.0.1", "alias.lan (CNAME to echo.lan)")
        console.log("##CTL dns full names")
        await ds.sleep(300)
        try {
            eq(await stack.resolve("full.lan"), "127.0.0.1", "full.lan, every name written in full")
        } finally {
            console.log("##CTL dns compressed names")
        }
        eq(await stack.resolve("10.1.2.3"), "10.1.2.3", "an address stays as it is")
        const msg = await fails(async () => await stack.resolve("nope.lan"), "nope.lan")
        has(msg, "NXDOMAIN", "NXDOMAIN message")
        has(msg, "nope.lan", "NXDOMAIN names the host")
    })

    test("socket pointers start near the wrap (0xFFF0) and wrap to 0x00xx", async () => {
        const sock = await stack.openSocket(40123, Sn_MR_TCP)
        try {
            const p0 = await stack.chip.read(sock.sreg, Sn_TX_WR, 2)
            eq((p0[0] << 8) | p0[1], 0xfff0, "Sn_TX_WR after OPEN (emulator pointerStart)")
            await sock.cmd(Sn_CR_CONNECT, Buffer.from([127, 0, 0, 1]), echoPort)
            eq(await sock.waitIrq(0x01, ds.millis() + 5000), 0x01, "CON")
            const data = pattern(100, 4)
            eq(await sock.send(data, 0, 100, ds.millis() + 5000), 100, "bytes sent")
            await sock.sendDone(ds.millis() + 5000)
            const p1 = await stack.chip.read(sock.sreg, Sn_TX_WR, 2)
            eq((p1[0] << 8) | p1[1], (0xfff0 + 100) & 0xffff, "Sn_TX_WR wrapped")
            let got = Buffer.alloc(0)
            const deadline = ds.millis() + 5000
            while (got.length < 100 && ds.millis() < deadline) {
                await sock.waitIrq(0x04, deadline)
                const b = await sock.recv(1000)
                if (b) got = got.concat(b)
            }
            sameBytes(got, data, "echo across the wrap")
            const r1 = await stack.chip.read(sock.sreg, Sn_RX_RD, 2)
            eq((r1[0] << 8) | r1[1], (0xfff0 + 100) & 0xffff, "Sn_RX_RD wrapped")
        } finally {
            await sock.close()
            eq(sock.inUse, false, "CLOSE frees the socket")
        }
    })

    test("TCP echo: data crosses the 16-bit pointer wrap and the buffer end", async () => {
        const c = await stack.connect({ host: "echo.lan", port: echoPort })
        // pointers start at 0xFFF0: the first 16 bytes reach the wrap, 5000 bytes go round the 2 KB buffers twice
        const small = pattern(40, 1)
        await c.send(small)
        sameBytes(await readN(c, 40, 5000), small, "40-byte echo")
        const big = pattern(5000, 3)
        await c.send(big)
        sameBytes(await readN(c, 5000, 10000), big, "5000-byte echo")
        for (let i = 0; i < 20; i++) await c.send(pattern(97, i))
        const back = await readN(c, 20 * 97, 10000)
        eq(back.length, 20 * 97, "20 sends echoed")
        for (let i = 0; i < 20; i++) sameBytes(back.slice(i * 97, i * 97 + 97), pattern(97, i), `send ${i}`)
        eq(await c.recv(50), undefined, "nothing more: recv times out")
        await c.close()
        eq(await c.recv(10), null, "recv after close")
        has(await fails(async () => await c.send(small), "send after close"), "closed", "send after close")
    })

    test("TCP: the peer closing ends the stream after its data", async () => {
        const c = await stack.connect({ host: "127.0.0.1", port: echoPort })
        await c.send(Buffer.from("QUIT\n"))
        const b = await readN(c, 3, 5000)
        eq(b.toString(), "bye", "last words")
        let r: Buffer | null | undefined = undefined
        const deadline = ds.millis() + 5000
        while (r !== null && ds.millis() < deadline) r = await c.recv(deadline - ds.millis())
        eq(r, null, "stream ended")
        eq(c.error, undefined, "a clean close is no error")
        await c.close()
    })

    test("TCP: refused connection and TLS are clear errors", async () => {
        has(await fails(async () => await stack.connect({ host: "127.0.0.1", port: 1, timeoutMs: 5000 }), "port 1"), "refused", "refused")
        has(await fails(async () => await stack.connect({ host: "echo.lan", port: echoPort, tls: true }), "tls"), "TLS is not available", "tls")
        has(await fails(async () => await stack.connect({ host: "nope.lan", port: echoPort }), "nxdomain"), "NXDOMAIN", "connect to unknown name")
    })

    test("UDP: a DNS query by hand, and no ARP reply", async () => {
        const u = await stack.openSocket()
        try {
            await u.sendTo("192.168.50.1", 53, buildQuery(0x1234, "router.lan"))
            const d = await u.recvFrom(3000)
            ok(d !== undefined, "an answer")
            eq(d.ip, "192.168.50.1", "from the router")
            eq(d.port, 53, "from port 53")
            const r = parseResponse(d.data, 0x1234, "router.lan")
            ok(r.ok, `answer parses: ${r.message}`)
            eq(r.addresses[0], "192.168.50.1", "router.lan address")
            has(await fails(async () => await u.sendTo("192.168.50.77", 9, Buffer.from("x"), 5000), "no host"), "no ARP reply", "ARP timeout")
        } finally {
            await u.close()
        }
    })

    test("UDP: datagrams read with bytes left out (DHCP's sname and file), across the receive ring's wrap", async () => {
        const u = await stack.openSocket()
        try {
            // each answer to router.lan is ~50 bytes + the 8-byte header: 40 pairs go round the 2 KB ring
            for (let i = 0; i < 40; i++) {
                const q = buildQuery(0x4000 + i, "router.lan")
                await u.sendTo("192.168.50.1", 53, q)
                const whole = await u.recvFrom(3000)
                await u.sendTo("192.168.50.1", 53, q)
                const part = await u.recvFrom(3000, 4, 12)
                ok(whole !== undefined && part !== undefined, `answers ${i}`)
                eq(part.data.length, whole.data.length, `length ${i}`)
                for (let k = 0; k < whole.data.length; k++)
                    if (part.data[k] !== (k >= 4 && k < 12 ? 0 : whole.data[k])) throw new Error(`answer ${i}: byte ${k} is ${part.data[k]}, expected ${k >= 4 && k < 12 ? 0 : whole.data[k]}`)
            }
            // a datagram no longer than the end of the gap is read whole
            await u.sendTo("192.168.50.1", 53, buildQuery(0x4100, "router.lan"))
            const short = await u.recvFrom(3000, 4, 1000)
            ok(short !== undefined && short.data[5] === 1, "a short answer read whole (QDCOUNT 1)")
        } finally {
            await u.close()
        }
    })

    test("several sockets at once", async () => {
        const a = await stack.connect({ host: "echo.lan", port: echoPort })
        const b = await stack.connect({ host: "echo.lan", port: echoPort })
        const u = await stack.openSocket()
        await a.send(pattern(300, 5))
        await b.send(pattern(300, 6))
        await u.sendTo("192.168.50.1", 53, buildQuery(7, "ntp.lan"))
        sameBytes(await readN(b, 300, 5000), pattern(300, 6), "socket b")
        sameBytes(await readN(a, 300, 5000), pattern(300, 5), "socket a")
        ok((await u.recvFrom(3000)) !== undefined, "udp answer")
        // made on first use, in order: the ones open now and those opened before (~600 bytes of heap each)
        const made = stack.chip.sockets.length
        ok(made >= 3 && made < stack.chip.count, `${made} of the chip's ${stack.chip.count} sockets made`)
        for (let n = 0; n < made; n++) eq(stack.chip.sockets[n].n, n, "socket at its number")
        await a.close()
        await b.close()
        await u.close()
    })

    test("SNTP time from the LAN's NTP server (clock set to 2040: era 1)", async () => {
        await until(() => stack.unixTime() > 0, 15000, "SNTP sync")
        const t = stack.unixTime()
        const jan2040 = 2208988800000
        ok(t >= jan2040 && t < jan2040 + 600000, `time ${t} is not just after 2040-01-01`)
        eq(countEvents("time") >= 1, true, "time event")
    })

    if (suite === "full") {
        test("DHCP lease renewed in the background (8 s lease)", async () => {
            const ip = stack.ip
            await until(() => stack.dhcp.counters.acks >= 2, 15000, "a renewal ACK")
            eq(stack.ip, ip, "same address after renewal")
            eq(stack.dhcp.state, "bound", "bound")
            eq(countEvents("lost"), 0, "never lost")
        })

        test("link down, then up: the stack sees both and TCP works again", async () => {
            console.log("##CTL link down")
            await until(() => !stack.link, 5000, "link down seen")
            ok(!stack.ready(), "not ready while down")
            has(stack.notReadyReason(), "link is down", "reason")
            has(await fails(async () => await stack.connect({ host: "echo.lan", port: echoPort, timeoutMs: 300 }), "connect while down"), "link is down", "connect while down")
            console.log("##CTL link up")
            await until(() => stack.link, 5000, "link up seen")
            eq(countEvents("link", false), 1, "one link-down event")
            eq(countEvents("link", true), 2, "link-up events (start, after outage)")
            const c = await stack.connect({ host: "echo.lan", port: echoPort })
            await c.send(pattern(64, 9))
            sameBytes(await readN(c, 64, 5000), pattern(64, 9), "echo after the outage")
            await c.close()
            // the lease was confirmed by an INIT-REBOOT REQUEST (counted on the Node side) and kept
            await until(() => stack.dhcp.state === "bound", 10000, "lease confirmed after the outage")
            eq(countEvents("lost"), 0, "lease kept across the outage")
        })

        test("link flap into a LAN whose server refuses the address: NAK to INIT-REBOOT, lease lost, a new one", async () => {
            const acks = stack.dhcp.counters.acks
            console.log("##CTL link down")
            await until(() => !stack.link, 5000, "link down seen")
            console.log("##CTL dhcp nak")
            await ds.sleep(300)
            console.log("##CTL link up")
            await until(() => countEvents("lost") === 1, 10000, "lease lost on the NAK")
            has(stack.dhcp.lastError, "NAK", "why")
            await until(() => stack.ready(), 20000, "a new lease")
            ok(stack.dhcp.counters.acks > acks, "ACKed again")
        })

        test("MQTT session through the emulated chip: QoS 0 reports, QoS 1, a command", async () => {
            const client = new MqttClient({ net: stack, host: "broker.lan", port: mqttPort, clientId: "wiz-vm", keepAlive: 30, log: false })
            client.start()
            await until(() => client.connected, 10000, "MQTT connected")
            let got = ""
            await client.subscribe("wiz/test/cmd", m => {
                got = m.payload.toString()
            }, { qos: 1 })
            const topic = "wiz/test/report"
            const n = 20
            // measure a window without DHCP or SNTP traffic (the 8 s lease renews every 4 s)
            let per = 0
            let line = ""
            for (let attempt = 0; attempt < 4 && !line; attempt++) {
                if (attempt) for (let i = 0; i < n; i++) await client.publish("wiz/test/warmup", pattern(120, i))
                const dhcp0 = stack.dhcp.counters.sent + stack.sntp.counters.sent
                const s0: BridgeStats = await bridgeStats(bus)
                const d0 = bus.bytes
                const t0 = ds.millis()
                for (let i = 0; i < n; i++) await client.publish(attempt ? "wiz/test/again" : topic, pattern(120, i))
                // the last SEND_OK and its interrupt belong to the reports too
                await ds.sleep(100)
                const s1: BridgeStats = await bridgeStats(bus)
                const ms = ds.millis() - t0
                eq(bus.bytes - d0, s1.spiBytes - s0.spiBytes, "driver and emulator count the same SPI bytes")
                if (stack.dhcp.counters.sent + stack.sntp.counters.sent !== dhcp0) continue
                const spi = s1.spiBytes - s0.spiBytes
                per = spi / n
                line = `spi_bytes_per_report=${Math.round(per * 10) / 10} spi_frames_per_report=${Math.round(((s1.spiFrames - s0.spiFrames) / n) * 10) / 10} bridge_round_trips_per_report=${Math.round(((s1.requests - s0.requests) / n) * 10) / 10} ms_per_report=${Math.round(ms / n)}`
            }
            ok(line !== "", "a measurement window without DHCP/SNTP traffic")
            // PUBLISH: fixed header 1 + remaining length 2, topic length 2 + topic, payload
            const packet = 3 + 2 + topic.length + 120
            // idle cost: link checks and interrupt polling only
            let idle = ""
            for (let attempt = 0; attempt < 4 && !idle; attempt++) {
                const dhcp0 = stack.dhcp.counters.sent + stack.sntp.counters.sent
                const i0: BridgeStats = await bridgeStats(bus)
                await ds.sleep(2000)
                const i1: BridgeStats = await bridgeStats(bus)
                if (stack.dhcp.counters.sent + stack.sntp.counters.sent !== dhcp0) continue
                idle = `idle_spi_bytes_per_s=${Math.round((i1.spiBytes - i0.spiBytes) / 2)} idle_round_trips_per_s=${Math.round((i1.requests - i0.requests) / 2)}`
            }
            console.log(`##STAT ${line} mqtt_packet_bytes=${packet} ${idle || "idle_spi_bytes_per_s=(DHCP traffic in every window)"}`)
            ok(per <= 1.5 * packet + 40, `SPI bytes per report ${per} above 1.5 x ${packet} + 40`)
            await client.publish("wiz/test/qos1", "acked", { qos: 1 })
            console.log("##CTL publish cmd")
            await until(() => got !== "", 5000, "the command")
            eq(got, "hello device", "command payload")
            eq(client.stats().reconnects, 0, "no reconnect while the 8 s lease renewed underneath")
            await client.stop()
        })

        test("static fallback when the DHCP server is silent; static only; a bus without RSTn/INTn", async () => {
            await stack.stop()
            console.log("##CTL dhcp silent")
            const lines: string[] = []
            const s2 = new WiznetStack(bus, {
                static: { ip: "192.168.50.42", gateway: "192.168.50.1", dns: ["192.168.50.1"] }, dhcpFallbackMs: 6000, ntp: [],
                log: m => { lines.push(m); console.log(m) },
            })
            await s2.start()
            await ds.sleep(2000)
            ok(!s2.ready(), "no address while DHCP is still trying")
            has(s2.notReadyReason(), "DHCP selecting", "reason while waiting")
            ok(await s2.waitReady(10000), `ready: ${s2.notReadyReason()}`)
            eq(s2.status().source, "static", "source")
            eq(s2.ip, "192.168.50.42", "static address")
            has(lines.join("\n"), "DHCP selecting: no answer (1 unanswered", "retry logged")
            has(lines.join("\n"), "no DHCP lease after 6 s", "fallback logged")
            const c = await s2.connect({ host: "echo.lan", port: echoPort })
            await c.send(pattern(50, 2))
            sameBytes(await readN(c, 50, 5000), pattern(50, 2), "echo on the static address")
            await c.close()
            // DHCP goes on in the background: once the server answers, its lease replaces the static address
            console.log("##CTL dhcp on")
            await until(() => s2.status().source === "dhcp", 45000, "the DHCP lease after the fallback")
            has(lines.join("\n"), "leaving the static address 192.168.50.42", "move logged")
            ok(s2.ip !== "192.168.50.42" && s2.ready(), `on the lease: ${s2.ip}`)
            await s2.stop()
            const s3 = new WiznetStack(bus, { static: { ip: "192.168.50.43", gateway: "192.168.50.1" }, ntp: [], log: m => console.log(m) })
            await s3.start()
            ok(await s3.waitReady(3000), "static only: ready at once")
            eq(s3.status().dhcp, "off", "no DHCP")
            has(await fails(async () => await s3.resolve("echo.lan", 2000), "no DNS"), "no DNS server", "no DNS server configured")
            const c3 = await s3.connect({ host: "127.0.0.1", port: echoPort })
            await c3.send(pattern(10, 1))
            sameBytes(await readN(c3, 10, 5000), pattern(10, 1), "echo")
            await c3.close()
            await s3.stop()
            // no RSTn, no INTn: MR.RST for the reset, SIR read over SPI for the interrupts
            const s4 = new WiznetStack(new NoPinsBus(bus), { static: { ip: "192.168.50.44", gateway: "192.168.50.1" }, ntp: [], log: m => console.log(m) })
            await s4.start()
            eq(s4.chip.version, 4, "VERSIONR after MR.RST")
            ok(await s4.waitReady(3000), "ready")
            const c4 = await s4.connect({ host: "127.0.0.1", port: echoPort })
            await c4.send(pattern(700, 3))
            sameBytes(await readN(c4, 700, 5000), pattern(700, 3), "echo with SIR polling")
            await c4.close()
            await s4.stop()
        })

        test("SNTP: a pool that moves is looked up again after a failed round", async () => {
            // pool.ntp.org first answers with an address that never replies (off the LAN, no route)
            console.log("##CTL ntp pool dead")
            await ds.sleep(300)
            const lines: string[] = []
            const s5 = new WiznetStack(bus, {
                static: { ip: "192.168.50.45", gateway: "192.168.50.1", dns: ["192.168.50.1"] }, ntp: ["pool.ntp.org"],
                log: m => { lines.push(m); console.log(m) },
            })
            await s5.start()
            await until(() => s5.sntp.counters.sent > 0, 15000, "a request to the dead address")
            eq(s5.sntp.servers.join(), "10.9.9.9", "the first address")
            console.log("##CTL ntp pool moves")
            await until(() => s5.unixTime() > 0, 20000, "SNTP time from the new address")
            has(lines.join("\n"), "NTP servers now 192.168.50.1", "new address logged")
            eq(s5.sntp.counters.failures, 1, "one failed round")
            stack = s5
        })
    }

    test(suite === "full" ? "commands were accepted at once: no polling rounds" : "late commands and status were polled for", () => {
        if (suite === "full") eq(socketPolls.command + socketPolls.open, 0, "polling rounds")
        else ok(socketPolls.command > 0 && socketPolls.open > 0, `polling rounds: command ${socketPolls.command}, open ${socketPolls.open}`)
    })

    test("stop closes everything", async () => {
        await stack.stop()
        ok(!stack.ready(), "not ready after stop")
        await bus.close()
    })
})

function parseWiringError(bus: string, pins: any): string {
    try {
        parseWiring("B", bus, l => pins[l])
    } catch (e: any) {
        return e.message
    }
    return "no error"
}
