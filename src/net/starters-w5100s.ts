/**
 * The W5100S network stacks an image can carry (the W5100S-EVB-Pico): through the emulator bridge
 * in the simulator, or through the board file's "w5100s" wiring. A separate file so that W5500
 * images do not link the W5100S driver.
 */
import { Config } from "../config"
import { openBridgeBus } from "../hal/bridge-spi"
import { openBoardBus } from "../hal/w5500-bus"
import { NetStack } from "./stack"
import { wiznet } from "./starters"
import { w5100s } from "./wiznet/w5100s"

/** The W5100S emulator behind the simulator bridge (`npm start -- --chip w5100s`). */
export async function simW5100S(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBridgeBus(), cfg, log, w5100s)
}

/** The board's W5100S, wired as its board file's "w5100s" section says (SPI0 on the W5100S-EVB-Pico). */
export async function boardW5100S(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBoardBus({ chip: "w5100s" }), cfg, log, w5100s)
}
