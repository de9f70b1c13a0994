/**
 * AHT20 temperature/humidity sensor model (Aosong datasheet): address 0x38; status byte (bit 7
 * busy, bit 3 calibrated) on any read; 0xBE 0x08 0x00 initializes (calibrates), 0xAC 0x33 0x00
 * triggers a measurement that is busy for 80 ms; a read then gives status, 20-bit humidity,
 * 20-bit temperature and a CRC-8; 0xBA is a soft reset (20 ms).
 */
import type { VirtualClock } from "./clock.ts"
import { CommandTarget, crc8, type Climate } from "./i2c.ts"

/** Measurement time of the AHT20 (datasheet: 80 ms). */
export const AHT20_MEASURE_NS = 80e6

/** The AHT20 model. */
export class Aht20 extends CommandTarget {
    readonly address = 0x38
    /** commands seen: init (0xBE), trigger (0xAC), soft reset (0xBA); reads of a finished measurement */
    readonly counters = { inits: 0, triggers: 0, resets: 0, reads: 0 }
    private calibrated = false
    private busyUntil = -1
    private measured: number[] = [0, 0, 0, 0, 0]
    /** @param clock virtual time @param climate what it measures */
    constructor(private readonly clock: VirtualClock, private readonly climate: Climate) {
        super()
    }
    /** any read gives the status byte, then the last measurement and its CRC */
    protected answer(): boolean {
        const busy = this.clock.nanos < this.busyUntil
        const status = (busy ? 0x80 : 0) | (this.calibrated ? 0x08 : 0) | 0x10
        const d = [status, ...this.measured]
        this.reply([...d, crc8(d)])
        if (!busy) this.counters.reads++
        return true
    }
    protected command(w: number[]): void {
        if (w[0] === 0xbe) {
            this.counters.inits++
            this.calibrated = true
        } else if (w[0] === 0xac && w[1] === 0x33 && w[2] === 0x00) {
            this.counters.triggers++
            this.busyUntil = this.clock.nanos + AHT20_MEASURE_NS
            const t = this.clock.nanos / 1e9
            const h = Math.max(0, Math.min(0xfffff, Math.round((this.climate.humidity(t) / 100) * 0x100000)))
            const tr = Math.max(0, Math.min(0xfffff, Math.round(((this.climate.temperature(t) + 50) / 200) * 0x100000)))
            this.measured = [h >> 12, (h >> 4) & 0xff, ((h & 0xf) << 4) | (tr >> 16), (tr >> 8) & 0xff, tr & 0xff]
        } else if (w[0] === 0xba) {
            this.counters.resets++
            this.calibrated = false
            this.busyUntil = this.clock.nanos + 20e6
        }
    }
}
