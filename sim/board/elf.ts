/**
 * The function and data symbols of an ELF32 little-endian file (the runtime's `.elf` beside its
 * UF2): enough to name the addresses of a profile, and find the runtime's variables in RAM, without
 * the ARM toolchain.
 */
import fs from "node:fs"

/** One symbol of the symbol table: a function or a variable. */
export interface ElfSymbol {
    name: string
    /** start address (a function's Thumb bit cleared) */
    addr: number
    size: number
}
/** A function's symbol. */
export type ElfFunction = ElfSymbol

const STT_OBJECT = 1
const STT_FUNC = 2
const SHT_SYMTAB = 2

/** Reads the function symbols of `file`, sorted by address; throws naming the file when it is not an ELF32 LE file with a symbol table. */
export function readElfFunctions(file: string): ElfFunction[] {
    const out = readElfSymbols(file, STT_FUNC)
    if (!out.length) throw new Error(`${file}: no function symbols`)
    return out.sort((x, y) => x.addr - y.addr)
}

/** The address of the data symbol `name` of `file` (a static variable: the first of that name); throws naming both when there is none. */
export function elfVariable(file: string, name: string): number {
    const v = readElfSymbols(file, STT_OBJECT).find(s => s.name === name)
    if (!v) throw new Error(`${file}: no variable ${name} in the symbol table`)
    return v.addr
}

/** The symbols of type `type` (STT_FUNC, STT_OBJECT) of `file`, in table order. */
function readElfSymbols(file: string, type: number): ElfSymbol[] {
    const b = fs.readFileSync(file)
    const bad = (why: string) => new Error(`${file}: ${why}`)
    if (b.length < 52 || b.readUInt32BE(0) !== 0x7f454c46) throw bad("not an ELF file")
    if (b[4] !== 1 || b[5] !== 1) throw bad("not a 32-bit little-endian ELF file")
    const shoff = b.readUInt32LE(32)
    const shentsize = b.readUInt16LE(46)
    const shnum = b.readUInt16LE(48)
    const section = (i: number) => {
        const o = shoff + i * shentsize
        if (o + 40 > b.length) throw bad(`section header ${i} beyond the end of the file`)
        return { type: b.readUInt32LE(o + 4), offset: b.readUInt32LE(o + 16), size: b.readUInt32LE(o + 20), link: b.readUInt32LE(o + 24), entsize: b.readUInt32LE(o + 36) }
    }
    const out: ElfSymbol[] = []
    for (let i = 0; i < shnum; i++) {
        const sh = section(i)
        if (sh.type !== SHT_SYMTAB) continue
        const strtab = section(sh.link)
        const n = Math.floor(sh.size / (sh.entsize || 16))
        for (let k = 0; k < n; k++) {
            const o = sh.offset + k * 16
            const info = b[o + 12]
            if ((info & 0xf) !== type) continue
            const nameOff = strtab.offset + b.readUInt32LE(o)
            const end = b.indexOf(0, nameOff)
            out.push({ name: b.toString("latin1", nameOff, end), addr: b.readUInt32LE(o + 4) & ~1, size: b.readUInt32LE(o + 8) })
        }
    }
    return out
}

/** The function holding `addr` (or the nearest one below it, for code without a sized symbol). */
export function functionAt(fns: ElfFunction[], addr: number): ElfFunction | undefined {
    let lo = 0
    let hi = fns.length - 1
    let best = -1
    while (lo <= hi) {
        const mid = (lo + hi) >> 1
        if (fns[mid].addr <= addr) {
            best = mid
            lo = mid + 1
        } else hi = mid - 1
    }
    return best < 0 ? undefined : fns[best]
}
