/**
 * The W5500 chip over an `SpiBus`: serialized access to the bus with one shared `SpiBatch` (few,
 * large frames per step), reset (RSTn pin or MR.RST) and the VERSIONR check, MAC and socket buffer
 * configuration, and the interrupt service: a fiber watches INTn (or polls SIR when the bus has no
 * INT line, when an expected interrupt is late, and once a second as a safety net), reads SIR and
 * the flagged sockets' Sn_IR, clears them (write 1 to clear) and hands the bits to the sockets.
 */
import * as ds from "@devicescript/core"
import { SpiBatch, SpiBus } from "../../hal/spi"
import { Mutex } from "../../util/mutex"
import { Signal } from "../../util/signal"
import { hex2, MR, MR_RST, PHYCFGR, SHAR, SIR, SOCKETS, Sn_IR, Sn_RXBUF_SIZE, VERSIONR, W5500_VERSION } from "./registers"
import { WizSocket } from "./socket"

/** A W5500 on an SPI bus; the W5100S (w5100s.ts) is its subclass with another frame and address map. */
export class W5500 {
    /** chip name for messages */
    name = "w5500"
    /** the version register: name, address, and what it reads */
    protected verName = "VERSIONR"
    protected verAt = VERSIONR
    protected verWant = W5500_VERSION
    /** the register whose bit n flags socket n's interrupt (W5500: SIR; its mask register follows it: SIMR) */
    protected sirAt = SIR
    /** the socket bits of that register */
    protected sockMask = 0xff
    /** the PHY status register whose bit 0 is the link (W5500: PHYCFGR) */
    phyAt = PHYCFGR
    /** the hardware sockets (8 on a W5500) */
    readonly sockets: WizSocket[] = []
    /** notified after every interrupt service that found something */
    readonly events = new Signal()
    /** held from `begin` until `commit` (or an `unlock` instead of the commit) */
    readonly mutex = new Mutex()
    /** VERSIONR read at the last reset */
    version = 0
    protected batch = new SpiBatch()
    private running = false
    private poller = false
    private kick = new Signal()
    private lastActivity = 0
    /** when a command that raises an interrupt was issued (0: nothing expected) */
    private expectSince = 0
    private lastService = 0

    constructor(readonly bus: SpiBus, private readonly log: (msg: string) => void, count = SOCKETS) {
        for (let n = 0; n < count; n++) this.sockets.push(new WizSocket(this, n))
    }

    /** Takes the bus and returns the (cleared) shared batch; `commit` (or `mutex.unlock()`) must follow. */
    async begin(): Promise<SpiBatch> {
        await this.mutex.lock()
        this.batch.clear()
        return this.batch
    }

    /** Runs the batch taken by `begin`, releases the bus, returns the bytes read. */
    async commit(): Promise<Buffer> {
        try {
            return await this.bus.run(this.batch)
        } finally {
            this.mutex.unlock()
        }
    }

    /** Reads `n` bytes at (`bsb`, `addr`) in one frame. */
    async read(bsb: number, addr: number, n: number): Promise<Buffer> {
        const b = await this.begin()
        b.add(bsb, addr, n)
        return await this.commit()
    }

    /** Reads a 16-bit register until two reads agree (datasheet: Sn_TX_FSR, Sn_RX_RSR). */
    async readStable16(bsb: number, addr: number): Promise<number> {
        for (let tries = 0; ; tries++) {
            const b = await this.begin()
            b.add(bsb, addr, 2)
            b.add(bsb, addr, 2)
            const r = await this.commit()
            const v = (r[2] << 8) | r[3]
            if (v === ((r[0] << 8) | r[1]) || tries >= 4) return v
        }
    }

