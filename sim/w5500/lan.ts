/**
 * The emulated LAN the W5500 is plugged into: a router at 192.168.50.1 that is also the DHCP,
 * DNS and NTP server, plus the rules that turn the chip's TCP connections into host connections.
 *
 * Addressing (defaults): subnet 192.168.50.0/24, gateway/DHCP/DNS/NTP at 192.168.50.1, DHCP pool
 * 192.168.50.100-199. Hosts that answer ARP: the gateway, `hosts`, and every address of the DNS
 * map that lies on the subnet. UDP: port 67 (broadcast or the gateway) reaches DHCP, port 53 at
 * the gateway reaches DNS, port 123 at the gateway or any LAN host reaches NTP; any other port on
 * a LAN host answers ICMP port-unreachable (IR.UNREACH); off-subnet UDP is dropped (no internet).
 * TCP (`routeTcp`), first match wins:
 *   1. `tcpMap["ip:port"]` or `tcpMap["ip"]` -> its target ("host" or "host:port");
 *   2. 127.0.0.0/8 -> the same address on the host (reached through the gateway);
 *   3. the gateway or a LAN host -> 127.0.0.1, same port;
 *   4. anything else -> the real address only with `allowExternal`, otherwise blocked (the SYN
 *      goes unanswered: the chip reports TIMEOUT) and logged.
 * A target that is not loopback is refused unless `allowExternal` is set.
 */
import type { ChipNetwork, Logger, TcpRoute, UdpDatagram, W5500 } from "./chip.ts"
import { DhcpServer, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, type DhcpServerOptions } from "./dhcp-server.ts"
import { DnsServer, DNS_PORT } from "./dns-server.ts"
import { NtpServer, NTP_PORT } from "./ntp-server.ts"
import { wallClock, type TimerClock, type TimerHandle } from "./clock.ts"
import { ipToU32, isIPv4, isLoopback, prefixMask, u32ToIp } from "./ip.ts"

/** Options of the emulated LAN. */
export interface LanOptions {
    /** subnet in CIDR form, default "192.168.50.0/24" */
    subnet?: string
    /** router, DHCP, DNS and NTP server address, default .1 of the subnet */
    gateway?: string
    /** extra hosts on the LAN (they answer ARP and NTP; TCP to them goes to 127.0.0.1) */
    hosts?: string[]
    /** DNS names: value is an IPv4 address (A) or another name (CNAME). Default: router.lan, ntp.lan, pool.ntp.org -> gateway */
    dns?: Record<string, string>
    /** DHCP pool, default .100 to .199 of the subnet */
    poolStart?: string
    poolEnd?: string
    /** DHCP lease time, default 3600 s */
    leaseSeconds?: number
    t1Seconds?: number
    t2Seconds?: number
    /** extra TCP routes: "ip" or "ip:port" -> "host" or "host:port" */
    tcpMap?: Record<string, string>
    /** let TCP reach real non-loopback destinations (for a real cloud); default false */
    allowExternal?: boolean
    /** delay of every reply the LAN sends to the chip, default 0 */
    replyDelayMs?: number
    /** the NTP server's clock (ms since 1970), default `timers.now` */
    clock?: () => number
    /** time and timers of the reply delays and DHCP leases (default: the wall clock) */
    timers?: TimerClock
    /** receives log lines (default: warnings to stderr) */
    log?: Logger
}

/** What crossed the LAN (for tests). */
export interface LanCounters {
    udpFromChip: number
    udpToChip: number
    unreachable: number
    tcpRouted: number
    tcpBlocked: number
}

function parseHostPort(s: string, defPort: number): TcpRoute {
    const i = s.lastIndexOf(":")
    if (i > 0 && /^\d+$/.test(s.slice(i + 1))) return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
    return { host: s, port: defPort }
}

/** The emulated LAN. `attach(chip)` plugs a chip into it. */
export class Lan implements ChipNetwork {
    readonly dhcp: DhcpServer
    readonly dns: DnsServer
    readonly ntp: NtpServer
    readonly gateway: string
    readonly subnetMask: string
    readonly counters: LanCounters = { udpFromChip: 0, udpToChip: 0, unreachable: 0, tcpRouted: 0, tcpBlocked: 0 }
    allowExternal: boolean
    replyDelayMs: number
    readonly tcpMap: Record<string, string>
    private readonly hosts: Set<string>
    private readonly net: number
    private readonly mask: number
    private chip: W5500 | null = null
    private readonly timers = new Set<TimerHandle>()
    private readonly timeSource: TimerClock
    private readonly log: Logger

