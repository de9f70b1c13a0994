/**
 * The W5500 chip over an `SpiBus`: serialized access to the bus with one shared `SpiBatch` (few,
 * large frames per step), reset (RSTn pin or MR.RST) and the VERSIONR check, MAC/IP/mask/gateway
 * configuration, socket buffer sizes, PHY status, and the interrupt service: a fiber watches INTn
 * (or polls SIR when the bus has no INT line, when an expected interrupt is late, and once a
 * second as a safety net), reads SIR and the flagged sockets' Sn_IR, clears them (write 1 to
 * clear) and hands the bits to the sockets.
 */
import * as ds from "@devicescript/core"
import { SpiBatch, SpiBus } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import {
    BSB_COMMON,
    GAR,
    hex2,
    IMR,
    MR,
    MR_RST,
    PHYCFGR,
    SHAR,
    SIMR,
    SIR,
    SOCKETS,
    sregBlock,
    Sn_IR,
    Sn_RXBUF_SIZE,
    VERSIONR,
    W5500_VERSION,
} from "./registers"
import { ChipAccess, WizSocket } from "./socket"

/** Bus traffic and interrupt counters of the driver. */
export interface ChipCounters {
    /** SPI frames (CS-low periods) */
    frames: number
    /** SPI bytes, headers included */
    bytes: number
    /** bus round trips (one per batch) */
    batches: number
    /** interrupt services that found a socket interrupt */
    interrupts: number
}

const VALID_KB = [0, 1, 2, 4, 8, 16]
/** an expected interrupt not seen on INTn after this long: read SIR over SPI (every as long) */
const EXPECT_LATE_MS = 50
/** stop expecting after this long */
const EXPECT_GIVE_UP_MS = 3000
/** read SIR at least this often whatever INTn says (a stuck or miswired INT line) */
const SAFETY_POLL_MS = 1000

/** A W5500 on an SPI bus. */
export class W5500 implements ChipAccess {
    /** the 8 hardware sockets */
    readonly sockets: WizSocket[] = []
    /** notified after every interrupt service that found something */
    readonly events = new Signal()
    /** VERSIONR read at the last reset */
    version = 0
    /** interrupt services that found a socket interrupt */
    interrupts = 0
    /** bus round trips */
    batches = 0
    private batch = new SpiBatch()
    private mutex = new Mutex()
    private running = false
    private poller: ds.Fiber
    private kick = new Signal()
    private lastActivity = 0
    /** when a command that raises an interrupt was issued (0: nothing expected) */
    private expectSince = 0
    private lastService = 0
    private mac = Buffer.alloc(6)

    constructor(readonly bus: SpiBus, private readonly log: (msg: string) => void) {
        for (let n = 0; n < SOCKETS; n++) this.sockets.push(new WizSocket(this, n))
    }

    // ------------------------------------------------------------------ bus access

    async begin(): Promise<SpiBatch> {
        await this.mutex.lock()
        this.batch.clear()
        return this.batch
    }

    async commit(): Promise<Buffer> {
        try {
            this.batches++
            return await this.bus.run(this.batch)
        } finally {
            this.batch.clear()
            this.mutex.unlock()
        }
    }

    cancel() {
        this.batch.clear()
        this.mutex.unlock()
    }

    /** Reads `n` bytes at (`bsb`, `addr`) in one frame. */
    async read(bsb: number, addr: number, n: number): Promise<Buffer> {
        const b = await this.begin()
        b.read(bsb, addr, n)
        return await this.commit()
    }

    /** Writes `data` at (`bsb`, `addr`) in one frame. */
    async write(bsb: number, addr: number, data: Buffer) {
        const b = await this.begin()
        b.write(bsb, addr, data, 0, data.length)
        await this.commit()
    }

    /** Reads one register byte. */
    async read8(bsb: number, addr: number): Promise<number> {
        return (await this.read(bsb, addr, 1))[0]
    }

