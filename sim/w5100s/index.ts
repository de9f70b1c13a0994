/**
 * One call to stand up the emulated W5100S: the chip plugged into the emulated LAN (sim/w5500/lan.ts,
 * shared with the W5500: same DHCP, DNS and NTP servers and host sockets), driven through the same
 * bridge (sim/w5500/BRIDGE.md; READ/WRITE frames in the W5100S format `OP addr_hi addr_lo`).
 */
import { W5100S, type W5100SOptions } from "./chip.ts"
import { type Lan, type LanOptions } from "../w5500/lan.ts"
import { type Bridge, type BridgeOptions } from "../w5500/bridge.ts"
import { startOnLan } from "../w5500/index.ts"

export { W5100S }

/** A running emulated W5100S + LAN + bridge. */
export interface W5100SSim {
    chip: W5100S
    lan: Lan
    bridge: Bridge
    close(): Promise<void>
}

/** Starts a W5100S on a LAN behind a bridge on 127.0.0.1 (a free port unless told otherwise). */
export async function startW5100SSim(opts: { chip?: W5100SOptions; lan?: LanOptions; bridge?: BridgeOptions } = {}): Promise<W5100SSim> {
    return await startOnLan(lan => {
        const chip = new W5100S({ ...opts.chip, network: lan })
        return { chip, core: chip.core }
    }, opts)
}
