/**
 * `WiznetStack`: the `NetStack` (src/net/stack.ts) of a W5500. Brings the chip up (reset,
 * VERSIONR, MAC, buffers), waits for the PHY link, gets an address by DHCP (src/net/dhcp.ts on
 * UDP port 68; renewal and rebinding in the background) or from a static configuration (also as a
 * fallback when DHCP stays silent), resolves host names with src/net/dns.ts, keeps the time with
 * src/net/sntp.ts, and opens TCP connections on the hardware sockets. A supervisor fiber drives
 * DHCP and SNTP and watches the link (PHYCFGR) for as long as the stack runs.
 */
import * as ds from "@devicescript/core"
import { SpiBus } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpAction, DhcpClient, DhcpLease } from "../dhcp"
import { DNS_PORT, DnsResolver } from "../dns"
import { isIp, parseIp } from "../ip"
import { NTP_PORT, SntpAction, SntpClient } from "../sntp"
import { Connection, ConnectOptions, NetStack } from "../stack"
import { W5500 } from "./chip"
import { hex2, PHYCFGR_LNK, Sn_IR_CON, Sn_IR_DISCON, Sn_IR_TIMEOUT, Sn_MR_ND, Sn_MR_TCP, SOCKETS } from "./registers"
import { WizSocket } from "./socket"
import { TcpConnection } from "./tcp"
import { UdpSocket } from "./udp"

/** A fixed address configuration. */
export interface StaticAddress {
    ip: string
    /** default 255.255.255.0 */
    mask?: string
    /** default: none (only the local subnet is reachable) */
    gateway?: string
    dns?: string[]
}

/** Options of a `WiznetStack`; only `bus` is required. */
export interface WiznetOptions {
    /** the W5500's bus (hal/w5500-bus.ts `openW5500Bus()`) */
    bus: SpiBus
    /** 6 bytes; default 02:xx:xx:xx:xx:xx from the device identifier */
    mac?: Buffer
    /** DHCP host name (option 12); default "w55-" + the last 6 hex digits of the MAC */
    hostname?: string
    /** a fixed address: used at once, or after `dhcpFallbackMs` without a DHCP lease */
    static?: StaticAddress
    /** with `static`: try DHCP first and fall back after this many ms (0 or absent: static only) */
    dhcpFallbackMs?: number
    /** DNS servers used before (or instead of) the DHCP ones */
    dns?: string[]
    /** NTP server names or addresses (default ["pool.ntp.org"]); [] disables SNTP */
    ntp?: string[]
    /** SNTP resync period, ms (default 1 h) */
    ntpIntervalMs?: number
    /** PHY link check period while the link is up, ms (default 1000) */
    linkCheckMs?: number
    /** KB of RX and of TX buffer for each of the 8 sockets (default 2: 16 KB each in all) */
    bufferKB?: number
    /** log lines (default console.log); never carries payloads or secrets */
    log?: (msg: string) => void
}

/** What the stack reports to `on()` listeners. */
export interface WiznetEvent {
    type: "link" | "address" | "lost" | "time"
    /** link: up or down */
    up?: boolean
    /** address: the address now in use ("dhcp" or "static") */
    ip?: string
    source?: string
    /** lost, or a failed step: why */
    reason?: string
}

/** A snapshot of the stack's state, for status pages and tests. */
export interface WiznetStatus {
    link: boolean
    ip: string
    mask: string
    gateway: string
    dns: string[]
    /** "dhcp", "static", or "" without an address */
    source: string
    /** DHCP state machine state */
    dhcp: string
    /** Unix ms, -1 before the first SNTP sync */
    time: number
    version: number
}

const TCP_CONNECT_TIMEOUT_MS = 10000
const LINK_DOWN_CHECK_MS = 250
const EPHEMERAL_FIRST = 49152
const EPHEMERAL_COUNT = 16384

function defaultMac(): Buffer {
    const id = ds.deviceIdentifier("self") || "0000000000000000"
    const mac = Buffer.from(id.slice(id.length - 12, id.length), "hex")
    // locally administered, unicast
    mac[0] = (mac[0] & 0xfc) | 0x02
    return mac
}

