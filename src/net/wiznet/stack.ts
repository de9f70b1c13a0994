/**
 * `WiznetStack`: the `NetStack` (src/net/stack.ts) of a W5500. Brings the chip up (reset,
 * VERSIONR, MAC, buffers), waits for the PHY link, gets an address by DHCP (src/net/dhcp.ts on
 * UDP port 68; renewal and rebinding in the background; INIT-REBOOT after a link outage) or from a
 * static configuration (also as a fallback when DHCP stays silent, with DHCP still tried), resolves
 * host names with src/net/dns.ts, keeps the time with src/net/sntp.ts (names looked up again after
 * a failed round), and opens TCP connections on the hardware sockets. A supervisor fiber drives
 * DHCP and SNTP and watches the link (PHYCFGR) for as long as the stack runs.
 */
import { setUnixTime } from "../clock"
import * as ds from "@devicescript/core"
import { SpiBus } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpAction, DhcpClient, OPTIONS_AT, SNAME_AT } from "../dhcp"
import { cacheGet, DNS_PORT, DnsResolver } from "../dns"
import { isIp, parseIp } from "../ip"
import { NTP_PORT, SntpClient } from "../sntp"
import { Connection, ConnectOptions, NetStack } from "../stack"
import { W5500 } from "./chip"
import { GAR, hex2, PHYCFGR_LNK, Sn_CR_CONNECT, Sn_IR_CON, Sn_IR_DISCON, Sn_IR_TIMEOUT, Sn_MR_ND, Sn_MR_TCP, Sn_MR_UDP } from "./registers"
import { WizSocket } from "./socket"
import { TcpConnection } from "./tcp"
import { millis, sleep } from "../../util/rt"

/** A fixed address configuration. */
export interface StaticAddress {
    ip: string
    /** default 255.255.255.0 */
    mask?: string
    /** default: none (only the local subnet is reachable) */
    gateway?: string
    dns?: string[]
}

/** Options of a `WiznetStack` (all optional). */
export interface WiznetOptions {
    /** 6 bytes; default 02:xx:xx:xx:xx:xx from the device identifier */
    mac?: Buffer
    /** DHCP host name (option 12); default "w55-" + the last 6 hex digits of the MAC */
    hostname?: string
    /** a fixed address: used at once, or after `dhcpFallbackMs` without a DHCP lease */
    static?: StaticAddress
    /**
     * with `static`: try DHCP first and fall back after this many ms (0 or absent: static only);
     * DHCP then goes on in the background and its lease replaces the static address
     */
    dhcpFallbackMs?: number
    /** DNS servers used before (or instead of) the DHCP ones */
    dns?: string[]
    /** NTP server names or addresses (default ["pool.ntp.org"]); [] disables SNTP */
    ntp?: string[]
    /** SNTP resync period, ms (default 1 h) */
    ntpIntervalMs?: number
    /** PHY link check period while the link is up, ms (default 1000) */
    linkCheckMs?: number
    /** KB of RX and of TX buffer for each of the 8 sockets: 1 or 2 (default 2: 16 KB each in all) */
    bufferKB?: number
    /** log lines (default console.log); never carries payloads or secrets */
    log?: (msg: string) => void
    /** the chip on the bus (default a W5500; `w5100s` from ./w5100s for a W5100S) */
    chip?: (bus: SpiBus, log: (msg: string) => void) => W5500
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
    private log: (msg: string) => void
    // (no initializers where undefined does: each costs the constructor bytes) undefined: not started
    private running: boolean
    private supervisor: boolean
    private readySignal = new Signal()
    private listeners: ((ev: WiznetEvent) => void)[] = []
    private conns: TcpConnection[] = []
    private dhcpSock: WizSocket
    private sntpSock: WizSocket
    // these five are set by start() before anything reads them
    private useDhcp: boolean
    private dhcpSince: number
    private dhcpTimeouts: number
    private sntpWake: number
    private sntpReady: boolean
    // set with the link up (DHCP on) before it is read
    private dhcpWake: number
    // the next background DHCP wait on the static fallback, ms (set at the fallback)
    private bgWait: number
    private dnsLock = new Mutex()
    private nextPort: number

