/**
 * Test programs' settings: what the Node side served over the host link (kept in memory by
 * src/simdev/hostlink.ts), with a default. Call `loadSimSettings()` first.
 */
import { runnerSetting } from "../../src/simdev/hostlink"

export async function readSetting<T>(key: string, def?: T): Promise<T> {
    const v = await runnerSetting(key)
    return v === undefined ? def : v
}
