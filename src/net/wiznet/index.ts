/**
 * The W5500 network stack, ready to use: `startWiznet(bus, opts)` brings the chip on an opened bus
 * up and returns the `WiznetStack` (a `NetStack`) while DHCP, SNTP and the link watch carry on in
 * the background. Open the bus with the image's transport: `openBridgeBus()` (src/simdev/bridge-spi.ts)
 * in the simulator, `openBoardBus()` (src/hal/w5500-bus.ts) on a board; an image links only the
 * transport it names.
 */
import { SpiBus } from "../../hal/spi"
import { WiznetOptions, WiznetStack } from "./stack"

export { WiznetStack } from "./stack"
export type { StaticAddress, WiznetEvent, WiznetOptions, WiznetStatus } from "./stack"

/**
 * Starts a `WiznetStack` on `bus` and returns it (the address arrives in the background:
 * `waitReady`, or just `connect`, which waits for it). Closes the bus and throws when an option is
 * wrong or the chip does not answer.
 */
export async function startWiznet(bus: SpiBus, opts?: WiznetOptions): Promise<WiznetStack> {
    try {
        const stack = new WiznetStack(bus, opts)
        await stack.start()
        return stack
    } catch (e) {
        await bus.close()
        throw e
    }
}
