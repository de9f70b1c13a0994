/**
 * Simulator-only heap measurement. The runtime has no free-heap API, so the soak runner finds the
 * largest ballast the firmware survives: with the setting BALLAST_KB the device holds that many
 * KB of live buffers for its whole run, next to everything else it allocates. If it still boots,
 * connects and reports, at least that much heap was spare. Not linked into board images.
 */
import { readSetting } from "@devicescript/settings"
import { loadSimSettings } from "./hostlink"

/** The ballast, kept alive for the device's whole run. */
const held: Buffer[] = []

/** The simulator images' boot hook: settings (and time) from the runner, then the ballast. */
export async function simSettings(): Promise<number> {
    const n = await loadSimSettings()
    const kb = await readSetting<number>("BALLAST_KB", 0)
    if (typeof kb === "number" && kb > 0) {
        for (let i = 0; i < kb; i++) held.push(Buffer.alloc(1024))
        console.log(`ballast: holding ${held.length} KB of the heap`)
    }
    return n
}