    /** Writes one register byte. */
    async write8(bsb: number, addr: number, v: number) {
        const b = await this.begin()
        b.write8(bsb, addr, v)
        await this.commit()
    }

    async readStable16(bsb: number, addr: number): Promise<number> {
        for (let tries = 0; ; tries++) {
            const b = await this.begin()
            b.read(bsb, addr, 2)
            b.read(bsb, addr, 2)
            const r = await this.commit()
            const v = (r[2] << 8) | r[3]
            if (v === ((r[0] << 8) | r[1]) || tries >= 4) return v
        }
    }

    /** Traffic counters. */
    counters(): ChipCounters {
        return { frames: this.bus.frames, bytes: this.bus.bytes, batches: this.batches, interrupts: this.interrupts }
    }

    // ------------------------------------------------------------------ set-up

    /**
     * Resets the chip (RSTn low for 1 ms when the bus has the pin, else MR.RST) and waits up to
     * `timeoutMs` for MR.RST to clear and VERSIONR to read 0x04; returns VERSIONR. Throws when it
     * never does (no chip, wrong wiring, bus fault).
     */
    async reset(timeoutMs = 200): Promise<number> {
        for (const s of this.sockets) s.forget()
        const hw = await this.bus.setReset(true)
        if (hw) {
            await ds.sleep(1) // datasheet: RSTn low for at least 500 us
            await this.bus.setReset(false)
        } else await this.write8(BSB_COMMON, MR, MR_RST)
        const deadline = ds.millis() + timeoutMs
        let mr = 0
        let v = 0
        for (;;) {
            // the chip answers zeros until its PLL is locked (datasheet: about 1 ms)
            await ds.sleep(1)
            const b = await this.begin()
            b.read(BSB_COMMON, MR, 1)
            b.read(BSB_COMMON, VERSIONR, 1)
            const r = await this.commit()
            mr = r[0]
            v = r[1]
            if (!(mr & MR_RST) && v === W5500_VERSION) break
            if (ds.millis() > deadline)
                throw new Error(`w5500: VERSIONR reads 0x${hex2(v)} (MR 0x${hex2(mr)}) ${timeoutMs} ms after ${hw ? "RSTn" : "MR.RST"} on ${this.bus.name}, expected 0x04: no W5500 answering (check the wiring)`)
        }
        this.version = v
        return v
    }

    /**
     * Sets the MAC address, socket interrupts on INTn, and each socket's RX and TX buffer size in
     * KB (0, 1, 2, 4, 8 or 16; the RX and the TX sizes each add up to at most 16). Reads the MAC
     * back: a mismatch means a broken MOSI line.
     */
    async setup(mac: Buffer, bufferKB: number[]) {
        if (!mac || mac.length !== 6) throw new Error(`w5500: MAC must be 6 bytes`)
        let total = 0
        for (let n = 0; n < SOCKETS; n++) {
            const kb = bufferKB[n] || 0
            if (VALID_KB.indexOf(kb) < 0) throw new Error(`w5500: socket ${n} buffer of ${kb} KB, expected 0, 1, 2, 4, 8 or 16`)
            total += kb
        }
        if (total > 16) throw new Error(`w5500: socket buffers add up to ${total} KB, at most 16`)
        this.mac = mac
        const b = await this.begin()
        b.write(BSB_COMMON, SHAR, mac, 0, 6)
        b.write8(BSB_COMMON, IMR, 0)
        b.write8(BSB_COMMON, SIMR, 0xff)
        for (let n = 0; n < SOCKETS; n++) {
            const kb = bufferKB[n] || 0
            b.write2(sregBlock(n), Sn_RXBUF_SIZE, kb, kb)
            this.sockets[n].rxSize = kb * 1024
            this.sockets[n].txSize = kb * 1024
        }
        b.read(BSB_COMMON, SHAR, 6)
        const r = await this.commit()
        for (let i = 0; i < 6; i++)
            if (r[i] !== mac[i])
                throw new Error(`w5500: SHAR reads back ${r.toString("hex")} after writing ${mac.toString("hex")}: SPI writes do not reach the chip (check MOSI/SCK)`)
    }