    /**
     * Resets the chip (RSTn low for 1..2 ms when the bus has the pin, else MR.RST), waits up to 200 ms
     * for MR.RST to clear and VERSIONR to read 0x04 (throws when it never does: no chip, wrong
     * wiring, bus fault), then sets the MAC, socket interrupts on INTn and every socket's RX and TX
     * buffer to `kb` KB, reads the MAC back (a mismatch means a broken MOSI line), and starts the
     * interrupt service.
     */
    async init(mac: Buffer, kb: number) {
        for (const s of this.sockets) s.forget()
        const bus = this.bus
        const hw = await bus.setReset(true)
        let b: SpiBatch
        if (hw) {
            // datasheet: RSTn low for at least 500 us. The VM's clock can lag the timer after busy
            // work (the emulated board saw ds.millis() 33 ms behind, and ds.sleep(30) ended after
            // 150 us): wait until the clock has moved once (it is then fresh), then 2 ms more
            let t = ds.millis()
            for (let moved = 0; moved < 2; ) {
                await ds.sleep(1)
                const m = ds.millis()
                if (m - t >= moved + 1) {
                    moved++
                    t = m
                }
            }
            await bus.setReset(false)
        } else {
            b = await this.begin()
            b.reg(0, MR, MR_RST)
            await this.commit()
        }
        const deadline = ds.millis() + 200
        for (;;) {
            // the chip answers zeros until its PLL is locked (datasheet: about 1 ms)
            await ds.sleep(1)
            b = await this.begin()
            b.add(0, MR, 1)
            b.add(0, this.verAt, 1)
            const r = await this.commit()
            if (!(r[0] & MR_RST) && r[1] === this.verWant) break
            if (ds.millis() > deadline)
                throw new Error(`${this.name}: ${this.verName} reads 0x${hex2(r[1])} (MR 0x${hex2(r[0])}) 200 ms after ${hw ? "RSTn" : "MR.RST"} on ${bus.name}, expected 0x${hex2(this.verWant)}: no such chip answering (check the wiring)`)
        }
        this.version = this.verWant
        b = await this.begin()
        b.add(0, SHAR, 6, mac, 0)
        b.reg(0, this.sirAt + 1, this.sockMask)
        for (const s of this.sockets) {
            b.reg(s.sreg, Sn_RXBUF_SIZE, kb * 0x101, 2) // Sn_RXBUF_SIZE, Sn_TXBUF_SIZE
            s.size = kb * 1024
        }
        b.add(0, SHAR, 6)
        const r = await this.commit()
        if (r.toString("hex") !== mac.toString("hex"))
            throw new Error(`${this.name}: SHAR reads back ${r.toString("hex")} after writing ${mac.toString("hex")}: SPI writes do not reach the chip (check MOSI/SCK)`)
        this.running = true
        this.lastActivity = ds.millis()
        this.poller = true
        this.pollLoop.start()
    }

    /** Stops the interrupt service fiber. */
    async stop() {
        this.running = false
        this.kick.notify()
        while (this.poller) await ds.sleep(5)
    }

    /** Tells the interrupt service an interrupt is expected soon. */
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
                const late = this.expectSince && now - this.expectSince > 50 && now - this.lastService >= 50
                if (level !== 0 || late || now - this.lastService >= 1000) {
                    this.lastService = now
                    if (await this.service()) this.expectSince = 0
                }
                // stop expecting after 3 s
                if (this.expectSince && now - this.expectSince > 3000) this.expectSince = 0
                failures = 0
            } catch (e: any) {
                if (!failures++) this.log(`${this.name}: interrupt service failed: ${e.message}`)
                await ds.sleep(Math.min(1000, 50 * failures))
            }
            // poll fast right after activity, slowly when idle
            const quiet = ds.millis() - this.lastActivity
            if (this.running) await this.kick.wait(quiet < 500 ? 2 : quiet < 5000 ? 10 : 50)
        }
        this.poller = false
    }

    /** Reads SIR, then the flagged sockets' Sn_IR, clears what it read, hands it to the sockets. */
    private async service(): Promise<boolean> {
        const sir = (await this.read(0, this.sirAt, 1))[0] & this.sockMask
        if (!sir) return false
        let b = await this.begin()
        for (const s of this.sockets) if (sir & (1 << s.n)) b.add(s.sreg, Sn_IR, 1)
        const r = await this.commit()
        b = await this.begin()
        let k = 0
        for (const s of this.sockets)
            if (sir & (1 << s.n) && r[k++]) {
                const v = r[k - 1]
                b.reg(s.sreg, Sn_IR, v)
                s.irq |= v
                s.signal.notify()
            }
        if (b.frames) await this.commit()
        else this.mutex.unlock()
        this.lastActivity = ds.millis()
        this.events.notify()
        return true
    }
}
