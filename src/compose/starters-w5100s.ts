/**
 * The W5100S network stack of the W5100S-EVB-Pico image: through the board file's "wiz" section
 * (chip "w5100s"); the simulator's is in sim-starters-w5100s.ts. Separate files so that W5500
 * images do not link the W5100S driver.
 */
import * as ds from "@devicescript/core"
import { Config } from "../config"
import { openBoardBus } from "../hal/w5500-bus"
import { NetStack } from "../net/stack"
import { wiznet } from "./wiznet"
import { w5100s } from "../net/wiznet/w5100s"

type DsConfig = typeof ds & { _dcfgString(id: string): string }

/** The board's W5100S, wired as its board file's "wiz" section says (SPI0 on the W5100S-EVB-Pico); throws when the board declares another chip. */
export async function boardW5100S(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    const c = ds as DsConfig
    const chip = c._dcfgString("wiz.chip")
    if (chip !== "w5100s")
        throw new Error(`w5100s: board "${c._dcfgString("devName")}" has ${chip ? `wiz.chip "${chip}"` : "no \"wiz\" section"}, expected "w5100s": this image is for the W5100S-EVB-Pico (boards/w5100s_evb_pico.board.json)`)
    return await wiznet(await openBoardBus({ section: "wiz" }), cfg, log, w5100s)
}
