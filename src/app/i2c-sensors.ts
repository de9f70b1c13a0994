/**
 * The board's temperature/humidity chips over I2C, with drivers of our own on the runtime's I2C
 * transaction (the stock @devicescript/drivers servers cost ~5 KB of bytecode):
 *   AHT20 at 0x38: status 0x71 (bit 3 = calibrated, else init 0xBE 0x08 0x00), trigger
 *     0xAC 0x33 0x00, wait >= 80 ms, read 7 bytes: status (bit 7 = busy: the datasheet says to
 *     keep waiting and read again), 20-bit humidity, 20-bit temperature, CRC-8.
 *   SHT30 at 0x44: single shot, high repeatability, no clock stretching 0x24 0x00, wait >= 15 ms,
 *     read 6 bytes: temperature word + CRC-8, humidity word + CRC-8.
 * CRC-8: polynomial 0x31, initial value 0xFF (both datasheets). A bad read throws an Error naming
 * the chip and the problem; the app then reports the last values.
 */
import * as ds from "@devicescript/core"
import { SensorKind } from "../config"
import { Reading, Sensor, startSimSensor } from "./sensors"
import { sleep } from "../util/rt"

/** CRC-8 (poly 0x31) of each nibble value shifted into the high nibble: crc8 takes a byte in two steps. */
const CRC_NIBBLE = hex`00316253c4f5a697b988dbea7d4c1f2e`

/**
 * Sensirion/Aosong CRC-8 (poly 0x31, init 0xFF) of `len` bytes of `b` from `from`. A nibble at a
 * time from a 16-entry table: a bit at a time cost a report ~1,200 VM steps (about 4 ms of core on
 * the RP2040, `npm run profile`).
 */
export function crc8(b: Buffer, from: number, len: number): number {
    const t = CRC_NIBBLE
    let crc = 0xff
    for (let i = from; i < from + len; i++) {
        crc ^= b[i]
        crc = ((crc << 4) & 0xff) ^ t[crc >> 4]
        crc = ((crc << 4) & 0xff) ^ t[crc >> 4]
    }
    return crc
}

/**
 * Converts a measurement read from `chip` ("aht20": 6 bytes, or 7 with the CRC; "sht30": 6
 * bytes) into [temperature C, relative humidity %]. Throws an Error naming the chip and the
 * problem: short read, busy, bad CRC.
 */
export function decodeReading(chip: string, b: Buffer): number[] {
    const aht = chip === "aht20"
    if (b.length < 6) throw new Error(`${chip}: short read (${b.length} bytes, 6 expected)`)
    if (aht ? b.length > 6 && crc8(b, 0, 6) !== b[6] : crc8(b, 0, 2) !== b[2] || crc8(b, 3, 2) !== b[5]) throw new Error(`${chip}: CRC mismatch (corrupted read)`)
    if (!aht) return [(175 * ((b[0] << 8) | b[1])) / 65535 - 45, (100 * ((b[3] << 8) | b[4])) / 65535]
    if ((b[0] & 0x80) !== 0) throw new Error(`${chip}: busy (measurement not finished)`)
    const h = (b[1] << 12) | (b[2] << 4) | (b[3] >> 4)
    const t = ((b[3] & 0x0f) << 16) | (b[4] << 8) | b[5]
    return [(t * 200) / 1048576 - 50, (h * 100) / 1048576]
}

/** An I2C transaction: write `w` to `addr`, then read `n` bytes. */
export type I2cXfer = (addr: number, w: Buffer, n?: number) => Promise<Buffer>

type DsI2c = typeof ds & { _i2cTransaction(addr: number, w: Buffer, r?: Buffer): Promise<number> }
/**
 * The runtime's I2C transaction (0 when done, else its error code), called directly: the class of
 * @devicescript/i2c around it linked its register helpers into every board image (~490 bytes of
 * bytecode), and we need none of them.
 */
const i2cTransaction = (ds as DsI2c)._i2cTransaction

const busXfer: I2cXfer = async (addr, w, n) => {
    const r = n ? Buffer.alloc(n) : undefined
    const rc = await i2cTransaction(addr, w, r)
    if (rc !== 0) throw new Error(`I2C error ${rc} at address ${addr}`)
    return r || Buffer.alloc(0)
}

/**
 * One measurement of `chip` over `xfer` (I2C failures are reported with the chip's name). An
 * AHT20 still busy is read again every 20 ms, 5 times, before the reading is given up.
 */
export async function measure(chip: string, xfer = busXfer): Promise<Reading> {
    const aht = chip === "aht20"
    const addr = aht ? 0x38 : 0x44
    let b: Buffer
    try {
        await xfer(addr, aht ? hex`AC3300` : hex`2400`)
        for (let i = 0; i < 6; i++) {
            await sleep(i ? 20 : aht ? 85 : 20)
            b = await xfer(addr, hex``, aht ? 7 : 6)
            if (!aht || !(b[0] & 0x80)) break
        }
    } catch (e: any) {
        throw new Error(`${chip}: ${e.message}`)
    }
    const [temperature, humidity] = decodeReading(chip, b)
    return { temperature, humidity, source: chip }
}

/** Starts `chip` (calibrates an AHT20 if needed, takes one reading); undefined (logged) when it does not answer. */
async function tryChip(chip: string, log: (msg: string) => void): Promise<Sensor> {
    try {
        if (chip === "aht20") {
            const st = await busXfer(0x38, hex`71`, 1)
            if ((st[0] & 0x08) === 0) {
                await busXfer(0x38, hex`BE0800`)
                await sleep(10)
            }
        }
        await measure(chip)
        log(`sensor: ${chip} over I2C active`)
        return { source: chip, read: async () => await measure(chip) }
    } catch (e: any) {
        log(`sensor: ${chip} not found on I2C (${e.message})`)
        return undefined
    }
}

/**
 * Starts the sensor chosen by SENSOR on a board and logs which source is active: "auto" an
 * AHT20, else an SHT30, else fixed values; an explicit aht20/sht30 that does not answer falls
 * back to fixed values (logged), so the device keeps reporting; "sim" the random walk.
 */
export async function startBoardSensor(kind: SensorKind, log: (msg: string) => void): Promise<Sensor> {
    let s: Sensor
    if (kind === "auto" || kind === "aht20") s = await tryChip("aht20", log)
    if (!s && (kind === "auto" || kind === "sht30")) s = await tryChip("sht30", log)
    return s || (await startSimSensor(kind === "sim" ? kind : "fixed", log))
}
