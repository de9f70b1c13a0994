/**
 * One W5500 hardware socket (TCP client or UDP): commands with completion checks and timeouts,
 * free-running 16-bit TX/RX pointers (used as buffer addresses: the chip wraps them inside the
 * socket's buffer), the double-read rule for Sn_TX_FSR and Sn_RX_RSR, and interrupt bits handed
 * over by the chip's interrupt service. Each step is one `SpiBatch` (one bus round trip).
 * The pointers we alone move (Sn_TX_WR, Sn_RX_RD) are cached after OPEN; Sn_TX_FSR is only read
 * when the cached lower bound of free space is too small.
 */
import * as ds from "@devicescript/core"
import { SpiBatch } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import { formatIp } from "../ip"
import {
    commandName,
    hex2,
    rxBlock,
    SOCK_CLOSED,
    SOCK_INIT,
    SOCK_UDP,
    sregBlock,
    statusName,
    Sn_CR,
    Sn_CR_CLOSE,
    Sn_CR_CONNECT,
    Sn_CR_DISCON,
    Sn_CR_OPEN,
    Sn_CR_RECV,
    Sn_CR_SEND,
    Sn_DIPR,
    Sn_IR,
    Sn_IR_DISCON,
    Sn_IR_SEND_OK,
    Sn_IR_TIMEOUT,
    Sn_MR,
    Sn_MR_TCP,
    Sn_PORT,
    Sn_RX_RD,
    Sn_RX_RSR,
    Sn_RX_WR,
    Sn_SR,
    Sn_TX_FSR,
    Sn_TX_WR,
    txBlock,
} from "./registers"

/** What a socket needs from the chip: serialized SPI batches and a few shared helpers. */
export interface ChipAccess {
    /** Takes the bus and returns the (cleared) shared batch; `commit` or `cancel` must follow. */
    begin(): Promise<SpiBatch>
    /** Runs the batch taken by `begin`, releases the bus, returns the bytes read. */
    commit(): Promise<Buffer>
    /** Releases the bus without running the batch. */
    cancel(): void
    /** Reads a 16-bit register until two reads agree (datasheet: Sn_TX_FSR, Sn_RX_RSR). */
    readStable16(bsb: number, addr: number): Promise<number>
    /** Tells the interrupt poller an interrupt is expected soon. */
    activity(): void
}

/** A UDP datagram received: source address and port, payload. */
export interface UdpDatagram {
    ip: string
    port: number
    data: Buffer
}

/** Counters of extra polling rounds (a chip that is slow to accept commands or to change Sn_SR). */
export const socketPolls = { command: 0, open: 0 }

/** how long a command may keep Sn_CR non-zero (it never clears with the PHY powered down) */
const COMMAND_TIMEOUT_MS = 500

/** One of the chip's 8 sockets. */
export class WizSocket {
    /** block select of the socket's registers, TX buffer and RX buffer */
    readonly sreg: number
    readonly txb: number
    readonly rxb: number
    /** interrupt bits (Sn_IR) raised and not yet taken */
    irq = 0
    /** notified whenever interrupt bits arrive */
    readonly signal = new Signal()
    /** owned by a connection or a service */
    inUse = false
    /** buffer sizes in bytes (set by the chip's setup) */
    txSize = 2048
    rxSize = 2048
    /** more received bytes wait than the last read took */
    rxMore = false
    /** bumped by open and close: operations begun before fail instead of touching a reused socket */
    gen = 0
    private txWr = 0
    private rxRd = 0
    /** lower bound of Sn_TX_FSR: the last value read, minus what we wrote since */
    private txFree = 0
    /** a SEND is waiting for SEND_OK (the next SEND must not be issued before) */
    private sending = false
    private lock = new Mutex()

    constructor(private readonly chip: ChipAccess, readonly n: number) {
        this.sreg = sregBlock(n)
        this.txb = txBlock(n)
        this.rxb = rxBlock(n)
    }

    /** Adds interrupt bits (called by the chip's interrupt service) and wakes the waiters. */
    raise(bits: number) {
        this.irq |= bits
        this.signal.notify()
    }

    /** Forgets all state (after a chip reset). */
    forget() {
        this.gen++
        this.irq = 0
        this.rxMore = false
        this.sending = false
        this.inUse = false
        this.signal.notify()
    }

