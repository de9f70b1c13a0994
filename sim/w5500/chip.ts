/**
 * A register-accurate model of the WIZnet W5500 (datasheet v1.0.9) driven one SPI frame at a time.
 *
 * What it models: the SPI frame (VDM and the fixed-length modes), the common and 8 socket register
 * blocks with their reset values, the 16 KB TX and 16 KB RX buffer memories split by
 * Sn_TXBUF_SIZE/Sn_RXBUF_SIZE, MR.RST, self-clearing Sn_CR (optionally late, to exercise polling),
 * write-1-to-clear IR/Sn_IR, SIR and the INTn pin, TX_FSR/RX_RSR derived from free-running 16-bit
 * pointers, the PHY link, the TCP client and UDP state machines, ARP and TCP retransmission
 * timeouts computed from RTR/RCR. TCP connections become real host connections (node:net) where
 * the attached network (see lan.ts) routes them; UDP datagrams go to that network: that host side
 * is host-sockets.ts, which this model extends.
 * Not modelled: LISTEN (the socket shows SOCK_LISTEN but nothing ever connects), MACRAW, PPPoE,
 * WOL, ping, IP conflict detection, multicast/IGMP, keep-alive probes, INTLEVEL timing.
 */
import {
    BUFFER_MEMORY, CMD, COMMON, COMMON_SIZE, get16, IR, MR, PHYCFGR, set16, SN, SN_IR, SN_MR, SN_SIZE, SOCK, SOCKETS, VERSION,
} from "./registers.ts"
import { HostSockets, RX_QUEUE_HIGH, SocketState } from "./host-sockets.ts"
import { bytesToIp, ipToBytes, ipToU32, u32ToIp } from "./ip.ts"
import { wallClock, type TimerClock, type TimerHandle } from "./clock.ts"

/** One UDP datagram on the emulated wire. */
export interface UdpDatagram {
    srcIp: string
    srcPort: number
    dstIp: string
    dstPort: number
    data: Uint8Array
    /** the Ethernet destination of a unicast frame (6 bytes) when it is not the owner of `dstIp` (a DHCP reply to chaddr) */
    dstMac?: Uint8Array
}

/** Where a TCP connection from the chip goes on the host. */
export interface TcpRoute {
    host: string
    port: number
}

/** What the chip's Ethernet port is plugged into (the emulated LAN implements it). */
export interface ChipNetwork {
    /** true when some host on the wire answers an ARP request for `ip` */
    arp(ip: string): boolean
    /** the chip puts a UDP datagram on the wire */
    transmitUdp(d: UdpDatagram): void
    /** where a TCP connection to ip:port goes on the host; null = nothing answers (blocked) */
    routeTcp(ip: string, port: number): TcpRoute | null
}

/** Log severity used by the emulator. */
export type LogLevel = "info" | "warn"
/** Receives the emulator's log lines. */
export type Logger = (level: LogLevel, msg: string) => void

/** Options of the emulated chip. */
export interface W5500Options {
    /** the network the PHY is plugged into (default: none, nothing answers ARP) */
    network?: ChipNetwork
    /** value of the TX/RX pointers after reset and OPEN (datasheet: 0); a function is called each time */
    pointerStart?: number | (() => number)
    /** Sn_CR keeps reading back the command for this many further SPI frames before clearing (default 0) */
    crDelayFrames?: number
    /** the command takes effect (Sn_SR, Sn_IR) this many frames after Sn_CR clears (default 0) */
    srDelayFrames?: number
    /** cable plugged in at start (default true) */
    link?: boolean
    /** auto-negotiation time: LNK rises this long after reset, PHY reset or plugging in (default 0) */
    linkUpDelayMs?: number
    /** SPI reads return zeros for this long after RSTn is released (datasheet: wait 1 ms; default 0) */
    resetReadyMs?: number
    /** delay before SEND_OK of a UDP datagram (default 0: next turn of the event loop) */
    udpSendDelayMs?: number
    /** receives log lines (default: warnings to stderr) */
    log?: Logger
    /** time and timers (default: the wall clock); the emulated board passes its virtual time */
    clock?: TimerClock
}

