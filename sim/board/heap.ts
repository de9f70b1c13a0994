/**
 * The DeviceScript VM's heap on the emulated board, read from the RP2040's RAM: what the stock
 * runtime offers the program no API for. The runtime allocates the heap once (`global_gc` in
 * devicescript's `gc_alloc.c`: a `devs_gc_t` header, then one chunk of JD_GC_KB = 64 KB) and
 * carves it into blocks, each a header word (bits 24-31 the kind and GC flags, bits 0-23 the
 * size in words) and its data; free blocks have kind 1. `curr_alloc` counts the words allocated
 * since the last collection; the sweep sets it to 0 as it starts. When a look (between batches of
 * instructions) finds it smaller than the last time, a collection has begun; at the first look
 * after it grew again (the first allocation after the sweep) whose walk finds every block whole
 * (a look can fall in the middle of an allocation carving a free block: then the next one tries),
 * the blocks in use minus those allocated since are what survived the collection, everything the
 * program could still reach then (within the size of the allocation under way).
 */
import fs from "node:fs"
import type { RP2040 } from "rp2040js"
import { DEVS_CLI } from "../devs.ts"
import { elfVariable } from "./elf.ts"
import {
    ACT_FUNC,
    CHUNK_END,
    CHUNK_START,
    CTX_IMG,
    GC_CTX,
    GC_CURR_ALLOC,
    GC_FIRST_CHUNK,
    IMG_ASCII_STRINGS,
    IMG_STRING_DATA,
    IMG_UTF8_STRINGS,
    MAP_CAPACITY,
    MAP_DATA,
    MAP_LENGTH,
    MAP_PROTO,
    STR_DATA,
    STR_LENGTH,
} from "./layout.ts"

/** Kinds of heap blocks (DEVS_GC_TAG_* in devicescript's devs_objects.h; the low 4 bits of a header's tag). */
const KINDS = ["null", "free", "raw", "array", "map", "buffer", "string", "bound function", "activation", "half-static map", "short map", "packet", "string (with index)", "image"]
const TAG_FREE = 1
/** The chunk's end marker: kind 0xf with the pinned flag (DEVS_GC_TAG_FINAL). */
const TAG_FINAL = 0x4f
const TAG_ACTIVATION = 8
const TAG_BYTES = 2
const TAG_STRING = 6
const TAG_STRING_JMP = 12
/**
 * Objects whose elements live in a raw block of their own (MAP_DATA of devs_map_t, devs_short_map_t
 * and devs_array_t points at the block's data after its header): a map's entries take 16 bytes
 * each (key and value, 8-byte values), an array's elements 8.
 */
const STORAGE_OF: { [kind: number]: string } = { 3: "array elements", 4: "map entries", 9: "map entries", 10: "short map entries" }
const TAG_MAP = 4
const TAG_HALF_STATIC_MAP = 9
/** bytes of one map entry: key and value, 8-byte values each */
const ENTRY_BYTES = 16

/** Adds `n` to `key`'s count in `m`. */
function add<K>(m: Map<K, number>, key: K, n: number) {
    m.set(key, (m.get(key) ?? 0) + n)
}

/** One walk of the heap. */
export interface HeapLook {
    /** virtual seconds since power-on */
    atSeconds: number
    /** bytes of the chunk's blocks (the heap less its headers) */
    totalBytes: number
    /** bytes of blocks in use (headers included) */
    usedBytes: number
    /** bytes allocated since the last collection (`curr_alloc`) */
    sinceGcBytes: number
    /** the largest free block, bytes: the largest allocation that fits without a collection */
    largestFreeBytes: number
    /** bytes in use by block kind */
    byKind: Map<string, number>
    /** bytes of activations (call frames: of running and suspended fibers) by their function's descriptor address */
    frames: Map<number, number>
    /** objects (maps) grouped by their prototype's address: how many, their entries and the bytes of entry storage (capacity x 16) */
    byPrototype: Map<number, { objects: number; entries: number; storageBytes: number }>
    /** entries (methods, for a class) of each prototype that is itself in the heap, by its address */
    prototypeEntries: Map<number, number>
    /** objects grouped by their keys (the first 8, in order) and their prototype: how many, and the bytes of entry storage */
    byKeys: Map<string, { proto: number; objects: number; storageBytes: number }>
}

