/**
 * The emulated board's QSPI flash, beyond what rp2040js models: the UF2 written into it, erase and
 * program through the bootrom's own routines (so the runtime's settings store survives a reboot)
 * and the flash's 64-bit unique ID (the device id the runtime derives the MAC and default DEVICE_ID
 * from), different for each board instance.
 */
import type { RP2040 } from "rp2040js"
import { parseUf2, RP2040_FAMILY_ID, RP2040_FLASH_BASE, UF2_FLAG_NOT_MAIN_FLASH } from "../uf2.ts"

/** BKPT immediates the patched bootrom uses for its flash routines. */
const BKPT_ERASE = 0xe0
const BKPT_PROGRAM = 0xe1
/** QSPI flash commands the ID emulation answers. */
const CMD_READ_UNIQUE_ID = 0x4b
const CMD_JEDEC_ID = 0x9f
/** IO_QSPI and SSI peripherals (rp2040js `peripherals` keys) and the registers used. */
const IO_QSPI = 0x40018
const IO_QSPI_SS_CTRL = 0x0c
const SSI = 0x18000
const SSI_DR0 = 0x60

/** What the flash saw (for tests and the benchmark). */
export interface FlashCounters {
    erases: number
    eraseBytes: number
    programs: number
    programBytes: number
    uniqueIdReads: number
}

/** Writes every main-flash block of an RP2040 UF2 into `flash`; throws on a bad UF2 (names `name`). */
export function writeUf2(flash: Uint8Array, uf2: Uint8Array, name: string): number {
    const blocks = parseUf2(uf2, name)
    let n = 0
    for (const b of blocks) {
        if (b.flags & UF2_FLAG_NOT_MAIN_FLASH) continue
        if (b.familyId !== RP2040_FAMILY_ID) throw new Error(`${name}: block ${b.index} is not for the RP2040 (family 0x${b.familyId.toString(16)})`)
        const off = b.targetAddr - RP2040_FLASH_BASE
        if (off < 0 || off + b.data.length > flash.length) throw new Error(`${name}: block ${b.index} targets 0x${b.targetAddr.toString(16)}, outside the 2 MB flash`)
        flash.set(b.data, off)
        n++
    }
    if (!n) throw new Error(`${name}: no main-flash blocks`)
    return n
}

/** Address of a bootrom function from its two-letter code (the ROM's function table, pointer at 0x14). */
export function romFunction(rom: Uint32Array, code: string): number {
    const b = Buffer.from(rom.buffer, rom.byteOffset, rom.byteLength)
    const want = code.charCodeAt(0) | (code.charCodeAt(1) << 8)
    for (let p = b.readUInt16LE(0x14); p + 4 <= b.length && b.readUInt16LE(p); p += 4)
        if (b.readUInt16LE(p) === want) return b.readUInt16LE(p + 2) & ~1
    throw new Error(`bootrom: no function ${code} in its table`)
}

/** Puts a BKPT at the ROM's flash_range_erase ('RE') and flash_range_program ('RP') entries (in place). */
export function patchBootrom(rom: Uint32Array): void {
    const b = Buffer.from(rom.buffer, rom.byteOffset, rom.byteLength)
    b.writeUInt16LE(0xbe00 | BKPT_ERASE, romFunction(rom, "RE"))
    b.writeUInt16LE(0xbe00 | BKPT_PROGRAM, romFunction(rom, "RP"))
}

/**
 * Serves the patched bootrom's breakpoints (erase: fill 0xFF by 4 KB sectors; program: AND, as NOR
 * flash does; both return to the caller at once, taking no emulated time) and answers the
 * unique-ID (0x4B) and JEDEC-ID (0x9F) commands the runtime sends with chip select forced low
 * through IO_QSPI. `uid` is 8 bytes.
 */
export function attachFlash(mcu: RP2040, uid: Uint8Array, counters: FlashCounters): void {
    if (uid.length !== 8) throw new Error(`flash unique ID must be 8 bytes, got ${uid.length}`)
    mcu.onBreak = code => {
        const core = mcu.core
        const r = core.registers
        if (code === BKPT_ERASE) {
            // flash_range_erase(addr, count, block_size, block_cmd)
            const start = r[0] & ~0xfff
            const end = Math.min((r[0] + r[1] + 0xfff) & ~0xfff, mcu.flash.length)
            if (end > start) mcu.flash.fill(0xff, start, end)
            counters.erases++
            counters.eraseBytes += Math.max(0, end - start)
        } else if (code === BKPT_PROGRAM) {
            // flash_range_program(addr, data, count)
            for (let i = 0; i < r[2] && r[0] + i < mcu.flash.length; i++) mcu.flash[r[0] + i] &= mcu.readUint8(r[1] + i)
            counters.programs++
            counters.programBytes += r[2]
        } else {
            throw new Error(`emulated board: BKPT #${code} at 0x${core.PC.toString(16)} (the firmware stopped at a breakpoint)`)
        }
        core.PC = core.LR & ~1
    }
    type Rw = { readUint32(o: number): number; writeUint32(o: number, v: number): void }
    const ioq = mcu.peripherals[IO_QSPI] as unknown as Rw
    const ssi = mcu.peripherals[SSI] as unknown as Rw
    let csLow = false
    let idx = 0
    let cmd = 0
    const rx: number[] = []
    const ioqWrite = ioq.writeUint32.bind(ioq)
    ioq.writeUint32 = (off, v) => {
        if (off === IO_QSPI_SS_CTRL) {
            // OUTOVER bits 9:8: 2 = drive chip select low, 3 = high
            const low = ((v >>> 8) & 3) === 2
            if (low && !csLow) {
                idx = 0
                rx.length = 0
            }
            csLow = low
            return
        }
        ioqWrite(off, v)
    }
    const ssiWrite = ssi.writeUint32.bind(ssi)
    const ssiRead = ssi.readUint32.bind(ssi)
    ssi.writeUint32 = (off, v) => {
        if (off === SSI_DR0 && csLow) {
            if (idx === 0) {
                cmd = v & 0xff
                if (cmd === CMD_READ_UNIQUE_ID) counters.uniqueIdReads++
            }
            let out = 0
            if (cmd === CMD_READ_UNIQUE_ID && idx >= 5 && idx < 13) out = uid[idx - 5] // command, 4 dummy bytes, 8 ID bytes
            else if (cmd === CMD_JEDEC_ID && idx >= 1 && idx <= 3) out = [0xef, 0x40, 0x15][idx - 1] // a W25Q16 (2 MB)
            idx++
            rx.push(out)
            return
        }
        ssiWrite(off, v)
    }
    ssi.readUint32 = off => (off === SSI_DR0 && rx.length ? rx.shift()! : ssiRead(off))
}