/** The W5500 as a `NetStack`, with DHCP, DNS and SNTP. */
export class WiznetStack implements NetStack {
    readonly name = "w5500"
    readonly tls = false
    readonly chip: W5500
    readonly mac: Buffer
    readonly hostname: string
    readonly dhcp: DhcpClient
    readonly resolver: DnsResolver
    readonly sntp: SntpClient
    link = false
    ip = ""
    mask = ""
    gateway = ""
    /** "dhcp", "static", or "" without an address */
    source = ""
    private o: WiznetOptions
    private log: (msg: string) => void
    private running = false
    private supervisor: ds.Fiber
    private readySignal = new Signal()
    private listeners: ((ev: WiznetEvent) => void)[] = []
    private conns: TcpConnection[] = []
    private dhcpSock: UdpSocket
    private sntpSock: UdpSocket
    private useDhcp: boolean
    private dhcpWake = 0
    private dhcpSince = 0
    private dhcpTimeouts = 0
    private sntpWake = 0
    private sntpReady = false
    private dnsLock = new Mutex()
    private nextPort: number

    constructor(options: WiznetOptions) {
        const o = options
        if (!o || !o.bus) throw new Error("w5500: options.bus is required")
        if (o.static) {
            for (const a of [o.static.ip, o.static.mask, o.static.gateway])
                if (a !== undefined && !isIp(a)) throw new Error(`w5500: static address "${a}" is not an IPv4 address`)
        }
        this.o = o
        this.log = o.log || ((m: string) => console.log(m))
        this.mac = o.mac || defaultMac()
        this.hostname = o.hostname !== undefined ? o.hostname : "w55-" + this.mac.slice(3, 6).toString("hex")
        this.chip = new W5500(o.bus, this.log)
        this.dhcp = new DhcpClient(this.mac, this.hostname, () => Math.random())
        this.resolver = new DnsResolver(o.dns || [], () => Math.random())
        this.sntp = new SntpClient([], () => Math.random(), { intervalMs: o.ntpIntervalMs })
        this.useDhcp = !o.static || o.dhcpFallbackMs > 0
        this.nextPort = EPHEMERAL_FIRST + Math.floor(Math.random() * EPHEMERAL_COUNT)
    }

    /**
     * Brings the chip up (reset, version check, MAC, buffers, interrupts) and starts the
     * supervisor (link, DHCP or static address, SNTP). Resolves once the chip answers; use
     * `waitReady` for the address. Throws when the chip does not answer as a W5500.
     */
    async start() {
        if (this.running) return
        const chip = this.chip
        // a restart begins afresh: the chip forgets its address on reset
        this.dhcp.reset()
        this.link = false
        this.source = ""
        this.ip = ""
        this.useDhcp = !this.o.static || this.o.dhcpFallbackMs > 0
        this.dhcpTimeouts = 0
        this.sntpReady = false
        this.sntpWake = 0
        const v = await chip.reset()
        const kb = this.o.bufferKB === undefined ? 2 : this.o.bufferKB
        const sizes: number[] = []
        for (let n = 0; n < SOCKETS; n++) sizes.push(kb)
        await chip.setup(this.mac, sizes)
        this.log(`w5500: chip version 0x${hex2(v)} on ${chip.bus.name}, MAC ${this.macText()}, ${kb} KB buffers per socket`)
        chip.start()
        this.running = true
        this.dhcpSince = ds.millis()
        this.supervisor = this.supervise.start()
    }

    /** Stops the supervisor and the interrupt service, closes every socket. */
    async stop() {
        if (!this.running) return
        this.running = false
        this.chip.events.notify()
        while (this.supervisor) await ds.sleep(5)
        for (const c of this.conns.slice(0)) await c.abort("stack stopped")
        this.conns = []
        if (this.dhcpSock) await this.dhcpSock.close()
        if (this.sntpSock) await this.sntpSock.close()
        this.dhcpSock = undefined
        this.sntpSock = undefined
        await this.chip.stop()
        this.source = ""
    }

    /** Calls `listener` for every link, address and time event; returns a function removing it. */
    on(listener: (ev: WiznetEvent) => void): () => void {
        const ls = this.listeners
        ls.push(listener)
        return () => {
            const i = ls.indexOf(listener)
            if (i >= 0) ls.insert(i, -1)
        }
    }

    private emit(ev: WiznetEvent) {
        for (const l of this.listeners.slice(0)) {
            try {
                l(ev)
            } catch (e: any) {
                this.log(`w5500: event listener failed: ${e.message}`)
            }
        }
    }

    /** True when the link is up and an address is configured. */
    ready() {
        return this.link && this.source !== ""
    }

    /** Waits until `ready()` or `timeoutMs`; resolves to whether it is ready. */
    async waitReady(timeoutMs: number): Promise<boolean> {
        const deadline = ds.millis() + timeoutMs
        while (!this.ready()) {
            const left = deadline - ds.millis()
            if (left <= 0 || !this.running) return false
            await this.readySignal.wait(left)
        }
        return true
    }

