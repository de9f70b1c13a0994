/**
 * The W5100S driver and `WiznetStack` in the VM (test/vm/w5100s.vm.ts) against the W5100S
 * emulator over the bridge, with its pointers starting at 0xFFF0, and a TCP echo server.
 */
import { test } from "node:test"
import net from "node:net"
import { startW5100SSim } from "../../sim/w5100s/index.ts"
import { startHostLink } from "../../sim/hostlink.ts"
import { runVmSuite } from "./lib/vm.ts"

test("W5100S driver in the VM over the emulated W5100S", async t => {
    const server = net.createServer(s => { s.on("error", () => {}); s.pipe(s) })
    await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()))
    const sim = await startW5100SSim({
        chip: { pointerStart: 0xfff0, log: () => {} },
        lan: { dns: { "echo.lan": "127.0.0.1", "pool.ntp.org": "192.168.50.1" }, log: () => {} },
        bridge: { port: 0 },
    })
    const link = await startHostLink({ W_BRIDGE: sim.bridge.port, W_ECHO: (server.address() as net.AddressInfo).port }, { waitMs: 120000 })
    try {
        await runVmSuite(t, "test/vm/w5100s.vm.ts", { timeoutMs: 120000 })
    } finally {
        await link.close()
        await sim.close()
        server.close()
    }
})