/** Activity counters (for tests and the benchmark). */
export interface W5500Counters {
    /** SPI transactions: one per CS-low period */
    frames: number
    /** bytes clocked in those transactions, header included */
    bytes: number
    dataBytesRead: number
    dataBytesWritten: number
    /** Sn_CR writes */
    commands: number
    udpSent: number
    udpReceived: number
    /** datagrams that reached the chip and were dropped (no socket, filtered, buffer full, link down) */
    udpDropped: number
    tcpConnects: number
}

const VALID_BUF_KB = [0, 1, 2, 4, 8, 16]
const BROADCAST = 0xffffffff

/** The emulated W5500. Drive it with `transfer()`; observe it with `intAsserted()` and the "int" event. */
export class W5500 extends HostSockets {
    /** activity counters, reset by `resetCounters()` only */
    readonly counters: W5500Counters = {
        frames: 0, bytes: 0, dataBytesRead: 0, dataBytesWritten: 0, commands: 0,
        udpSent: 0, udpReceived: 0, udpDropped: 0, tcpConnects: 0,
    }
    network: ChipNetwork | null
    protected readonly opts: Required<Omit<W5500Options, "network" | "log" | "clock">>
    protected readonly log: Logger
    protected readonly clock: TimerClock
    private common = new Uint8Array(COMMON_SIZE)
    private phyCfg = 0xb8
    protected readonly sockets: SocketState[] = []
    private readonly txMem = new Uint8Array(BUFFER_MEMORY)
    private readonly rxMem = new Uint8Array(BUFFER_MEMORY)
    private frameCount = 0
    private cable: boolean
    protected linkUp = false
    private linkTimer: TimerHandle | null = null
    private resetHeld = false
    private readyAt = 0
    private intState = false
    protected closed = false

    constructor(opts: W5500Options = {}) {
        super()
        this.network = opts.network ?? null
        this.clock = opts.clock ?? wallClock
        this.log = opts.log ?? ((level, msg) => { if (level === "warn") console.error(`w5500: ${msg}`) })
        this.opts = {
            pointerStart: opts.pointerStart ?? 0,
            crDelayFrames: opts.crDelayFrames ?? 0,
            srDelayFrames: opts.srDelayFrames ?? 0,
            link: opts.link ?? true,
            linkUpDelayMs: opts.linkUpDelayMs ?? 0,
            resetReadyMs: opts.resetReadyMs ?? 0,
            udpSendDelayMs: opts.udpSendDelayMs ?? 0,
        }
        this.cable = this.opts.link
        for (let n = 0; n < SOCKETS; n++) this.sockets.push(new SocketState())
        this.resetRegisters(false)
        this.updateLink()
    }

    // ---------------------------------------------------------------- SPI

    /**
     * Clocks one CS-low period: `frame` is what the host drives on MOSI (addr_hi addr_lo control
     * data...), the result is what the chip drives on MISO, same length. In VDM (OM=00) the data
     * phase lasts to the end of the period; in FDM (OM=01/10/11: 1/2/4 data bytes) further frames
     * may follow back to back in the same period, as with CS tied low.
     */
    transfer(frame: Uint8Array): Uint8Array {
        const out = new Uint8Array(frame.length)
        this.counters.frames++
        this.counters.bytes += frame.length
        if (this.closed || this.resetHeld || this.clock.now() < this.readyAt) return out
        let i = 0
        while (i + 3 <= frame.length) {
            // MISO during the address and control phase: undocumented, real chips shift out 01 02 03
            out[i] = 0x01
            out[i + 1] = 0x02
            out[i + 2] = 0x03
            let addr = (frame[i] << 8) | frame[i + 1]
            const ctl = frame[i + 2]
            const bsb = ctl >> 3
            const write = (ctl & 0x04) !== 0
            const om = ctl & 0x03
            i += 3
            const n = Math.min(om === 0 ? frame.length - i : om === 3 ? 4 : om, frame.length - i)
            for (let k = 0; k < n; k++) {
                if (write) {
                    this.writeByte(bsb, addr, frame[i + k])
                    this.counters.dataBytesWritten++
                } else {
                    out[i + k] = this.readByte(bsb, addr)
                    this.counters.dataBytesRead++
                }
                addr = (addr + 1) & 0xffff
            }
            i += n
            if (om === 0) break
        }
        this.frameCount++
        for (let s = 0; s < SOCKETS; s++) this.checkPending(s)
        return out
    }

