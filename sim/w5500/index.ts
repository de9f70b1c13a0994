/**
 * One call to stand up the whole emulated network device: a W5500 plugged into the emulated LAN,
 * driven through the bridge. Used by the simulator runner, the benchmark and VM tests.
 */
import { W5500, type W5500Options } from "./chip.ts"
import { Lan, type LanOptions } from "./lan.ts"
import { startBridge, type Bridge, type BridgeOptions } from "./bridge.ts"

export { W5500, Lan, startBridge }
export { wallClock, type TimerClock } from "./clock.ts"
export type { W5500Options, LanOptions, Bridge, BridgeOptions }

/** A running emulated W5500 + LAN + bridge. */
export interface W5500Sim {
    chip: W5500
    lan: Lan
    bridge: Bridge
    close(): Promise<void>
}

/** Starts a chip on a LAN behind a bridge on 127.0.0.1 (a free port unless told otherwise). */
export async function startW5500Sim(opts: { chip?: W5500Options; lan?: LanOptions; bridge?: BridgeOptions } = {}): Promise<W5500Sim> {
    return await startOnLan(lan => {
        const chip = new W5500({ ...opts.chip, network: lan })
        return { chip, core: chip }
    }, opts)
}

/**
 * Stands up a chip model (the W5500, or a variant built on its socket engine, `core`) on a new
 * LAN behind a bridge; on failure nothing is left open.
 */
export async function startOnLan<C extends Parameters<typeof startBridge>[0]>(
    make: (lan: Lan) => { chip: C; core: W5500 },
    opts: { lan?: LanOptions; bridge?: BridgeOptions }
): Promise<{ chip: C; lan: Lan; bridge: Bridge; close(): Promise<void> }> {
    const lan = new Lan(opts.lan)
    const { chip, core } = make(lan)
    lan.attach(core)
    let bridge: Bridge
    try {
        bridge = await startBridge(chip, opts.bridge)
    } catch (e) {
        chip.close()
        lan.close()
        throw e
    }
    return {
        chip, lan, bridge,
        async close() {
            await bridge.close()
            chip.close()
            lan.close()
        },
    }
}
