/**
 * The network stacks an image can carry, started from the configuration: the runtime's sockets
 * (simulator), the W5500 through the emulator bridge (simulator) or through the board's wiring.
 * Each is a separate function so an image links only the transports it names.
 */
import { Config } from "../config"
import { openBridgeBus } from "../simdev/bridge-spi"
import { openBoardBus } from "../hal/w5500-bus"
import { SpiBus } from "../hal/spi"
import { HostStack } from "../net/host"
import { NetStack } from "../net/stack"
import { startWiznet, WiznetOptions } from "../net/wiznet"

/** The runtime's own sockets (the desktop simulator; TLS included). */
export async function hostNetwork(): Promise<NetStack> {
    return new HostStack()
}

/** Starts the WIZnet stack on `bus` (a W5500, or the chip `chip` makes) with the NET_*, NTP_SERVERS and DHCP_WAIT_MS settings. */
export async function wiznet(bus: SpiBus, cfg: Config, log: (msg: string) => void, chip?: WiznetOptions["chip"]): Promise<NetStack> {
    const mac = cfg.netMac ? Buffer.from(cfg.netMac.split(":").join(""), "hex") : undefined
    const st = cfg.netIp ? { ip: cfg.netIp, mask: cfg.netMask, gateway: cfg.netGateway, dns: cfg.netDns } : undefined
    const stack = await startWiznet(bus, { mac, static: st, dhcpFallbackMs: cfg.dhcpWaitMs, dns: cfg.netDns, ntp: cfg.ntpServers, log, chip })
    // the address usually comes in well under a second; connections wait for it anyway
    await stack.waitReady(5000)
    return stack
}

/** The W5500 emulator behind the simulator bridge (sim/w5500/BRIDGE.md). */
export async function simW5500(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBridgeBus(), cfg, log)
}

/** The board's W5500, wired as its board file says (bit-banged on the W55RP20, SPI0 on the W5500-EVB-Pico). */
export async function boardW5500(cfg: Config, log: (msg: string) => void): Promise<NetStack> {
    return await wiznet(await openBoardBus(), cfg, log)
}