    /** Convenience: reads `len` bytes at (block, address) in one VDM frame. */
    read(bsb: number, addr: number, len: number): Uint8Array {
        const f = new Uint8Array(3 + len)
        f[0] = addr >> 8
        f[1] = addr & 0xff
        f[2] = (bsb << 3) & 0xf8
        return this.transfer(f).subarray(3)
    }

    /** Convenience: writes bytes at (block, address) in one VDM frame. */
    write(bsb: number, addr: number, data: ArrayLike<number>): void {
        const f = new Uint8Array(3 + data.length)
        f[0] = addr >> 8
        f[1] = addr & 0xff
        f[2] = ((bsb << 3) & 0xf8) | 0x04
        f.set(data, 3)
        this.transfer(f)
    }

    /** For a variant that frames SPI its own way (sim/w5100s/chip.ts): false while the chip answers nothing (RSTn low, not ready, closed). */
    get answering(): boolean {
        return !(this.closed || this.resetHeld || this.clock.now() < this.readyAt)
    }

    /** For a variant's framing: reads (or, with `write`, writes `v` to) one data byte at (block, address), as inside a frame. */
    busByte(bsb: number, addr: number, write: boolean, v = 0): number {
        if (!write) {
            this.counters.dataBytesRead++
            return this.readByte(bsb, addr)
        }
        this.counters.dataBytesWritten++
        this.writeByte(bsb, addr, v)
        return 0
    }

    /** For a variant's framing: ends a CS-low period of `bytes` bytes (counters; pending Sn_CR commands advance). */
    endFrame(bytes: number): void {
        this.counters.frames++
        this.counters.bytes += bytes
        this.frameCount++
        for (let s = 0; s < SOCKETS; s++) this.checkPending(s)
    }

    // ---------------------------------------------------------------- pins and PHY

    /** Drives the RSTn pin: false holds the chip in reset, true releases it. */
    setResetPin(high: boolean): void {
        if (!high) {
            if (!this.resetHeld) this.log("info", "RSTn low: hardware reset")
            this.resetHeld = true
            this.resetRegisters(false)
        } else if (this.resetHeld) {
            this.resetHeld = false
            this.readyAt = this.clock.now() + this.opts.resetReadyMs
            this.resetRegisters(false)
        }
        this.updateLink()
    }

    /** True while RSTn is held low. */
    get inReset(): boolean {
        return this.resetHeld
    }

    /** Level of the INTn pin: 0 when an unmasked interrupt is pending (active low), else 1. */
    intPin(): 0 | 1 {
        return this.intState ? 0 : 1
    }

    /** True when an unmasked interrupt is pending (INTn low). */
    intAsserted(): boolean {
        return this.intState
    }

    /** Plugs (true) or unplugs (false) the Ethernet cable. LNK follows after `linkUpDelayMs`. */
    setLink(up: boolean): void {
        this.cable = up
        this.updateLink()
    }

    /** Current PHY link status (PHYCFGR.LNK). */
    get link(): boolean {
        return this.linkUp
    }

    /** Zeroes the activity counters. */
    resetCounters(): void {
        for (const k of Object.keys(this.counters) as (keyof W5500Counters)[]) this.counters[k] = 0
    }

    /** Drops every host connection and timer; the chip answers nothing afterwards. */
    close(): void {
        for (const s of this.sockets) this.dropConn(s)
        if (this.linkTimer) this.clock.clearTimeout(this.linkTimer)
        this.linkTimer = null
        this.closed = true
    }

    // ---------------------------------------------------------------- network side