    /** A stack on the W5500 at `bus` (see `startWiznet`); throws when an option is wrong. */
    constructor(bus: SpiBus, private readonly o: WiznetOptions = {}) {
        const st = o.static
        if (st)
            for (const a of [st.ip, st.mask, st.gateway])
                if (a !== undefined && !isIp(a)) throw new Error(`w5500: static address "${a}" is not an IPv4 address`)
        this.log = o.log || ((m: string) => console.log(m))
        let mac = o.mac
        if (!mac) {
            // locally administered unicast, from the device identifier
            const id = ds.deviceIdentifier("self") || "0000000000000000"
            mac = Buffer.from(id.slice(id.length - 12, id.length), "hex")
            mac[0] = (mac[0] & 0xfc) | 0x02
        }
        if (mac.length !== 6) throw new Error(`w5500: MAC must be 6 bytes`)
        this.mac = mac
        // (plain assignments: fewer bytes than ternaries)
        let host = o.hostname
        if (host === undefined) host = "w55-" + mac.slice(3, 6).toString("hex")
        this.hostname = host
        if (o.chip) this.chip = o.chip(bus, this.log)
        else this.chip = new W5500(bus, this.log)
        const rnd = () => Math.random()
        this.dhcp = new DhcpClient(mac, this.hostname, rnd)
        this.resolver = new DnsResolver(o.dns || [], rnd)
        this.sntp = new SntpClient([], rnd, { intervalMs: o.ntpIntervalMs })
        // ephemeral ports 49152..65535, from a random one
        this.nextPort = 49152 + Math.floor(rnd() * 16384)
    }

    /**
     * Brings the chip up (reset, version check, MAC, buffers, interrupts) and starts the
     * supervisor (link, DHCP or static address, SNTP). Resolves once the chip answers; use
     * `waitReady` for the address. Throws when the chip does not answer as a W5500.
     */
    async start() {
        if (this.running) return
        const o = this.o
        let kb = o.bufferKB
        if (kb === undefined) kb = 2
        if (kb !== 1 && kb !== 2) throw new Error(`w5500: bufferKB is ${kb}, expected 1 or 2 (8 sockets share 16 KB of RX and 16 KB of TX buffer)`)
        // a restart begins afresh: the chip forgets its address on reset
        this.dhcp.reset()
        this.link = false
        this.source = this.ip = ""
        this.useDhcp = !o.static || o.dhcpFallbackMs > 0
        this.dhcpTimeouts = this.sntpWake = 0
        this.sntpReady = false
        await this.chip.init(this.mac, kb)
        this.log(`${this.chip.name}: chip version 0x${hex2(this.chip.version)} on ${this.chip.bus.name}, MAC ${this.mac.toString("hex")}, ${kb} KB buffers per socket`)
        this.running = this.supervisor = true
        this.dhcpSince = millis()
        this.supervise.start()
    }

    /** Stops the supervisor and the interrupt service, closes every socket. */
    async stop() {
        if (!this.running) return
        this.running = false
        this.chip.events.notify()
        while (this.supervisor) await sleep(5)
        for (const c of this.conns) await c.abort("stack stopped")
        this.conns = []
        for (const s of [this.dhcpSock, this.sntpSock]) if (s) await s.close()
        this.dhcpSock = this.sntpSock = undefined
        this.chip.eventSockets = 0
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
        const deadline = millis() + timeoutMs
        while (!this.ready()) {
            const left = deadline - millis()
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
            let r = "no address yet (DHCP " + this.dhcp.state
            if (this.dhcpTimeouts) r += ", " + this.dhcpTimeouts + " unanswered"
            if (why) r += ": " + why
            return r + ")"
        }
        return "ready"
    }

    /** Unix time in ms from SNTP, or -1 before the first sync. */
    unixTime(): number {
        return this.sntp.unixTime(millis())
    }

    /** Current state. */
    status(): WiznetStatus {
        return {
            link: this.link, ip: this.ip, mask: this.mask, gateway: this.gateway, dns: this.dnsServers(),
            source: this.source, dhcp: this.useDhcp ? this.dhcp.state : "off", time: this.unixTime(), version: this.chip.version,
        }
    }

    private dnsServers(): string[] {
        const r: string[] = []
        const src = this.source
        for (const l of [this.o.dns, src === "dhcp" ? this.dhcp.lease.dns : src ? this.o.static.dns : undefined])
            if (l) for (const s of l) if (r.indexOf(s) < 0) r.push(s)
        return r
    }

