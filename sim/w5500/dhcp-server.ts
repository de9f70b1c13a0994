/**
 * DHCP server of the emulated LAN (RFC 2131/2132), Node side. Its own packet code: it shares
 * nothing with the firmware's client, so the device's DHCP runs against an independent
 * implementation. Pure: `handle()` takes a datagram and the time, returns the replies.
 */
import type { UdpDatagram } from "./chip.ts"
import { bytesToIp, ipToBytes, ipToU32, u32ToIp } from "./ip.ts"

/** DHCP message types (option 53). */
export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const

/** UDP port of DHCP servers. */
export const DHCP_SERVER_PORT = 67
/** UDP port of DHCP clients. */
export const DHCP_CLIENT_PORT = 68
const MAGIC = [0x63, 0x82, 0x53, 0x63]
const MIN_BOOTP = 300

/** Options of the DHCP server. */
export interface DhcpServerOptions {
    /** the server's address (option 54), also the source of its replies */
    serverIp: string
    subnetMask: string
    router: string
    dnsServers: string[]
    /** first and last address handed out */
    poolStart: string
    poolEnd: string
    /** lease time in seconds (option 51), default 3600 */
    leaseSeconds?: number
    /** renewal time T1 (option 58); omitted from replies when undefined */
    t1Seconds?: number
    /** rebinding time T2 (option 59); omitted from replies when undefined */
    t2Seconds?: number
    /** domain name (option 15); omitted when undefined */
    domainName?: string
}

/** A parsed BOOTP/DHCP message. */
export interface DhcpMessage {
    op: number
    xid: number
    secs: number
    flags: number
    ciaddr: string
    yiaddr: string
    giaddr: string
    /** the 6-byte client hardware address */
    chaddr: Uint8Array
    /** option code -> value (later occurrences of a code are concatenated, RFC 3396) */
    options: Map<number, Uint8Array>
}

/** One address binding. */
export interface DhcpLease {
    ip: string
    clientId: string
    /** ms since epoch */
    expiresAt: number
    /** true once ACKed (false while only offered) */
    bound: boolean
}

/** What the server did (for tests). */
export interface DhcpCounters {
    discover: number
    request: number
    decline: number
    release: number
    inform: number
    offer: number
    ack: number
    nak: number
    /** datagrams that were not valid DHCP requests, or were ignored */
    ignored: number
}