    /** A datagram arrives from the wire. */
    receiveUdp(d: UdpDatagram): void {
        if (this.closed || this.resetHeld || !this.linkUp) return this.drop(d, "link down")
        const dst = ipToU32(d.dstIp)
        const bcast = this.isBroadcast(dst)
        // A unicast frame reaches the chip only when it is addressed to SHAR. With no address yet
        // (SIPR 0.0.0.0) the real chip hands a unicast datagram for another IP to the UDP socket on
        // its port: DHCP clients that leave the BROADCAST flag clear get their OFFER/ACK sent to
        // yiaddr/chaddr (RFC 2131 4.1; ISC dhcpd, dnsmasq) and still get leases on W5500 boards
        // (Adafruit_CircuitPython_Wiznet5k clears the flag since its DHCP rewrite, commit 077c330 of
        // 2022-12-17, PR #95, with SIPR at 0.0.0.0 during the exchange; WIZnet's ioLibrary and
        // w5500-rs set it). No WIZnet document states the rule; whether the chip also takes another
        // IP once SIPR is set is not documented either, so that case stays dropped here.
        const mac = d.dstMac
        if (mac && Buffer.compare(Buffer.from(mac), Buffer.from(this.common.subarray(COMMON.SHAR, COMMON.SHAR + 6))) !== 0)
            return this.drop(d, "not for our MAC (SHAR)")
        const sipr = this.ipReg(COMMON.SIPR)
        if (!bcast && dst !== sipr && sipr !== 0) return this.drop(d, "not for our SIPR")
        for (let n = 0; n < SOCKETS; n++) {
            const s = this.sockets[n]
            if (s.regs[SN.SR] !== SOCK.UDP || get16(s.regs, SN.PORT) !== d.dstPort) continue
            if (bcast && (s.regs[SN.MR] & SN_MR.BCASTB)) return this.drop(d, `broadcast blocked on socket ${n}`)
            const need = 8 + d.data.length
            const free = this.rxSize(n) - this.rsr(n)
            if (need > free || d.data.length > 0xffff) return this.drop(d, `socket ${n} RX buffer full (${free} free, ${need} needed)`)
            const hdr = new Uint8Array(8)
            hdr.set(ipToBytes(d.srcIp), 0)
            set16(hdr, 4, d.srcPort)
            set16(hdr, 6, d.data.length)
            const wr = get16(s.regs, SN.RX_WR)
            this.writeRx(n, wr, hdr)
            this.writeRx(n, (wr + 8) & 0xffff, d.data)
            set16(s.regs, SN.RX_WR, (wr + need) & 0xffff)
            this.counters.udpReceived++
            this.raise(n, SN_IR.RECV)
            return
        }
        this.drop(d, "no UDP socket on that port")
    }

    /** An ICMP port-unreachable arrives for a datagram the chip sent to ip:port. */
    receiveUnreachable(ip: string, port: number): void {
        if (this.closed || this.resetHeld || !this.linkUp) return
        this.common.set(ipToBytes(ip), COMMON.UIPR)
        set16(this.common, COMMON.UPORTR, port)
        this.common[COMMON.IR] |= IR.UNREACH
        this.updateInt()
    }

    /** Own IP address (SIPR) as a dotted string. */
    get sourceIp(): string {
        return bytesToIp(this.common, COMMON.SIPR)
    }

    /** Sn_SR of socket n (for tests and tools; the driver reads it over SPI). */
    status(n: number): number {
        return this.sockets[n].regs[SN.SR]
    }

    // ---------------------------------------------------------------- registers

    private readByte(bsb: number, addr: number): number {
        if (bsb === 0) return this.readCommon(addr)
        const n = bsb >> 2
        switch (bsb & 3) {
            case 1: return this.readSocket(n, addr)
            case 2: {
                const a = this.bufAddr(true, n, addr)
                return a < 0 ? 0 : this.txMem[a]
            }
            case 3: {
                const a = this.bufAddr(false, n, addr)
                return a < 0 ? 0 : this.rxMem[a]
            }
            default: return 0 // reserved block
        }
    }

    private writeByte(bsb: number, addr: number, v: number): void {
        if (bsb === 0) return this.writeCommon(addr, v)
        const n = bsb >> 2
        switch (bsb & 3) {
            case 1: return this.writeSocket(n, addr, v)
            case 2: {
                const a = this.bufAddr(true, n, addr)
                if (a >= 0) this.txMem[a] = v
                return
            }
            default: return // RX buffer is read-only to the host; reserved blocks ignore writes
        }
    }

    private readCommon(addr: number): number {
        switch (addr) {
            case COMMON.SIR: return this.sir()
            case COMMON.PHYCFGR: return this.phycfgr()
            default: return addr < COMMON_SIZE ? this.common[addr] : 0
        }
    }