    /** Why the stack is not ready, for error messages. */
    notReadyReason(): string {
        if (!this.running) return "the W5500 stack is not started"
        if (!this.link) return "the Ethernet link is down (no cable?)"
        if (!this.source) {
            const why = this.dhcp.lastError
            return `no address yet (DHCP ${this.dhcp.state}${this.dhcpTimeouts ? ", " + this.dhcpTimeouts + " unanswered" : ""}${why ? ": " + why : ""})`
        }
        return "ready"
    }

    /** Unix time in ms from SNTP, or -1 before the first sync. */
    unixTime(): number {
        return this.sntp.unixTime(ds.millis())
    }

    /** Current state. */
    status(): WiznetStatus {
        return {
            link: this.link, ip: this.ip, mask: this.mask, gateway: this.gateway, dns: this.dnsServers(),
            source: this.source, dhcp: this.useDhcp ? this.dhcp.state : "off", time: this.unixTime(), version: this.chip.version,
        }
    }

    private macText() {
        const h = this.mac.toString("hex")
        let s = ""
        for (let i = 0; i < 12; i += 2) s += (i ? ":" : "") + h.slice(i, i + 2)
        return s
    }

    private dnsServers(): string[] {
        const r: string[] = []
        for (const s of this.o.dns || []) r.push(s)
        if (this.source === "dhcp" && this.dhcp.lease) for (const s of this.dhcp.lease.dns) if (r.indexOf(s) < 0) r.push(s)
        if (this.source === "static" && this.o.static.dns) for (const s of this.o.static.dns) if (r.indexOf(s) < 0) r.push(s)
        return r
    }

    private port(): number {
        const p = this.nextPort
        this.nextPort = p + 1 >= EPHEMERAL_FIRST + EPHEMERAL_COUNT ? EPHEMERAL_FIRST : p + 1
        return p
    }

    private releaser() {
        return (s: WizSocket) => {
            s.inUse = false
        }
    }

    /** Opens a UDP socket on `port` (0: an ephemeral port). Throws when all 8 sockets are taken. */
    async openUdp(port = 0): Promise<UdpSocket> {
        const s = this.chip.allocSocket()
        if (!s) throw new Error(`w5500: all ${SOCKETS} sockets are in use`)
        return await UdpSocket.open(s, port || this.port(), this.releaser())
    }

    /** Resolves a host name (or returns an IPv4 address as is); throws with the DNS error. */
    async resolve(name: string, timeoutMs = 10000): Promise<string> {
        if (isIp(name)) return name
        if (!(await this.waitReady(timeoutMs))) throw new Error(`w5500: cannot resolve ${name}: ${this.notReadyReason()}`)
        await this.dnsLock.lock()
        let sock: UdpSocket
        try {
            this.resolver.servers = this.dnsServers()
            let a = this.resolver.lookup(name, ds.millis())
            for (;;) {
                const r = a.result
                if (r) {
                    if (r.ok) return r.addresses[0]
                    throw new Error(`w5500: cannot resolve ${name}: ${r.message}`)
                }
                if (a.send) {
                    if (!sock) sock = await this.openUdp(0)
                    try {
                        await sock.send(a.send.to, a.send.port, a.send.data)
                    } catch (e: any) {
                        this.log(e.message)
                    }
                }
                const left = a.wakeAt - ds.millis()
                const d = sock && left > 0 ? await sock.recv(left) : undefined
                if (!sock && left > 0) await ds.sleep(Math.min(left, 100))
                a = d && d.port === DNS_PORT ? this.resolver.poll(ds.millis(), d.data) : this.resolver.poll(ds.millis())
            }
        } finally {
            if (sock) await sock.close()
            this.dnsLock.unlock()
        }
    }

