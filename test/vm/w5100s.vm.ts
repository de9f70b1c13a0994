/**
 * The W5100S driver (src/net/wiznet/w5100s.ts) in the VM: `W5100sBatch` framing and buffer
 * splitting as bytes, then `WiznetStack` with the W5100S chip against the W5100S emulator
 * (sim/w5100s) over the bridge: VERR 0x51, 4 sockets, a DHCP lease, DNS over UDP, and a TCP
 * echo whose data crosses the 16-bit pointer wrap and the end of the 2 KB socket buffers (which
 * the W5100S, unlike the W5500, leaves to the driver). Run from test/node/w5100s-driver.test.ts
 * (settings W_BRIDGE, W_ECHO over the host link; the emulator's pointers start at 0xFFF0).
 */
import * as ds from "@devicescript/core"
import { readSetting } from "./settings"
import { openBridgeBus } from "../../src/simdev/bridge-spi"
import { SpiBatch, SpiBus } from "../../src/hal/spi"
import { Connection } from "../../src/net/stack"
import { startWiznet, WiznetStack } from "../../src/net/wiznet"
import { W5500 } from "../../src/net/wiznet/chip"
import { WizSocket } from "../../src/net/wiznet/socket"
import { W5100sBatch, w5100s } from "../../src/net/wiznet/w5100s"
import { loadSimSettings } from "../../src/simdev/hostlink"
import { describe, test } from "./harness"

function eq(actual: any, expected: any, what: string) {
    if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`)
}
function has(s: string, part: string, what: string) {
    if (typeof s !== "string" || s.indexOf(part) < 0) throw new Error(`${what}: "${s}" does not contain "${part}"`)
}
function pattern(n: number, salt: number) {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + salt) & 0xff
    return b
}
function sameBytes(a: Buffer, b: Buffer, what: string) {
    eq(a.length, b.length, `${what}: length`)
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`${what}: byte ${i} is ${a[i]}, expected ${b[i]}`)
}
async function readN(c: Connection, n: number, ms: number): Promise<Buffer> {
    let out = Buffer.alloc(0)
    const deadline = ds.millis() + ms
    while (out.length < n && ds.millis() < deadline) {
        const b = await c.recv(deadline - ds.millis())
        if (b === null) break
        if (b) out = out.concat(b)
    }
    return out
}

await loadSimSettings()
const bridgePort: number = await readSetting("W_BRIDGE", 0)
const echoPort: number = await readSetting("W_ECHO", 0)
let stack: WiznetStack

describe("w5100s", () => {
    test("W5100sBatch: OP addr_hi addr_lo frames; socket registers at 0x0400 + 0x100 n; buffers split at their end", () => {
        const socks: WizSocket[] = []
        for (let n = 0; n < 4; n++) socks.push(new WizSocket(undefined, n))
        // the batch reads only the chip's bufSize (2 KB a socket)
        const b = new W5100sBatch({ bufSize: 2048 } as W5500)
        eq(b.add(0, 0x80, 1), 0, "VERR read offset")
        b.reg(socks[2].sreg, 0x01, 0x20) // socket 2 Sn_CR = SEND
        // socket 1's TX buffer (2 KB at 0x4800), pointer 0xFFFE: offset 2046, 2 bytes fit, 1 goes to the start
        b.add(socks[1].txb, 0xfffe, 3, hex`aa bb cc`, 0)
        // socket 3's RX buffer (0x7800), pointer 0x07FF: offset 2047, 1 byte at the end, 3 from the start
        eq(b.add(socks[3].rxb, 0x07ff, 4), 1, "split read offset")
        const items = b.buf.slice(3, b.len).toString("hex")
        eq(items,
            "0300050f008000" + "01" + // read VERR
            "040004f0060120" + // write 0x0601
            "040005f04ffeaabb" + "040004f04800cc" + // TX write split
            "0300050f7fff0001" + "0300050f78000003", // RX read split
            "encoding")
        eq(b.readLen, 5, "readLen")
        eq(b.frames, 6, "frames")
    })

    test("no W5100S answering: the error names VERR, the value expected and the chip", async () => {
        const dead: SpiBus = {
            name: "dead bus",
            run: async (b: SpiBatch) => Buffer.alloc(b.readLen),
            setReset: async (asserted: boolean) => false,
            interrupt: async () => -1,
            close: async () => {},
        }
        let msg = ""
        try {
            await startWiznet(dead, { chip: w5100s })
        } catch (e: any) {
            msg = e.message
        }
        has(msg, "w5100s: VERR reads 0x00", "the register")
        has(msg, "expected 0x51: no such chip answering", "the value")
    })

    test("startWiznet with the W5100S: VERR 0x51, 4 sockets, MAC read back", async () => {
        const bus = await openBridgeBus({ port: bridgePort })
        stack = await startWiznet(bus, { chip: w5100s, log: m => console.log(m) })
        eq(stack.chip.version, 0x51, "VERR")
        eq(stack.chip.name, "w5100s", "chip name")
        eq(stack.chip.count, 4, "sockets")
        eq((await stack.chip.read(0, 0x80, 1))[0], 0x51, "VERR read again")
    })

    test("DHCP lease and DNS over the W5100S's UDP sockets", async () => {
        eq(await stack.waitReady(20000), true, `ready: ${stack.notReadyReason()}`)
        has(stack.status().ip, "192.168.50.", "address")
        eq(await stack.resolve("echo.lan"), "127.0.0.1", "echo.lan")
    })

    test("TCP echo across the pointer wrap and the socket buffer's end (the driver splits)", async () => {
        const c = await stack.connect({ host: "echo.lan", port: echoPort })
        const big = pattern(5000, 3)
        await c.send(big)
        sameBytes(await readN(c, 5000, 15000), big, "5000-byte echo")
        for (let i = 0; i < 10; i++) await c.send(pattern(97, i))
        const back = await readN(c, 970, 10000)
        for (let i = 0; i < 10; i++) sameBytes(back.slice(i * 97, i * 97 + 97), pattern(97, i), `send ${i}`)
        await c.close()
    })

    test("a wrong chip is a clear error: the W5500 driver's frames are refused by the W5100S bridge, with the reason", async () => {
        await stack.stop()
        const bus = await openBridgeBus({ port: bridgePort })
        let msg = ""
        try {
            await startWiznet(bus)
        } catch (e: any) {
            msg = e.message
        }
        has(msg, "W5100S OP-code", "W5500 driver on a W5100S")
    })
})
