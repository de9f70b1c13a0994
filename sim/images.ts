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

/**
 * How a board reaches the network: "w5500" (a "w5500" section: W55RP20-EVB-Pico, W5500-EVB-Pico),
 * "w5100s" (a "wiz" section with chip "w5100s": W5100S-EVB-Pico), or "picow" (the Raspberry Pi
 * Pico W: the stock runtime's board "pico_w", whose Wi-Fi sockets the firmware uses; no board file).
 */
export type NetChip = "w5500" | "w5100s" | "picow"

/** The stock DeviceScript board id of the Raspberry Pi Pico W. */
export const PICO_W = "pico_w"

/** The network chip of board `board` (boards/<board>.board.json, or pico_w); throws naming the board files there are. */
export function chipOfBoard(board: string, project = ROOT): NetChip {
    if (board === PICO_W) return "picow"
    const file = path.join(project, "boards", `${board}.board.json`)
    if (!fs.existsSync(file)) {
        const dir = path.join(project, "boards")
        const have = fs.existsSync(dir) ? fs.readdirSync(dir).filter(f => f.endsWith(".board.json")).map(f => f.replace(/\.board\.json$/, "")) : []
        throw new Error(`no board file boards/${board}.board.json; boards: ${[...have, PICO_W].join(", ")}`)
    }
    let json: { w5500?: unknown; wiz?: { chip?: unknown } }
    try {
        json = JSON.parse(fs.readFileSync(file, "utf8"))
    } catch (e) {
        throw new Error(`boards/${board}.board.json is not valid JSON: ${(e as Error).message}`)
    }
    if (json.wiz?.chip === "w5100s") return "w5100s"
    if (json.w5500) return "w5500"
    throw new Error(`boards/${board}.board.json has neither a "w5500" section nor a "wiz" section with chip "w5100s": no network this firmware drives`)
}

/** The image entry for `target` and CLOUD=`cloud` (default generic) on a board with `chip`; throws with the reason when there is none. */
export function imageFor(target: Target, cloud: unknown = "generic", chip: NetChip = "w5500"): string {
    const c = cloud === undefined || cloud === "" ? "generic" : String(cloud)
    if (!(CLOUDS as readonly string[]).includes(c))
        throw new Error(`CLOUD=${JSON.stringify(c)} is not a platform this firmware knows (${CLOUDS.join(", ")})`)
    const entry = chip === "w5500" ? `src/images/${target}-${c}.ts` : `src/images/${target}-${chip}-${c}.ts`
    if (chip !== "w5500" && !fs.existsSync(path.join(ROOT, entry)))
        throw new Error(`CLOUD=${c} has no ${chip === "picow" ? "Pico W" : "W5100S"} ${target} image: ${chip === "picow" ? "the Pico W" : "the W5100S"} has a generic-platform image only so far (CLOUD=generic; each image costs compile time in CI)`)
    if (!fs.existsSync(path.join(ROOT, entry))) {
        if (target === "board" && c === "azure")
            throw new Error("CLOUD=azure has no board image: Azure IoT Hub accepts TLS only, and the W5500 on the stock runtime is plain TCP")
        throw new Error(`no firmware image ${entry}`)
    }
    return entry
}