    /**
     * Opens a free socket (marked in use at once) in `mode` (Sn_MR: UDP by default, or TCP) on
     * `port` (0: the next ephemeral port); with `events`, its interrupts notify `chip.events` (the
     * supervisor's DHCP and SNTP sockets). Throws when all 8 sockets are taken.
     */
    async openSocket(port = 0, mode = Sn_MR_UDP, events?: boolean): Promise<WizSocket> {
        const chip = this.chip
        for (let n = 0; n < chip.count; n++) {
            const s = chip.socketAt(n)
            if (!s.inUse && s.size > 0) {
                if (!port) {
                    port = this.nextPort
                    this.nextPort = port >= 65535 ? 49152 : port + 1
                }
                try {
                    await s.open(mode, port)
                } catch (e: any) {
                    s.forget()
                    throw new Error(`w5500: cannot open a socket on port ${port}: ${e.message}`)
                }
                if (events) chip.eventSockets |= 1 << n
                return s
            }
        }
        throw new Error(`w5500: all ${chip.count} sockets are in use`)
    }

    /** Resolves a host name (or returns an IPv4 address as is); throws with the DNS error. */
    async resolve(name: string, timeoutMs = 10000): Promise<string> {
        if (isIp(name)) return name
        if (!(await this.waitReady(timeoutMs))) throw new Error(`w5500: cannot resolve ${name}: ${this.notReadyReason()}`)
        await this.dnsLock.lock()
        let sock: WizSocket
        try {
            this.resolver.servers = this.dnsServers()
            let a = this.resolver.lookup(name, millis())
            for (;;) {
                const r = a.result
                if (r) {
                    if (r.ok) return r.addresses[0]
                    throw new Error(`w5500: cannot resolve ${name}: ${r.message}`)
                }
                if (a.send) {
                    if (!sock) sock = await this.openSocket()
                    try {
                        await sock.sendTo(a.send.to, a.send.port, a.send.data)
                    } catch (e: any) {
                        this.log(e.message)
                    }
                }
                const left = a.wakeAt - millis()
                // a reply: a datagram from the DNS port
                let reply: Buffer
                if (left > 0) {
                    if (sock) {
                        const d = await sock.recvFrom(left)
                        if (d) if (d.port === DNS_PORT) reply = d.data
                    } else await sleep(Math.min(left, 100))
                }
                a = this.resolver.poll(millis(), reply)
            }
        } finally {
            if (sock) await sock.close()
            this.dnsLock.unlock()
        }
    }

    async connect(opts: ConnectOptions): Promise<Connection> {
        const host = opts.host
        const port = opts.port
        const name = `tcp://${host}:${port}`
        if (opts.tls)
            throw new Error(`w5500: ${name}: TLS is not available on the W5500 stack (the chip has no TLS, the firmware none of its own): use tls false or NET=host`)
        if (!(port >= 1 && port <= 65535)) throw new Error(`w5500: ${name}: port must be 1..65535`)
        const timeoutMs = opts.timeoutMs || 10000
        const deadline = millis() + timeoutMs
        if (!(await this.waitReady(timeoutMs))) throw new Error(`w5500: cannot connect to ${host}:${port}: ${this.notReadyReason()}`)
        const ip = await this.resolve(host, Math.max(1, deadline - millis()))
        let conn: TcpConnection
        try {
            const s = await this.openSocket(0, Sn_MR_TCP | Sn_MR_ND)
            conn = new TcpConnection(s, name)
            await s.cmd(Sn_CR_CONNECT, parseIp(ip), port)
            // CON: established; TIMEOUT: refused, unreachable or no answer (the chip closed the socket)
            const bits = await s.waitIrq(Sn_IR_CON | Sn_IR_DISCON | Sn_IR_TIMEOUT, deadline)
            if (!(bits & Sn_IR_CON)) {
                let why = "timed out"
                if (bits & Sn_IR_TIMEOUT) why = "no connection: refused, unreachable or not answering (Sn_IR TIMEOUT)"
                else if (bits) why = "connection reset by the peer"
                throw new Error(why)
            }
        } catch (e: any) {
            if (conn) await conn.abort(e.message)
            throw new Error(`w5500: connect to ${host}:${port}${ip !== host ? " (" + ip + ")" : ""} failed: ${e.message}`)
        }
        // forget connections that ended
        this.conns = this.conns.filter(c => !c.done)
        this.conns.push(conn)
        return conn
    }

    // ------------------------------------------------------------------ supervisor

