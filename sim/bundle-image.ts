/**
 * What a DeviceScript RP2040 bundle (`devs bundle`) holds, read back from its UF2 with parsers of
 * our own: the stock runtime from 0x10000000, the board configuration ("DCFG") at 0x100dc000 and
 * the flash storage ("FSTR") at 0x100e0000 with the program ("*prog") and the settings (":KEY",
 * values as JSON text). The addresses are those of the CLI's rp2040 architecture
 * (dcfgOffset, fstorOffset, 32 pages of 4 KB). Formats as observed in CLI 2.16.4 bundles:
 *
 * DCFG: u32 "DCFG" 0x47464344, u32 0xcab49b0a, u32 total size, u16 entry count, then from byte 88
 * 24-byte entries: key (15 bytes + NUL), u16 key hash, u16 type | size << 2, u32 value (type 0
 * u32, 1 i32, 2 string and 3 blob: the value is the data's offset in the DCFG).
 * FSTR: u32 "FSTR" 0x52545346, u32 0x6becea0a, 16 header bytes, then from byte 24 24-byte
 * entries: key (15 bytes + NUL), u32 data offset (from the start of the storage), u32 size; a
 * later entry with the same key replaces an earlier one; erased flash (0xFF) ends the list.
 */
import { parseUf2, readUf2, rp2040Problems, uf2Ranges, type Uf2Block } from "./uf2.ts"

/** Where the CLI writes the board configuration on an RP2040. */
export const DCFG_ADDR = 0x100dc000
/** Where the CLI writes the flash storage (program and settings) on an RP2040. */
export const FSTOR_ADDR = 0x100e0000
/** Size of the RP2040 flash storage: 32 pages of 4 KB. */
export const FSTOR_SIZE = 32 * 4096
/** The CLI pads the runtime to this alignment before adding its own parts. */
export const UF2_ALIGN = 4096

const DCFG_MAGIC0 = 0x47464344
const DCFG_MAGIC1 = 0xcab49b0a
const DCFG_HEADER = 88
const DCFG_ENTRY = 24
const FSTOR_MAGIC0 = 0x52545346
const FSTOR_MAGIC1 = 0x6becea0a
const FSTOR_HEADER = 24
const FSTOR_ENTRY = 24
/** First 8 bytes of a compiled DeviceScript image ("DevS\n" and a version-independent tail). */
export const DEVS_IMAGE_MAGIC = Buffer.from("446576530a6e29f1", "hex")

/** A board configuration value: numbers, strings, blobs. */
export type DcfgValue = number | string | Buffer

function keyAt(b: Buffer, off: number, what: string): string {
    const end = b.indexOf(0, off)
    if (end < 0 || end - off > 15) throw new Error(`${what}: key at byte ${off} has no NUL within 16 bytes`)
    return b.subarray(off, end).toString("utf8")
}

/** True when `b` starts with the DCFG magic numbers. */
export function isDcfg(b: Uint8Array): boolean {
    const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    return x.length >= 8 && x.readUInt32LE(0) === DCFG_MAGIC0 && x.readUInt32LE(4) === DCFG_MAGIC1
}

/** Declared size of the DCFG at the start of `b` (needs its first 12 bytes). */
export function dcfgSize(b: Uint8Array, name = "DCFG"): number {
    const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    if (x.length < 12 || !isDcfg(x)) throw new Error(`${name}: no DCFG magic (0x47464344 0xcab49b0a) at its start`)
    return x.readUInt32LE(8)
}

/**
 * Decodes a board configuration into key -> value. Throws an Error naming `name` on a wrong
 * magic, a size beyond the buffer, too many entries, a key without NUL or a value outside it.
 */
export function decodeDcfg(b: Uint8Array, name = "DCFG"): Record<string, DcfgValue> {
    const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    const total = dcfgSize(x, name)
    if (total > x.length) throw new Error(`${name}: declares ${total} bytes, only ${x.length} available`)
    if (x.length < DCFG_HEADER) throw new Error(`${name}: ${x.length} bytes, shorter than the ${DCFG_HEADER}-byte header`)
    const n = x.readUInt16LE(12)
    if (DCFG_HEADER + (n + 1) * DCFG_ENTRY > total) throw new Error(`${name}: ${n} entries do not fit in ${total} bytes`)
    const out: Record<string, DcfgValue> = {}
    for (let i = 0; i < n; i++) {
        const e = DCFG_HEADER + i * DCFG_ENTRY
        const key = keyAt(x, e, name)
        const ts = x.readUInt16LE(e + 18)
        const type = ts & 3
        const size = ts >> 2
        const v = x.readUInt32LE(e + 20)
        if (type === 0) out[key] = v
        else if (type === 1) out[key] = v | 0
        else {
            if (v + size > total) throw new Error(`${name}: value of ${key} at ${v}+${size} runs past the ${total}-byte configuration`)
            const data = Buffer.from(x.subarray(v, v + size))
            out[key] = type === 2 ? data.toString("utf8") : data
        }
    }
    return out
}