    /** Writes gateway, subnet mask and own IP (GAR..SIPR, with SHAR between them) in one frame. */
    async setAddress(ip: Buffer, mask: Buffer, gateway: Buffer) {
        const f = Buffer.alloc(18)
        f.blitAt(0, gateway, 0, 4)
        f.blitAt(4, mask, 0, 4)
        f.blitAt(8, this.mac, 0, 6)
        f.blitAt(14, ip, 0, 4)
        await this.write(BSB_COMMON, GAR, f)
    }

    /** PHYCFGR (bit 0 link, bit 1 100 Mbps, bit 2 full duplex). */
    async phy(): Promise<number> {
        return await this.read8(BSB_COMMON, PHYCFGR)
    }

    /** A free socket, marked in use; undefined when all 8 are taken (or have no buffer). */
    allocSocket(): WizSocket {
        for (const s of this.sockets)
            if (!s.inUse && s.txSize > 0) {
                s.inUse = true
                return s
            }
        return undefined
    }

    // ------------------------------------------------------------------ interrupts

    /** Starts the interrupt service fiber. */
    start() {
        if (this.running) return
        this.running = true
        this.lastActivity = ds.millis()
        this.poller = this.pollLoop.start()
    }

    /** Stops the interrupt service fiber. */
    async stop() {
        this.running = false
        this.kick.notify()
        while (this.poller) await ds.sleep(5)
    }

    activity() {
        const now = ds.millis()
        this.lastActivity = now
        if (!this.expectSince) this.expectSince = now
        this.kick.notify()
    }

    private async pollLoop() {
        let failures = 0
        while (this.running) {
            try {
                const level = await this.bus.interrupt()
                const now = ds.millis()
                // -1: no INT line, read SIR every time; an interrupt expected for a while: read SIR
                // anyway (a late or missed INT edge); and once a second as a safety net
                const late = this.expectSince && now - this.expectSince > EXPECT_LATE_MS && now - this.lastService >= EXPECT_LATE_MS
                if (level !== 0 || late || now - this.lastService >= SAFETY_POLL_MS) {
                    this.lastService = now
                    if (await this.service()) this.expectSince = 0
                }
                if (this.expectSince && now - this.expectSince > EXPECT_GIVE_UP_MS) this.expectSince = 0
                failures = 0
            } catch (e: any) {
                if (!failures++) this.log(`w5500: interrupt service failed: ${e.message}`)
                await ds.sleep(Math.min(1000, 50 * failures))
            }
            if (!this.running) break
            // poll fast right after activity, slowly when idle
            const quiet = ds.millis() - this.lastActivity
            await this.kick.wait(quiet < 500 ? 2 : quiet < 5000 ? 10 : 50)
        }
        this.poller = undefined
    }

    /** Reads SIR, then the flagged sockets' Sn_IR, clears what it read, hands it to the sockets. */
    private async service(): Promise<boolean> {
        const sir = await this.read8(BSB_COMMON, SIR)
        if (!sir) return false
        let b = await this.begin()
        for (let n = 0; n < SOCKETS; n++) if (sir & (1 << n)) b.read(sregBlock(n), Sn_IR, 1)
        const r = await this.commit()
        b = await this.begin()
        let k = 0
        for (let n = 0; n < SOCKETS; n++) if (sir & (1 << n) && r[k++]) b.write8(sregBlock(n), Sn_IR, r[k - 1])
        if (b.frames) await this.commit()
        else this.cancel()
        k = 0
        for (let n = 0; n < SOCKETS; n++) if (sir & (1 << n) && r[k++]) this.sockets[n].raise(r[k - 1])
        this.interrupts++
        this.lastActivity = ds.millis()
        this.events.notify()
        return true
    }
}
