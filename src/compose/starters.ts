/**
 * The network stacks a board image can carry, started from the configuration: the W5500 through
 * the board's wiring. The simulator's (the runtime's sockets, the emulator bridge) are in
 * sim-starters.ts, so that a board image does not even carry their modules' set-up code.
 */
import { Config } from "../config"
import { openBoardBus } from "../hal/w5500-bus"
import { NetStack } from "../net/stack"
import { wiznet } from "./wiznet"

/** The board's W5500, wired as its board file says (bit-banged on the W55RP20, SPI0 on the W5500-EVB-Pico). */
export async function boardW5500(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBoardBus(), cfg, log)
}