/** The runtime's built-in strings by index (DEVS_BUILTIN_STRING_*), as the compiler's CLI lists them; [] when it cannot be read. */
function builtinStrings(): string[] {
    try {
        const src = fs.readFileSync(DEVS_CLI, "utf8")
        const m = /var BUILTIN_STRING__VAL = (\[[^\]]*\]);/.exec(src)
        return m ? (JSON.parse(m[1]) as string[]) : []
    } catch {
        return []
    }
}

/**
 * The text of a map key (a value_t: `lo` the low word, `hi` the high one; devs_value.h): an image
 * string (ASCII, UTF-8 or built-in: handle type 4, the section in bits 14-15 of the index), a
 * string in the heap (a pointer: handle types 8 and up), a number, else `?`.
 */
function keyText(m: RP2040, img: number, builtins: string[], lo: number, hi: number): string {
    if (hi === 0xffffffff) return String(lo | 0) // a tagged integer
    if ((hi >>> 20) & 0x7ff) return "(number)"
    const type = hi & 0xf
    const readZ = (at: number, n = 64) => {
        let r = ""
        for (let i = 0; i < n; i++) {
            const c = m.readUint8(at + i)
            if (!c) break
            r += String.fromCharCode(c)
        }
        return r
    }
    if (type === 4) {
        const kind = (lo & 0xffff) >> 14
        const i = lo & 0x3fff
        const data = img + m.readUint32(img + IMG_STRING_DATA)
        if (kind === 1) return builtins[i] ?? `(built-in string ${i})`
        if (kind === 2) return readZ(data + m.readUint16(img + m.readUint32(img + IMG_ASCII_STRINGS) + 2 * i))
        if (kind === 3) {
            // devs_utf8_string_t: size, length, a jump table of length >> 4 entries, then the bytes
            const at = data + m.readUint32(img + m.readUint32(img + IMG_UTF8_STRINGS) + 4 * i)
            return readZ(at + 4 + 2 * (m.readUint16(at + 2) >> 4), m.readUint16(at))
        }
        return "(buffer)"
    }
    if (type & 8) {
        const p = lo >>> 0
        const kind = (m.readUint32(p) >>> 24) & 0xf
        if (kind === TAG_STRING) return readZ(p + STR_DATA, m.readUint16(p + STR_LENGTH))
        if (kind === TAG_STRING_JMP) return readZ(p + 8 + 2 * (m.readUint16(p + 6) >> 4), m.readUint16(p + 4))
    }
    return "?"
}

/** A walk met a block the runtime is still writing (the next look tries again). */
export class TornHeap extends Error {}

/** Watches the VM's heap: `look()` between batches of instructions walks it after each collection. */
export class HeapWatch {
    /** collections seen */
    gcs = 0
    /** the look after the collection that left the most in use (survivors: used minus allocated since) */
    peak?: HeapLook
    /** where `global_gc` (a pointer to the heap) is */
    private readonly varAddr: number
    private gcAddr = 0
    private lastAlloc = -1
    /** a collection began since the last walk */
    private collected = false
    private readonly builtins = builtinStrings()

    /** `elf`: the runtime's ELF, for the address of `global_gc`; `seconds`: the board's virtual time. */
    constructor(
        private readonly mcu: RP2040,
        elf: string,
        private readonly seconds: () => number
    ) {
        this.varAddr = elfVariable(elf, "global_gc")
    }

    /** Bytes that survived a collection in `l`. */
    static survivors(l: HeapLook): number {
        return l.usedBytes - l.sinceGcBytes
    }

    /** Bytes of the heap the collection in `l` left free. */
    static spare(l: HeapLook): number {
        return l.totalBytes - HeapWatch.survivors(l)
    }

    /** Cheap unless a collection ran: then walks the heap and keeps the peak. */
    look() {
        if (!this.gcAddr) {
            this.gcAddr = this.mcu.readUint32(this.varAddr)
            if (!this.gcAddr) return // the program has not started
        }
        const alloc = this.mcu.readUint32(this.gcAddr + GC_CURR_ALLOC)
        if (alloc < this.lastAlloc) {
            this.gcs++
            this.collected = true
        }
        this.lastAlloc = alloc
        if (!this.collected || !alloc) return
        let l: HeapLook
        try {
            l = this.walk()
        } catch (e) {
            if (e instanceof TornHeap) return // an allocation half done: look again after the next batch
            throw e
        }
        this.collected = false
        if (!this.peak || HeapWatch.survivors(l) > HeapWatch.survivors(this.peak)) this.peak = l
    }

