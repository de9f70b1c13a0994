/**
 * `npm run bundle`: one UF2 file for a board, made of the stock DeviceScript RP2040 runtime, the
 * board configuration (boards/<id>.board.json), the compiled board image of the chosen CLOUD (src/images/board-<CLOUD>.ts) and the
 * settings (.env.defaults, then .env.local), with `devs bundle --board <id>`.
 *
 * Around the CLI it:
 * - warns, by key name only, when the settings files hold secrets (they end up in the UF2 as
 *   plain text), and with --no-local leaves .env.local out;
 * - makes sure the runtime UF2 is in DeviceScript's cache (.devicescript/cache/), downloading it
 *   from the upstream release when missing or older than the CLI's 24 h, and fails at once with
 *   what to do when it can neither find nor download it (offline);
 * - runs the CLI in a temporary copy of the project (src, boards, devsconfig.json, package.json,
 *   the settings files), so that the user's files are never moved or changed, and removes the copy
 *   afterwards, also on Ctrl-C;
 * - reads the UF2 back and prints what is inside (runtime, configuration, program, settings).
 * Run `npm run bundle -- --help` for the options.
 */
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { ROOT } from "./devs.ts"
import { isSecretKey, loadEnvFiles } from "./envfile.ts"
import { chipOfBoard, imageFor, PICO_W } from "./images.ts"
import { DCFG_ADDR, FSTOR_ADDR, readBundle, type BundleContents } from "./bundle-image.ts"
import { parseUf2, RP2040_FAMILY_ID } from "./uf2.ts"
import { parseToolArgs, toolMain } from "./toolargs.ts"
import { readRuntimeUf2, runtimeDir, runtimeUf2Path, RUNTIME_SHA256, RUNTIME_UF2, RUNTIME_UNCHECKED_ENV, RuntimeMissingError, sha256 } from "./board/runtime.ts"
import type { SettingValue } from "./envfile.ts"

/** The `--help` text. */
export const USAGE = `Usage: npm run bundle -- [options]

Packs the stock DeviceScript RP2040 runtime, the board configuration, the firmware
image of the CLOUD the settings choose (src/images/board-<CLOUD>.ts) and the settings (.env.defaults, then .env.local) into one UF2 file:
  .devicescript/bin/bundle-devicescript-rp2040-<board>.uf2
Copy it to the board in BOOTSEL mode with npm run flash.

Options:
  --board ID         board file boards/ID.board.json (default w55rp20_evb_pico;
                     also w5500_evb_pico, w5100s_evb_pico (not CLOUD=onenet: over 64 KB);
                     pico_w is refused: its runtime is not here)
  --no-local         leave .env.local out: the UF2 then carries .env.defaults only
                     (use it for a UF2 you share: .env.local secrets are stored as plain text)
  --runtime-url URL  download the runtime from URL (the upstream release, or a mirror) instead
                     of taking the steering folder's (see below)
  --project DIR      project folder (default: this repository)
  -v, --verbose      show the DeviceScript CLI's output (it is shown anyway when it fails)
  -h, --help         show this help and exit

The runtime: the stock DeviceScript RP2040 runtime of the steering folder beside the clone
(../shared/rp2040/devicescript-rp2040-generic.uf2, or $W55_RP2040_DIR; checked against its
SHA-256; see docs/runtime.md), offline. Without that folder, or with --runtime-url, it comes
from https://github.com/microsoft/devicescript-pico/releases (internet needed once): cached in
.devicescript/cache/ and refreshed after 24 h when possible. Offline, place the file there by
hand (the error message says where).`

