/**
 * The Pico W's network in the simulator: the Wi-Fi settings the runner hands over (WIFI_SSID,
 * WIFI_PWD) are checked as the board would need them, then the simulator's own sockets stand in
 * for the Wi-Fi (which is not emulated). Simulator images only.
 */
import { Config } from "../config"
import { HostStack } from "../net/host"
import { NetStack } from "../net/stack"
import { wifiSettingsError } from "../net/wifi"
import { runnerSetting } from "./hostlink"

/** Checks WIFI_SSID/WIFI_PWD (throws with the problem), then returns the simulator's sockets. */
export async function simPicoW(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    const ssid = await runnerSetting("WIFI_SSID")
    const err = wifiSettingsError(ssid, await runnerSetting("WIFI_PWD"))
    if (err) throw new Error(err)
    log(`wifi: "${ssid}" (Wi-Fi is not emulated: the simulator's own socket stands in for it)`)
    return new HostStack()
}
