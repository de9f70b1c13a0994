/**
 * The UF2 the emulated board boots: made by `npm run bundle`'s machinery (sim/bundle.ts: the
 * runtime from the steering folder, the board file, the board image of the settings' CLOUD, the
 * settings) with the emulated LAN's broker (broker.lan:1883) written over MQTT_HOST/MQTT_PORT, into
 * its own file so that the user's flashing bundle is left alone.
 */
import path from "node:path"
import { bundle, parseBundleArgs, type BundleResult } from "../bundle.ts"
import type { SettingValue } from "../envfile.ts"
import type { LanOptions } from "../w5500/lan.ts"
import { BROKER_LAN_IP, BROKER_NAME, emulatedLanOptions } from "../start.ts"

/** Port of the broker on the emulated LAN (the LAN maps it to the real one). */
export const LAN_BROKER_PORT = 1883

/** The emulated board's LAN (npm start's), its broker.lan:1883 mapped to the broker on this machine at `brokerPort`. */
export function boardLan(brokerPort: number): Omit<LanOptions, "timers"> {
    return { ...emulatedLanOptions(), tcpMap: { [`${BROKER_LAN_IP}:${LAN_BROKER_PORT}`]: `127.0.0.1:${brokerPort}` } }
}

/** Where the emulated board's UF2 of `board` is written. */
export function emulatedUf2Path(project: string, board: string): string {
    return path.join(project, ".devicescript/bin", `emulated-${board}.uf2`)
}

/**
 * Bundles the firmware of `board` for the emulated board: the settings files (with `local`,
 * .env.local too), then the broker on the emulated LAN, then `extra`.
 */
export async function bundleForEmulatedBoard(
    board: string,
    opts: { local?: boolean; extra?: Record<string, SettingValue>; project?: string; log?: (s: string) => void } = {}
): Promise<BundleResult> {
    const o = parseBundleArgs(["--board", board, ...(opts.local === false ? ["--no-local"] : []), ...(opts.project ? ["--project", opts.project] : [])])
    o.extraSettings = { MQTT_HOST: BROKER_NAME, MQTT_PORT: LAN_BROKER_PORT, MQTT_TLS: false, ...opts.extra }
    o.outFile = emulatedUf2Path(o.project, board)
    o.debugFile = o.outFile.replace(/\.uf2$/, ".dbg.json")
    return await bundle(o, opts.log ?? (() => {}))
}