/** Upstream release URL of the stock RP2040 runtime (the CLI's rp2040 "bareUrl"). */
export const RUNTIME_URL = "https://github.com/microsoft/devicescript-pico/releases/latest/download/devicescript-rp2040-pico.uf2"
/** File name of the runtime in DeviceScript's download cache. */
export const RUNTIME_FILE = "devicescript-rp2040-pico.uf2"
/** DeviceScript's download cache, relative to the project. */
export const CACHE_DIR = ".devicescript/cache"
/** The CLI downloads again when its cached copy is older than this. */
export const CACHE_FRESH_MS = 24 * 3600 * 1000
/** Ports of the devtools server the CLI starts while bundling (websocket, TCP, debugger). */
export const DEVTOOLS_PORTS = [8081, 8082, 8083]
/** The board bundled unless --board says otherwise. */
export const DEFAULT_BOARD = "w55rp20_evb_pico"
/** The firmware image to bundle: the board image of the CLOUD the settings files choose (src/images/board-<CLOUD>.ts). */
export function bundleEntry(project: string, local: boolean, board = DEFAULT_BOARD): string {
    const files = [{ file: path.join(project, ".env.defaults"), required: false }]
    if (local) files.push({ file: path.join(project, ".env.local"), required: false })
    try {
        return imageFor("board", loadEnvFiles(files).settings.CLOUD, chipOfBoard(board, project))
    } catch (e) {
        throw new BundleError(`bundle: ${(e as Error).message}`)
    }
}
/** The CLI deploys each setting as one packet: name, NUL and the JSON value in at most 236 bytes. */
export const MAX_SETTING_PACKET = 236
/** Files and folders of the project the CLI needs to build and bundle. */
const PROJECT_PARTS = ["src", "boards", "devsconfig.json", "package.json"]
/** Text found in the firmware only when the W5500 stack is built in (a log line of WiznetStack). */
export const W5500_MARKER = "w5500: Ethernet link "

/** Parsed command line. */
export interface BundleOptions {
    help: boolean
    board: string
    /** false with --no-local */
    local: boolean
    runtimeUrl: string
    /** true when --runtime-url was given (download even when the steering folder has the runtime) */
    runtimeUrlGiven: boolean
    project: string
    /** echo the CLI's output as it runs */
    verbose: boolean
    /** settings written over those of the files (the emulated board's broker.lan, for instance) */
    extraSettings?: Record<string, SettingValue>
    /** write the UF2 here instead of bundlePath() */
    outFile?: string
    /** copy the compiler's debug information (function names by position, bytecode-dbg.json) here (the profiler reads it) */
    debugFile?: string
}

/** An error whose message is the whole explanation for the user (no stack trace). */
export class BundleError extends Error {}

