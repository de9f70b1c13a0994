/**
 * Bytecode budget of firmware images. The DeviceScript VM refuses an image whose function
 * bytecode (descriptors and code of every function) reaches 64 KB (verifier check 1051), so each
 * image in src/images must stay under it.
 *
 *   npx tsx sim/sizes.ts [entry.ts ...] [--files] [--functions PATTERN]
 *
 * Without entries: every image in src/images. --files: bytes per source file; --functions:
 * the functions of files whose path contains PATTERN, smallest first. Exits with 1, naming the
 * images, when one leaves less than HEADROOM bytes (room for the next feature, issue 16).
 */
import { execFileSync } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { DEVS_CLI, ROOT } from "./devs.ts"

/** What the verifier accepts: header + function descriptors + code below 0x10000. */
export const FUNCTION_LIMIT = 0x10000
/** What every image must leave free under FUNCTION_LIMIT, bytes. */
export const HEADROOM = 6 * 1024
/** The fixed header before the function section (112 bytes in 2.16.4). */
const HEADER = 112

export interface ImageSize {
    entry: string
    /** function descriptors and code, bytes */
    functions: number
    /** strings, floats (not limited by 1051) */
    data: number
    /** bytes per source file (functions) */
    files: Map<string, number>
    fns: { name: string; file: string; size: number }[]
    /** bytes left before the verifier refuses the image */
    left: number
}

interface DbgSource {
    path: string
    length: number
    index: number
}

/** Builds `entry` (without verifying) and measures it. Builds into .devicescript/bin (shared). */
export function measureImage(entry: string): ImageSize {
    try {
        execFileSync(process.execPath, [DEVS_CLI, "build", entry, "--no-verify", "--quiet"], { cwd: ROOT, stdio: "pipe" })
    } catch (e) {
        const err = e as { stderr?: Buffer; stdout?: Buffer }
        const text = `${err.stdout?.toString() ?? ""}${err.stderr?.toString() ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "")
        throw new Error(`${entry} does not compile:\n${text}`)
    }
    const dbg = JSON.parse(fs.readFileSync(path.join(ROOT, ".devicescript/bin/bytecode-dbg.json"), "utf8"))
    const sources = (dbg.sources as DbgSource[]).slice().sort((a, b) => a.index - b.index)
    const starts: number[] = []
    let pos = 0
    for (const s of sources) {
        starts.push(pos)
        pos += s.length
    }
    const fileOf = (loc: number) => {
        let lo = 0
        let hi = starts.length - 1
        while (lo < hi) {
            const mid = (lo + hi + 1) >> 1
            if (starts[mid] <= loc) lo = mid
            else hi = mid - 1
        }
        return sources[lo]?.path ?? "?"
    }
    const files = new Map<string, number>()
    const fns: ImageSize["fns"] = []
    let functions = 0
    for (const f of dbg.functions as { name: string; size: number; location: number[] }[]) {
        const file = fileOf(f.location[0])
        files.set(file, (files.get(file) ?? 0) + f.size)
        fns.push({ name: f.name, file, size: f.size })
        functions += f.size
    }
    const s = dbg.sizes
    return { entry, functions, data: s.strings + s.floats, files, fns, left: FUNCTION_LIMIT - HEADER - functions }
}

/** The images of `ms` that leave less than HEADROOM, each as "entry (N left)"; empty when every one has room. */
export function tightImages(ms: { entry: string; left: number }[]): string[] {
    return ms.filter(m => m.left < HEADROOM).map(m => `${m.entry} (${m.left} left)`)
}

/** The committed firmware images. */
export function imageEntries(): string[] {
    return fs
        .readdirSync(path.join(ROOT, "src/images"))
        .filter(f => f.endsWith(".ts"))
        .sort()
        .map(f => `src/images/${f}`)
}

function main() {
    const args = process.argv.slice(2)
    const showFiles = args.includes("--files")
    const fi = args.indexOf("--functions")
    const pattern = fi >= 0 ? args[fi + 1] : undefined
    const entries = args.filter((a, i) => a.endsWith(".ts") && (fi < 0 || i !== fi + 1))
    const measured: ImageSize[] = []
    for (const e of entries.length ? entries : imageEntries()) {
        const m = measureImage(e)
        measured.push(m)
        let verdict = m.left > 0 ? `${m.left} left` : `${-m.left} OVER THE LIMIT`
        if (m.left > 0 && m.left < HEADROOM) verdict += `, less than the ${HEADROOM} bytes of headroom`
        console.log(`${e}: ${m.functions} bytes of functions (${verdict}), ${m.data} bytes of data`)
        if (showFiles)
            for (const [f, n] of [...m.files].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(6)}  ${f}`)
        if (pattern)
            for (const f of m.fns.filter(f => f.file.includes(pattern)).sort((a, b) => a.size - b.size))
                console.log(`  ${String(f.size).padStart(6)}  ${f.name}  ${f.file}`)
    }
    const tight = tightImages(measured)
    if (tight.length) {
        console.error(`sizes: ${tight.length} image(s) leave less than ${HEADROOM} bytes of the ${FUNCTION_LIMIT}-byte function limit: ${tight.join(", ")}`)
        process.exitCode = 1
    }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
