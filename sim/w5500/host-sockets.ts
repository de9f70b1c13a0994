/**
 * The host side of the emulated W5500's sockets (sim/w5500/chip.ts is the register and memory
 * model and extends this class): a TCP socket becomes a real host connection (node:net) where the
 * attached network routes it, with its bytes moved into the RX buffer as space allows, output held
 * while the link is down, and the peer's FIN and errors turned into Sn_SR and Sn_IR changes; a UDP
 * SEND goes to the network as datagrams of at most the MSS.
 */
import net from "node:net"
import { EventEmitter } from "node:events"
import { get16, set16, SN, SN_IR, SN_SIZE, SOCK } from "./registers.ts"
import { bytesToIp, ipToU32 } from "./ip.ts"
import type { TimerClock, TimerHandle } from "./clock.ts"
import type { ChipNetwork, Logger, W5500Counters } from "./chip.ts"

/** RX bytes queued from a host connection beyond which reading from it pauses */
export const RX_QUEUE_HIGH = 64 * 1024
/** default MSS the emulated peer offers */
const TCP_MSS = 1460
const UDP_MSS = 1472

export interface PendingCommand {
    cmd: number
    /** value of the frame counter once the frame that wrote Sn_CR has ended */
    frame: number
    cleared: boolean
}

export interface OutItem {
    data?: Buffer
    /** TX pointer value once this chunk is acknowledged */
    ack?: number
    fin?: boolean
}

/** One socket: its registers and pending command (the model's), its host connection, queues and timers (this side's). */
export class SocketState {
    regs = new Uint8Array(SN_SIZE)
    pending: PendingCommand | null = null
    conn: net.Socket | null = null
    /** bumped whenever the host connection is dropped: stale callbacks compare it */
    gen = 0
    /** TCP: internal ACK pointer (TX_FSR is measured from it) */
    txAck = 0
    /** RX read pointer as last notified by RECV */
    rxRd = 0
    rxQueue: Buffer[] = []
    rxQueued = 0
    paused = false
    afterDrain: (() => void) | null = null
    /** host socket events held while the link is down */
    deferred: (() => void)[] = []
    /** TCP output waiting for the link */
    out: OutItem[] = []
    /** connect/FIN timeout */
    rto: TimerHandle | null = null
    /** retransmission timeout while output is held by a down link */
    holdRto: TimerHandle | null = null
    timers = new Set<TimerHandle>()
}

/** The chip's sockets as the host side sees them; the model (W5500) provides the abstract part. */
export abstract class HostSockets extends EventEmitter {
    abstract readonly counters: W5500Counters
    abstract network: ChipNetwork | null
    /** own IP address (SIPR) */
    abstract readonly sourceIp: string
    protected abstract readonly opts: { readonly udpSendDelayMs: number }
    protected abstract readonly log: Logger
    protected abstract readonly clock: TimerClock
    protected abstract readonly sockets: SocketState[]
    protected abstract linkUp: boolean
    protected abstract closed: boolean
    abstract arpTimeoutMs(): number
    abstract tcpTimeoutMs(): number
    protected abstract raise(n: number, bits: number): void
    protected abstract fail(n: number, bits: number, why: string): void
    protected abstract dropConn(s: SocketState): void
    protected abstract later(s: SocketState, ms: number, fn: () => void): void
    protected abstract setRto(s: SocketState, ms: number, fn: () => void): void
    protected abstract clearRto(s: SocketState): void
    protected abstract isBroadcast(ip: number): boolean
    protected abstract arpNextHop(ip: number): { ok: boolean; hop: string }
    protected abstract rxSize(n: number): number
    protected abstract rsr(n: number): number
    protected abstract writeRx(n: number, at: number, data: Uint8Array): void
    /** Takes the bytes between Sn_TX_RD and Sn_TX_WR (at most the TX buffer) and moves Sn_TX_RD to Sn_TX_WR. */
    protected abstract takeTx(n: number): { data: Buffer; wr: number }

    // ---------------------------------------------------------------- TCP