    private writeCommon(addr: number, v: number): void {
        switch (addr) {
            case COMMON.MR:
                if (v & MR.RST) {
                    this.log("info", "MR.RST: software reset")
                    this.resetRegisters(true)
                    this.updateLink()
                } else this.common[COMMON.MR] = v & (MR.WOL | MR.PB | MR.PPPOE | MR.FARP)
                return
            case COMMON.IR:
                this.common[COMMON.IR] &= ~v & 0xff
                this.updateInt()
                return
            case COMMON.IMR:
                this.common[COMMON.IMR] = v & 0xf0
                this.updateInt()
                return
            case COMMON.SIMR:
                this.common[COMMON.SIMR] = v
                this.updateInt()
                return
            case COMMON.PHYCFGR: {
                this.phyCfg = v & 0xf8
                this.updateLink()
                for (let s = 0; s < SOCKETS; s++) this.checkPending(s)
                return
            }
            case COMMON.SIR:
            case COMMON.VERSIONR:
                return
            default:
                // UIPR/UPORTR are read-only; 0x2F..0x38 are reserved
                if (addr >= COMMON.UIPR && addr < COMMON.PHYCFGR) return
                if (addr > COMMON.PHYCFGR) return
                this.common[addr] = v
        }
    }

    private readSocket(n: number, off: number): number {
        const s = this.sockets[n]
        switch (off) {
            case SN.CR: return s.pending && !s.pending.cleared ? s.pending.cmd : 0
            case SN.TX_FSR: return this.fsr(n) >> 8
            case SN.TX_FSR + 1: return this.fsr(n) & 0xff
            case SN.RX_RSR: return this.rsr(n) >> 8
            case SN.RX_RSR + 1: return this.rsr(n) & 0xff
            default: return off < SN_SIZE ? s.regs[off] : 0
        }
    }

    private writeSocket(n: number, off: number, v: number): void {
        const s = this.sockets[n]
        switch (off) {
            case SN.CR:
                this.command(n, v)
                return
            case SN.IR:
                s.regs[SN.IR] &= ~v & 0xff
                this.updateInt()
                return
            case SN.IMR:
                s.regs[SN.IMR] = v
                this.updateInt()
                return
            case SN.RXBUF_SIZE:
            case SN.TXBUF_SIZE:
                if (VALID_BUF_KB.includes(v)) s.regs[off] = v
                else this.log("warn", `socket ${n}: ${off === SN.RXBUF_SIZE ? "RX" : "TX"}BUF_SIZE ${v} is not 0/1/2/4/8/16 KB: ignored`)
                return
            case SN.SR:
            case SN.TX_FSR: case SN.TX_FSR + 1:
            case SN.TX_RD: case SN.TX_RD + 1:
            case SN.RX_RSR: case SN.RX_RSR + 1:
            case SN.RX_WR: case SN.RX_WR + 1:
            case 0x14: case 0x17: case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d:
                return // read-only or reserved
            default:
                if (off < SN_SIZE) s.regs[off] = v
        }
    }

    private phycfgr(): number {
        let status = 0
        if (this.linkUp) {
            const opmdc = this.phyCfg & PHYCFGR.OPMD ? (this.phyCfg >> 3) & 7 : 7
            // 000 10/half, 001 10/full, 010 100/half, 011 100/full, 100 100/half auto, 111 all capable
            const speed100 = opmdc >= 2
            const full = opmdc === 1 || opmdc === 3 || opmdc >= 5
            status = PHYCFGR.LNK | (speed100 ? PHYCFGR.SPD : 0) | (full ? PHYCFGR.DPX : 0)
        }
        return this.phyCfg | status
    }

    private get powerDown(): boolean {
        return (this.phyCfg & PHYCFGR.OPMD) !== 0 && ((this.phyCfg >> 3) & 7) === 6
    }

    private sir(): number {
        let v = 0
        for (let n = 0; n < SOCKETS; n++) {
            const r = this.sockets[n].regs
            if (r[SN.IR] & r[SN.IMR]) v |= 1 << n
        }
        return v
    }

    private updateInt(): void {
        const a = (this.common[COMMON.IR] & this.common[COMMON.IMR] & 0xf0) !== 0 ||
            (this.sir() & this.common[COMMON.SIMR]) !== 0
        if (a !== this.intState) {
            this.intState = a
            this.emit("int", a)
        }
    }

    /** Sets Sn_IR bits; per the datasheet a bit is set only where Sn_IMR enables it. */
    protected raise(n: number, bits: number): void {
        const r = this.sockets[n].regs
        r[SN.IR] |= bits & r[SN.IMR]
        this.updateInt()
    }