/** One entry of the flash storage. */
export interface FstorEntry {
    key: string
    offset: number
    size: number
    data: Buffer
}

/**
 * Decodes the flash storage's entries, later ones replacing earlier ones with the same key.
 * Throws an Error naming `name` on a wrong magic or an entry pointing outside the buffer.
 */
export function decodeFstor(b: Uint8Array, name = "FSTR"): Map<string, FstorEntry> {
    const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    if (x.length < FSTOR_HEADER || x.readUInt32LE(0) !== FSTOR_MAGIC0 || x.readUInt32LE(4) !== FSTOR_MAGIC1)
        throw new Error(`${name}: no flash storage magic ("FSTR" 0x52545346 0x6becea0a) at its start`)
    const out = new Map<string, FstorEntry>()
    // the entry list lives in the first 4 KB page
    const limit = Math.min(x.length, 4096)
    for (let e = FSTOR_HEADER; e + FSTOR_ENTRY <= limit; e += FSTOR_ENTRY) {
        if (x[e] === 0xff) break
        const key = keyAt(x, e, name)
        const offset = x.readUInt32LE(e + 16)
        const size = x.readUInt32LE(e + 20)
        if (offset + size > x.length) throw new Error(`${name}: entry ${key} at ${offset}+${size} runs past the ${x.length}-byte storage`)
        out.set(key, { key, offset, size, data: Buffer.from(x.subarray(offset, offset + size)) })
    }
    return out
}

/** Everything read back from a bundle. */
export interface BundleContents {
    blocks: Uf2Block[]
    /** why the file would not flash on an RP2040 (empty when it would) */
    problems: string[]
    ranges: [number, number][]
    /** the board configuration at DCFG_ADDR */
    config: Record<string, DcfgValue>
    /** declared size of the board configuration */
    configSize: number
    /** the compiled DeviceScript image from the "*prog" entry */
    program: Buffer
    /** settings by name, values as the JSON text the device reads */
    settings: Record<string, string>
    /** the flash storage region as written (from FSTOR_ADDR to the end of its range) */
    storage: Buffer
}

/**
 * Reads a bundle UF2: checks it as an RP2040 image, decodes the board configuration and the flash
 * storage, and extracts the program and the settings. Throws an Error naming `name` and the part
 * that is missing or malformed.
 */
export function readBundle(uf2: Uint8Array, name = "bundle"): BundleContents {
    const blocks = parseUf2(uf2, name)
    const problems = rp2040Problems(blocks)
    const ranges = uf2Ranges(blocks)
    const head = readUf2(blocks, DCFG_ADDR, 12)
    if (!head) throw new Error(`${name}: nothing at 0x${DCFG_ADDR.toString(16)}, where the board configuration belongs`)
    const configSize = dcfgSize(head, `${name}: board configuration`)
    const cfgBytes = readUf2(blocks, DCFG_ADDR, configSize)
    if (!cfgBytes) throw new Error(`${name}: the board configuration declares ${configSize} bytes but the file does not hold them all`)
    const config = decodeDcfg(cfgBytes, `${name}: board configuration`)
    const fr = ranges.find(r => r[0] === FSTOR_ADDR)
    if (!fr) throw new Error(`${name}: nothing at 0x${FSTOR_ADDR.toString(16)}, where the program and settings belong`)
    const storage = readUf2(blocks, FSTOR_ADDR, Math.min(fr[1] - fr[0], FSTOR_SIZE))!
    const entries = decodeFstor(storage, `${name}: flash storage`)
    const prog = entries.get("*prog")
    if (!prog) throw new Error(`${name}: the flash storage has no program ("*prog" entry)`)
    const at = prog.data.subarray(0, 512).indexOf(DEVS_IMAGE_MAGIC)
    if (at < 0) throw new Error(`${name}: the program entry holds no DeviceScript image (magic "DevS" not found)`)
    const settings: Record<string, string> = {}
    for (const [k, e] of entries) if (k.startsWith(":")) settings[k.slice(1)] = e.data.toString("utf8")
    return { blocks, problems, ranges, config, configSize, program: Buffer.from(prog.data.subarray(at)), settings, storage }
}