    /** Takes the interrupt bits of `mask` that are raised; waits for one until `deadline` (ms); 0 on timeout. */
    async waitIrq(mask: number, deadline: number): Promise<number> {
        for (;;) {
            const hit = this.irq & mask
            if (hit) {
                this.irq &= ~hit
                return hit
            }
            const left = deadline - ds.millis()
            if (left <= 0) return 0
            await this.signal.wait(left)
        }
    }

    private async batch(gen: number): Promise<SpiBatch> {
        const b = await this.chip.begin()
        if (gen !== this.gen) {
            this.chip.cancel()
            throw new Error(`socket ${this.n} was closed`)
        }
        return b
    }

    /** Waits until Sn_CR reads 0 after `cmd` (`cr` is the value read right after writing it); returns Sn_SR when read. */
    private async settle(cmd: number, cr: number, sr: number): Promise<number> {
        const deadline = ds.millis() + COMMAND_TIMEOUT_MS
        while (cr !== 0) {
            if (ds.millis() > deadline)
                throw new Error(`socket ${this.n}: command ${commandName(cmd)} not accepted within ${COMMAND_TIMEOUT_MS} ms (Sn_CR reads 0x${hex2(cr)}; PHY powered down?)`)
            await ds.sleep(1)
            socketPolls.command++
            const b = await this.chip.begin()
            b.read(this.sreg, Sn_CR, 3)
            const r = await this.chip.commit()
            cr = r[0]
            sr = r[2]
        }
        return sr
    }

    /** Opens the socket: `mode` is Sn_MR (TCP or UDP plus flags), `port` the source port. */
    async open(mode: number, port: number) {
        this.gen++
        const gen = this.gen
        this.irq = 0
        this.rxMore = false
        this.sending = false
        const want = (mode & 0x0f) === Sn_MR_TCP ? SOCK_INIT : SOCK_UDP
        await this.lock.lock()
        try {
            let b = await this.batch(gen)
            b.write8(this.sreg, Sn_IR, 0xff)
            b.write16(this.sreg, Sn_PORT, port)
            b.write2(this.sreg, Sn_MR, mode, Sn_CR_OPEN)
            b.read(this.sreg, Sn_CR, 3)
            b.read(this.sreg, Sn_TX_WR, 2)
            b.read(this.sreg, Sn_RX_RD, 2)
            let r = await this.chip.commit()
            const deadline = ds.millis() + COMMAND_TIMEOUT_MS
            // Sn_SR (and the pointers read after it in the same batch) show the OPEN once it took effect
            while (r[0] !== 0 || r[2] !== want) {
                if (ds.millis() > deadline) {
                    if (r[0] !== 0) await this.settle(Sn_CR_OPEN, r[0], r[2])
                    throw new Error(`socket ${this.n}: OPEN left ${statusName(r[2])}, expected ${statusName(want)}`)
                }
                await ds.sleep(1)
                socketPolls.open++
                b = await this.batch(gen)
                b.read(this.sreg, Sn_CR, 3)
                b.read(this.sreg, Sn_TX_WR, 2)
                b.read(this.sreg, Sn_RX_RD, 2)
                r = await this.chip.commit()
            }
            this.txWr = (r[3] << 8) | r[4]
            this.rxRd = (r[5] << 8) | r[6]
            this.txFree = this.txSize
        } finally {
            this.lock.unlock()
        }
    }

    /** CLOSE: the socket ends at once (no FIN); pending interrupt bits are dropped. */
    async close() {
        this.gen++
        await this.lock.lock()
        try {
            const b = await this.chip.begin()
            b.write8(this.sreg, Sn_CR, Sn_CR_CLOSE)
            b.read(this.sreg, Sn_CR, 3)
            b.write8(this.sreg, Sn_IR, 0xff)
            const r = await this.chip.commit()
            await this.settle(Sn_CR_CLOSE, r[0], r[2])
        } finally {
            this.irq = 0
            this.rxMore = false
            this.sending = false
            this.lock.unlock()
            this.signal.notify()
        }
    }

    /** Sn_SR. */
    async status(): Promise<number> {
        const b = await this.chip.begin()
        b.read(this.sreg, Sn_SR, 1)
        return (await this.chip.commit())[0]
    }

    /** Writes Sn_DIPR and Sn_DPORT (6 contiguous bytes) into `b`. */
    private destination(b: SpiBatch, ip: Buffer, port: number) {
        const d = Buffer.alloc(6)
        d.blitAt(0, ip, 0, 4)
        d[4] = (port >> 8) & 0xff
        d[5] = port & 0xff
        b.write(this.sreg, Sn_DIPR, d, 0, 6)
    }