    private resetRegisters(soft: boolean): void {
        for (const s of this.sockets) {
            this.dropConn(s)
            s.pending = null
        }
        this.common.fill(0)
        set16(this.common, COMMON.RTR, 0x07d0)
        this.common[COMMON.RCR] = 0x08
        this.common[COMMON.PTIMER] = 0x28
        set16(this.common, COMMON.PMRU, 0xffff)
        this.common[COMMON.VERSIONR] = VERSION
        if (!soft) this.phyCfg = 0xb8
        for (let n = 0; n < SOCKETS; n++) {
            const r = this.sockets[n].regs
            r.fill(0)
            r.fill(0xff, SN.DHAR, SN.DHAR + 6)
            r[SN.TTL] = 0x80
            r[SN.RXBUF_SIZE] = 2
            r[SN.TXBUF_SIZE] = 2
            r[SN.IMR] = 0xff
            set16(r, SN.FRAG, 0x4000)
            this.initPointers(n)
        }
        this.txMem.fill(0)
        this.rxMem.fill(0)
        this.updateInt()
    }

    private pointerStart(): number {
        const p = this.opts.pointerStart
        return (typeof p === "function" ? p() : p) & 0xffff
    }

    private initPointers(n: number): void {
        const s = this.sockets[n]
        const p = this.pointerStart()
        for (const off of [SN.TX_RD, SN.TX_WR, SN.RX_RD, SN.RX_WR]) set16(s.regs, off, p)
        s.txAck = p
        s.rxRd = p
    }

    // ---------------------------------------------------------------- buffers

    private txSize(n: number): number {
        return this.sockets[n].regs[SN.TXBUF_SIZE] * 1024
    }

    protected rxSize(n: number): number {
        return this.sockets[n].regs[SN.RXBUF_SIZE] * 1024
    }

    /**
     * Physical index in the TX or RX memory for a 16-bit offset of socket n: sockets' buffers lie
     * one after the other in socket order; the offset wraps inside the socket's buffer. If the
     * sizes add up to more than 16 KB, the overflow wraps onto the start of the memory.
     */
    private bufAddr(tx: boolean, n: number, addr: number): number {
        const size = tx ? this.txSize(n) : this.rxSize(n)
        if (size === 0) return -1
        let base = 0
        for (let k = 0; k < n; k++) base += tx ? this.txSize(k) : this.rxSize(k)
        return (base + (addr & (size - 1))) % BUFFER_MEMORY
    }

    private fsr(n: number): number {
        const s = this.sockets[n]
        const size = this.txSize(n)
        const from = (s.regs[SN.MR] & 0x0f) === SN_MR.TCP ? s.txAck : get16(s.regs, SN.TX_RD)
        const used = (get16(s.regs, SN.TX_WR) - from) & 0xffff
        return used >= size ? 0 : size - used
    }

    protected rsr(n: number): number {
        const s = this.sockets[n]
        return Math.min((get16(s.regs, SN.RX_WR) - s.rxRd) & 0xffff, this.rxSize(n))
    }

    private readTx(n: number, from: number, len: number): Buffer {
        const b = Buffer.alloc(len)
        for (let k = 0; k < len; k++) b[k] = this.txMem[this.bufAddr(true, n, (from + k) & 0xffff)]
        return b
    }

    protected writeRx(n: number, at: number, data: Uint8Array): void {
        for (let k = 0; k < data.length; k++) this.rxMem[this.bufAddr(false, n, (at + k) & 0xffff)] = data[k]
    }

    protected takeTx(n: number): { data: Buffer; wr: number } {
        const s = this.sockets[n]
        const rd = get16(s.regs, SN.TX_RD)
        const wr = get16(s.regs, SN.TX_WR)
        let len = (wr - rd) & 0xffff
        const size = this.txSize(n)
        if (len > size) {
            this.log("warn", `socket ${n}: SEND of ${len} bytes exceeds the ${size}-byte TX buffer: sending ${size}`)
            len = size
        }
        const data = this.readTx(n, rd, len)
        set16(s.regs, SN.TX_RD, wr)
        return { data, wr }
    }

    // ---------------------------------------------------------------- commands