    private async supervise() {
        let nextLink = 0
        const o = this.o
        while (this.running) {
            try {
                if (millis() >= nextLink) {
                    const up = ((await this.chip.read(0, this.chip.phyAt, 1))[0] & PHYCFGR_LNK) !== 0
                    if (up !== this.link) {
                        this.link = up
                        this.log(`w5500: Ethernet link ${up ? "up" : "down"}`)
                        this.emit({ type: "link", up })
                        // the address stays while the lease is confirmed (INIT-REBOOT): the cable may
                        // now be in another LAN, where a NAK or silence ends it
                        if (up)
                            if (this.useDhcp) {
                                this.dhcp.reboot(millis())
                                this.dhcpWake = 0
                            }
                        this.readySignal.notify()
                    }
                    // check every 250 ms while the link is down
                    nextLink = millis() + (up ? o.linkCheckMs || 1000 : 250)
                }
                if (this.link) {
                    const st = o.static
                    let fallback = !this.useDhcp
                    if (!fallback) {
                        if (!this.dhcpSock) {
                            this.dhcpSock = await this.openSocket(DHCP_CLIENT_PORT, Sn_MR_UDP, true)
                            this.dhcpWake = 0
                        }
                        await this.runClient(true)
                        const fb = o.dhcpFallbackMs
                        if (!this.source && st && millis() - this.dhcpSince >= fb) {
                            this.log(`w5500: no DHCP lease after ${Math.round(fb / 1000)} s (${this.dhcpTimeouts} requests unanswered): using the static address; DHCP goes on in the background`)
                            this.bgWait = 15000
                            fallback = true
                        }
                    }
                    if (fallback)
                        if (!this.source) {
                            const mask = st.mask || "255.255.255.0"
                            await this.configure(st.ip, mask, st.gateway || "", "static", `${mask} gateway ${st.gateway || "none"} (static)`)
                        }
                    if (this.source) {
                        if (this.sntpReady) await this.runClient(false)
                        else if (millis() >= this.sntpWake) await this.startSntp()
                    }
                }
            } catch (e: any) {
                this.log(`w5500: ${e.message}`)
                await sleep(500)
            }
            if (!this.running) break
            if ((this.dhcpSock && this.dhcpSock.pending()) || (this.sntpReady && this.sntpSock.pending())) continue
            let wake = nextLink
            // (nested ifs: fewer bytes than && chains)
            if (this.link) {
                if (this.useDhcp) if (this.dhcpWake < wake) wake = this.dhcpWake
                if (this.source) if (this.sntpWake < wake) wake = this.sntpWake
            }
            const left = wake - millis()
            if (left > 0) await this.chip.events.wait(left)
            else await sleep(0)
        }
        this.supervisor = false
    }

    /**
     * Drives the DHCP client (`dhcp`) or the SNTP client: hands them the datagrams that came from
     * their server port, polls them when due, sends what they ask for and acts on their events.
     */
    private async runClient(dhcp: boolean) {
        // (one test of dhcp: fewer bytes than a ternary for each)
        let sock = this.sntpSock
        let client: DhcpClient | SntpClient = this.sntp
        let port = NTP_PORT
        if (dhcp) {
            sock = this.dhcpSock
            client = this.dhcp
            port = DHCP_SERVER_PORT
        }
        let polled = false
        for (;;) {
            let a: DhcpAction
            if (sock.pending()) {
                // a DHCP reply without its sname and file fields (192 bytes, ~95 ms of core bit-banged)
                // unless a server puts options there
                let part = false
                let skipFrom = 0
                let skipTo = 0
                if (dhcp)
                    if (!this.dhcp.readWhole) {
                        part = true
                        skipFrom = SNAME_AT
                        skipTo = OPTIONS_AT
                    }
                const d = await sock.recvFrom(0, skipFrom, skipTo)
                if (!d || d.port !== port) continue
                // (the SNTP client's poll takes no third argument)
                a = (client as DhcpClient).poll(millis(), d.data, part)
            } else if (!polled && millis() >= (dhcp ? this.dhcpWake : this.sntpWake)) {
                polled = true
                a = client.poll(millis()) as DhcpAction
            } else return
            const ev: string = a.event
            if (dhcp) {
                this.dhcpWake = a.wakeAt
                // on the static fallback: a DISCOVER now and then, 15 s apart, doubling up to 5 min
                if (this.source === "static" && a.send) {
                    this.dhcpWake = Math.max(a.wakeAt, millis() + this.bgWait)
                    this.bgWait = Math.min(this.bgWait * 2, 300000)
                }
                const t = this.dhcp.counters.timeouts
                if (t !== this.dhcpTimeouts) {
                    this.dhcpTimeouts = t
                    this.log(`w5500: DHCP ${this.dhcp.state}: no answer (${t} unanswered so far), retrying in ${Math.round((this.dhcpWake - millis()) / 1000)} s`)
                }
                if (ev === "lost") {
                    this.log(`w5500: DHCP lease lost: ${this.dhcp.lastError}`)
                    await this.configure("", "", "", "", this.dhcp.lastError)
                }
            } else this.sntpWake = a.wakeAt
            if (a.send) {
                // DHCP: the chip needs SIPR 0.0.0.0 until the lease is bound
                try {
                    await sock.sendTo(a.send.to, a.send.port, a.send.data)
                } catch (e: any) {
                    this.log(e.message)
                }
            }
            const l = this.dhcp.lease
            if (ev === "bound") {
                if (this.source === "static") this.log(`w5500: DHCP lease on ${l.ip}: leaving the static address ${this.ip}`)
                await this.configure(l.ip, l.mask, l.gateway, "dhcp", `${l.mask} gateway ${l.gateway || "none"} DNS ${l.dns.join(",") || "none"} (DHCP from ${l.server}, lease ${l.lease} s)`)
            } else if (ev === "renewed") this.log(`w5500: DHCP lease on ${l.ip} renewed for ${l.lease} s`)
            else if (ev === "synced") {
                // the device's wall clock (tokens, report timestamps) follows every sync
                setUnixTime(this.unixTime(), "sntp")
                this.log(`w5500: time ${Math.round(this.unixTime())} ms since 1970 (SNTP, offset ${Math.round(this.sntp.offset)} ms, delay ${Math.round(this.sntp.delay)} ms)`)
                this.emit({ type: "time" })
            } else if (ev === "failed" || ev === "kod") {
                this.log(`w5500: SNTP: ${this.sntp.lastError}`)
                // a pool's addresses change: look the names up again after a failed round
                if (ev === "failed") await this.startSntp(true)
            }
        }
    }

