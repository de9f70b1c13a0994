/**
 * An I2C bus of the emulated board: the RP2040's I2C block on the board file's pins, with target
 * devices (the sensor models) answering by address, and a workaround for an rp2040js 1.4.1 bug:
 * on a NACK, `abort()` flushes the TX FIFO but never raises TX_EMPTY, so pico-sdk's
 * `i2c_write_blocking` spins forever; silicon raises TX_EMPTY once the flushed FIFO is empty.
 */
import type { RP2040 } from "rp2040js"

/** TX_EMPTY bit of the I2C interrupt registers. */
const INTR_TX_EMPTY = 1 << 4

/** A target on the bus. Every method runs at the moment of the bus event, in virtual time. */
export interface I2cTarget {
    /** 7-bit address */
    readonly address: number
    /** addressed for writing (false) or reading (true); return false to NACK the address */
    select(read: boolean): boolean
    /** a byte written by the controller; return false to NACK it */
    write(b: number): boolean
    /** the next byte to send the controller */
    read(): number
    /** STOP (or a repeated START) ends the transaction */
    stop(): void
}

/**
 * The byte plumbing of a sensor that takes commands and answers reads: written bytes collect until
 * STOP, which hands them to `command`; `select(true)` is the model's to answer (`reply` sets what
 * the controller then reads; 0xFF past the end, as a released bus reads).
 */
export abstract class CommandTarget implements I2cTarget {
    abstract readonly address: number
    private wbuf: number[] = []
    private out: number[] = []
    private idx = 0
    /** the bytes of one write transaction, at its STOP (never empty) */
    protected abstract command(w: number[]): void
    /** addressed for reading: set the answer with `reply`, or return false to NACK */
    protected abstract answer(): boolean
    /** what the following reads return */
    protected reply(bytes: number[]): void {
        this.out = bytes
        this.idx = 0
    }
    /** I2cTarget */
    select(read: boolean): boolean {
        this.wbuf = []
        return read ? this.answer() : true
    }
    /** I2cTarget */
    write(b: number): boolean {
        this.wbuf.push(b)
        return true
    }
    /** I2cTarget */
    read(): number {
        return this.idx < this.out.length ? this.out[this.idx++] : 0xff
    }
    /** I2cTarget: a write transaction takes effect at STOP */
    stop(): void {
        const w = this.wbuf
        this.wbuf = []
        if (w.length) this.command(w)
    }
}

/** What crossed the bus (for tests). */
export interface I2cCounters {
    /** transactions per address, acknowledged or not */
    addressed: Record<number, number>
    nacks: number
}

/** The I2C block (0 or 1) an SDA pin belongs to on the RP2040 (GPIO 0/1 -> I2C0, 2/3 -> I2C1, ...). */
export function i2cBlockOf(pinSDA: number, pinSCL: number): 0 | 1 {
    if (pinSDA % 2 !== 0 || pinSCL !== pinSDA + 1) throw new Error(`I2C pins SDA ${pinSDA} / SCL ${pinSCL}: on the RP2040 SDA is an even GPIO and SCL the next one`)
    return ((pinSDA >> 1) & 1) as 0 | 1
}

/** Attaches `targets` to I2C block `index` of `mcu`. */
export function attachI2c(mcu: RP2040, index: 0 | 1, targets: I2cTarget[], counters: I2cCounters): void {
    const i2c = mcu.i2c[index]
    const inner = i2c as unknown as { abort(reason: number): void; setInterrupts(mask: number): void }
    const abort = inner.abort.bind(i2c)
    inner.abort = (reason: number) => {
        abort(reason)
        inner.setInterrupts(INTR_TX_EMPTY)
    }
    let cur: I2cTarget | undefined
    const end = () => {
        cur?.stop()
        cur = undefined
    }
    i2c.onStart = () => {
        end()
        i2c.completeStart()
    }
    i2c.onConnect = (address, mode) => {
        counters.addressed[address] = (counters.addressed[address] ?? 0) + 1
        const t = targets.find(x => x.address === address)
        const ack = !!t && t.select(mode === 1)
        if (!ack) counters.nacks++
        cur = ack ? t : undefined
        i2c.completeConnect(ack)
    }
    i2c.onWriteByte = v => i2c.completeWrite(cur ? cur.write(v) : false)
    i2c.onReadByte = () => i2c.completeRead(cur ? cur.read() & 0xff : 0xff)
    i2c.onStop = () => {
        end()
        i2c.completeStop()
    }
}

/** Sensirion/Aosong CRC-8: polynomial 0x31, initial value 0xFF. */
export function crc8(b: ArrayLike<number>): number {
    let c = 0xff
    for (let i = 0; i < b.length; i++) {
        c ^= b[i]
        for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x31) & 0xff : (c << 1) & 0xff
    }
    return c
}

/** The climate a sensor model measures, as a function of virtual time (seconds since power-on). */
export interface Climate {
    temperature(tSec: number): number
    humidity(tSec: number): number
}

/** A climate that changes over time: slow sine waves around 22.5 C and 45 %RH (period 10 min). */
export function driftingClimate(baseT = 22.5, baseRh = 45): Climate {
    return {
        temperature: t => baseT + 2.5 * Math.sin((2 * Math.PI * t) / 600),
        humidity: t => baseRh + 8 * Math.cos((2 * Math.PI * t) / 600),
    }
}

