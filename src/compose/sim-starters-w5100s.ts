/** The W5100S network stack of the simulator image: the emulator behind the simulator bridge. */
import { Config } from "../config"
import { NetStack } from "../net/stack"
import { w5100s } from "../net/wiznet/w5100s"
import { openBridgeBus } from "../simdev/bridge-spi"
import { wiznet } from "./wiznet"

/** The W5100S emulator behind the simulator bridge (`npm start -- --chip w5100s`). */
export async function simW5100S(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBridgeBus(), cfg, log, w5100s)
}
