/**
 * The Raspberry Pi Pico W's network: the stock DeviceScript Pico W runtime has Wi-Fi and TCP
 * sockets of its own, so the firmware uses `HostStack` (the runtime's sockets) and carries no
 * W5500 code. Wi-Fi credentials are the settings WIFI_SSID and WIFI_PWD, the way DeviceScript
 * configures Wi-Fi: its CLI does not store them as program settings but hands them to the
 * runtime's Wi-Fi service (AddNetwork), which keeps them and connects. So on the board the
 * firmware checks the Wi-Fi service (configured network, address) and in the simulator the
 * settings themselves (src/simdev/picow.ts; Wi-Fi itself is not emulated there).
 * NOT VERIFIED ON HARDWARE: no Pico W runtime is vendored in this kit (see docs/hardware.md, "The other RP2040 boards").
 */
import * as ds from "@devicescript/core"
import { Config } from "../config"
import { HostStack } from "./host"
import { NetStack } from "./stack"
import { millis, sleep } from "../util/rt"

/** How long the board waits for the Wi-Fi service to connect and get an address. */
export const WIFI_WAIT_MS = 30000

/**
 * Checks Wi-Fi settings as the Pico W's radio takes them: WIFI_SSID 1..32 bytes, WIFI_PWD empty
 * (an open network) or 8..63 characters (WPA2). Returns the problem in words, or "" when fine.
 */
export function wifiSettingsError(ssid: any, pwd: any): string {
    if (ssid === undefined || ssid === null || ssid === "")
        return "wifi: WIFI_SSID is not set: put WIFI_SSID=<network name> (and WIFI_PWD=<password>, empty for an open network) in .env.local"
    if (typeof ssid !== "string") return `wifi: WIFI_SSID must be text (the network name), got ${JSON.stringify(ssid)}`
    const n = Buffer.from(ssid).length
    if (n > 32) return `wifi: WIFI_SSID is ${n} bytes long, a Wi-Fi network name has at most 32`
    if (pwd === undefined || pwd === null || pwd === "") return ""
    if (typeof pwd !== "string") return "wifi: WIFI_PWD must be text (the WPA2 passphrase)"
    if (pwd.length < 8 || pwd.length > 63) return `wifi: WIFI_PWD has ${pwd.length} characters, a WPA2 passphrase has 8..63 (or leave it empty for an open network)`
    return ""
}

/**
 * The board's Wi-Fi through the runtime's Wi-Fi service: throws when the runtime has none (not
 * the Pico W runtime), when no network is configured, or when no address came in `WIFI_WAIT_MS`.
 */
export async function boardPicoW(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    const wifi = new ds.Wifi()
    const deadline = millis() + WIFI_WAIT_MS
    let ssid = ""
    for (;;) {
        if (wifi.isBound) {
            ssid = await wifi.ssid.read()
            const ip = await wifi.ipAddress.read()
            if (ip && ip.length === 4 && ip[0] !== 0) {
                log(`wifi: connected to "${ssid}", address ${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`)
                return new HostStack()
            }
        }
        if (millis() > deadline) {
            if (!wifi.isBound) throw new Error("wifi: this runtime has no Wi-Fi service: the pico_w image needs DeviceScript's Raspberry Pi Pico W runtime")
            throw new Error(
                ssid
                    ? `wifi: no address from "${ssid}" after ${WIFI_WAIT_MS / 1000} s: check WIFI_PWD and that the access point is in range`
                    : "wifi: no network configured: set WIFI_SSID and WIFI_PWD in .env.local and deploy them (the DeviceScript CLI hands them to the Wi-Fi service)"
            )
        }
        await sleep(500)
    }
}