    protected tcpConnect(n: number): void {
        const s = this.sockets[n]
        const ip = bytesToIp(s.regs, SN.DIPR)
        const port = get16(s.regs, SN.DPORT)
        s.regs[SN.SR] = SOCK.SYNSENT
        const arp = this.arpNextHop(ipToU32(ip))
        if (!arp.ok) {
            this.log("info", `socket ${n}: CONNECT ${ip}:${port}: no ARP reply from ${arp.hop}`)
            this.later(s, this.arpTimeoutMs(), () => this.fail(n, SN_IR.TIMEOUT, `ARP timeout for ${arp.hop}`))
            return
        }
        const route = this.network?.routeTcp(ip, port) ?? null
        if (!route) {
            this.log("warn", `socket ${n}: CONNECT ${ip}:${port} blocked (not loopback or mapped; allowExternal is off): the SYN goes unanswered`)
            this.setRto(s, this.tcpTimeoutMs(), () => this.fail(n, SN_IR.TIMEOUT, `TCP timeout connecting to ${ip}:${port}`))
            return
        }
        this.log("info", `socket ${n}: CONNECT ${ip}:${port} -> host ${route.host}:${route.port}`)
        const gen = s.gen
        const conn = net.connect({ host: route.host, port: route.port, allowHalfOpen: true })
        s.conn = conn
        this.counters.tcpConnects++
        conn.setNoDelay(true)
        this.setRto(s, this.tcpTimeoutMs(), () => this.fail(n, SN_IR.TIMEOUT, `TCP timeout connecting to ${ip}:${port}`))
        const ev = (fn: () => void) => () => this.hostEvent(s, gen, fn)
        conn.on("connect", ev(() => this.tcpConnected(n)))
        conn.on("data", (d: Buffer) => this.hostEvent(s, gen, () => this.tcpData(n, d)))
        conn.on("end", ev(() => this.tcpPeerFin(n)))
        conn.on("error", (e: NodeJS.ErrnoException) => this.hostEvent(s, gen, () => this.tcpError(n, e)))
        conn.on("close", ev(() => this.tcpClosed(n)))
        if (!this.linkUp) this.pauseConn(s)
    }

    /** Runs a host socket event now, or after the link comes back; ignores stale connections. */
    private hostEvent(s: SocketState, gen: number, fn: () => void): void {
        if (s.gen !== gen || this.closed) return
        if (this.linkUp) fn()
        else s.deferred.push(() => { if (s.gen === gen) fn() })
    }

    private tcpConnected(n: number): void {
        const s = this.sockets[n]
        if (s.regs[SN.SR] !== SOCK.SYNSENT) return
        this.clearRto(s)
        s.regs[SN.SR] = SOCK.ESTABLISHED
        const mss = get16(s.regs, SN.MSSR)
        if (mss === 0 || mss > TCP_MSS) set16(s.regs, SN.MSSR, TCP_MSS)
        this.raise(n, SN_IR.CON)
    }

    private tcpData(n: number, d: Buffer): void {
        const s = this.sockets[n]
        // for the benchmark's command round trip: bytes from the network reached the chip
        this.emit("rx", n, d.length)
        s.rxQueue.push(d)
        s.rxQueued += d.length
        if (s.rxQueued > RX_QUEUE_HIGH) this.pauseConn(s)
        this.pump(n)
    }

    /** Moves queued host bytes into the RX buffer as space allows. */
    protected pump(n: number): void {
        const s = this.sockets[n]
        const size = this.rxSize(n)
        let free = size - this.rsr(n)
        let moved = 0
        while (free > 0 && s.rxQueue.length > 0) {
            const chunk = s.rxQueue[0]
            const k = Math.min(free, chunk.length)
            const wr = get16(s.regs, SN.RX_WR)
            this.writeRx(n, wr, chunk.subarray(0, k))
            set16(s.regs, SN.RX_WR, (wr + k) & 0xffff)
            if (k === chunk.length) s.rxQueue.shift()
            else s.rxQueue[0] = chunk.subarray(k)
            s.rxQueued -= k
            free -= k
            moved += k
        }
        if (moved > 0) this.raise(n, SN_IR.RECV)
        if (s.paused && s.rxQueued < RX_QUEUE_HIGH / 4 && this.linkUp) {
            s.paused = false
            s.conn?.resume()
        }
        if (s.rxQueue.length === 0 && s.afterDrain) {
            const f = s.afterDrain
            s.afterDrain = null
            f()
        }
    }

    /** Runs `fn` once every byte the peer sent before it is in the RX buffer. */
    private whenDrained(s: SocketState, fn: () => void): void {
        if (s.rxQueue.length === 0) return fn()
        const prev = s.afterDrain
        s.afterDrain = prev ? () => { prev(); fn() } : fn
    }

    private tcpPeerFin(n: number): void {
        const s = this.sockets[n]
        this.whenDrained(s, () => {
            const sr = s.regs[SN.SR]
            if (sr === SOCK.ESTABLISHED) {
                s.regs[SN.SR] = SOCK.CLOSE_WAIT
                this.raise(n, SN_IR.DISCON)
            } else if (sr === SOCK.FIN_WAIT) {
                s.regs[SN.SR] = SOCK.TIME_WAIT
                this.raise(n, SN_IR.DISCON)
            }
        })
    }

    private tcpError(n: number, e: NodeJS.ErrnoException): void {
        const s = this.sockets[n]
        const sr = s.regs[SN.SR]
        if (sr === SOCK.SYNSENT) this.fail(n, SN_IR.TIMEOUT, `connect failed: ${e.code ?? e.message}`)
        else this.fail(n, SN_IR.DISCON, `connection reset: ${e.code ?? e.message}`)
    }

