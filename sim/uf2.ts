/**
 * The UF2 file format (Microsoft's USB flashing format, used by the RP2040 boot ROM): a file of
 * independent 512-byte blocks, each carrying up to 476 bytes (256 in practice) for one flash
 * address. Read and written here without any DeviceScript code, so that tests can check what the
 * DeviceScript CLI produced with a parser of their own.
 *
 * Block layout (all little-endian u32): 0 magic 0x0A324655, 4 magic 0x9E5D5157, 8 flags,
 * 12 target address, 16 payload size, 20 block number, 24 number of blocks, 28 family id (when
 * flag 0x2000 is set) or file size, 32..508 data, 508 magic 0x0AB16F30.
 */

/** First magic number of every block ("UF2\n"). */
export const UF2_MAGIC_START0 = 0x0a324655
/** Second magic number of every block. */
export const UF2_MAGIC_START1 = 0x9e5d5157
/** Magic number closing every block. */
export const UF2_MAGIC_END = 0x0ab16f30
/** Flag: the block is not meant for the main flash (comments, metadata). */
export const UF2_FLAG_NOT_MAIN_FLASH = 0x00000001
/** Flag: the word at offset 28 is a family id. */
export const UF2_FLAG_FAMILY_ID = 0x00002000
/** Family id of the RP2040 (what its boot ROM accepts). */
export const RP2040_FAMILY_ID = 0xe48bff56
/** Start of the RP2040's XIP flash in its address space. */
export const RP2040_FLASH_BASE = 0x10000000
/** Size of one UF2 block. */
export const UF2_BLOCK_SIZE = 512
/** Payload size the RP2040 boot ROM requires. */
export const RP2040_PAYLOAD = 256

/** One decoded UF2 block. */
export interface Uf2Block {
    /** position of the block in the file (0-based) */
    index: number
    flags: number
    targetAddr: number
    payloadSize: number
    blockNo: number
    numBlocks: number
    /** the family id, or 0 when the block does not carry one */
    familyId: number
    data: Buffer
}

/**
 * Decodes every block of a UF2 file. Throws an Error naming `name`, the block and the byte offset
 * when the file is not whole blocks, a magic number is wrong or a payload does not fit its block.
 */
export function parseUf2(buf: Uint8Array, name = "UF2 file"): Uf2Block[] {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
    if (b.length === 0) throw new Error(`${name}: empty file, expected 512-byte UF2 blocks`)
    if (b.length % UF2_BLOCK_SIZE)
        throw new Error(`${name}: ${b.length} bytes is not a whole number of 512-byte UF2 blocks (${b.length % UF2_BLOCK_SIZE} bytes left over)`)
    const out: Uf2Block[] = []
    for (let i = 0; i * UF2_BLOCK_SIZE < b.length; i++) {
        const o = i * UF2_BLOCK_SIZE
        const word = (k: number) => b.readUInt32LE(o + k)
        const hex = (v: number) => "0x" + v.toString(16).padStart(8, "0")
        if (word(0) !== UF2_MAGIC_START0 || word(4) !== UF2_MAGIC_START1)
            throw new Error(`${name}: block ${i} (offset ${o}) starts with ${hex(word(0))} ${hex(word(4))}, expected the UF2 magic ${hex(UF2_MAGIC_START0)} ${hex(UF2_MAGIC_START1)}`)
        if (word(508) !== UF2_MAGIC_END)
            throw new Error(`${name}: block ${i} (offset ${o}) ends with ${hex(word(508))}, expected the UF2 end magic ${hex(UF2_MAGIC_END)}`)
        const flags = word(8)
        const payloadSize = word(16)
        if (payloadSize > 476) throw new Error(`${name}: block ${i} declares a ${payloadSize}-byte payload, at most 476 fit in a block`)
        out.push({
            index: i,
            flags,
            targetAddr: word(12),
            payloadSize,
            blockNo: word(20),
            numBlocks: word(24),
            familyId: flags & UF2_FLAG_FAMILY_ID ? word(28) : 0,
            data: Buffer.from(b.subarray(o + 32, o + 32 + payloadSize)),
        })
    }
    return out
}

/**
 * What keeps a decoded UF2 from being flashable on an RP2040 with `flashBytes` of flash: wrong
 * family, payloads other than 256 bytes, addresses outside the flash or not 256-aligned, block
 * numbers out of sequence, a block count that does not match, the same address twice.
 * An empty list means the file is fine.
 */