    /**
     * Writes gateway, mask and own IP (GAR..SIPR, with SHAR between them, in one frame) and
     * announces the address; with no `source` the address is dropped (zeros, connections aborted,
     * `detail` is why), otherwise `detail` ends the log line after the mask.
     */
    private async configure(ip: string, mask: string, gateway: string, source: string, detail: string) {
        const f = Buffer.alloc(18)
        f.blitAt(8, this.mac, 0, 6)
        if (source) {
            f.blitAt(0, parseIp(gateway || "0.0.0.0"), 0, 4)
            f.blitAt(4, parseIp(mask), 0, 4)
            f.blitAt(14, parseIp(ip), 0, 4)
        }
        const b = await this.chip.begin()
        b.add(0, GAR, 18, f, 0)
        await this.chip.commit()
        // connections on another address are dead
        if (ip !== this.ip) {
            for (const c of this.conns) await c.abort(`address ${this.ip} ${source ? "replaced by " + ip : "lost (" + detail + ")"}`)
            this.conns = []
        }
        this.ip = ip
        this.mask = mask
        this.gateway = gateway
        this.source = source
        if (source) {
            this.dhcpTimeouts = this.sntpWake = 0
            this.log(`w5500: address ${ip} mask ${detail}`)
            this.emit({ type: "address", ip, source })
            this.readySignal.notify()
        } else {
            this.dhcpSince = millis()
            this.emit({ type: "lost", reason: detail })
        }
    }

    /**
     * Resolves the NTP server names (afresh, not from the DNS cache) and syncs with them; `again`
     * (after a failed round): only when the addresses changed, else the round's backoff stands.
     */
    private async startSntp(again?: boolean) {
        const names = this.o.ntp || ["pool.ntp.org"]
        // retry in 30 s when no server resolves; never with SNTP off
        if (!again) this.sntpWake = millis() + (names.length ? 30000 : 1e12)
        const ips: string[] = []
        for (const n of names) {
            cacheGet(this.resolver.cache, n, 1e300)
            try {
                ips.push(await this.resolve(n, 8000))
            } catch (e: any) {
                this.log(`w5500: NTP server ${n}: ${e.message}`)
            }
        }
        if (!ips.length) return
        const list = ips.join(", ")
        if (again) {
            if (list === this.sntp.servers.join(", ")) return
            this.log(`w5500: NTP servers now ${list}`)
        }
        this.sntp.servers = ips
        if (!this.sntpSock) {
            this.sntpSock = await this.openSocket(0, Sn_MR_UDP, true)
        }
        this.sntp.syncNow()
        this.sntpReady = true
        this.sntpWake = 0
    }
}
