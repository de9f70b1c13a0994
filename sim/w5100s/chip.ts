/**
 * A model of the WIZnet W5100S (datasheet) as the W5500 model's variant: the chips agree on the
 * socket engine (Sn_MR/CR/IR/SR, the TCP and UDP state machines, free-running TX/RX pointers,
 * TX_FSR/RX_RSR, RTR/RCR timeouts, the PHY link), so that engine is the W5500 model's
 * (sim/w5500/chip.ts) and this file is what differs:
 * - the SPI frame: `OP addr_hi addr_lo data...` with OP 0xF0 (write) or 0x0F (read); the address
 *   auto-increments for as long as SCSn stays low (burst); any other OP-code is ignored; on the
 *   wire (`select`, `misoNext`/`take` per byte, `deselect`: the emulated board's SPI0) a read byte
 *   is shifted out while the next MOSI byte comes in and a written byte is stored as its 8th bit
 *   arrives; MISO is 0 during the header and in a WRITE frame (not checked against silicon);
 * - one flat address map: common registers at 0x0000 (IR carries the socket interrupt bits 3..0,
 *   IMR masks them; RTR 0x17, RCR 0x19, RMSR/TMSR 0x1A/0x1B, PHYSR 0x3C, VERR 0x80 = 0x51), 4
 *   sockets at 0x0400 + 0x100 n (Sn_KPALVTR at 0x30), TX memory 0x4000..0x5FFF and RX memory
 *   0x6000..0x7FFF, 8 KB each, split by Sn_TXBUF_SIZE/Sn_RXBUF_SIZE (1, 2, 4, 8 KB; 2 by default);
 * - the buffer memory is addressed physically: the chip does NOT wrap an access at the end of a
 *   socket's buffer (the W5500 does): the host computes base + (pointer & (size - 1)) and splits
 *   an access that runs past the end into two.
 * Not modelled (besides what the W5500 model leaves out): the parallel bus and indirect mode,
 * MR2/IR2/Sn_MR2 behaviour (stored only), PHY registers other than PHYSR (PHYSR's SPD and DUP are
 * reported as 100M full duplex, not checked against silicon), socket-less ping, sleep.
 */
import { EventEmitter } from "node:events"
import { W5500, type W5500Counters, type W5500Options } from "../w5500/chip.ts"
import { BSB, COMMON as W, SN as WSN } from "../w5500/registers.ts"
import { COMMON, MEMORY, OP, PHYSR, RX_BASE, SN, SOCKETS, TX_BASE, VERSION, sreg } from "./registers.ts"

/** Options of the emulated W5100S: those of the W5500 model (network, delays, link, ...). */
export type W5100SOptions = W5500Options

const VALID_KB = [0, 1, 2, 4, 8]

/** The emulated W5100S. Drive it with `transfer()`; observe it with `intAsserted()` and the "int" event. */
export class W5100S extends EventEmitter {
    /** which chip this is (the bridge frames requests accordingly) */
    readonly kind = "w5100s"
    /** the socket engine shared with the W5500 model (attach it to a LAN: `lan.attach(chip.core)`) */
    readonly core: W5500
    /** registers the W5100S has and the W5500 does not (MR2, IR2, IMR2, Sn_MR2, ...): stored only */
    private extra = new Uint8Array(0x100)
    private snExtra = [new Uint8Array(8), new Uint8Array(8), new Uint8Array(8), new Uint8Array(8)]
    private log: (msg: string) => void

    constructor(opts: W5100SOptions = {}) {
        super()
        const log = opts.log ?? ((level, msg) => { if (level === "warn") console.error(`w5100s: ${msg}`) })
        this.log = m => log("warn", m)
        this.core = new W5500({ ...opts, log })
        this.core.on("int", (a: boolean) => this.emit("int", a))
    }

    /** activity counters (frames and bytes as clocked on the W5100S bus) */
    get counters(): W5500Counters {
        return this.core.counters
    }

    get network() {
        return this.core.network
    }

    /**
     * Clocks one SCSn-low period: `frame` is what the host drives on MOSI (OP addr_hi addr_lo
     * data...), the result what the chip drives on MISO, same length (zeros during the header).
     * The same as `select()`, `shift()` for each byte, `deselect()`.
     */
    transfer(frame: Uint8Array): Uint8Array {
        const out = new Uint8Array(frame.length)
        this.select()
        for (let i = 0; i < frame.length; i++) out[i] = this.shift(frame[i])
        this.deselect()
        return out
    }

    // ---------------------------------------------------------------- the SPI wire, byte by byte

    private sel = { idx: 0, op: 0, addr: 0 }

    /** SCSn falls: a frame begins (OP-code first). */
    select(): void {
        this.sel = { idx: 0, op: 0, addr: 0 }
    }

