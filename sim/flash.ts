/**
 * `npm run flash`: copies the bundle UF2 (from `npm run bundle`) to a board in BOOTSEL mode.
 * An RP2040 in BOOTSEL mode shows up as a USB drive named RPI-RP2 holding INFO_UF2.TXT
 * ("Board-ID: RPI-RP2"); copying a UF2 file onto it writes the flash and restarts the board.
 * The drive is looked for under /media/<user>, /run/media/<user>, /media and /mnt (Linux),
 * /Volumes (macOS) and the drive letters (Windows). When there is none, it explains the BOOTSEL
 * steps (and waits for the drive when run in a terminal) and the `devs flash --file` alternative.
 * Run `npm run flash -- --help` for the options.
 */
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundlePath, DEFAULT_BOARD, W5500_MARKER } from "./bundle.ts"
import { readBundle } from "./bundle-image.ts"
import { parseToolArgs, toolMain } from "./toolargs.ts"

/** The `--help` text. */
export const USAGE = `Usage: npm run flash -- [options]

Copies the bundle made by npm run bundle to a board in BOOTSEL mode (its RPI-RP2 USB drive).

Options:
  --board ID     which bundle: .devicescript/bin/bundle-devicescript-rp2040-ID.uf2
                 (default w55rp20_evb_pico; also w5500_evb_pico)
  --file UF2     copy this UF2 file instead
  --drive DIR    the mounted RPI-RP2 drive (default: found by its INFO_UF2.TXT)
  --wait S       wait up to S seconds for the drive (default 60 in a terminal, else 0)
  --project DIR  project folder (default: this repository)
  -h, --help     show this help and exit`

/** Parsed command line. */
export interface FlashOptions {
    help: boolean
    board: string
    file: string
    /** the drive given with --drive */
    drive?: string
    waitS: number
    project: string
    /** folders to look for the drive in (default: the platform's mount points) */
    dirs?: string[]
}

/** Parses the command line; throws an Error naming a bad option. */
export function parseFlashArgs(argv: string[], interactive = !!process.stdout.isTTY): FlashOptions {
    const a = parseToolArgs("flash", USAGE, argv, { file: { type: "string" }, drive: { type: "string" }, wait: { type: "string" } }, DEFAULT_BOARD)
    const { board, project } = a
    const v = a.values
    let waitS = interactive ? 60 : 0
    if (v.wait !== undefined) {
        waitS = Number(v.wait)
        if (!/^\d+$/.test(v.wait) || waitS > 3600) throw new Error(`flash: --wait must be a whole number of seconds 0..3600, got ${JSON.stringify(v.wait)}`)
    }
    return {
        help: a.help,
        board,
        file: v.file ? path.resolve(v.file) : bundlePath(project, board),
        drive: v.drive ? path.resolve(v.drive) : undefined,
        waitS,
        project,
    }
}

/** A mounted UF2 bootloader drive. */
export interface UF2Drive {
    path: string
    /** the Board-ID line of INFO_UF2.TXT ("RPI-RP2" for an RP2040) */
    boardId: string
    model: string
}

/** Board-ID of the RP2040 boot ROM's drive. */
export const RP2040_BOARD_ID = "RPI-RP2"

/** Reads INFO_UF2.TXT in `dir` (any letter case); undefined when `dir` is not a UF2 drive. */
export function readUf2Drive(dir: string): UF2Drive | undefined {
    let names: string[]
    try {
        names = fs.readdirSync(dir)
    } catch {
        return undefined
    }
    const info = names.find(n => n.toUpperCase() === "INFO_UF2.TXT")
    if (!info) return undefined
    let text = ""
    try {
        text = fs.readFileSync(path.join(dir, info), "latin1")
    } catch {
        return undefined
    }
    const field = (k: string) => (new RegExp(`^${k}:\\s*(.*?)\\s*$`, "mi").exec(text) || [])[1] || ""
    return { path: dir, boardId: field("Board-ID"), model: field("Model") }
}

/** Folders that may be a mounted drive on this platform (their INFO_UF2.TXT decides). */
export function candidateDirs(platform = process.platform, user = safeUser()): string[] {
    const out: string[] = []
    const children = (root: string) => {
        try {
            for (const d of fs.readdirSync(root, { withFileTypes: true })) if (d.isDirectory()) out.push(path.join(root, d.name))
        } catch {}
    }
    if (platform === "win32") {
        for (let c = "C".charCodeAt(0); c <= "Z".charCodeAt(0); c++) out.push(String.fromCharCode(c) + ":\\")
    } else if (platform === "darwin") children("/Volumes")
    else {
        if (user) {
            children(`/media/${user}`)
            children(`/run/media/${user}`)
        }
        children("/media")
        children("/mnt")
    }
    return [...new Set(out)]
}

function safeUser(): string {
    try {
        return process.env.USER || os.userInfo().username
    } catch {
        return ""
    }
}

/** UF2 drives among `dirs` (default: the platform's mount points), RP2040 ones first. */
export function findUf2Drives(dirs = candidateDirs()): UF2Drive[] {
    const found: UF2Drive[] = []
    for (const d of dirs) {
        const drive = readUf2Drive(d)
        if (drive) found.push(drive)
    }
    return found.sort((a, b) => Number(b.boardId === RP2040_BOARD_ID) - Number(a.boardId === RP2040_BOARD_ID))
}

