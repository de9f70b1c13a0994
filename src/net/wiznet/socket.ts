/**
 * One W5500 hardware socket (TCP client or UDP): commands with completion checks and timeouts,
 * free-running 16-bit TX/RX pointers (used as buffer addresses: the chip wraps them inside the
 * socket's buffer), the double-read rule for Sn_TX_FSR and Sn_RX_RSR, and interrupt bits handed
 * over by the chip's interrupt service. Each step is one `SpiBatch` (one bus round trip).
 * The pointers we alone move (Sn_TX_WR, Sn_RX_RD) are cached after OPEN; Sn_TX_FSR is only read
 * when the cached lower bound of free space is too small. In UDP mode the socket is what
 * `WiznetStack.openSocket` returns (DHCP, DNS, SNTP): `sendTo` a datagram, `recvFrom` the next one.
 */
import { SpiBatch } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import { formatIp, parseIp } from "../ip"
import { millis, sleep } from "../../util/rt"
import {
    hex2,
    SOCK_CLOSED,
    SOCK_INIT,
    SOCK_UDP,
    Sn_CR,
    Sn_CR_CLOSE,
    Sn_CR_OPEN,
    Sn_CR_RECV,
    Sn_CR_SEND,
    Sn_DIPR,
    Sn_DPORT,
    Sn_IR,
    Sn_IR_DISCON,
    Sn_IR_RECV,
    Sn_IR_SEND_OK,
    Sn_IR_TIMEOUT,
    Sn_MR,
    Sn_MR_TCP,
    Sn_PORT,
    Sn_RX_RD,
    Sn_RX_RSR,
    Sn_SR,
    Sn_TX_FSR,
    Sn_TX_WR,
} from "./registers"

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