    async connect(opts: ConnectOptions): Promise<Connection> {
        const name = `tcp://${opts.host}:${opts.port}`
        if (opts.tls)
            throw new Error(`w5500: ${name}: TLS is not available on the W5500 stack (the chip has no TLS, the firmware none of its own): use tls false or NET=host`)
        if (!(opts.port >= 1 && opts.port <= 65535)) throw new Error(`w5500: ${name}: port must be 1..65535`)
        const timeoutMs = opts.timeoutMs || TCP_CONNECT_TIMEOUT_MS
        const deadline = ds.millis() + timeoutMs
        if (!(await this.waitReady(timeoutMs))) throw new Error(`w5500: cannot connect to ${opts.host}:${opts.port}: ${this.notReadyReason()}`)
        const ip = await this.resolve(opts.host, Math.max(1, deadline - ds.millis()))
        const s = this.chip.allocSocket()
        if (!s) throw new Error(`w5500: cannot connect to ${opts.host}:${opts.port}: all ${SOCKETS} sockets are in use`)
        const release = this.releaser()
        const conn = new TcpConnection(s, name, release)
        try {
            await s.open(Sn_MR_TCP | Sn_MR_ND, this.port())
            await s.connect(parseIp(ip), opts.port)
            await this.waitConnected(s, deadline)
        } catch (e: any) {
            await conn.abort(e.message)
            throw new Error(`w5500: connect to ${opts.host}:${opts.port}${ip !== opts.host ? " (" + ip + ")" : ""} failed: ${e.message}`)
        }
        this.conns.push(conn)
        // forget connections that ended
        this.conns = this.conns.filter(c => !c.ended())
        return conn
    }

    private async waitConnected(s: WizSocket, deadline: number) {
        // CON: established; TIMEOUT: refused, unreachable or no answer (the chip closed the socket)
        const bits = await s.waitIrq(Sn_IR_CON | Sn_IR_DISCON | Sn_IR_TIMEOUT, deadline)
        if (bits & Sn_IR_CON) return
        if (bits & Sn_IR_TIMEOUT) throw new Error("no connection: refused, unreachable or not answering (Sn_IR TIMEOUT)")
        if (bits & Sn_IR_DISCON) throw new Error("connection reset by the peer")
        throw new Error("timed out")
    }

    // ------------------------------------------------------------------ supervisor

    private async supervise() {
        let nextLink = 0
        while (this.running) {
            try {
                if (ds.millis() >= nextLink) {
                    await this.checkLink()
                    nextLink = ds.millis() + (this.link ? this.o.linkCheckMs || 1000 : LINK_DOWN_CHECK_MS)
                }
                if (this.link && this.useDhcp) await this.runDhcp()
                else if (this.link && !this.source && this.o.static) await this.applyStatic()
                if (this.link && this.source && this.sntpReady) await this.runSntp()
                else if (this.link && this.source && ds.millis() >= this.sntpWake) await this.startSntp()
            } catch (e: any) {
                this.log(`w5500: ${e.message}`)
                await ds.sleep(500)
            }
            if (!this.running) break
            if ((this.dhcpSock && this.dhcpSock.pending()) || (this.sntpSock && this.sntpSock.pending())) continue
            let wake = nextLink
            if (this.link && this.useDhcp && this.dhcpWake < wake) wake = this.dhcpWake
            if (this.link && this.source && this.sntpWake < wake) wake = this.sntpWake
            const left = wake - ds.millis()
            if (left > 0) await this.chip.events.wait(left)
            else await ds.sleep(0)
        }
        this.supervisor = undefined
    }

    private async checkLink() {
        const up = ((await this.chip.phy()) & PHYCFGR_LNK) !== 0
        if (up === this.link) return
        this.link = up
        this.log(`w5500: Ethernet link ${up ? "up" : "down"}`)
        this.emit({ type: "link", up })
        // keep the lease across a short outage: it is checked at T1 as usual
        if (up && this.useDhcp && !this.source) this.dhcpWake = 0
        this.readySignal.notify()
    }

    private async runDhcp() {
        if (!this.dhcpSock) {
            this.dhcpSock = await this.openUdp(DHCP_CLIENT_PORT)
            this.dhcpWake = 0
        }
        const sock = this.dhcpSock
        while (sock.pending()) {
            const d = await sock.recv(0)
            if (!d) break
            if (d.port === DHCP_SERVER_PORT) await this.dhcpAct(this.dhcp.poll(ds.millis(), d.data))
        }
        if (ds.millis() >= this.dhcpWake) await this.dhcpAct(this.dhcp.poll(ds.millis()))
        const fb = this.o.dhcpFallbackMs
        if (this.o.static && fb > 0 && !this.source && ds.millis() - this.dhcpSince >= fb) {
            this.log(`w5500: no DHCP lease after ${Math.round(fb / 1000)} s (${this.dhcpTimeouts} requests unanswered): using the static address`)
            this.useDhcp = false
            await this.dhcpSock.close()
            this.dhcpSock = undefined
            await this.applyStatic()
        }
    }