    /** Issues a command after writes already in the batch, waits for Sn_CR to clear; returns Sn_SR. */
    private async command(gen: number, cmd: number, b?: SpiBatch): Promise<number> {
        if (!b) b = await this.batch(gen)
        b.write8(this.sreg, Sn_CR, cmd)
        const at = b.read(this.sreg, Sn_CR, 3)
        const r = await this.chip.commit()
        return await this.settle(cmd, r[at], r[at + 2])
    }

    // ------------------------------------------------------------------ TCP

    /** TCP: CONNECT to `ip`:`port` from an opened socket; issues the command (see `waitConnected`). */
    async connect(ip: Buffer, port: number) {
        const gen = this.gen
        await this.lock.lock()
        try {
            const b = await this.batch(gen)
            this.destination(b, ip, port)
            await this.command(gen, Sn_CR_CONNECT, b)
            this.chip.activity()
        } finally {
            this.lock.unlock()
        }
    }

    /** TCP: DISCON (sends FIN; the peer's FIN or a timeout ends the connection). */
    async disconnect() {
        const gen = this.gen
        await this.lock.lock()
        try {
            await this.command(gen, Sn_CR_DISCON)
            this.chip.activity()
        } finally {
            this.lock.unlock()
        }
    }

    /**
     * Waits until the previous SEND completed (SEND_OK). Throws when the chip reports TIMEOUT (the
     * peer stopped acknowledging), when the connection was reset (DISCON with Sn_SR CLOSED) or at
     * `deadline`.
     */
    async sendDone(deadline: number) {
        while (this.sending) {
            if (this.irq & Sn_IR_SEND_OK) {
                this.irq &= ~Sn_IR_SEND_OK
                this.sending = false
                return
            }
            if (this.irq & Sn_IR_TIMEOUT) throw new Error("timed out: the peer stopped acknowledging (Sn_IR TIMEOUT)")
            if (this.irq & Sn_IR_DISCON && (await this.status()) === SOCK_CLOSED)
                throw new Error("connection reset by the peer")
            const left = deadline - ds.millis()
            if (left <= 0) throw new Error("SEND not completed in time (no SEND_OK)")
            await this.signal.wait(left)
        }
    }

    /**
     * Writes up to `n` bytes of `data` from `off` into the TX buffer and issues SEND; returns how
     * many bytes went (at least 1), waiting for buffer space until `deadline`.
     */
    async send(data: Buffer, off: number, n: number, deadline: number): Promise<number> {
        const gen = this.gen
        await this.sendDone(deadline)
        await this.lock.lock()
        try {
            while (this.txFree < n && this.txFree < this.txSize) {
                this.txFree = await this.chip.readStable16(this.sreg, Sn_TX_FSR)
                if (this.txFree > 0) break
                if (ds.millis() > deadline) throw new Error("no room in the TX buffer in time (Sn_TX_FSR stays 0)")
                await ds.sleep(2)
            }
            const k = Math.min(n, this.txFree)
            const b = await this.batch(gen)
            b.write(this.txb, this.txWr, data, off, k)
            b.write16(this.sreg, Sn_TX_WR, this.txWr + k)
            b.write8(this.sreg, Sn_CR, Sn_CR_SEND)
            b.read(this.sreg, Sn_CR, 1)
            const r = await this.chip.commit()
            this.txWr = (this.txWr + k) & 0xffff
            this.txFree -= k
            this.sending = true
            this.chip.activity()
            await this.settle(Sn_CR_SEND, r[0], -1)
            return k
        } finally {
            this.lock.unlock()
        }
    }

    /** TCP: reads what has arrived, at most `max` bytes (RECV); undefined when nothing is there. */
    async recv(max: number): Promise<Buffer> {
        const gen = this.gen
        await this.lock.lock()
        try {
            const rsr = await this.chip.readStable16(this.sreg, Sn_RX_RSR)
            if (rsr === 0) {
                this.rxMore = false
                return undefined
            }
            const k = Math.min(rsr, max)
            const b = await this.batch(gen)
            b.read(this.rxb, this.rxRd, k)
            b.write16(this.sreg, Sn_RX_RD, this.rxRd + k)
            b.write8(this.sreg, Sn_CR, Sn_CR_RECV)
            b.read(this.sreg, Sn_CR, 1)
            const r = await this.chip.commit()
            this.rxRd = (this.rxRd + k) & 0xffff
            this.rxMore = rsr > k
            await this.settle(Sn_CR_RECV, r[k], -1)
            return r.slice(0, k)
        } finally {
            this.lock.unlock()
        }
    }