/** Parses a BOOTP/DHCP message; throws an Error naming what is wrong. */
export function parseDhcp(b: Uint8Array): DhcpMessage {
    if (b.length < 240) throw new Error(`dhcp: message of ${b.length} bytes, expected at least 240`)
    if (b[1] !== 1 || b[2] !== 6) throw new Error(`dhcp: htype ${b[1]}/hlen ${b[2]}, expected Ethernet 1/6`)
    for (let i = 0; i < 4; i++) if (b[236 + i] !== MAGIC[i]) throw new Error("dhcp: bad magic cookie at offset 236")
    const options = new Map<number, Uint8Array>()
    let i = 240
    while (i < b.length) {
        const code = b[i++]
        if (code === 0) continue
        if (code === 255) break
        if (i >= b.length) throw new Error(`dhcp: option ${code} has no length byte`)
        const len = b[i++]
        if (i + len > b.length) throw new Error(`dhcp: option ${code} of length ${len} runs past the end`)
        const prev = options.get(code)
        const val = b.subarray(i, i + len)
        options.set(code, prev ? Uint8Array.from([...prev, ...val]) : Uint8Array.from(val))
        i += len
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
    return {
        op: b[0],
        xid: dv.getUint32(4),
        secs: dv.getUint16(8),
        flags: dv.getUint16(10),
        ciaddr: bytesToIp(b, 12),
        yiaddr: bytesToIp(b, 16),
        giaddr: bytesToIp(b, 24),
        chaddr: Uint8Array.from(b.subarray(28, 34)),
        options,
    }
}

function u32(n: number): number[] {
    return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

function hex(b: Uint8Array): string {
    return Buffer.from(b).toString("hex")
}

/** The emulated DHCP server. Control it from tests through its public fields. */
export class DhcpServer {
    /** when true the server ignores everything (a network without DHCP) */
    silent = false
    /** answer the next N REQUESTs with NAK (Infinity: all of them) */
    nak = 0
    leaseSeconds: number
    t1Seconds: number | undefined
    t2Seconds: number | undefined
    readonly counters: DhcpCounters = { discover: 0, request: 0, decline: 0, release: 0, inform: 0, offer: 0, ack: 0, nak: 0, ignored: 0 }
    private readonly opts: DhcpServerOptions
    private readonly byClient = new Map<string, DhcpLease>()
    private readonly declined = new Set<string>()

    constructor(opts: DhcpServerOptions) {
        this.opts = opts
        this.leaseSeconds = opts.leaseSeconds ?? 3600
        this.t1Seconds = opts.t1Seconds
        this.t2Seconds = opts.t2Seconds
        if (ipToU32(opts.poolStart) > ipToU32(opts.poolEnd)) throw new Error(`dhcp: pool ${opts.poolStart}..${opts.poolEnd} is empty`)
    }

    /** Current bindings (offered and bound). */
    leases(): DhcpLease[] {
        return [...this.byClient.values()].map(l => ({ ...l }))
    }

    /** Forgets every binding and declined address. */
    clear(): void {
        this.byClient.clear()
        this.declined.clear()
    }

    /** Handles one datagram sent to port 67; returns the replies to put on the wire. */
    handle(d: UdpDatagram, now: number): UdpDatagram[] {
        if (this.silent) return []
        let m: DhcpMessage
        try {
            m = parseDhcp(d.data)
        } catch {
            this.counters.ignored++
            return []
        }
        const type = m.options.get(53)
        if (m.op !== 1 || !type || type.length !== 1) {
            this.counters.ignored++
            return []
        }
        const clientId = m.options.has(61) ? `id:${hex(m.options.get(61)!)}` : `hw:${hex(m.chaddr)}`
        switch (type[0]) {
            case DHCP.DISCOVER: return this.discover(m, clientId, now)
            case DHCP.REQUEST: return this.request(m, clientId, now)
            case DHCP.DECLINE: {
                this.counters.decline++
                const ip = this.optIp(m, 50)
                if (ip) this.declined.add(ip)
                this.byClient.delete(clientId)
                return []
            }
            case DHCP.RELEASE: {
                this.counters.release++
                const l = this.byClient.get(clientId)
                if (l && l.ip === m.ciaddr) this.byClient.delete(clientId)
                return []
            }
            case DHCP.INFORM: {
                this.counters.inform++
                if (m.ciaddr === "0.0.0.0") return []
                this.counters.ack++
                return [this.reply(m, DHCP.ACK, "0.0.0.0", false)]
            }
            default:
                this.counters.ignored++
                return []
        }
    }

    private optIp(m: DhcpMessage, code: number): string | null {
        const v = m.options.get(code)
        return v && v.length === 4 ? bytesToIp(v) : null
    }

    private inPool(ip: string): boolean {
        const n = ipToU32(ip)
        return n >= ipToU32(this.opts.poolStart) && n <= ipToU32(this.opts.poolEnd) && !this.declined.has(ip)
    }

    /** The client holding `ip` (unexpired), if any. */
    private holder(ip: string, now: number): string | null {
        for (const [id, l] of this.byClient) if (l.ip === ip && l.expiresAt > now) return id
        return null
    }

    private pick(m: DhcpMessage, clientId: string, now: number): string | null {
        const own = this.byClient.get(clientId)
        if (own && this.inPool(own.ip)) {
            const h = this.holder(own.ip, now)
            if (h === null || h === clientId) return own.ip
        }
        const wanted = this.optIp(m, 50)
        if (wanted && this.inPool(wanted) && this.holder(wanted, now) === null) return wanted
        for (let n = ipToU32(this.opts.poolStart); n <= ipToU32(this.opts.poolEnd); n++) {
            const ip = u32ToIp(n)
            if (this.inPool(ip) && this.holder(ip, now) === null) return ip
        }
        return null
    }

    private discover(m: DhcpMessage, clientId: string, now: number): UdpDatagram[] {
        this.counters.discover++
        const ip = this.pick(m, clientId, now)
        if (!ip) return [] // pool exhausted: no offer
        const prev = this.byClient.get(clientId)
        this.byClient.set(clientId, {
            ip, clientId, bound: prev?.bound === true && prev.ip === ip,
            expiresAt: Math.max(prev?.ip === ip ? prev.expiresAt : 0, now + 60_000),
        })
        this.counters.offer++
        return [this.reply(m, DHCP.OFFER, ip, true)]
    }

    private request(m: DhcpMessage, clientId: string, now: number): UdpDatagram[] {
        this.counters.request++
        const serverId = this.optIp(m, 54)
        const requested = this.optIp(m, 50)
        if (serverId !== null && serverId !== this.opts.serverIp) {
            // SELECTING, and the client chose another server: forget our offer
            const l = this.byClient.get(clientId)
            if (l && !l.bound) this.byClient.delete(clientId)
            return []
        }
        // SELECTING / INIT-REBOOT carry option 50; RENEWING / REBINDING carry ciaddr
        const ip = requested ?? (m.ciaddr !== "0.0.0.0" ? m.ciaddr : null)
        if (this.nak > 0) {
            this.nak--
            return [this.nakReply(m)]
        }
        if (!ip || !this.inPool(ip)) return [this.nakReply(m)]
        const holder = this.holder(ip, now)
        if (holder !== null && holder !== clientId) return [this.nakReply(m)]
        const own = this.byClient.get(clientId)
        if (serverId !== null && (!own || own.ip !== ip)) return [this.nakReply(m)] // not what we offered
        this.byClient.set(clientId, { ip, clientId, bound: true, expiresAt: now + this.leaseSeconds * 1000 })
        this.counters.ack++
        return [this.reply(m, DHCP.ACK, ip, true)]
    }

    private nakReply(m: DhcpMessage): UdpDatagram {
        this.counters.nak++
        return this.reply(m, DHCP.NAK, "0.0.0.0", false)
    }

    private reply(m: DhcpMessage, type: number, yiaddr: string, lease: boolean): UdpDatagram {
        const o = this.opts
        const opts: number[] = [53, 1, type, 54, 4, ...ipToBytes(o.serverIp)]
        if (type !== DHCP.NAK) {
            if (lease) {
                opts.push(51, 4, ...u32(this.leaseSeconds))
                if (this.t1Seconds !== undefined) opts.push(58, 4, ...u32(this.t1Seconds))
                if (this.t2Seconds !== undefined) opts.push(59, 4, ...u32(this.t2Seconds))
            }
            opts.push(1, 4, ...ipToBytes(o.subnetMask))
            opts.push(3, 4, ...ipToBytes(o.router))
            if (o.dnsServers.length > 0) opts.push(6, 4 * o.dnsServers.length, ...o.dnsServers.flatMap(s => [...ipToBytes(s)]))
            if (o.domainName) {
                const dn = Buffer.from(o.domainName, "ascii")
                opts.push(15, dn.length, ...dn)
            }
        } else {
            const msg = Buffer.from("requested address not available", "ascii")
            opts.push(56, msg.length, ...msg)
        }
        opts.push(255)
        const b = new Uint8Array(Math.max(MIN_BOOTP, 240 + opts.length))
        const dv = new DataView(b.buffer)
        b[0] = 2
        b[1] = 1
        b[2] = 6
        dv.setUint32(4, m.xid)
        dv.setUint16(10, m.flags & 0x8000)
        b.set(ipToBytes(type === DHCP.NAK ? "0.0.0.0" : m.ciaddr), 12)
        b.set(ipToBytes(yiaddr), 16)
        b.set(ipToBytes(m.giaddr), 24)
        b.set(m.chaddr, 28)
        b.set(MAGIC, 236)
        b.set(opts, 240)
        // RFC 2131 4.1, as ISC dhcpd and dnsmasq do it: NAK broadcast; to ciaddr when the client has
        // one; broadcast when the BROADCAST flag is set; else unicast to yiaddr at the link address
        // chaddr (the client has no address yet, so the frame goes to its MAC, not through ARP)
        const d: UdpDatagram = { srcIp: o.serverIp, srcPort: DHCP_SERVER_PORT, dstIp: "255.255.255.255", dstPort: DHCP_CLIENT_PORT, data: b }
        if (type === DHCP.NAK) return d
        if (m.ciaddr !== "0.0.0.0") d.dstIp = m.ciaddr
        else if (!(m.flags & 0x8000)) {
            d.dstIp = yiaddr
            d.dstMac = m.chaddr
        }
        return d
    }
}