    /**
     * The MISO byte the chip shifts out at the frame's next byte position, decided before that
     * byte's MOSI bits are in (SPI is full duplex): the data at the current address in a READ
     * frame's data phase, else 0 (the header, a WRITE frame, another OP-code, RSTn low). Reading
     * it has no effect; call `take` with what the host drove on MOSI meanwhile.
     */
    misoNext(): number {
        const s = this.sel
        if (s.idx < 3 || s.op !== OP.READ || !this.core.answering) return 0
        return this.readByte(s.addr)
    }

    /** The host's MOSI byte at the next position: OP-code, address, or (WRITE) data stored at once, address + 1. */
    take(mosi: number): void {
        const s = this.sel
        if (s.idx === 0) s.op = mosi
        else if (s.idx === 1) s.addr = mosi << 8
        else if (s.idx === 2) s.addr |= mosi
        else {
            if (s.op === OP.WRITE && this.core.answering) this.writeByte(s.addr, mosi)
            s.addr = (s.addr + 1) & 0xffff
        }
        s.idx++
    }

    /** One byte clocked both ways: the MISO byte out, `mosi` in. */
    shift(mosi: number): number {
        const miso = this.misoNext()
        this.take(mosi)
        return miso
    }

    /** SCSn rises: the frame ends (counters; commands written to Sn_CR take effect). */
    deselect(): void {
        const n = this.sel.idx
        // a chip in reset counts the frame and answers nothing (the W5500 core's transfer does just that)
        if (!this.core.answering) this.core.transfer(new Uint8Array(n))
        else this.core.endFrame(n)
        this.sel = { idx: 0, op: 0, addr: 0 }
    }

    /** Convenience: reads `len` bytes at `addr` in one burst frame. */
    read(addr: number, len: number): Uint8Array {
        const f = new Uint8Array(3 + len)
        f[0] = OP.READ
        f[1] = addr >> 8
        f[2] = addr & 0xff
        return this.transfer(f).subarray(3)
    }

    /** Convenience: writes bytes at `addr` in one burst frame. */
    write(addr: number, data: ArrayLike<number>): void {
        const f = new Uint8Array(3 + data.length)
        f[0] = OP.WRITE
        f[1] = addr >> 8
        f[2] = addr & 0xff
        f.set(data, 3)
        this.transfer(f)
    }

    // ---------------------------------------------------------------- pins and network (as the W5500 model)

    setResetPin(high: boolean): void {
        this.core.setResetPin(high)
    }
    get inReset(): boolean {
        return this.core.inReset
    }
    intPin(): 0 | 1 {
        return this.core.intPin()
    }
    intAsserted(): boolean {
        return this.core.intAsserted()
    }
    setLink(up: boolean): void {
        this.core.setLink(up)
    }
    get link(): boolean {
        return this.core.link
    }
    get sourceIp(): string {
        return this.core.sourceIp
    }
    status(n: number): number {
        return this.core.status(n)
    }
    resetCounters(): void {
        this.core.resetCounters()
    }
    close(): void {
        this.core.close()
    }

    // ---------------------------------------------------------------- address map

    private core8(bsb: number, addr: number): number {
        return this.core.busByte(bsb, addr, false)
    }

    private setCore(bsb: number, addr: number, v: number): void {
        this.core.busByte(bsb, addr, true, v)
    }

    private readByte(a: number): number {
        if (a < 0x100) return this.readCommon(a)
        if (a >= 0x0400 && a < 0x0400 + 0x100 * SOCKETS) return this.readSocket((a >> 8) - 4, a & 0xff)
        if (a >= TX_BASE && a < RX_BASE + MEMORY) {
            const m = this.memory(a)
            return m ? this.core8(m.bsb, m.off) : 0
        }
        return 0
    }

    private writeByte(a: number, v: number): void {
        if (a < 0x100) return this.writeCommon(a, v)
        if (a >= 0x0400 && a < 0x0400 + 0x100 * SOCKETS) return this.writeSocket((a >> 8) - 4, a & 0xff, v)
        if (a >= TX_BASE && a < RX_BASE) {
            const m = this.memory(a)
            if (m) this.setCore(m.bsb, m.off, v)
        }
        // RX memory is read-only to the host; the rest of the space is reserved
    }

    /** Socket and offset inside its buffer for a physical TX/RX memory address; null beyond the configured buffers. */
    private memory(a: number): { bsb: number; off: number } | null {
        const tx = a < RX_BASE
        let x = a - (tx ? TX_BASE : RX_BASE)
        for (let n = 0; n < SOCKETS; n++) {
            const size = this.core8(BSB.sreg(n), tx ? WSN.TXBUF_SIZE : WSN.RXBUF_SIZE) * 1024
            if (x < size) return { bsb: tx ? BSB.stx(n) : BSB.srx(n), off: x }
            x -= size
        }
        return null
    }

