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
import { millis, sleep, suspend } from "../../util/rt"

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
    /**
     * the hardware sockets opened so far, socket n at index n (`socketAt` makes them in order on first
     * use: the firmware opens 4 of a W5500's 8, and each socket object with its signal and lock is
     * ~600 bytes of the VM's heap)
     */
    readonly sockets: WizSocket[] = []
    /** RX and TX buffer bytes of each socket (set by `init`) */
    bufSize = 2048
    /** notified after an interrupt service that found something on a socket of `eventSockets` */
    readonly events = new Signal()
    /**
     * the sockets (bit n: socket n) whose interrupts notify `events`: the stack's supervisor sets
     * its DHCP and SNTP sockets, so a SEND_OK of the MQTT connection does not wake it
     */
    eventSockets = 0
    /** held from `begin` until `commit` (or an `unlock` instead of the commit) */
    readonly mutex = new Mutex()
    /** VERSIONR read at the last reset */
    version = 0
    protected batch = new SpiBatch()
    // (no initializers where init() sets the field first or undefined serves as 0 or false: each
    // costs the constructor bytes)
    /** the interrupt service: the last traffic (a command issued, an interrupt serviced), ms (set by init) */
    private last: number
    /** when a command that raises an interrupt was issued (0 or undefined: nothing expected), ms */
    private expect: number
    /** the last service, ms */
    private serviced = 0
    private running: boolean
    /** the poll loop has not ended yet */
    private polling: boolean
    /** the poll loop's fiber, woken early by `activity` and `stop` */
    private poller: ds.Fiber
    /** SIR at the last service that found something: whose Sn_IR the next one reads at once (set by init) */
    private lastSir: number

    /** `count`: the chip's hardware sockets (8 on a W5500) */
    constructor(readonly bus: SpiBus, private readonly log: (msg: string) => void, readonly count = SOCKETS) {}

    /** Socket `n` (< `count`), made with every socket below it on first use. */
    socketAt(n: number): WizSocket {
        const socks = this.sockets
        while (socks.length <= n) {
            const s = new WizSocket(this, socks.length)
            s.size = this.bufSize
            socks.push(s)
        }
        return socks[n]
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
            // work (the emulated board saw millis() 33 ms behind, and sleep(30) ended after
            // 150 us): wait until the clock has moved once (it is then fresh), then 2 ms more
            let t = millis()
            for (let moved = 0; moved < 2; ) {
                await sleep(1)
                const m = millis()
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
        const deadline = millis() + 200
        for (;;) {
            // the chip answers zeros until its PLL is locked (datasheet: about 1 ms)
            await sleep(1)
            b = await this.begin()
            b.add(0, MR, 1)
            b.add(0, this.verAt, 1)
            const r = await this.commit()
            if (!(r[0] & MR_RST) && r[1] === this.verWant) break
            if (millis() > deadline)
                throw new Error(`${this.name}: ${this.verName} reads 0x${hex2(r[1])} (MR 0x${hex2(r[0])}) 200 ms after ${hw ? "RSTn" : "MR.RST"} on ${bus.name}, expected 0x${hex2(this.verWant)}: no such chip answering (check the wiring)`)
        }
        this.version = this.verWant
        b = await this.begin()
        b.add(0, SHAR, 6, mac, 0)
        b.reg(0, this.sirAt + 1, this.sockMask)
        for (let n = 0; n < this.count; n++) b.reg((n << 2) | 1, Sn_RXBUF_SIZE, kb * 0x101, 2) // Sn_RXBUF_SIZE, Sn_TXBUF_SIZE
        this.bufSize = kb * 1024
        for (const s of this.sockets) s.size = this.bufSize
        b.add(0, SHAR, 6)
        const r = await this.commit()
        if (r.toString("hex") !== mac.toString("hex"))
            throw new Error(`${this.name}: SHAR reads back ${r.toString("hex")} after writing ${mac.toString("hex")}: SPI writes do not reach the chip (check MOSI/SCK)`)
        this.running = this.polling = true
        this.last = millis()
        this.lastSir = 0
        this.pollLoop.start()
    }

    /** Stops the interrupt service fiber. */
    async stop() {
        this.running = false
        // the poll loop's sleep ends now (and so does the loop)
        const f = this.poller
        if (f && f.suspended) f.resume(undefined)
        while (this.polling) await sleep(5)
    }

    /** Tells the interrupt service an interrupt is expected soon (it looks at once, then every 2 ms until one comes). */
    activity() {
        const now = millis()
        this.last = now
        if (!this.expect) this.expect = now
        // the poll loop's sleep ends now: its next look comes at once (in line here and in stop:
        // a private method costs its descriptor and a prototype entry)
        const f = this.poller
        if (f && f.suspended) f.resume(undefined)
    }

    /**
     * The interrupt service: looks at INTn (a GPIO read, no SPI) and services the sockets when it is
     * asserted, when an expected interrupt is late (a missed edge), on a bus without INTn, and once a
     * second as a safety net. Each look is a wake-up of the VM (a VM step costs ~3.5 us of core), so
     * the loop keeps what it can in locals and sleeps as long as traffic allows: 2 ms while an
     * interrupt is expected, 5 ms in the first 50 ms after traffic (a reply from the network), then
     * 20 ms (a command from the broker waits at most that long to be seen).
     */
    private async pollLoop() {
        const bus = this.bus
        const pin = bus.intPin
        this.poller = ds.Fiber.self()
        let failures = 0
        let wait = 2
        while (this.running) {
            await suspend(wait)
            let now = millis()
            // the common look, INTn idle and nothing expected: as few VM steps as can be (each ~3.5 us
            // of core; nested ifs compile to fewer steps than a chain of &&)
            if (pin)
                if (pin.value)
                    if (!this.expect)
                        if (now - this.serviced < 1000) {
                            wait = now - this.last < 50 ? 5 : 20
                            continue
                        }
            try {
                const level = pin ? (pin.value ? 0 : 1) : await bus.interrupt()
                const ex = this.expect
                if (level !== 0 || now - this.serviced >= 1000 || (ex && now - ex > 50 && now - this.serviced >= 50)) {
                    this.serviced = now
                    // the service (inline: a method used once costs its descriptor and a prototype
                    // entry): reads SIR and, in the same batch, Sn_IR of the sockets SIR flagged last
                    // time (most often the same one: the MQTT connection), then Sn_IR of any other
                    // flagged socket; clears what it read (write 1 to clear) and hands the bits to the
                    // sockets. INTn not asserted (a safety-net look): SIR alone. A guessed socket SIR
                    // does not flag is left alone.
                    const guess = level > 0 ? this.lastSir : 0
                    let b = await this.begin()
                    b.add(0, this.sirAt, 1)
                    for (let n = 0, m = guess; m; n++, m >>= 1) if (m & 1) b.add((n << 2) | 1, Sn_IR, 1)
                    const r = await this.commit()
                    const sir = r[0] & this.sockMask
                    if (sir) {
                        this.lastSir = sir
                        const miss = sir & ~guess
                        let r2: Buffer
                        if (miss) {
                            b = await this.begin()
                            for (let n = 0, m = miss; m; n++, m >>= 1) if (m & 1) b.add((n << 2) | 1, Sn_IR, 1)
                            r2 = await this.commit()
                        }
                        b = await this.begin()
                        let k = 1
                        let k2 = 0
                        for (let n = 0, m = sir | guess; m; n++, m >>= 1) {
                            if (!(m & 1)) continue
                            const bit = 1 << n
                            const v = guess & bit ? r[k++] : r2[k2++]
                            if (!(sir & bit) || !v) continue
                            b.reg((n << 2) | 1, Sn_IR, v)
                            // a socket never opened has no object (and raises nothing a datasheet chip would flag)
                            const s = this.sockets[n]
                            if (!s) continue
                            s.irq |= v
                            s.signal.notify()
                        }
                        if (b.frames) await this.commit()
                        else this.mutex.unlock()
                        this.last = millis()
                        if (sir & this.eventSockets) this.events.notify()
                        this.expect = 0
                    }
                    now = millis()
                }
                // an expected interrupt that never came: stop expecting after 3 s
                if (ex && now - ex > 3000) this.expect = 0
                failures = 0
            } catch (e: any) {
                if (!failures++) this.log(`${this.name}: interrupt service failed: ${e.message}`)
                await sleep(Math.min(1000, 50 * failures))
            }
            wait = this.expect ? 2 : now - this.last < 50 ? 5 : 20
        }
        this.poller = undefined
        this.polling = false
    }
}
