/**
 * The DeviceScript W5500 driver and WiznetStack (src/net/wiznet, src/hal) in the VM, against the
 * W5500 emulator over the bridge (sim/w5500): a TCP echo server and aedes on 127.0.0.1 stand for
 * the services, the emulated LAN maps echo.lan and broker.lan to 127.0.0.1. The VM suite is
 * test/vm/wiznet.vm.ts; it asks for link changes and a command with `##CTL` lines.
 */
import { test, type TestContext } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { startW5500Sim, type W5500Sim } from "../../sim/w5500/index.ts"
import { startHostLink } from "../../sim/hostlink.ts"
import { startAedes, type AedesBroker } from "../../sim/brokers.ts"
import type { W5500Options } from "../../sim/w5500/chip.ts"
import { parseDhcp } from "../../sim/w5500/dhcp-server.ts"
import { runVmSuite } from "./lib/vm.ts"

/** A TCP echo server; a connection whose first bytes are "QUIT" gets "bye" and is ended. */
function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>()
    const server = net.createServer(sock => {
        sockets.add(sock)
        sock.on("close", () => sockets.delete(sock))
        sock.on("error", () => {})
        let first = true
        sock.on("data", d => {
            if (first && d.toString().startsWith("QUIT")) {
                sock.end("bye")
                return
            }
            first = false
            sock.write(d)
        })
    })
    return new Promise(resolve =>
        server.listen(0, "127.0.0.1", () =>
            resolve({
                port: (server.address() as net.AddressInfo).port,
                close: () => new Promise<void>(r => {
                    for (const s of sockets) s.destroy()
                    server.close(() => r())
                }),
            })))
}

/** Payload i of the VM's reports. */
function pattern(n: number, salt: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + salt) & 0xff
    return b
}

const JAN_2040 = Date.UTC(2040, 0, 1)

async function runSuite(t: TestContext, suite: "full" | "delays", chip: W5500Options) {
    const echo = await startEcho()
    const broker: AedesBroker = await startAedes()
    const t0 = Date.now()
    const sim: W5500Sim = await startW5500Sim({
        chip: { pointerStart: 0xfff0, ...chip },
        lan: {
            dns: { "echo.lan": "127.0.0.1", "alias.lan": "echo.lan", "full.lan": "127.0.0.1", "broker.lan": "127.0.0.1", "router.lan": "192.168.50.1", "ntp.lan": "192.168.50.1", "pool.ntp.org": "192.168.50.1" },
            leaseSeconds: 8,
            clock: () => JAN_2040 + (Date.now() - t0),
            log: () => {},
        },
        bridge: { port: 0 },
    })
    const reports: Buffer[] = []
    const qos1: string[] = []
    broker.aedes.on("publish", (packet, client) => {
        if (!client) return
        if (packet.topic === "wiz/test/report" || packet.topic === "wiz/test/again") reports.push(Buffer.from(packet.payload as Buffer))
        if (packet.topic === "wiz/test/qos1") qos1.push(packet.payload.toString())
    })
    // INIT-REBOOT requests (RFC 2131 3.2: option 50, no server identifier, ciaddr 0) seen by the server
    let reboots = 0
    const handle = sim.lan.dhcp.handle.bind(sim.lan.dhcp)
    sim.lan.dhcp.handle = (d, now) => {
        try {
            const m = parseDhcp(d.data)
            if (m.options.get(53)?.[0] === 3 && m.options.has(50) && !m.options.has(54) && m.ciaddr === "0.0.0.0") reboots++
        } catch {}
        return handle(d, now)
    }
    const stats: string[] = []
    const link = await startHostLink({ W_BRIDGE: sim.bridge.port, W_ECHO: echo.port, W_MQTT: broker.port, W_SUITE: suite }, { waitMs: 180000 })
    try {
        await runVmSuite(t, "test/vm/wiznet.vm.ts", {
            timeoutMs: 180000,
            onLine: line => {
                const i = line.indexOf("##CTL ")
                if (i >= 0) {
                    const what = line.slice(i + 6).trim()
                    if (what === "link down") sim.chip.setLink(false)
                    else if (what === "link up") sim.chip.setLink(true)
                    else if (what === "dhcp silent") sim.lan.dhcp.silent = true
                    else if (what === "dhcp nak") sim.lan.dhcp.nak = 1
                    else if (what === "dhcp on") sim.lan.dhcp.silent = false
                    else if (what === "ntp pool dead") sim.lan.dns.set("pool.ntp.org", "10.9.9.9")
                    else if (what === "ntp pool moves") sim.lan.dns.set("pool.ntp.org", "192.168.50.1")
                    else if (what === "dns full names") sim.lan.dns.compress = false
                    else if (what === "dns compressed names") sim.lan.dns.compress = true
                    else if (what === "publish cmd") broker.aedes.publish({ cmd: "publish", topic: "wiz/test/cmd", payload: Buffer.from("hello device"), qos: 1, retain: false, dup: false } as any, () => {})
                }
                const j = line.indexOf("##STAT ")
                if (j >= 0) stats.push(line.slice(j + 7).trim())
            },
        })
    } finally {
        await link.close()
        await sim.close()
        await broker.close()
        await echo.close()
    }
    if (suite === "full") {
        await t.test("aedes received the 20 QoS 0 reports intact and the QoS 1 message", () => {
            // 20 reports, or 40 when the first measurement window had DHCP traffic in it
            assert.ok(reports.length === 20 || reports.length === 40, `${reports.length} reports`)
            reports.forEach((p, i) => assert.deepEqual(p, pattern(120, i % 20), `report ${i}`))
            assert.deepEqual(qos1, ["acked"])
        })
        await t.test("each link-up after an outage confirmed the lease with INIT-REBOOT", () => {
            assert.equal(reboots, 2, "two outages, two INIT-REBOOT requests")
        })
        for (const s of stats) t.diagnostic(s)
        assert.ok(stats.some(s => s.startsWith("spi_bytes_per_report=")), "the VM printed its SPI figure")
        await t.test("a QoS 0 report takes at most 6.5 SPI frames (SEND goes without a read-back of Sn_CR; a count, not a timing)", () => {
            const m = /spi_frames_per_report=([0-9.]+)/.exec(stats.join(" "))
            assert.ok(m, "the VM printed its frame count")
            assert.ok(Number(m[1]) <= 6.5, `${m[1]} SPI frames per report`)
        })
    }
}

test("W5500 driver in the VM over the emulated chip", async t => {
    await runSuite(t, "full", {})
})

test("W5500 driver with late commands, late status and slow reset/link (polling paths)", async t => {
    await runSuite(t, "delays", { crDelayFrames: 2, srDelayFrames: 3, resetReadyMs: 5, linkUpDelayMs: 300 })
})