/** Parses the command line; throws a BundleError naming a bad option. */
export function parseBundleArgs(argv: string[]): BundleOptions {
    const a = parseToolArgs(
        "bundle",
        USAGE,
        argv,
        { "no-local": { type: "boolean" }, "runtime-url": { type: "string" }, verbose: { type: "boolean", short: "v" } },
        DEFAULT_BOARD,
        m => new BundleError(m)
    )
    const v = a.values
    const runtimeUrl = v["runtime-url"] ?? RUNTIME_URL
    if (!/^https?:\/\//.test(runtimeUrl)) throw new BundleError(`bundle: --runtime-url must be an http:// or https:// URL, got ${JSON.stringify(runtimeUrl)}`)
    return { help: a.help, board: a.board, local: !v["no-local"], runtimeUrl, runtimeUrlGiven: v["runtime-url"] !== undefined, project: a.project, verbose: !!v.verbose }
}

/** Name of the bundle the CLI writes for `board` (with the stock RP2040 runtime). */
export function bundleFileName(board: string): string {
    return `bundle-devicescript-rp2040-${board}.uf2`
}

/** Where `npm run bundle` writes the bundle of `board`. */
export function bundlePath(project: string, board: string): string {
    return path.join(project, ".devicescript/bin", bundleFileName(board))
}

/** Secret settings found in one settings file: key names only, never values. */
export interface SecretFinding {
    file: string
    keys: string[]
}

/**
 * Settings files that will go into the UF2 and the secret keys (names like *_PASS, *_SECRET,
 * *_KEY, *_PSK, TOKEN) each one sets to a non-empty value, plus the parser's key warnings.
 */
export function scanSettings(project: string, local: boolean): { secrets: SecretFinding[]; warnings: string[]; localKeys: string[]; oversize: string[] } {
    const files = [".env.defaults", ".env.local"]
    const secrets: SecretFinding[] = []
    const warnings: string[] = []
    const oversize: string[] = []
    let localKeys: string[] = []
    for (const f of files) {
        const loaded = loadEnvFiles([{ file: path.join(project, f), required: false }])
        if (!loaded.sources[0].found) continue
        const keys = Object.keys(loaded.settings)
        if (f === ".env.local") {
            localKeys = keys
            if (!local) continue
        }
        warnings.push(...loaded.warnings.map(w => w.replace(project + path.sep, "")))
        const s = keys.filter(isSecretKey)
        if (s.length) secrets.push({ file: f, keys: s })
        for (const k of keys) {
            const size = settingPacketSize(k, loaded.settings[k])
            if (size > MAX_SETTING_PACKET) oversize.push(`${f}: ${k} takes ${size} bytes (name, NUL and JSON value), at most ${MAX_SETTING_PACKET} fit`)
        }
    }
    return { secrets, warnings, localKeys, oversize }
}

/** Bytes of the packet that deploys one setting: its name, a NUL and its value as JSON text. */
export function settingPacketSize(key: string, value: unknown): number {
    return Buffer.byteLength(key) + 1 + Buffer.byteLength(JSON.stringify(value))
}

/** The warning printed for secrets that will be baked into the UF2 (names only). */
export function secretWarning(found: SecretFinding[]): string[] {
    const out: string[] = []
    for (const s of found) {
        out.push(`bundle: WARNING: ${s.file} holds secrets: ${s.keys.join(", ")}.`)
        out.push(`  They will be stored in the UF2 as plain text: anyone with the file (or the board) can read them.`)
        if (s.file === ".env.local") out.push(`  Do not share this UF2. To leave .env.local out: npm run bundle -- --no-local`)
        else out.push(`  ${s.file} is committed to git: move them to .env.local (git-ignored).`)
    }
    return out
}

/** Ports among `ports` that something on 127.0.0.1 already listens on. */
export async function portsInUse(ports = DEVTOOLS_PORTS): Promise<number[]> {
    const busy: number[] = []
    for (const p of ports) {
        const free = await new Promise<boolean>(resolve => {
            const s = net.createServer()
            s.once("error", () => resolve(false))
            s.listen(p, "127.0.0.1", () => s.close(() => resolve(true)))
        })
        if (!free) busy.push(p)
    }
    return busy
}

/** Checks that `buf` is an RP2040 UF2 (whole blocks, magic numbers, RP2040 family); throws otherwise. */
function checkRuntime(buf: Buffer, name: string) {
    const blocks = parseUf2(buf, name)
    const other = blocks.find(b => b.familyId !== RP2040_FAMILY_ID)
    if (other) throw new Error(`${name}: block ${other.index} has family id 0x${other.familyId.toString(16)}, not the RP2040's (0x${RP2040_FAMILY_ID.toString(16)})`)
}

function age(ms: number): string {
    const h = ms / 3600000
    return h < 1 ? `${Math.max(1, Math.round(ms / 60000))} min` : h < 48 ? `${Math.round(h)} h` : `${Math.round(h / 24)} days`
}

function manualPlacement(project: string): string[] {
    return [
        `  A bundle is the stock DeviceScript runtime UF2 with the board configuration, the program and`,
        `  the settings added; the runtime comes from the upstream release:`,
        `    ${RUNTIME_URL}`,
        `  DeviceScript caches it in .devicescript/cache/ (and downloads it again after 24 h; this script`,
        `  keeps using an older copy when it cannot). To bundle offline, download that file where you`,
        `  have internet access and place it, under that exact name, at`,
        `    ${path.join(project, CACHE_DIR, RUNTIME_FILE)}`,
        `  then run npm run bundle again.`,
    ]
}

/**
 * Makes sure a runtime UF2 is in the project's DeviceScript cache and returns its path: uses a copy
 * younger than 24 h, otherwise downloads `url` (a copy that cannot be refreshed is used anyway,
 * with a note). Throws a BundleError saying what is missing and how to place it by hand when there
 * is no usable copy and the download fails.
 */
export async function ensureRuntime(project: string, url: string, log: (s: string) => void): Promise<string> {
    const dir = path.join(project, CACHE_DIR)
    const file = path.join(dir, RUNTIME_FILE)
    const rel = path.join(CACHE_DIR, RUNTIME_FILE)
    let cached = false
    let cachedAgeMs = 0
    let problem = ""
    try {
        const st = fs.statSync(file)
        checkRuntime(fs.readFileSync(file), rel)
        cached = true
        // a date in the future counts as fresh
        cachedAgeMs = Math.max(0, Date.now() - st.mtimeMs)
    } catch (e) {
        const err = e as NodeJS.ErrnoException
        if (err.code !== "ENOENT") problem = err.message
    }
    if (cached && cachedAgeMs < CACHE_FRESH_MS) {
        log(`bundle: runtime: ${rel} (cached ${age(cachedAgeMs)} ago)`)
        return file
    }
    log(`bundle: runtime: ${cached ? `cached copy is ${age(cachedAgeMs)} old, refreshing` : problem ? `cached copy unusable (${problem}), downloading` : "not cached, downloading"} ${url}`)
    let why: string
    try {
        const resp = await fetch(url, { signal: AbortSignal.timeout(120000) })
        if (resp.status !== 200) throw new Error(`HTTP ${resp.status} ${resp.statusText}`)
        const buf = Buffer.from(await resp.arrayBuffer())
        checkRuntime(buf, url)
        fs.mkdirSync(dir, { recursive: true })
        const tmp = `${file}.${process.pid}.part`
        fs.writeFileSync(tmp, buf)
        fs.renameSync(tmp, file)
        log(`bundle: runtime: saved ${rel} (${buf.length} bytes)`)
        return file
    } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } }
        why = err.cause ? `${err.message} (${err.cause.code || err.cause.message})` : err.message
    }
    if (cached) {
        log(`bundle: runtime: cannot refresh it (${why}); using the cached copy from ${new Date(Date.now() - cachedAgeMs).toISOString()}`)
        return file
    }
    throw new BundleError(
        [
            `bundle: the DeviceScript RP2040 runtime is not in the cache and cannot be downloaded (offline?): ${why}`,
            ...(url !== RUNTIME_URL ? [`  (tried ${url})`] : []),
            ...(problem ? [`  The cached ${rel} is unusable: ${problem}`] : []),
            ...manualPlacement(project),
        ].join("\n")
    )
}