    private command(n: number, v: number): void {
        const s = this.sockets[n]
        if (s.pending) {
            const p = s.pending
            s.pending = null
            this.execute(n, p.cmd)
        }
        this.counters.commands++
        s.pending = { cmd: v, frame: this.frameCount + 1, cleared: false }
        this.checkPending(n)
    }

    private checkPending(n: number): void {
        const s = this.sockets[n]
        const p = s.pending
        if (!p || this.powerDown) return // with the PHY powered down, Sn_CR never clears
        // further frames completed since the one that wrote Sn_CR (-1 while that frame still runs)
        const done = this.frameCount - p.frame
        const cr = this.opts.crDelayFrames
        const total = cr + this.opts.srDelayFrames
        if (cr === 0 || done >= cr) p.cleared = true
        if (total === 0 || done >= total) {
            s.pending = null
            this.execute(n, p.cmd)
        }
    }

    private execute(n: number, cmd: number): void {
        const s = this.sockets[n]
        const proto = s.regs[SN.MR] & 0x0f
        const sr = s.regs[SN.SR]
        const tcp = proto === SN_MR.TCP
        switch (cmd) {
            case CMD.OPEN:
                this.dropConn(s)
                if (proto === SN_MR.TCP || proto === SN_MR.UDP) {
                    this.initPointers(n)
                    s.regs[SN.SR] = proto === SN_MR.TCP ? SOCK.INIT : SOCK.UDP
                } else {
                    s.regs[SN.SR] = SOCK.CLOSED
                    this.log("warn", proto === SN_MR.MACRAW
                        ? `socket ${n}: OPEN in MACRAW mode is not emulated (socket stays CLOSED)`
                        : `socket ${n}: OPEN with Sn_MR protocol ${proto} ignored (expected TCP 1 or UDP 2)`)
                }
                return
            case CMD.LISTEN:
                if (tcp && sr === SOCK.INIT) {
                    s.regs[SN.SR] = SOCK.LISTEN
                    this.log("warn", `socket ${n}: LISTEN is not emulated: no connection will ever arrive`)
                }
                return
            case CMD.CONNECT:
                if (tcp && sr === SOCK.INIT) this.tcpConnect(n)
                else this.log("info", `socket ${n}: CONNECT ignored in state 0x${sr.toString(16)}`)
                return
            case CMD.DISCON:
                if (tcp) this.tcpDiscon(n)
                return
            case CMD.CLOSE:
                this.dropConn(s)
                s.regs[SN.SR] = SOCK.CLOSED
                return
            case CMD.SEND:
            case CMD.SEND_MAC:
                if (sr === SOCK.UDP) this.udpSend(n, cmd === CMD.SEND_MAC)
                else if (tcp && (sr === SOCK.ESTABLISHED || sr === SOCK.CLOSE_WAIT)) this.tcpSend(n)
                else this.log("info", `socket ${n}: SEND ignored in state 0x${sr.toString(16)}`)
                return
            case CMD.SEND_KEEP:
                // a keep-alive probe to a live host connection always succeeds: nothing to do
                return
            case CMD.RECV:
                s.rxRd = get16(s.regs, SN.RX_RD)
                if (s.conn) this.pump(n)
                return
            default:
                this.log("warn", `socket ${n}: unknown Sn_CR command 0x${cmd.toString(16)} ignored`)
        }
    }

    // ---------------------------------------------------------------- routing and timeouts

    private ipReg(off: number): number {
        return ipToU32(bytesToIp(this.common, off))
    }

    protected isBroadcast(ip: number): boolean {
        if (ip === BROADCAST) return true
        const mask = this.ipReg(COMMON.SUBR)
        if (mask === 0 || mask === BROADCAST) return false
        return (ip & ~mask) >>> 0 === (~mask >>> 0) && ((ip & mask) >>> 0) === ((this.ipReg(COMMON.SIPR) & mask) >>> 0)
    }

    /** ARP for the next hop of `ip` (itself on our subnet, else the gateway). */
    protected arpNextHop(ip: number): { ok: boolean; hop: string } {
        const mask = this.ipReg(COMMON.SUBR)
        const onSubnet = ((ip & mask) >>> 0) === ((this.ipReg(COMMON.SIPR) & mask) >>> 0)
        const hop = onSubnet ? ip : this.ipReg(COMMON.GAR)
        const hopIp = u32ToIp(hop)
        if (hop === 0 || !this.linkUp || !this.network) return { ok: false, hop: hopIp }
        return { ok: this.network.arp(hopIp), hop: hopIp }
    }