    private tcpClosed(n: number): void {
        const s = this.sockets[n]
        this.whenDrained(s, () => {
            const sr = s.regs[SN.SR]
            if (sr === SOCK.SYNSENT) return this.fail(n, SN_IR.TIMEOUT, "connection closed before it was established")
            if (sr === SOCK.ESTABLISHED || sr === SOCK.CLOSE_WAIT) return this.fail(n, SN_IR.DISCON, "connection closed by peer")
            // FIN_WAIT / TIME_WAIT / LAST_ACK: the disconnect-process completed
            this.dropConn(s)
            s.regs[SN.SR] = SOCK.CLOSED
            if (sr === SOCK.FIN_WAIT) this.raise(n, SN_IR.DISCON)
        })
    }

    protected tcpDiscon(n: number): void {
        const s = this.sockets[n]
        const sr = s.regs[SN.SR]
        if (sr === SOCK.ESTABLISHED || sr === SOCK.CLOSE_WAIT) {
            s.regs[SN.SR] = sr === SOCK.ESTABLISHED ? SOCK.FIN_WAIT : SOCK.LAST_ACK
            this.output(n, { fin: true })
            this.setRto(s, this.tcpTimeoutMs(), () => this.fail(n, SN_IR.TIMEOUT, "TCP timeout waiting for the peer's FIN/ACK"))
        } else if (sr === SOCK.SYNSENT || sr === SOCK.INIT || sr === SOCK.LISTEN) {
            this.dropConn(s)
            s.regs[SN.SR] = SOCK.CLOSED
        }
    }

    protected tcpSend(n: number): void {
        const { data, wr } = this.takeTx(n)
        // for the benchmark's command round trip and the profile: the device sent bytes
        this.emit("tx", n, data.length, data)
        this.output(n, { data, ack: wr })
    }

    private output(n: number, item: OutItem): void {
        const s = this.sockets[n]
        s.out.push(item)
        if (this.linkUp) this.flushOut(n)
        else if (!s.holdRto) {
            const gen = s.gen
            s.holdRto = this.clock.setTimeout(() => {
                s.holdRto = null
                if (s.gen === gen && !this.closed) this.fail(n, SN_IR.TIMEOUT, "TCP timeout: link down while sending")
            }, this.tcpTimeoutMs())
        }
    }

    protected flushOut(n: number): void {
        const s = this.sockets[n]
        const gen = s.gen
        const conn = s.conn
        for (const item of s.out.splice(0)) {
            if (item.data) {
                const ack = item.ack ?? 0
                const done = () => {
                    if (s.gen !== gen || this.closed) return
                    s.txAck = ack
                    this.raise(n, SN_IR.SEND_OK)
                }
                if (!conn || item.data.length === 0) setImmediate(done)
                else conn.write(item.data, err => { if (!err) done() })
            }
            if (item.fin) conn?.end()
        }
    }

    protected pauseConn(s: SocketState): void {
        if (!s.paused && s.conn) {
            s.paused = true
            s.conn.pause()
        }
    }

    // ---------------------------------------------------------------- UDP

    protected udpSend(n: number, sendMac: boolean): void {
        const s = this.sockets[n]
        const { data } = this.takeTx(n)
        const dstIp = bytesToIp(s.regs, SN.DIPR)
        const dst = ipToU32(dstIp)
        const dstPort = get16(s.regs, SN.DPORT)
        const bcast = this.isBroadcast(dst)
        if (!bcast && !sendMac) {
            const arp = this.arpNextHop(dst)
            if (!arp.ok) {
                this.log("info", `socket ${n}: UDP to ${dstIp}:${dstPort}: no ARP reply from ${arp.hop}`)
                this.later(s, this.arpTimeoutMs(), () => this.raise(n, SN_IR.TIMEOUT))
                return
            }
        }
        const srcIp = this.sourceIp
        const srcPort = get16(s.regs, SN.PORT)
        const mssReg = get16(s.regs, SN.MSSR)
        const mss = mssReg === 0 || mssReg > UDP_MSS ? UDP_MSS : mssReg
        this.later(s, this.opts.udpSendDelayMs, () => {
            if (this.linkUp && this.network) {
                let off = 0
                do {
                    const part = data.subarray(off, off + mss)
                    this.counters.udpSent++
                    this.network.transmitUdp({ srcIp, srcPort, dstIp, dstPort, data: Uint8Array.from(part) })
                    off += mss
                } while (off < data.length)
                if (data.length > mss) this.log("warn", `socket ${n}: UDP SEND of ${data.length} bytes split into ${mss}-byte datagrams`)
            }
            this.raise(n, SN_IR.SEND_OK)
        })
    }
}
