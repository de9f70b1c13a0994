/** The WIZnet stack started from the settings, on whichever bus an image opens (board or simulator bridge). */
import { Config } from "../config"
import { SpiBus } from "../hal/spi"
import { NetStack } from "../net/stack"
import { startWiznet, WiznetOptions } from "../net/wiznet"
import { words } from "../util/words"

/** Starts the WIZnet stack on `bus` (a W5500, or the chip `chip` makes) with the NET_*, NTP_SERVERS and DHCP_WAIT_MS settings. */
export async function wiznet(bus: SpiBus, cfg: Config, log: (msg: string) => void, chip?: WiznetOptions["chip"]): Promise<NetStack> {
    const mac = cfg.netMac ? Buffer.from(words(cfg.netMac, ":").join(""), "hex") : undefined
    const st = cfg.netIp ? { ip: cfg.netIp, mask: cfg.netMask, gateway: cfg.netGateway, dns: cfg.netDns } : undefined
    const stack = await startWiznet(bus, { mac, static: st, dhcpFallbackMs: cfg.dhcpWaitMs, dns: cfg.netDns, ntp: cfg.ntpServers, log, chip })
    // the address usually comes in well under a second; connections wait for it anyway
    await stack.waitReady(5000)
    return stack
}