/**
 * The compiled image and the program read back from the UF2 are the same: byte for byte, except that
 * the zero padding past the image's last section may read back as erased flash (0xFF): the CLI's
 * flash writer left the last byte unwritten (seen with an image of 85,888 bytes whose sections end
 * at 85,864; the runtime reads only its sections).
 */
export function sameImage(built: Buffer, program: Buffer): boolean {
    if (built.length !== program.length) return false
    let n = built.length
    while (n > 0 && built[n - 1] === 0 && program[n - 1] === 0xff) n--
    return built.subarray(0, n).equals(program.subarray(0, n))
}

/**
 * The runtime to pack and where it comes from: the steering folder's (checked against its SHA-256)
 * unless --runtime-url was given or the folder is missing, then the download cache (ensureRuntime).
 * A steering-folder file with another checksum is an error (a clear one), never silently replaced.
 */
export async function pickRuntime(o: BundleOptions, log: (s: string) => void): Promise<{ file: string; from: string }> {
    if (!o.runtimeUrlGiven) {
        const file = runtimeUf2Path()
        try {
            const sum = sha256(readRuntimeUf2()).slice(0, 16)
            const what = sum === RUNTIME_SHA256.slice(0, 16) ? "DeviceScript runtime v2.16.0" : `an unchecked runtime (${RUNTIME_UNCHECKED_ENV}=1)`
            log(`bundle: runtime: ${file} (${what}, SHA-256 ${sum}...)`)
            return { file, from: `${what} from ${path.dirname(file)}, ${path.basename(file)}, SHA-256 ${sum}...` }
        } catch (e) {
            if (fs.existsSync(file)) throw new BundleError(`bundle: ${(e as RuntimeMissingError).message}`)
            log(`bundle: runtime: no steering folder runtime (${file}); using the download cache`)
        }
    }
    const file = await ensureRuntime(o.project, o.runtimeUrl, log)
    return { file, from: `the stock DeviceScript runtime, ${o.runtimeUrlGiven ? `downloaded from ${o.runtimeUrl}` : `upstream release`} via ${path.join(CACHE_DIR, RUNTIME_FILE)}` }
}

