/**
 * One call to stand up the emulated W5100S: the chip plugged into the emulated LAN (sim/w5500/lan.ts,
 * shared with the W5500: same DHCP, DNS and NTP servers and host sockets), driven through the same
 * bridge (sim/w5500/BRIDGE.md; READ/WRITE frames in the W5100S format `OP addr_hi addr_lo`).
 */
import { W5100S, type W5100SOptions } from "./chip.ts"
import { Lan, type LanOptions } from "../w5500/lan.ts"
import { startBridge, type Bridge, type BridgeOptions } from "../w5500/bridge.ts"

export { W5100S }

/** A running emulated W5100S + LAN + bridge. */
export interface W5100SSim {
    chip: W5100S
    lan: Lan
    bridge: Bridge
    close(): Promise<void>
}

/** Starts a W5100S on a LAN behind a bridge on 127.0.0.1 (port 17767 unless told otherwise). */
export async function startW5100SSim(opts: { chip?: W5100SOptions; lan?: LanOptions; bridge?: BridgeOptions } = {}): Promise<W5100SSim> {
    const lan = new Lan(opts.lan)
    const chip = new W5100S({ ...opts.chip, network: lan })
    lan.attach(chip.core)
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