    private async dhcpAct(a: DhcpAction) {
        this.dhcpWake = a.wakeAt
        const c = this.dhcp.counters
        if (c.timeouts !== this.dhcpTimeouts) {
            this.dhcpTimeouts = c.timeouts
            this.log(`w5500: DHCP ${this.dhcp.state}: no answer (${c.timeouts} unanswered so far), retrying in ${Math.round((a.wakeAt - ds.millis()) / 1000)} s`)
        }
        if (a.event === "lost") {
            this.log(`w5500: DHCP lease lost: ${this.dhcp.lastError}`)
            await this.dropAddress(this.dhcp.lastError)
        }
        if (a.send) {
            // the chip needs SIPR 0.0.0.0 until the lease is bound
            try {
                await this.dhcpSock.send(a.send.to, a.send.port, a.send.data, 3000)
            } catch (e: any) {
                this.log(e.message)
            }
        }
        if (a.event === "bound") await this.applyLease(this.dhcp.lease)
        else if (a.event === "renewed") {
            const l = this.dhcp.lease
            this.log(`w5500: DHCP lease on ${l.ip} renewed for ${l.lease} s`)
        }
    }

    private async applyLease(l: DhcpLease) {
        const gw = l.gateway || "0.0.0.0"
        await this.chip.setAddress(parseIp(l.ip), parseIp(l.mask), parseIp(gw))
        this.ip = l.ip
        this.mask = l.mask
        this.gateway = l.gateway
        this.source = "dhcp"
        this.dhcpTimeouts = 0
        this.log(`w5500: address ${l.ip} mask ${l.mask} gateway ${l.gateway || "none"} DNS ${l.dns.join(",") || "none"} (DHCP from ${l.server}, lease ${l.lease} s)`)
        this.emit({ type: "address", ip: l.ip, source: "dhcp" })
        this.readySignal.notify()
        this.sntpWake = 0
    }

    private async applyStatic() {
        const s = this.o.static
        const mask = s.mask || "255.255.255.0"
        await this.chip.setAddress(parseIp(s.ip), parseIp(mask), parseIp(s.gateway || "0.0.0.0"))
        this.ip = s.ip
        this.mask = mask
        this.gateway = s.gateway || ""
        this.source = "static"
        this.log(`w5500: address ${s.ip} mask ${mask} gateway ${s.gateway || "none"} (static)`)
        this.emit({ type: "address", ip: s.ip, source: "static" })
        this.readySignal.notify()
        this.sntpWake = 0
    }

    private async dropAddress(why: string) {
        this.source = ""
        this.ip = ""
        const zero = Buffer.alloc(4)
        await this.chip.setAddress(zero, zero, zero)
        for (const c of this.conns) await c.abort(`address lost (${why})`)
        this.conns = []
        this.dhcpSince = ds.millis()
        this.emit({ type: "lost", reason: why })
    }

    private async startSntp() {
        const names = this.o.ntp || ["pool.ntp.org"]
        this.sntpWake = ds.millis() + 30000
        if (!names.length) {
            this.sntpWake = ds.millis() + 1e12
            return
        }
        const ips: string[] = []
        for (const n of names) {
            try {
                ips.push(await this.resolve(n, 8000))
            } catch (e: any) {
                this.log(`w5500: NTP server ${n}: ${e.message}`)
            }
        }
        if (!ips.length) return
        this.sntp.servers = ips
        if (!this.sntpSock) this.sntpSock = await this.openUdp(0)
        this.sntp.syncNow()
        this.sntpReady = true
        this.sntpWake = 0
    }

    private async runSntp() {
        const sock = this.sntpSock
        while (sock.pending()) {
            const d = await sock.recv(0)
            if (!d) break
            if (d.port === NTP_PORT) await this.sntpAct(this.sntp.poll(ds.millis(), d.data))
        }
        if (ds.millis() >= this.sntpWake) await this.sntpAct(this.sntp.poll(ds.millis()))
    }

    private async sntpAct(a: SntpAction) {
        this.sntpWake = a.wakeAt
        if (a.send) {
            try {
                await this.sntpSock.send(a.send.to, a.send.port, a.send.data, 3000)
            } catch (e: any) {
                this.log(e.message)
            }
        }
        if (a.event === "synced") {
            this.log(`w5500: time ${Math.round(this.unixTime())} ms since 1970 (SNTP, offset ${Math.round(this.sntp.offset)} ms, delay ${Math.round(this.sntp.delay)} ms)`)
            this.emit({ type: "time" })
        } else if (a.event === "failed") this.log(`w5500: SNTP: ${this.sntp.lastError}`)
    }
}