    /** ARP timeout: RTR * (RCR + 1), in ms. */
    arpTimeoutMs(): number {
        return (get16(this.common, COMMON.RTR) * (this.common[COMMON.RCR] + 1)) / 10
    }

    /** TCP retransmission timeout per the datasheet formula (RTR doubling up to 65535, RCR retries), in ms. */
    tcpTimeoutMs(): number {
        const rtr = get16(this.common, COMMON.RTR)
        const rcr = this.common[COMMON.RCR]
        let m = 0
        while (m < rcr && rtr * 2 ** (m + 1) <= 0xffff) m++
        let total = 0
        for (let k = 0; k <= m; k++) total += rtr * 2 ** k
        total += (rcr - m) * rtr * 2 ** m
        return total / 10
    }

    protected later(s: SocketState, ms: number, fn: () => void): void {
        const gen = s.gen
        const t = this.clock.setTimeout(() => {
            s.timers.delete(t)
            if (s.gen === gen && !this.closed) fn()
        }, ms)
        s.timers.add(t)
    }

    protected setRto(s: SocketState, ms: number, fn: () => void): void {
        this.clearRto(s)
        const gen = s.gen
        s.rto = this.clock.setTimeout(() => {
            s.rto = null
            if (s.gen === gen && !this.closed) fn()
        }, ms)
    }

    protected clearRto(s: SocketState): void {
        if (s.rto) this.clock.clearTimeout(s.rto)
        s.rto = null
    }

    /** Drops the host connection and all pending work of a socket (registers and buffers stay). */
    protected dropConn(s: SocketState): void {
        s.gen++
        this.clearRto(s)
        if (s.holdRto) this.clock.clearTimeout(s.holdRto)
        s.holdRto = null
        for (const t of s.timers) this.clock.clearTimeout(t)
        s.timers.clear()
        if (s.conn) {
            s.conn.removeAllListeners()
            s.conn.on("error", () => {})
            s.conn.destroy()
            s.conn = null
        }
        s.rxQueue = []
        s.rxQueued = 0
        s.paused = false
        s.afterDrain = null
        s.deferred = []
        s.out = []
    }

    /** Socket goes CLOSED and raises `bits`. */
    protected fail(n: number, bits: number, why: string): void {
        const s = this.sockets[n]
        this.log("info", `socket ${n}: ${why}`)
        this.dropConn(s)
        s.regs[SN.SR] = SOCK.CLOSED
        this.raise(n, bits)
    }

    private drop(d: UdpDatagram, why: string): void {
        this.counters.udpDropped++
        this.log("info", `dropped UDP ${d.srcIp}:${d.srcPort} -> ${d.dstIp}:${d.dstPort} (${d.data.length} bytes): ${why}`)
    }

    // ---------------------------------------------------------------- link

    private updateLink(): void {
        const want = this.cable && !this.resetHeld && !this.closed && (this.phyCfg & PHYCFGR.RST) !== 0 && !this.powerDown
        if (!want) {
            if (this.linkTimer) this.clock.clearTimeout(this.linkTimer)
            this.linkTimer = null
            if (this.linkUp) this.setLinkState(false)
            return
        }
        if (this.linkUp || this.linkTimer) return
        if (this.opts.linkUpDelayMs <= 0) return this.setLinkState(true)
        this.linkTimer = this.clock.setTimeout(() => {
            this.linkTimer = null
            this.setLinkState(true)
        }, this.opts.linkUpDelayMs)
    }

    private setLinkState(up: boolean): void {
        this.linkUp = up
        this.log("info", `PHY link ${up ? "up" : "down"}`)
        for (let n = 0; n < SOCKETS; n++) {
            const s = this.sockets[n]
            if (!up) {
                this.pauseConn(s)
                continue
            }
            if (s.holdRto) this.clock.clearTimeout(s.holdRto)
            s.holdRto = null
            for (const fn of s.deferred.splice(0)) fn()
            if (s.out.length > 0) this.flushOut(n)
            if (s.paused && s.rxQueued < RX_QUEUE_HIGH) {
                s.paused = false
                s.conn?.resume()
            }
        }
    }
}

