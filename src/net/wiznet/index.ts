/**
 * The W5500 network stack, ready to use: `startWiznet()` opens the W5500's bus (the emulator
 * bridge in the simulator, the board's wiring on hardware), brings the chip up and returns the
 * `WiznetStack` (a `NetStack`) while DHCP, SNTP and the link watch carry on in the background.
 */
import { openW5500Bus, W5500BusOptions } from "../../hal/w5500-bus"
import { WiznetOptions, WiznetStack } from "./stack"

export { WiznetStack } from "./stack"
export type { StaticAddress, WiznetEvent, WiznetOptions, WiznetStatus } from "./stack"

/** Options of `startWiznet`: the stack's (without `bus`) and the bus's. */
export interface StartWiznetOptions extends W5500BusOptions {
    stack?: Partial<WiznetOptions>
}

/**
 * Opens the bus, starts a `WiznetStack` on it and returns it (the address arrives in the
 * background: `waitReady`, or just `connect`, which waits for it). In the simulator the bus takes
 * the runtime's only socket: load the simulator settings first. Throws when the chip does not answer.
 */
export async function startWiznet(opts: StartWiznetOptions = {}): Promise<WiznetStack> {
    const bus = await openW5500Bus(opts)
    const so = opts.stack || {}
    const stack = new WiznetStack({
        bus, mac: so.mac, hostname: so.hostname, static: so.static, dhcpFallbackMs: so.dhcpFallbackMs, dns: so.dns,
        ntp: so.ntp, ntpIntervalMs: so.ntpIntervalMs, linkCheckMs: so.linkCheckMs, bufferKB: so.bufferKB, log: so.log,
    })
    try {
        await stack.start()
    } catch (e) {
        await bus.close()
        throw e
    }
    return stack
}