    private readCommon(a: number): number {
        switch (a) {
            case COMMON.IR: return (this.core8(0, W.IR) & 0xe0) | (this.core8(0, W.SIR) & 0x0f)
            case COMMON.IMR: return (this.core8(0, W.IMR) & 0xe0) | (this.core8(0, W.SIMR) & 0x0f)
            case COMMON.RTR: return this.core8(0, W.RTR)
            case COMMON.RTR + 1: return this.core8(0, W.RTR + 1)
            case COMMON.RCR: return this.core8(0, W.RCR)
            case COMMON.RMSR:
            case COMMON.TMSR: {
                let v = 0
                for (let n = 0; n < SOCKETS; n++) {
                    const kb = this.core8(BSB.sreg(n), a === COMMON.RMSR ? WSN.RXBUF_SIZE : WSN.TXBUF_SIZE)
                    v |= (kb >= 8 ? 3 : kb >= 4 ? 2 : kb >= 2 ? 1 : 0) << (2 * n)
                }
                return v
            }
            case COMMON.PHYSR: return this.core.link ? PHYSR.LNK | PHYSR.SPD | PHYSR.DUP : PHYSR.CABOFF
            case COMMON.VERR: return VERSION
        }
        if (a < COMMON.INTPTMR + 2) return this.core8(0, a) // MR, GAR, SUBR, SHAR, SIPR, INTPTMR: same addresses
        if (a >= COMMON.UIPR && a < COMMON.UPORTR + 2) return this.core8(0, a - 2) // W5500: UIPR 0x28, UPORTR 0x2C
        return this.extra[a]
    }

    private writeCommon(a: number, v: number): void {
        switch (a) {
            case COMMON.IR:
                // write 1 to clear CONFLICT/UNREACH/PPPoE; the socket bits follow Sn_IR
                return this.setCore(0, W.IR, v & 0xe0)
            case COMMON.IMR:
                this.setCore(0, W.IMR, v & 0xe0)
                return this.setCore(0, W.SIMR, v & 0x0f)
            case COMMON.RTR:
            case COMMON.RTR + 1:
                return this.setCore(0, W.RTR + (a - COMMON.RTR), v)
            case COMMON.RCR: return this.setCore(0, W.RCR, v)
            case COMMON.RMSR:
            case COMMON.TMSR:
                for (let n = 0; n < SOCKETS; n++)
                    this.setCore(BSB.sreg(n), a === COMMON.RMSR ? WSN.RXBUF_SIZE : WSN.TXBUF_SIZE, 1 << ((v >> (2 * n)) & 3))
                return this.checkMemory(a === COMMON.TMSR)
            case COMMON.PHYSR:
            case COMMON.VERR:
                return // read-only
        }
        if (a === COMMON.MR) {
            this.setCore(0, W.MR, v)
            if (v & 0x80) {
                // software reset: the W5100S's own registers too
                this.extra.fill(0)
                for (const e of this.snExtra) e.fill(0)
            }
            return
        }
        if (a < COMMON.INTPTMR + 2) return this.setCore(0, a, v)
        if (a >= COMMON.UIPR && a < COMMON.UPORTR + 2) return // read-only
        this.extra[a] = v
    }

    private readSocket(n: number, off: number): number {
        if (off < SN.MR2) return this.core8(BSB.sreg(n), off)
        if (off === SN.KPALVTR) return this.core8(BSB.sreg(n), WSN.KPALVTR)
        return off < SN.MR2 + 8 ? this.snExtra[n][off - SN.MR2] : 0
    }

    private writeSocket(n: number, off: number, v: number): void {
        if (off === SN.RXBUF_SIZE || off === SN.TXBUF_SIZE) {
            if (!VALID_KB.includes(v)) {
                this.log(`socket ${n}: ${off === SN.RXBUF_SIZE ? "RX" : "TX"}BUF_SIZE ${v} is not 0/1/2/4/8 KB: ignored`)
                return
            }
            this.setCore(BSB.sreg(n), off, v)
            return this.checkMemory(off === SN.TXBUF_SIZE)
        }
        if (off < SN.MR2) return this.setCore(BSB.sreg(n), off, v)
        if (off === SN.KPALVTR) return this.setCore(BSB.sreg(n), WSN.KPALVTR, v)
        if (off < SN.MR2 + 8) this.snExtra[n][off - SN.MR2] = v
    }

    /** The datasheet: the sockets' buffers must add up to 8 KB at most (beyond, data is lost). */
    private checkMemory(tx: boolean): void {
        let kb = 0
        for (let n = 0; n < SOCKETS; n++) kb += this.core8(BSB.sreg(n), tx ? WSN.TXBUF_SIZE : WSN.RXBUF_SIZE)
        if (kb > 8) this.log(`${tx ? "TX" : "RX"} buffers add up to ${kb} KB, more than the 8 KB of memory: the sockets beyond it lose data`)
    }
}