export function rp2040Problems(blocks: Uf2Block[], flashBytes = 2 * 1024 * 1024): string[] {
    const problems: string[] = []
    const seen = new Map<number, number>()
    const end = RP2040_FLASH_BASE + flashBytes
    const hex = (v: number) => "0x" + v.toString(16)
    if (!blocks.length) problems.push("no blocks")
    for (const bl of blocks) {
        const at = `block ${bl.index}`
        if (bl.flags & UF2_FLAG_NOT_MAIN_FLASH) continue
        if (!(bl.flags & UF2_FLAG_FAMILY_ID)) problems.push(`${at}: no family id (flag 0x2000 unset)`)
        else if (bl.familyId !== RP2040_FAMILY_ID) problems.push(`${at}: family id ${hex(bl.familyId)}, expected the RP2040's ${hex(RP2040_FAMILY_ID)}`)
        if (bl.payloadSize !== RP2040_PAYLOAD) problems.push(`${at}: payload of ${bl.payloadSize} bytes, the RP2040 boot ROM takes ${RP2040_PAYLOAD}`)
        if (bl.targetAddr % RP2040_PAYLOAD) problems.push(`${at}: address ${hex(bl.targetAddr)} is not 256-aligned`)
        if (bl.targetAddr < RP2040_FLASH_BASE || bl.targetAddr + bl.payloadSize > end)
            problems.push(`${at}: address ${hex(bl.targetAddr)} is outside the flash ${hex(RP2040_FLASH_BASE)}..${hex(end)}`)
        if (bl.blockNo !== bl.index) problems.push(`${at}: numbered ${bl.blockNo}`)
        if (bl.numBlocks !== blocks.length) problems.push(`${at}: says the file has ${bl.numBlocks} blocks, it has ${blocks.length}`)
        const prev = seen.get(bl.targetAddr)
        if (prev !== undefined) problems.push(`${at}: address ${hex(bl.targetAddr)} already written by block ${prev}`)
        else seen.set(bl.targetAddr, bl.index)
    }
    return problems
}

/** Contiguous address ranges covered by the blocks, in address order: [start, end) pairs. */
export function uf2Ranges(blocks: Uf2Block[]): [number, number][] {
    const sorted = blocks.filter(b => !(b.flags & UF2_FLAG_NOT_MAIN_FLASH)).sort((a, b) => a.targetAddr - b.targetAddr)
    const out: [number, number][] = []
    for (const b of sorted) {
        const last = out[out.length - 1]
        if (last && b.targetAddr <= last[1]) last[1] = Math.max(last[1], b.targetAddr + b.payloadSize)
        else out.push([b.targetAddr, b.targetAddr + b.payloadSize])
    }
    return out
}

/**
 * The `length` bytes at `addr` as the flash would hold them after flashing the blocks, or
 * undefined when some byte of that range is in no block.
 */
export function readUf2(blocks: Uf2Block[], addr: number, length: number): Buffer | undefined {
    if (!(length >= 0)) throw new Error(`readUf2: length ${length} must be >= 0`)
    const out = Buffer.alloc(length)
    const covered = new Uint8Array(length)
    for (const b of blocks) {
        if (b.flags & UF2_FLAG_NOT_MAIN_FLASH) continue
        const from = Math.max(addr, b.targetAddr)
        const to = Math.min(addr + length, b.targetAddr + b.payloadSize)
        if (from >= to) continue
        b.data.copy(out, from - addr, from - b.targetAddr, to - b.targetAddr)
        covered.fill(1, from - addr, to - addr)
    }
    return covered.indexOf(0) >= 0 ? undefined : out
}

/**
 * Encodes `segments` (flash address and bytes) as an RP2040 UF2 file: 256-byte payloads at
 * 256-aligned addresses (a partial page is padded with 0xFF), family id set, blocks numbered in
 * address order.
 */
export function encodeUf2(segments: { addr: number; data: Uint8Array }[], familyId = RP2040_FAMILY_ID): Buffer {
    const pages = new Map<number, Buffer>()
    for (const s of segments) {
        for (let i = 0; i < s.data.length; ) {
            const a = s.addr + i
            const page = a - (a % RP2040_PAYLOAD)
            let p = pages.get(page)
            if (!p) {
                p = Buffer.alloc(RP2040_PAYLOAD, 0xff)
                pages.set(page, p)
            }
            const n = Math.min(RP2040_PAYLOAD - (a - page), s.data.length - i)
            p.set(s.data.subarray(i, i + n), a - page)
            i += n
        }
    }
    const addrs = [...pages.keys()].sort((a, b) => a - b)
    const out = Buffer.alloc(addrs.length * UF2_BLOCK_SIZE)
    addrs.forEach((a, i) => {
        const o = i * UF2_BLOCK_SIZE
        out.writeUInt32LE(UF2_MAGIC_START0, o)
        out.writeUInt32LE(UF2_MAGIC_START1, o + 4)
        out.writeUInt32LE(UF2_FLAG_FAMILY_ID, o + 8)
        out.writeUInt32LE(a, o + 12)
        out.writeUInt32LE(RP2040_PAYLOAD, o + 16)
        out.writeUInt32LE(i, o + 20)
        out.writeUInt32LE(addrs.length, o + 24)
        out.writeUInt32LE(familyId >>> 0, o + 28)
        pages.get(a)!.copy(out, o + 32)
        out.writeUInt32LE(UF2_MAGIC_END, o + 508)
    })
    return out
}
