/**
 * The simulator images' settings hook (`Image.settings`): the settings and the time from the
 * runner over the host link, then the heap probe's ballast (src/simdev/ballast.ts) if asked for.
 */
import { ReadSetting } from "../config"
import { startBallast } from "./ballast"
import { loadSimSettings, runnerSetting } from "./hostlink"

/**
 * The simulator images' boot hook: the settings (and time) from the runner, then the ballast.
 * Returns the reader of the runner's settings, or undefined without a runner (VS Code's simulator:
 * the settings store then holds the .env files).
 */
export async function simSettings(): Promise<ReadSetting> {
    const n = await loadSimSettings()
    if (n < 0) return undefined
    console.log(`boot: simulator: ${n} settings from the host link`)
    await startBallast(runnerSetting)
    return runnerSetting
}

