/**
 * Which firmware image to build: one per cloud platform and target (src/images/), because the
 * DeviceScript VM caps an image at 64 KB of bytecode. The simulator runner, the build and the
 * bundle pick the image from the CLOUD setting.
 */
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
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
    if (chip === "w5100s" && target === "board" && !fs.existsSync(path.join(ROOT, entry)))
        throw new Error(`CLOUD=${c} has no W5100S board image: ${W5100S_LEFT_OUT[c] ?? `the W5100S board images are ${W5100S_BOARD_CLOUDS.join(", ")}`}`)
    if (chip !== "w5500" && !fs.existsSync(path.join(ROOT, entry)))
        throw new Error(`CLOUD=${c} has no ${chip === "picow" ? "Pico W" : "W5100S"} ${target} image: ${chip === "picow" ? "the Pico W" : "the W5100S"} has a generic-platform ${target} image only so far (CLOUD=generic; each image costs compile time in CI)`)
    if (!fs.existsSync(path.join(ROOT, entry))) {
        if (target === "board" && c === "azure")
            throw new Error("CLOUD=azure has no board image: Azure IoT Hub accepts TLS only, and the W5500 on the stock runtime is plain TCP")
        throw new Error(`no firmware image ${entry}`)
    }
    return entry
}

/**
 * The W5100S-EVB-Pico's board images: one per plain-TCP platform whose image fits the VM's 64 KB
 * with the W5100S driver in it (about 630 bytes more than the W5500 image of the same platform).
 * Each is the W5500 board image of its platform (src/images/board-<CLOUD>.ts) with the W5100S
 * starter instead of the W5500 one, written by `npx tsx sim/images.ts --write-w5100s`
 * (test/node/firmware-size.test.ts checks that they exist, fit, and match their W5500 image).
 */
export const W5100S_BOARD_CLOUDS: readonly string[] = ["generic", "alibaba", "huawei", "onenet", "tencent", "thingspeak"]

/** Plain-TCP platforms without a W5100S board image, and why. */
export const W5100S_LEFT_OUT: Readonly<Record<string, string>> = {
    azure: "Azure IoT Hub accepts TLS only, and the WIZnet chips on the stock runtime are plain TCP",
}

/** Path of the W5100S board image of `cloud`. */
export function w5100sBoardEntry(cloud: string): string {
    return `src/images/board-w5100s-${cloud}.ts`
}

/**
 * The source of the W5100S board image of `cloud`, made from its W5500 board image: the starter
 * `boardW5500` (src/compose/starters) becomes `boardW5100S` (src/compose/starters-w5100s) and the image
 * name gains "w5100s-". Throws naming the file and what it lacks when the W5500 image is not of
 * that shape.
 */
export function w5100sBoardImage(cloud: string, project = ROOT): string {
    const from = `src/images/board-${cloud}.ts`
    let src: string
    try {
        src = fs.readFileSync(path.join(project, from), "utf8")
    } catch (e) {
        throw new Error(`W5100S board image for CLOUD=${cloud}: cannot read its W5500 image ${from} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
    }
    const swaps: [RegExp, string, string][] = [
        [/^\/\*\*[^\n]*\*\/\n/, `/** Board image (W5100S-EVB-Pico), ${cloud} platform: ${from} with the W5100S as the board file's "wiz" section wires it. Written by \`npx tsx sim/images.ts --write-w5100s\`: edit ${from}, then rerun. */\n`, "a one-line /** ... */ doc comment first"],
        [/import \{ boardW5500 \} from "\.\.\/compose\/starters"/, `import { boardW5100S } from "../compose/starters-w5100s"`, `import { boardW5500 } from "../compose/starters"`],
        [/w5500: boardW5500\b/, "w5500: boardW5100S", "w5500: boardW5500"],
        [new RegExp(`name: "board-${cloud}"`), `name: "board-w5100s-${cloud}"`, `name: "board-${cloud}"`],
    ]
    for (const [re, to, what] of swaps) {
        if (!re.test(src)) throw new Error(`W5100S board image for CLOUD=${cloud}: ${from} has no ${what}, expected in a W5500 board image`)
        src = src.replace(re, to)
    }
    return src
}

/** Writes the W5100S board images (W5100S_BOARD_CLOUDS) from their W5500 images; returns the files changed. */
export function writeW5100sBoardImages(project = ROOT): string[] {
    const changed: string[] = []
    for (const c of W5100S_BOARD_CLOUDS) {
        const file = path.join(project, w5100sBoardEntry(c))
        const text = w5100sBoardImage(c, project)
        if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue
        fs.writeFileSync(file, text)
        changed.push(w5100sBoardEntry(c))
    }
    return changed
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    if (!process.argv.includes("--write-w5100s")) {
        console.error("usage: npx tsx sim/images.ts --write-w5100s   (writes src/images/board-w5100s-<CLOUD>.ts from the W5500 board images)")
        process.exit(2)
    }
    const changed = writeW5100sBoardImages()
    console.log(changed.length ? `wrote ${changed.join(", ")}` : "the W5100S board images are up to date")
}