/** The steps to put the board in BOOTSEL mode and the alternatives, for `file`. */
export function bootselHelp(file: string, board: string, project: string): string[] {
    const rel = path.relative(project, file) || file
    return [
        `Put the board in BOOTSEL mode (the RP2040 boot ROM then shows a USB drive named RPI-RP2):`,
        `  1. unplug the USB cable;`,
        `  2. hold the BOOTSEL button and plug the cable back in, then release the button`,
        `     (with the cable in: hold BOOTSEL, press and release RUN/RESET, release BOOTSEL);`,
        `  3. wait for the RPI-RP2 drive (Linux: your desktop mounts it under /media/$USER or /run/media/$USER;`,
        `     without a desktop: sudo mount /dev/sdX1 /mnt, see lsblk);`,
        `  4. run npm run flash${board === DEFAULT_BOARD ? "" : ` -- --board ${board}`} again, or copy the file onto the drive by hand:`,
        `       ${rel}`,
        `Or let the DeviceScript CLI copy it (it looks in /media/$USER, /Volumes, drive letters):`,
        `  npx devs flash --board ${board} --file ${rel} [--drive <mount point>]`,
    ]
}

/**
 * Copies `file` onto the drive: checks first that it reads as a bundle for an RP2040. Returns what
 * to tell the user; throws an Error when the file is not a flashable bundle or the copy fails early.
 */
export function copyToDrive(file: string, drive: UF2Drive, log: (s: string) => void) {
    let buf: Buffer
    try {
        buf = fs.readFileSync(file)
    } catch (e) {
        throw new Error(`flash: cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`)
    }
    const c = readBundle(buf, path.basename(file))
    if (c.problems.length) throw new Error(`flash: ${file} would not flash on an RP2040:\n  ${c.problems.join("\n  ")}`)
    const target = path.join(drive.path, path.basename(file))
    log(`flash: copying ${path.basename(file)} (${buf.length} bytes, ${c.config.devName}) to ${drive.path} (${drive.model || "UF2 drive"}, ${drive.boardId})`)
    try {
        fs.writeFileSync(target, buf)
    } catch (e) {
        // the board may restart (and its drive vanish) before the OS closes the file
        log(`flash: the copy ended with ${(e as Error).message}: if the RPI-RP2 drive disappeared, the board has restarted with the new firmware; otherwise try again`)
        return
    }
    log(`flash: done: the board writes the flash and restarts into the firmware (its RPI-RP2 drive disappears)`)
    if (!c.program.includes(W5500_MARKER))
        log(`flash: NOTE: this firmware has no W5500 stack yet (it does not fit the image): the board stops at boot with "NET=w5500: ..." and does not report`)
    log(`flash: its console: connect the board in VS Code (DeviceScript: Connect, Serial) or run npx devs devtools --serial (see docs/hardware.md, "The serial console")`)
}

/** Flashes as the options say; resolves to the exit code. */
export async function flash(o: FlashOptions, log: (s: string) => void = s => console.log(s)): Promise<number> {
    if (!fs.existsSync(o.file)) {
        log(`flash: ${path.relative(o.project, o.file) || o.file} does not exist: run npm run bundle${o.board === DEFAULT_BOARD ? "" : ` -- --board ${o.board}`} first`)
        return 1
    }
    if (o.drive) {
        const d = readUf2Drive(o.drive)
        if (!d) {
            log(`flash: ${o.drive} holds no INFO_UF2.TXT: it is not a UF2 bootloader drive (is the board in BOOTSEL mode and the drive mounted there?)`)
            return 1
        }
        if (d.boardId !== RP2040_BOARD_ID) {
            log(`flash: ${o.drive} is a UF2 drive for "${d.boardId}", not an RP2040 (Board-ID ${RP2040_BOARD_ID})`)
            return 1
        }
        copyToDrive(o.file, d, log)
        return 0
    }
    const deadline = Date.now() + o.waitS * 1000
    let told = false
    for (;;) {
        const all = findUf2Drives(o.dirs)
        const rp = all.filter(d => d.boardId === RP2040_BOARD_ID)
        if (rp.length > 1) {
            log(`flash: ${rp.length} RPI-RP2 drives are mounted; choose one with --drive: ${rp.map(d => d.path).join(", ")}`)
            return 1
        }
        if (rp.length === 1) {
            copyToDrive(o.file, rp[0], log)
            return 0
        }
        if (!told) {
            told = true
            log(`flash: no RPI-RP2 drive found${all.length ? ` (other UF2 drives: ${all.map(d => `${d.path} ${d.boardId}`).join(", ")})` : ""}.`)
            for (const l of bootselHelp(o.file, o.board, o.project)) log(l)
            if (o.waitS > 0) log(`flash: waiting up to ${o.waitS} s for the drive (Ctrl-C to stop)...`)
        }
        if (Date.now() >= deadline) return 1
        await new Promise(r => setTimeout(r, 1000))
    }
}

/** Entry point of `npm run flash`; resolves to the exit code. */
export function main(argv: string[]): Promise<number> {
    return toolMain(argv, USAGE, parseFlashArgs, flash)
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(fileURLToPath(import.meta.url))
if (isMain) main(process.argv.slice(2)).then(code => process.exit(code))
