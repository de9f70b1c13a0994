/**
 * SHT30 temperature/humidity sensor model (Sensirion datasheet): address 0x44; 16-bit commands;
 * single shot without clock stretching (0x2400 high, 0x240B medium, 0x2416 low repeatability)
 * measures for 15 ms, during which a read is NACKed (as the chip does); the result is the
 * temperature word and its CRC-8, then the humidity word and its CRC-8; 0x30A2 soft reset.
 * T = -45 + 175 * raw / 65535, RH = 100 * raw / 65535.
 */
import type { VirtualClock } from "./clock.ts"
import { CommandTarget, crc8, type Climate } from "./i2c.ts"

/** Measurement time, high repeatability (datasheet: 15 ms max). */
export const SHT30_MEASURE_NS = 15e6

/** The SHT30 model. */
export class Sht30 extends CommandTarget {
    readonly address = 0x44
    /** measurements started, reads of a result, reads NACKed while busy */
    readonly counters = { triggers: 0, reads: 0, busyNacks: 0, resets: 0 }
    private busyUntil = -1
    private result: number[] | null = null
    /** @param clock virtual time @param climate what it measures */
    constructor(private readonly clock: VirtualClock, private readonly climate: Climate) {
        super()
    }
    /** a read while measuring (or with nothing measured) is NACKed; otherwise the result, once */
    protected answer(): boolean {
        if (this.clock.nanos < this.busyUntil || !this.result) {
            if (this.clock.nanos < this.busyUntil) this.counters.busyNacks++
            return false
        }
        this.reply(this.result)
        this.result = null
        this.counters.reads++
        return true
    }
    /** 16-bit commands */
    protected command(w: number[]): void {
        if (w.length < 2) return
        const cmd = (w[0] << 8) | w[1]
        if (cmd === 0x2400 || cmd === 0x240b || cmd === 0x2416) {
            this.counters.triggers++
            this.busyUntil = this.clock.nanos + SHT30_MEASURE_NS
            const t = this.clock.nanos / 1e9
            const tr = Math.max(0, Math.min(0xffff, Math.round(((this.climate.temperature(t) + 45) / 175) * 65535)))
            const hr = Math.max(0, Math.min(0xffff, Math.round((this.climate.humidity(t) / 100) * 65535)))
            const tw = [tr >> 8, tr & 0xff]
            const hw = [hr >> 8, hr & 0xff]
            this.result = [...tw, crc8(tw), ...hw, crc8(hw)]
        } else if (cmd === 0x30a2) {
            this.counters.resets++
            this.result = null
            this.busyUntil = this.clock.nanos + 1e6
        }
    }
}