    constructor(opts: LanOptions = {}) {
        const [base, prefixStr] = (opts.subnet ?? "192.168.50.0/24").split("/")
        const prefix = Number(prefixStr ?? 24)
        if (!isIPv4(base) || !(prefix >= 8 && prefix <= 30)) throw new Error(`lan: subnet must look like 192.168.50.0/24, got ${JSON.stringify(opts.subnet)}`)
        this.mask = prefixMask(prefix)
        this.net = (ipToU32(base) & this.mask) >>> 0
        this.subnetMask = u32ToIp(this.mask)
        this.gateway = opts.gateway ?? u32ToIp(this.net + 1)
        this.hosts = new Set(opts.hosts ?? [])
        this.allowExternal = opts.allowExternal ?? false
        this.replyDelayMs = opts.replyDelayMs ?? 0
        this.tcpMap = { ...(opts.tcpMap ?? {}) }
        const timeSource = opts.timers ?? wallClock
        this.timeSource = timeSource
        this.log = opts.log ?? ((level, msg) => { if (level === "warn") console.error(`lan: ${msg}`) })
        const dhcpOpts: DhcpServerOptions = {
            serverIp: this.gateway,
            subnetMask: this.subnetMask,
            router: this.gateway,
            dnsServers: [this.gateway],
            poolStart: opts.poolStart ?? u32ToIp(this.net + 100),
            poolEnd: opts.poolEnd ?? u32ToIp(this.net + 199),
            leaseSeconds: opts.leaseSeconds,
            t1Seconds: opts.t1Seconds,
            t2Seconds: opts.t2Seconds,
        }
        this.dhcp = new DhcpServer(dhcpOpts)
        this.dns = new DnsServer(opts.dns ?? { "router.lan": this.gateway, "ntp.lan": this.gateway, "pool.ntp.org": this.gateway })
        this.ntp = new NtpServer(opts.clock ?? (() => timeSource.now()))
    }

    /** Plugs `chip` into this LAN (one chip at a time). */
    attach(chip: W5500): this {
        this.chip = chip
        chip.network = this
        return this
    }

    /** Cancels replies still in flight. */
    close(): void {
        for (const t of this.timers) this.timeSource.clearTimeout(t)
        this.timers.clear()
        this.chip = null
    }

    /** True when `ip` lies on the LAN's subnet. */
    onSubnet(ip: string): boolean {
        return isIPv4(ip) && ((ipToU32(ip) & this.mask) >>> 0) === this.net
    }

    /** True for the hosts that exist on the LAN (they answer ARP). */
    isHost(ip: string): boolean {
        if (ip === this.gateway || this.hosts.has(ip)) return true
        return this.onSubnet(ip) && this.dns.addresses().includes(ip)
    }

    /** ChipNetwork: ARP reply for `ip`. */
    arp(ip: string): boolean {
        return this.isHost(ip)
    }

    /** ChipNetwork: a datagram from the chip. */
    transmitUdp(d: UdpDatagram): void {
        this.counters.udpFromChip++
        const bcast = d.dstIp === "255.255.255.255" || (this.onSubnet(d.dstIp) && (ipToU32(d.dstIp) | this.mask) >>> 0 === 0xffffffff)
        const atGateway = d.dstIp === this.gateway
        if (d.dstPort === DHCP_SERVER_PORT && (bcast || atGateway)) {
            if (d.srcPort !== DHCP_CLIENT_PORT) this.log("info", `DHCP request from port ${d.srcPort} (clients use 68)`)
            return this.reply(this.dhcp.handle(d, this.timeSource.now()))
        }
        if (bcast) return // nobody else listens to broadcasts
        if (!this.isHost(d.dstIp)) {
            this.log("info", `UDP to ${d.dstIp}:${d.dstPort} dropped: no route beyond the LAN`)
            return
        }
        if (atGateway && d.dstPort === DNS_PORT) return this.reply(this.dns.handle(d))
        if (d.dstPort === NTP_PORT) return this.reply(this.ntp.handle(d))
        this.counters.unreachable++
        this.later(() => this.chip?.receiveUnreachable(d.dstIp, d.dstPort))
    }

    /** ChipNetwork: where a TCP connection goes on the host (null: blocked). */
    routeTcp(ip: string, port: number): TcpRoute | null {
        const mapped = this.tcpMap[`${ip}:${port}`] ?? this.tcpMap[ip]
        let route: TcpRoute | null = null
        if (mapped !== undefined) route = parseHostPort(mapped, port)
        else if (isLoopback(ip)) route = { host: ip, port }
        else if (this.isHost(ip)) route = { host: "127.0.0.1", port }
        else if (this.allowExternal) route = { host: ip, port }
        if (route && !isLoopback(route.host) && route.host !== "localhost" && !this.allowExternal) {
            this.log("warn", `TCP to ${ip}:${port} maps to ${route.host}:${route.port}, which is not loopback: blocked (set allowExternal to allow)`)
            route = null
        }
        if (route) this.counters.tcpRouted++
        else this.counters.tcpBlocked++
        return route
    }

    /** Sends a datagram to the chip as if a LAN host had sent it (tests use it to inject traffic). */
    sendToChip(d: UdpDatagram): void {
        this.reply([d])
    }

    private reply(ds: UdpDatagram[]): void {
        for (const d of ds) {
            this.later(() => {
                this.counters.udpToChip++
                this.chip?.receiveUdp(d)
            })
        }
    }

    private later(fn: () => void): void {
        const t = this.timeSource.setTimeout(() => {
            this.timers.delete(t)
            fn()
        }, this.replyDelayMs)
        this.timers.add(t)
    }
}
