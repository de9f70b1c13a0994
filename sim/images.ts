/**
 * Which firmware image to build: one per cloud platform and target (src/images/), because the
 * DeviceScript VM caps an image at 64 KB of bytecode. The simulator runner, the build and the
 * bundle pick the image from the CLOUD setting.
 */
import fs from "node:fs"
import path from "node:path"
import { ROOT } from "./devs.ts"

/** Where an image runs: the desktop simulator, or a W55RP20-EVB-Pico / W5500-EVB-Pico. */
export type Target = "sim" | "board"

/** The cloud platforms (CLOUD values), as in src/config.ts. */
export const CLOUDS = ["generic", "alibaba", "onenet", "azure", "thingspeak", "huawei", "tencent"] as const

/** The image entry for `target` and CLOUD=`cloud` (default generic); throws with the reason when there is none. */
export function imageFor(target: Target, cloud: unknown = "generic"): string {
    const c = cloud === undefined || cloud === "" ? "generic" : String(cloud)
    if (!(CLOUDS as readonly string[]).includes(c))
        throw new Error(`CLOUD=${JSON.stringify(c)} is not a platform this firmware knows (${CLOUDS.join(", ")})`)
    const entry = `src/images/${target}-${c}.ts`
    if (!fs.existsSync(path.join(ROOT, entry))) {
        if (target === "board" && c === "azure")
            throw new Error("CLOUD=azure has no board image: Azure IoT Hub accepts TLS only, and the W5500 on the stock runtime is plain TCP")
        throw new Error(`no firmware image ${entry}`)
    }
    return entry
}