/** Makes `link` point at the directory `target` (a junction on Windows: no admin rights needed). */
function linkDir(target: string, link: string) {
    fs.symlinkSync(target, link, process.platform === "win32" ? "junction" : "dir")
}

/** Removes a temporary project copy: links first (never followed), then the rest. */
function removeStage(stage: string) {
    const nm = path.join(stage, "node_modules")
    try {
        if (fs.lstatSync(nm).isSymbolicLink()) fs.unlinkSync(nm)
    } catch {}
    if (fs.existsSync(nm) && fs.lstatSync(nm).isSymbolicLink()) throw new Error(`cannot remove the link ${nm}; remove ${stage} by hand`)
    fs.rmSync(stage, { recursive: true, force: true })
}

/** Copies what the CLI needs into a fresh temporary folder and returns it. */
function makeStage(o: BundleOptions, runtime: string): string {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), "w55-bundle-"))
    try {
        for (const p of PROJECT_PARTS) {
            const from = path.join(o.project, p)
            if (!fs.existsSync(from)) throw new BundleError(`bundle: ${from} is missing (is ${o.project} the project folder?)`)
            fs.cpSync(from, path.join(stage, p), { recursive: true })
        }
        for (const f of [".env.defaults", ...(o.local ? [".env.local"] : [])]) {
            const from = path.join(o.project, f)
            if (fs.existsSync(from)) fs.copyFileSync(from, path.join(stage, f))
        }
        if (o.extraSettings && Object.keys(o.extraSettings).length) {
            // last in the files the CLI reads, so they win
            const extra = Object.entries(o.extraSettings).map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
            const local = path.join(stage, ".env.local")
            const before = fs.existsSync(local) ? fs.readFileSync(local, "utf8").replace(/\n?$/, "\n") : ""
            fs.writeFileSync(local, before + extra.join("\n") + "\n")
        }
        linkDir(path.join(o.project, "node_modules"), path.join(stage, "node_modules"))
        // the CLI takes a cached runtime younger than 24 h: give it a fresh copy
        const cache = path.join(stage, CACHE_DIR)
        fs.mkdirSync(cache, { recursive: true })
        const copy = path.join(cache, RUNTIME_FILE)
        fs.copyFileSync(runtime, copy)
        const now = new Date()
        fs.utimesSync(copy, now, now)
        return stage
    } catch (e) {
        removeStage(stage)
        throw e
    }
}

/** Explains a failed `devs bundle` run from its exit code and output. */
export function explainFailure(code: number | null, output: string, o: BundleOptions): string {
    if (/jacdac packet length too large/.test(output))
        return `bundle: a setting is too large for devs bundle (it deploys each setting, name and JSON value, in one packet of at most ${MAX_SETTING_PACKET} bytes): shorten it`
    if (code === 100 || /EADDRINUSE/.test(output))
        return `bundle: the DeviceScript CLI could not open its devtools ports ${DEVTOOLS_PORTS.join(", ")} on 127.0.0.1: stop whatever uses them (devs devtools, the VS Code DeviceScript extension's server) and try again`
    if (/^fetch https?:\/\//m.test(output) && /fetch failed|can't fetch|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(output))
        return [`bundle: the DeviceScript CLI tried to download the runtime and failed (offline?)`, ...manualPlacement(o.project)].join("\n")
    if (/invalid board id|missing --board/.test(output)) return `bundle: the CLI does not know the board ${o.board}: is boards/${o.board}.board.json there?`
    if (/\.ts:\d+:\d+ - error /.test(output)) return `bundle: ${bundleEntry(o.project, o.local, o.board)} did not compile (errors above)`
    return `bundle: devs bundle failed (exit code ${code}); its output is above`
}

/** Runs `devs bundle` in `cwd`, collecting its output (and echoing it through `echo`). */
function runCli(cli: string, args: string[], cwd: string, echo: ((s: string) => void) | undefined, onSpawn: (c: ChildProcess) => void): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [cli, ...args], {
            cwd,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", NO_UPDATE_NOTIFIER: "1" },
        })
        onSpawn(child)
        const lines: string[] = []
        const onLine = (l: string) => {
            const clean = l.replace(/\x1b\[[0-9;]*m/g, "")
            lines.push(clean)
            echo?.(`  devs| ${clean}`)
        }
        createInterface({ input: child.stdout! }).on("line", onLine)
        createInterface({ input: child.stderr! }).on("line", onLine)
        child.on("error", reject)
        child.on("close", code => resolve({ code, output: lines.join("\n") }))
    })
}

