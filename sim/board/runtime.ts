/**
 * Where the emulated board's DeviceScript RP2040 runtime and the RP2040 bootrom come from: the
 * steering folder beside the clone (`<repo>/../shared/rp2040/`, also in CI), or the folder
 * `W55_RP2040_DIR` names. Nothing here is vendored (see docs/runtime.md): the UF2 is
 * checked against the SHA-256 below when it is loaded.
 */
import crypto from "node:crypto"
import fs from "node:fs"
import path from "node:path"
import { pathToFileURL } from "node:url"
import { ROOT } from "../devs.ts"

/** Environment variable naming the folder that holds the runtime UF2 and bootrom.mjs. */
export const RUNTIME_DIR_ENV = "W55_RP2040_DIR"
/** File name of the stock runtime in that folder. */
export const RUNTIME_UF2 = "devicescript-rp2040-generic.uf2"
/** File name of the RP2040 B1 bootrom module in that folder (exports `bootromB1`, a Uint32Array). */
export const BOOTROM_MODULE = "bootrom.mjs"
/**
 * Set to 1 to accept a runtime UF2 with another SHA-256 (a patched runtime being measured, e.g. with
 * `npm run profile`); `npm run bundle` then says so and prints its checksum. Never set in CI.
 */
export const RUNTIME_UNCHECKED_ENV = "W55_RP2040_UNCHECKED"
/** SHA-256 of the runtime UF2 this project was checked with (DeviceScript runtime v2.16.0, board generic). */
export const RUNTIME_SHA256 = "dd532766c3ca853fc6a0c63c801f1dbbbc19e415b8d903ac9e8a0704b3afb95a"

/** The runtime folder is missing or holds the wrong files; the message says which and what is expected. */
export class RuntimeMissingError extends Error {}

/** The one place that resolves the runtime folder: `$W55_RP2040_DIR`, else `<repo>/../shared/rp2040`. */
export function runtimeDir(): string {
    const env = process.env[RUNTIME_DIR_ENV]
    return env ? path.resolve(env) : path.resolve(ROOT, "../shared/rp2040")
}

/** The runtime's ELF (its symbols, for the profiler and the heap watch): the UF2's name with `.elf`. */
export function runtimeElfPath(): string {
    return path.join(runtimeDir(), RUNTIME_UF2.replace(/\.uf2$/, ".elf"))
}

/** Path of the runtime UF2 (it may not exist: see `checkRuntime`). */
export function runtimeUf2Path(): string {
    return path.join(runtimeDir(), RUNTIME_UF2)
}

/** SHA-256 of a buffer, hex. */
export function sha256(b: Uint8Array): string {
    return crypto.createHash("sha256").update(b).digest("hex")
}

/**
 * Reads the runtime UF2 and checks its SHA-256; returns its bytes. Throws a RuntimeMissingError
 * naming the path and what is expected when it is absent or different.
 */
export function readRuntimeUf2(): Buffer {
    const file = runtimeUf2Path()
    let buf: Buffer
    try {
        buf = fs.readFileSync(file)
    } catch (e) {
        throw new RuntimeMissingError(
            `emulated board: the DeviceScript RP2040 runtime is not there: ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).\n` +
                `  Expected the steering folder's ${RUNTIME_UF2} (SHA-256 ${RUNTIME_SHA256}) beside the clone, or set ${RUNTIME_DIR_ENV} to the folder holding it (see docs/runtime.md).`
        )
    }
    const got = sha256(buf)
    if (got !== RUNTIME_SHA256 && process.env[RUNTIME_UNCHECKED_ENV] !== "1")
        throw new RuntimeMissingError(
            `emulated board: ${file} is not the runtime this project was checked with: SHA-256 ${got}, expected ${RUNTIME_SHA256} (see docs/runtime.md)`
        )
    return buf
}

/** Loads the RP2040 B1 bootrom from the runtime folder (a copy: callers may patch it). */
export async function loadBootrom(): Promise<Uint32Array> {
    const file = path.join(runtimeDir(), BOOTROM_MODULE)
    if (!fs.existsSync(file))
        throw new RuntimeMissingError(`emulated board: the RP2040 bootrom is not there: ${file}; expected the steering folder's ${BOOTROM_MODULE} (exports bootromB1), or set ${RUNTIME_DIR_ENV} (see docs/runtime.md)`)
    const mod = (await import(pathToFileURL(file).href)) as { bootromB1?: unknown }
    const rom = mod.bootromB1
    if (!(rom instanceof Uint32Array) || rom.length !== 4096)
        throw new RuntimeMissingError(`emulated board: ${file} must export bootromB1, a Uint32Array of 4096 words (the 16 KB RP2040 B1 bootrom)`)
    return Uint32Array.from(rom)
}

/**
 * Why the emulated board cannot run here, or undefined when it can (runtime and bootrom present,
 * checksum right). Tests skip with this message, except under CI, where they fail.
 */
export function runtimeUnavailable(): string | undefined {
    try {
        readRuntimeUf2()
    } catch (e) {
        return (e as Error).message
    }
    if (!fs.existsSync(path.join(runtimeDir(), BOOTROM_MODULE))) return `emulated board: no ${BOOTROM_MODULE} in ${runtimeDir()}`
    return undefined
}
