/**
 * The network stacks of the simulator images: the runtime's own sockets, and the W5500 emulator
 * behind the simulator bridge (sim/w5500/BRIDGE.md).
 */
import { Config } from "../config"
import { HostStack } from "../net/host"
import { NetStack } from "../net/stack"
import { openBridgeBus } from "../simdev/bridge-spi"
import { wiznet } from "./wiznet"

/** The runtime's own sockets (the desktop simulator; TLS included). */
export async function hostNetwork(): Promise<NetStack> {
    return new HostStack()
}

/** The W5500 emulator behind the simulator bridge (sim/w5500/BRIDGE.md). */
export async function simW5500(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBridgeBus(), cfg, log)
}