/** Result of a bundle run. */
export interface BundleResult {
    /** the UF2 written */
    file: string
    contents: BundleContents
    /** true when the firmware carries the W5500 stack */
    hasW5500: boolean
}

/** Describes the bundle for the console. */
export function describeBundle(file: string, c: BundleContents, project: string, runtimeFrom = "the stock DeviceScript runtime"): string[] {
    const hex = (n: number) => "0x" + n.toString(16)
    const size = c.blocks.length * 512
    const runtime = c.ranges.filter(r => r[1] <= DCFG_ADDR)
    const names = Object.keys(c.settings).sort()
    return [
        `bundle: wrote ${path.relative(project, file)} (${size.toLocaleString("en")} bytes, ${c.blocks.length} UF2 blocks for the RP2040)`,
        `  runtime   ${runtime.map(r => `${hex(r[0])}..${hex(r[1])}`).join(", ")} (${runtimeFrom})`,
        `  config    ${hex(DCFG_ADDR)} ${c.config.devName} (${c.config.id}), ${Object.keys(c.config).length} entries`,
        `  program   ${hex(FSTOR_ADDR)} ${c.program.length.toLocaleString("en")} bytes of DeviceScript bytecode`,
        `  settings  ${names.length ? names.map(k => (isSecretKey(k) ? `${k} (secret, plain text)` : k)).join(", ") : "none"}`,
    ]
}

/**
 * Bundles the firmware for `o.board`: settings scan and secret warning, runtime in the cache,
 * `devs bundle` in a temporary copy of the project, and a check of the UF2 it wrote. Throws a
 * BundleError with the explanation when a step fails; removes the temporary copy in every case.
 */
