/**
 * Simulator-only heap measurement. The runtime has no free-heap API, so the soak runner finds the
 * largest ballast the firmware survives: with the setting BALLAST_KB the device holds that many
 * KB of live buffers for its whole run, next to everything else it allocates. If it still boots,
 * connects and reports, at least that much heap was spare. Not linked into board images.
 */
import { ReadSetting } from "../config"
import { loadSimSettings, runnerSetting } from "./hostlink"

/** The ballast, kept alive for the device's whole run. */
const held: Buffer[] = []

/**
 * The simulator images' boot hook: the settings (and time) from the runner, then the ballast.
 * Returns the reader of the runner's settings, or undefined without a runner (VS Code's simulator:
 * the settings store then holds the .env files).
 */
export async function simSettings(): Promise<ReadSetting> {
    const n = await loadSimSettings()
    if (n < 0) return undefined
    console.log(`boot: simulator: ${n} settings from the host link`)
    const kb = await runnerSetting("BALLAST_KB")
    if (typeof kb === "number" && kb > 0) {
        for (let i = 0; i < kb; i++) held.push(Buffer.alloc(1024))
        console.log(`ballast: holding ${held.length} KB of the heap`)
    }
    return runnerSetting
}