    // ------------------------------------------------------------------ UDP

    /**
     * UDP: sends one datagram to `ip`:`port` and waits for SEND_OK. Throws on TIMEOUT (no ARP
     * reply from the destination or the gateway) or at `deadline`.
     */
    async sendTo(ip: Buffer, port: number, data: Buffer, deadline: number) {
        const gen = this.gen
        const n = data.length
        if (n < 1 || n > this.txSize) throw new Error(`datagram of ${n} bytes, expected 1..${this.txSize}`)
        await this.sendDone(deadline)
        await this.lock.lock()
        try {
            while (this.txFree < n) {
                this.txFree = await this.chip.readStable16(this.sreg, Sn_TX_FSR)
                if (this.txFree >= n) break
                if (ds.millis() > deadline) throw new Error("no room in the TX buffer in time")
                await ds.sleep(2)
            }
            const b = await this.batch(gen)
            this.destination(b, ip, port)
            b.write(this.txb, this.txWr, data, 0, n)
            b.write16(this.sreg, Sn_TX_WR, this.txWr + n)
            b.write8(this.sreg, Sn_CR, Sn_CR_SEND)
            b.read(this.sreg, Sn_CR, 1)
            const r = await this.chip.commit()
            this.txWr = (this.txWr + n) & 0xffff
            this.txFree -= n
            this.sending = true
            this.chip.activity()
            await this.settle(Sn_CR_SEND, r[0], -1)
        } finally {
            this.lock.unlock()
        }
        const bits = await this.waitIrq(Sn_IR_SEND_OK | Sn_IR_TIMEOUT, deadline)
        if (bits) this.sending = false
        if (bits & Sn_IR_TIMEOUT) throw new Error("no ARP reply (Sn_IR TIMEOUT): the destination or the gateway did not answer")
        if (!bits) throw new Error("SEND not completed in time (no SEND_OK)")
    }

    /** UDP: takes the next datagram from the RX buffer (8-byte header, then the data); undefined when none. */
    async recvFrom(): Promise<UdpDatagram> {
        const gen = this.gen
        await this.lock.lock()
        try {
            let rsr = -1
            let hdr: Buffer
            for (let tries = 0; rsr < 0; tries++) {
                const b = await this.batch(gen)
                b.read(this.sreg, Sn_RX_RSR, 2)
                b.read(this.sreg, Sn_RX_RSR, 2)
                b.read(this.rxb, this.rxRd, 8)
                hdr = await this.chip.commit()
                const a = (hdr[0] << 8) | hdr[1]
                const c = (hdr[2] << 8) | hdr[3]
                if (a === c || tries >= 4) rsr = c
            }
            if (rsr < 8) {
                this.rxMore = false
                return undefined
            }
            const len = (hdr[10] << 8) | hdr[11]
            if (8 + len > rsr) {
                // not a whole datagram: cannot happen on a sane chip; drop everything to resync
                const b = await this.batch(gen)
                b.read(this.sreg, Sn_RX_WR, 2)
                const w = await this.chip.commit()
                this.rxRd = (w[0] << 8) | w[1]
                const b2 = await this.batch(gen)
                b2.write16(this.sreg, Sn_RX_RD, this.rxRd)
                await this.command(gen, Sn_CR_RECV, b2)
                this.rxMore = false
                throw new Error(`UDP header claims ${len} bytes but only ${rsr - 8} are there: receive buffer dropped`)
            }
            const b = await this.batch(gen)
            if (len) b.read(this.rxb, this.rxRd + 8, len)
            b.write16(this.sreg, Sn_RX_RD, this.rxRd + 8 + len)
            b.write8(this.sreg, Sn_CR, Sn_CR_RECV)
            b.read(this.sreg, Sn_CR, 1)
            const r = await this.chip.commit()
            this.rxRd = (this.rxRd + 8 + len) & 0xffff
            this.rxMore = rsr > 8 + len
            await this.settle(Sn_CR_RECV, r[len], -1)
            return { ip: formatIp(hdr, 4), port: (hdr[8] << 8) | hdr[9], data: len ? r.slice(0, len) : Buffer.alloc(0) }
        } finally {
            this.lock.unlock()
        }
    }
}