    /** Walks every block; throws (with the address) on a header that cannot be. */
    walk(): HeapLook {
        const m = this.mcu
        const gc = this.gcAddr || m.readUint32(this.varAddr)
        if (!gc) throw new Error("heap: global_gc is not set: the VM has not started")
        const chunk = m.readUint32(gc + GC_FIRST_CHUNK)
        const end = m.readUint32(chunk + CHUNK_END)
        const byKind = new Map<string, number>()
        const frames = new Map<number, number>()
        // raw blocks holding the elements of maps and arrays, by block address; the rest of the raw
        // blocks are the runtime's own (fibers, globals, roles, pin states)
        const storage = new Map<number, string>()
        const raw: [number, number][] = []
        const maps: { at: number; proto: number; len: number; cap: number }[] = []
        let used = 0
        let largestFree = 0
        let at = chunk + CHUNK_START
        while (at < end) {
            const h = m.readUint32(at)
            const tag = h >>> 24
            const words = h & 0xffffff
            if (tag === TAG_FINAL) break
            if (words < 1 || at + words * 4 > end) throw new TornHeap(`heap: block at 0x${at.toString(16)} has header 0x${h.toString(16)}: not a block of the chunk ending at 0x${end.toString(16)}`)
            const kind = tag & 0xf
            const bytes = words * 4
            if (kind === TAG_FREE) largestFree = Math.max(largestFree, bytes)
            else {
                used += bytes
                const owner = STORAGE_OF[kind]
                if (owner) {
                    const data = m.readUint32(at + MAP_DATA) >>> 0
                    if (data) storage.set(data - 4, owner)
                }
                if (kind === TAG_MAP || kind === TAG_HALF_STATIC_MAP)
                    maps.push({ at, proto: m.readUint32(at + MAP_PROTO) >>> 0, len: m.readUint16(at + MAP_LENGTH), cap: m.readUint16(at + MAP_CAPACITY) })
                if (kind === TAG_BYTES) raw.push([at, bytes])
                else add(byKind, KINDS[kind] ?? `kind ${kind}`, bytes)
                if (kind === TAG_ACTIVATION) add(frames, m.readUint32(at + ACT_FUNC) >>> 0, bytes)
            }
            at += bytes
        }
        if (at !== end) throw new TornHeap(`heap: the blocks end at 0x${at.toString(16)}, not at the chunk's end 0x${end.toString(16)}`)
        const byPrototype = new Map<number, { objects: number; entries: number; storageBytes: number }>()
        for (const x of maps) {
            const e = byPrototype.get(x.proto) ?? { objects: 0, entries: 0, storageBytes: 0 }
            e.objects++
            e.entries += x.len
            e.storageBytes += x.cap * ENTRY_BYTES
            byPrototype.set(x.proto, e)
        }
        const prototypeEntries = new Map<number, number>()
        for (const x of maps) if (byPrototype.has(x.at)) prototypeEntries.set(x.at, x.len)
        const img = m.readUint32(m.readUint32(gc + GC_CTX) + CTX_IMG) >>> 0
        const byKeys = new Map<string, { proto: number; objects: number; storageBytes: number }>()
        for (const x of maps) {
            const data = m.readUint32(x.at + MAP_DATA) >>> 0
            const keys: string[] = []
            for (let i = 0; i < Math.min(x.len, 8); i++) keys.push(keyText(m, img, this.builtins, m.readUint32(data + i * ENTRY_BYTES), m.readUint32(data + i * ENTRY_BYTES + 4)))
            const sig = `${x.proto.toString(16)} {${keys.join(", ")}${x.len > 8 ? `, +${x.len - 8}` : ""}}`
            const e = byKeys.get(sig) ?? { proto: x.proto, objects: 0, storageBytes: 0 }
            e.objects++
            e.storageBytes += x.cap * ENTRY_BYTES
            byKeys.set(sig, e)
        }
        for (const [a, n] of raw) add(byKind, storage.get(a) ?? "raw (fibers, globals, roles...)", n)
        return {
            atSeconds: this.seconds(),
            totalBytes: end - (chunk + CHUNK_START),
            usedBytes: used,
            sinceGcBytes: m.readUint32(gc + GC_CURR_ALLOC) * 4,
            largestFreeBytes: largestFree,
            byKind,
            frames,
            byPrototype,
            prototypeEntries,
            byKeys,
        }
    }
}