export async function bundle(o: BundleOptions, log: (s: string) => void = s => console.log(s)): Promise<BundleResult> {
    if (o.board === PICO_W)
        throw new BundleError(
            `bundle: --board ${PICO_W}: refused: the Raspberry Pi Pico W needs DeviceScript's Pico W runtime (Wi-Fi, CYW43), and it is not here: ` +
                `the runtime folder (${runtimeDir()}) holds only the generic RP2040 runtime, ${RUNTIME_UF2}. This project may not commit a runtime ` +
                `built from fetched sources, nor a recipe that builds one, so the Pico W cannot be bundled. ` +
                `Its image (src/images/board-picow-generic.ts) is tested in the simulator only (npm start -- --board ${PICO_W})`
        )
    const boardFile = path.join(o.project, "boards", `${o.board}.board.json`)
    if (!fs.existsSync(boardFile)) {
        const have = fs.existsSync(path.join(o.project, "boards")) ? fs.readdirSync(path.join(o.project, "boards")).filter(f => f.endsWith(".board.json")).map(f => f.replace(/\.board\.json$/, "")) : []
        throw new BundleError(`bundle: no board file boards/${o.board}.board.json; boards here: ${have.join(", ") || "none"}`)
    }
    const board = JSON.parse(fs.readFileSync(boardFile, "utf8"))
    if (board.archId !== "rp2040") throw new BundleError(`bundle: boards/${o.board}.board.json is for "${board.archId}"; this script bundles RP2040 boards (archId "rp2040")`)

    const scan = scanSettings(o.project, o.local)
    for (const w of scan.warnings) log(`bundle: settings: ${w}`)
    if (scan.oversize.length)
        throw new BundleError(`bundle: settings too large for devs bundle, which deploys each one in a single packet:\n  ${scan.oversize.join("\n  ")}\n  Shorten them (the device reads them as they are).`)
    for (const l of secretWarning(scan.secrets)) log(l)
    if (!o.local && scan.localKeys.length)
        log(`bundle: --no-local: .env.local left out (${scan.localKeys.join(", ")}); the UF2 carries .env.defaults only`)

    const entry = bundleEntry(o.project, o.local, o.board)
    const { file: runtime, from: runtimeFrom } = await pickRuntime(o, log)
    const busy = await portsInUse()
    if (busy.length)
        throw new BundleError(`bundle: port ${busy.join(", ")} on 127.0.0.1 is in use; devs bundle runs a DeviceScript devtools server on ${DEVTOOLS_PORTS.join(", ")}: stop devs devtools or the VS Code DeviceScript extension's server and try again`)

    const out = o.outFile ?? bundlePath(o.project, o.board)
    fs.mkdirSync(path.dirname(out), { recursive: true })
    const stage = makeStage(o, runtime)
    log(`bundle: building in a temporary copy of the project: ${stage}`)
    let child: ChildProcess | undefined
    const onSignal = () => child?.kill("SIGTERM")
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    try {
        fs.rmSync(out, { force: true })
        const cli = path.join(o.project, "node_modules/@devicescript/cli/built/devicescript-cli.cjs")
        log(`bundle: compiling ${entry} (the board image of CLOUD=${entry.replace(/^.*board-(w5100s-|picow-)?|\.ts$/g, "")}) and packing it with devs bundle --board ${o.board} (some 10 s)...`)
        const r = await runCli(cli, ["bundle", "--board", o.board, "--flash-file", out, entry], stage, o.verbose ? log : undefined, c => (child = c))
        if (r.code !== 0 || !fs.existsSync(out)) {
            if (!o.verbose) for (const l of r.output.split("\n")) log(`  devs| ${l}`)
            throw new BundleError(explainFailure(r.code, r.output, o))
        }
        let contents: BundleContents
        try {
            contents = readBundle(fs.readFileSync(out), path.relative(o.project, out))
        } catch (e) {
            throw new BundleError(`bundle: the UF2 the CLI wrote does not read back: ${(e as Error).message}`)
        }
        const problems: string[] = [...contents.problems]
        if (contents.config.id !== o.board) problems.push(`its board configuration is for ${contents.config.id}, not ${o.board}`)
        const built = fs.readFileSync(path.join(stage, ".devicescript/bin/bytecode.devs"))
        if (o.debugFile) fs.copyFileSync(path.join(stage, ".devicescript/bin/bytecode-dbg.json"), o.debugFile)
        if (!sameImage(built, contents.program)) problems.push(`its program (${contents.program.length} bytes) is not the image just compiled (${built.length} bytes)`)
        if (problems.length) throw new BundleError(`bundle: ${path.relative(o.project, out)} is not right:\n  ${problems.join("\n  ")}`)
        for (const l of describeBundle(out, contents, o.project, runtimeFrom)) log(l)
        const hasW5500 = contents.program.includes(W5500_MARKER)
        if (!hasW5500)
            log(
                `bundle: NOTE: this firmware has no W5500 stack (it does not fit the 64 KB image beside the application yet):\n` +
                    `  on the board it stops at boot with "NET=w5500: the W5500 stack is not built into this firmware image" and does not report.`
            )
        if (!o.outFile) log(`bundle: flash it with npm run flash${o.board === DEFAULT_BOARD ? "" : ` -- --board ${o.board}`} (board in BOOTSEL mode)`)
        return { file: out, contents, hasW5500 }
    } finally {
        process.off("SIGINT", onSignal)
        process.off("SIGTERM", onSignal)
        removeStage(stage)
    }
}

/** Entry point of `npm run bundle`; resolves to the exit code. */
export function main(argv: string[]): Promise<number> {
    return toolMain(
        argv,
        USAGE,
        parseBundleArgs,
        async o => {
            await bundle(o)
            return 0
        },
        e => (e instanceof BundleError ? e.message : `bundle: ${(e as Error).stack || e}`)
    )
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(fileURLToPath(import.meta.url))
if (isMain) main(process.argv.slice(2)).then(code => process.exit(code))