/** What a socket needs of its chip (the W5500 in chip.ts, or a chip built on it): the bus and its frames. */
export interface SocketChip {
    /** the bus lock `begin` takes */
    readonly mutex: Mutex
    /** Takes the bus and returns the (cleared) shared batch; `commit` (or `mutex.unlock()`) must follow. */
    begin(): Promise<SpiBatch>
    /** Runs the shared batch and releases the bus; returns what it read. */
    commit(): Promise<Buffer>
    /** Reads `n` bytes of block `bsb` at `addr`. */
    read(bsb: number, addr: number, n: number): Promise<Buffer>
    /** Reads a 16-bit register until two reads agree. */
    readStable16(bsb: number, addr: number): Promise<number>
    /** Notes traffic (the chip then polls faster for a while). */
    activity(): void
}

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
    /** RX and TX buffer size in bytes (set by the chip when it makes the socket, and by its init) */
    size: number
    /** more received bytes wait than the last read took (undefined, as false, until a read) */
    rxMore: boolean
    /** bumped by open and close: operations begun before fail instead of touching a reused socket */
    gen = 0
    // the three below are set by open() before any use (no initializers: each costs the constructor bytes)
    private txWr: number
    private rxRd: number
    /** lower bound of Sn_TX_FSR: the last value read, minus what we wrote since */
    private txFree: number
    /** a SEND is waiting for SEND_OK (the next SEND must not be issued before; undefined, as false, until one) */
    private sending: boolean
    private lock = new Mutex()

    constructor(private readonly chip: SocketChip, readonly n: number) {
        this.sreg = (n << 2) | 1
        this.txb = (n << 2) | 2
        this.rxb = (n << 2) | 3
    }

    /** Forgets all state and frees the socket (after a chip reset or a CLOSE); operations in flight fail. */
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
            const left = deadline - millis()
            if (left <= 0) return 0
            await this.signal.wait(left)
        }
    }

    /** The bus and its batch, unless the socket was closed or reopened since `gen`. */
    private async batch(gen: number): Promise<SpiBatch> {
        const b = await this.chip.begin()
        if (gen !== this.gen) {
            this.chip.mutex.unlock()
            throw new Error(`socket ${this.n} was closed`)
        }
        return b
    }

    /**
     * Adds Sn_CR = `cmd` and a read of Sn_CR to `b`, runs it and waits until Sn_CR reads 0 (the
     * chip took the command); returns what the batch read.
     */
    private async command(b: SpiBatch, cmd: number): Promise<Buffer> {
        b.reg(this.sreg, Sn_CR, cmd)
        const at = b.add(this.sreg, Sn_CR, 1)
        const r = await this.chip.commit()
        let cr = r[at]
        const deadline = millis() + COMMAND_TIMEOUT_MS
        while (cr !== 0) {
            if (millis() > deadline)
                throw new Error(`socket ${this.n}: command 0x${hex2(cmd)} not accepted within ${COMMAND_TIMEOUT_MS} ms (Sn_CR reads 0x${hex2(cr)}; PHY powered down?). Sn_CR commands: 01 OPEN, 04 CONNECT, 08 DISCON, 10 CLOSE, 20 SEND, 40 RECV`)
            await sleep(1)
            socketPolls.command++
            cr = (await this.chip.read(this.sreg, Sn_CR, 1))[0]
        }
        return r
    }

    /**
     * A SEND goes without a read-back of Sn_CR (its SEND_OK tells it was taken); before any other
     * command, while that SEND_OK has not come, waits until Sn_CR reads 0 (datasheet: a command
     * must not overwrite one the chip has not taken).
     */
    private async settle() {
        const deadline = millis() + COMMAND_TIMEOUT_MS
        while (this.sending && !(this.irq & (Sn_IR_SEND_OK | Sn_IR_TIMEOUT)) && (await this.chip.read(this.sreg, Sn_CR, 1))[0]) {
            if (millis() > deadline) throw new Error(`socket ${this.n}: SEND not accepted within ${COMMAND_TIMEOUT_MS} ms (Sn_CR not 0; PHY powered down?)`)
            socketPolls.command++
            await sleep(1)
        }
    }

    /** Opens the socket (marks it in use at once): `mode` is Sn_MR (TCP or UDP plus flags), `port` the source port. */
    async open(mode: number, port: number) {
        this.forget()
        this.inUse = true
        const gen = this.gen
        const want = (mode & 0x0f) === Sn_MR_TCP ? SOCK_INIT : SOCK_UDP
        await this.lock.lock()
        try {
            let b = await this.batch(gen)
            b.reg(this.sreg, Sn_IR, 0xff)
            b.reg(this.sreg, Sn_PORT, port, 2)
            b.reg(this.sreg, Sn_MR, (mode << 8) | Sn_CR_OPEN, 2) // Sn_MR, then Sn_CR = OPEN
            const deadline = millis() + COMMAND_TIMEOUT_MS
            for (;;) {
                // Sn_SR (and the pointers read after it in the same batch) show the OPEN once it took effect
                b.add(this.sreg, Sn_CR, 3)
                b.add(this.sreg, Sn_TX_WR, 2)
                b.add(this.sreg, Sn_RX_RD, 2)
                const r = await this.chip.commit()
                if (r[0] === 0 && r[2] === want) {
                    this.txWr = (r[3] << 8) | r[4]
                    this.rxRd = (r[5] << 8) | r[6]
                    this.txFree = this.size
                    return
                }
                if (millis() > deadline)
                    throw new Error(`socket ${this.n}: OPEN left Sn_CR 0x${hex2(r[0])}, Sn_SR 0x${hex2(r[2])}, expected Sn_CR 0 and Sn_SR 0x${hex2(want)} (0x13 SOCK_INIT for TCP, 0x22 SOCK_UDP)`)
                await sleep(1)
                socketPolls.open++
                b = await this.batch(gen)
            }
        } finally {
            this.lock.unlock()
        }
    }

    /** CLOSE: the socket ends at once (no FIN), pending interrupt bits are dropped, the socket is free again. */
    async close() {
        this.gen++
        await this.lock.lock()
        try {
            await this.settle()
            const b = await this.chip.begin()
            b.reg(this.sreg, Sn_IR, 0xff)
            await this.command(b, Sn_CR_CLOSE)
        } finally {
            this.forget()
            this.lock.unlock()
        }
    }

    /** Sn_SR. */
    async status(): Promise<number> {
        return (await this.chip.read(this.sreg, Sn_SR, 1))[0]
    }

    /** Issues `cmd` (CONNECT to `ip`:`port` when `ip` is given, DISCON) and waits until the chip took it. */
    async cmd(cmd: number, ip?: Buffer, port?: number) {
        const gen = this.gen
        await this.lock.lock()
        try {
            await this.settle()
            const b = await this.batch(gen)
            if (ip) {
                b.add(this.sreg, Sn_DIPR, 4, ip, 0)
                b.reg(this.sreg, Sn_DPORT, port, 2)
            }
            await this.command(b, cmd)
            this.chip.activity()
        } finally {
            this.lock.unlock()
        }
    }

    /**
     * Waits until the previous SEND completed (SEND_OK). Throws when the chip reports TIMEOUT (no
     * ARP reply, or the TCP peer stopped acknowledging), when the connection was reset (DISCON with
     * Sn_SR CLOSED) or at `deadline`.
     */
    async sendDone(deadline: number) {
        while (this.sending) {
            const bits = this.irq & (Sn_IR_SEND_OK | Sn_IR_TIMEOUT)
            if (bits) {
                this.irq &= ~bits
                this.sending = false
                if (bits & Sn_IR_TIMEOUT)
                    throw new Error("timed out (Sn_IR TIMEOUT): no ARP reply from the destination or the gateway, or the peer stopped acknowledging")
                return
            }
            if (this.irq & Sn_IR_DISCON && (await this.status()) === SOCK_CLOSED) throw new Error("connection reset by the peer")
            const left = deadline - millis()
            if (left <= 0) throw new Error("SEND not completed in time (no SEND_OK)")
            await this.signal.wait(left)
        }
    }

    /**
     * Writes up to `n` bytes of `data` from `off` into the TX buffer and issues SEND; returns how
     * many went (at least 1), waiting for buffer space until `deadline`. UDP (`ip` given): sends
     * the `n` bytes as one datagram to `ip`:`port`.
     */
    async send(data: Buffer, off: number, n: number, deadline: number, ip?: Buffer, port?: number): Promise<number> {
        const gen = this.gen
        await this.sendDone(deadline)
        await this.lock.lock()
        try {
            // TCP takes any room, a datagram needs room for all of it
            const need = ip ? n : 1
            while (this.txFree < n && this.txFree < this.size) {
                this.txFree = await this.chip.readStable16(this.sreg, Sn_TX_FSR)
                if (this.txFree >= need) break
                if (millis() > deadline) throw new Error(`no room in the TX buffer in time (Sn_TX_FSR ${this.txFree}, ${need} bytes needed)`)
                await sleep(2)
            }
            const k = Math.min(n, this.txFree)
            const b = await this.batch(gen)
            if (ip) {
                b.add(this.sreg, Sn_DIPR, 4, ip, 0)
                b.reg(this.sreg, Sn_DPORT, port, 2)
            }
            b.add(this.txb, this.txWr, k, data, off)
            this.txWr = (this.txWr + k) & 0xffff
            b.reg(this.sreg, Sn_TX_WR, this.txWr, 2)
            this.txFree -= k
            // no read-back of Sn_CR: SEND_OK (or TIMEOUT) says the chip took it (settle)
            b.reg(this.sreg, Sn_CR, Sn_CR_SEND)
            this.sending = true
            this.chip.activity()
            await this.chip.commit()
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
            this.rxMore = rsr > max
            if (rsr === 0) return undefined
            await this.settle()
            const k = Math.min(rsr, max)
            const b = await this.batch(gen)
            b.add(this.rxb, this.rxRd, k)
            this.rxRd = (this.rxRd + k) & 0xffff
            b.reg(this.sreg, Sn_RX_RD, this.rxRd, 2)
            return (await this.command(b, Sn_CR_RECV)).slice(0, k)
        } finally {
            this.lock.unlock()
        }
    }

    /** UDP: sends one datagram (at most the socket's buffer; keep it <= 1472 bytes: no fragmentation) and waits for SEND_OK. */
    async sendTo(to: string, port: number, data: Buffer, timeoutMs = 3000) {
        const n = data.length
        const deadline = millis() + timeoutMs
        try {
            if (n < 1 || n > this.size) throw new Error(`datagram of ${n} bytes, expected 1..${this.size}`)
            await this.send(data, 0, n, deadline, parseIp(to), port)
            await this.sendDone(deadline)
        } catch (e: any) {
            throw new Error(`w5500: UDP ${n} bytes to ${to}:${port}: ${e.message}`)
        }
    }

    /** UDP: true when a datagram may be waiting (no bus access). */
    pending() {
        return this.rxMore || (this.irq & Sn_IR_RECV) !== 0
    }

    /**
     * UDP: the next datagram (8-byte header, then the data), waiting up to `timeoutMs`; undefined
     * on timeout. With `skipTo`, a datagram longer than that comes with bytes skipFrom..skipTo not
     * read from the chip (zeros): fewer bytes over the bus (DHCP's sname and file).
     */
    async recvFrom(timeoutMs: number, skipFrom?: number, skipTo?: number): Promise<UdpDatagram> {
        const deadline = millis() + timeoutMs
        const gen = this.gen
        for (;;) {
            if (gen !== this.gen) return undefined
            if (this.pending()) {
                this.irq &= ~Sn_IR_RECV
                await this.lock.lock()
                try {
                    let rsr = -1
                    let h: Buffer
                    for (let tries = 0; rsr < 0; tries++) {
                        const b = await this.batch(gen)
                        b.add(this.sreg, Sn_RX_RSR, 2)
                        b.add(this.sreg, Sn_RX_RSR, 2)
                        b.add(this.rxb, this.rxRd, 8)
                        h = await this.chip.commit()
                        const c = (h[2] << 8) | h[3]
                        if (c === ((h[0] << 8) | h[1]) || tries >= 4) rsr = c
                    }
                    this.rxMore = false
                    if (rsr >= 8) {
                        const len = (h[10] << 8) | h[11]
                        // not a whole datagram: cannot happen on a sane chip; drop the rsr bytes there to resync
                        const bad = 8 + len > rsr
                        await this.settle()
                        const b = await this.batch(gen)
                        // bytes from..to are left out (none unless the datagram is longer than skipTo;
                        // none without skipTo: no defaults needed, undefined fails the test)
                        let from = len
                        let to = len
                        if (skipTo && len > skipTo) {
                            from = skipFrom
                            to = skipTo
                        }
                        if (!bad && len) {
                            b.add(this.rxb, this.rxRd + 8, from)
                            if (to < len) b.add(this.rxb, (this.rxRd + 8 + to) & 0xffff, len - to)
                        }
                        this.rxRd = (this.rxRd + (bad ? rsr : 8 + len)) & 0xffff
                        b.reg(this.sreg, Sn_RX_RD, this.rxRd, 2)
                        const r = await this.command(b, Sn_CR_RECV)
                        if (bad) throw new Error(`UDP header claims ${len} bytes but only ${rsr - 8} are there: receive buffer dropped`)
                        this.rxMore = rsr > 8 + len
                        const data = Buffer.alloc(len)
                        data.blitAt(0, r, 0, from)
                        data.blitAt(to, r, from, len - to)
                        return { ip: formatIp(h, 4), port: (h[8] << 8) | h[9], data }
                    }
                } finally {
                    this.lock.unlock()
                }
            }
            const left = deadline - millis()
            if (left <= 0) return undefined
            await this.signal.wait(left)
        }
    }
}
