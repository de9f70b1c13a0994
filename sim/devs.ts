/**
 * Runs DeviceScript programs in the simulator VM (`devs run --test -k`) and reads their output.
 * Used by the Node test suites, the benchmark and the `npm start` runner.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import net from "node:net"
import fs from "node:fs"
import { fileURLToPath } from "node:url"
import path from "node:path"
import { portsFor, type SimPorts } from "./simports.ts"

/** Repository root (the folder holding package.json). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** The DeviceScript CLI entry point, called with Node directly (npx adds a second of start-up). */
export const DEVS_CLI = path.join(ROOT, "node_modules/@devicescript/cli/built/devicescript-cli.cjs")

/** Marker printed by test/vm/harness.ts around each VM test. */
const TEST_MARK = "##T> "

/** Outcome of one VM test, as reported by the VM-side harness. */
export interface VmTestResult {
    name: string
    ok: boolean
    message?: string
}

/** Everything one VM run produced. */
export interface VmRun {
    /** process exit code: 0 after `ds.restart()`, 1 on uncaught error, compile error or timeout */
    code: number | null
    /** console lines with colours and the `WASM>` prefix removed */
    lines: string[]
    tests: VmTestResult[]
    /** the `tests: N, pass: P, error: E` line of @devicescript/test, when printed */
    summary?: { total: number; pass: number; error: number }
    timedOut: boolean
}

export interface VmOptions {
    /** whole-run timeout passed to `devs run -T` (ms) */
    timeoutMs?: number
    /** called for every cleaned console line as it arrives */
    onLine?: (line: string) => void
    /** stop the VM when this returns true for a line (the run then reports code null) */
    stopWhen?: (line: string) => boolean
    /** called with the child process as soon as it is spawned (to kill it from a test) */
    onSpawn?: (child: ChildProcess) => void
    /**
     * "test" (default): `--test -k`, GC stress on, the program ends the run with `ds.restart()`.
     * "device": the VM as on a board (no GC stress, `ds.restart()` restarts the program); it
     * runs until `stopWhen` matches or the timeout, and needs a devtools transport: a local sink
     * on 127.0.0.1:8082 is started when nothing listens there. Its simulated flash (settings,
     * secrets included) lives in the run's own folder, deleted after the run, so nothing carries
     * over, stays on disk or is shared with another run.
     */
    mode?: "test" | "device"
    /** the host link and bridge ports handed to the device (default: see `portsFor` in sim/simports.ts) */
    ports?: Partial<SimPorts>
}

let sink: net.Server | undefined

/** Where each run gets its own folder (git-ignored): `r<pid>-<random>`. */
const RUNS = path.join(ROOT, ".devicescript/run")

/**
 * Makes the folder of one run: `devs run` starts there, so its build output and its simulated
 * flash (`.devicescript/flash/sim.bin`, relative to where it starts) belong to this run alone, and
 * `entry.ts` there sets the device's ports (src/simdev/ports.ts) before importing `entry`. The ports
 * are compile-time constants of this run's program: `devs run` has no other way in (the VM sees no
 * environment, arguments or files, and `--device-id` is ignored with `--test`).
 */
function makeRunDir(entry: string, ports: SimPorts): string {
    sweepRunDirs()
    fs.mkdirSync(RUNS, { recursive: true })
    const dir = fs.mkdtempSync(path.join(RUNS, `r${process.pid}-`))
    const up = (p: string) => JSON.stringify(path.relative(dir, path.join(ROOT, p)).split(path.sep).join("/"))
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir")
    fs.symlinkSync(path.join(ROOT, "boards"), path.join(dir, "boards"), "dir")
    fs.copyFileSync(path.join(ROOT, "devsconfig.json"), path.join(dir, "devsconfig.json"))
    fs.writeFileSync(
        path.join(dir, "ports.ts"),
        `// written by sim/devs.ts for one run\nimport { simPorts } from ${up("src/simdev/ports")}\n` +
            `simPorts.hostlink = ${ports.hostlink}\nsimPorts.bridge = ${ports.bridge}\n`
    )
    // ES order: ports.ts runs (and sets the ports) before any module of the program
    fs.writeFileSync(path.join(dir, "entry.ts"), `import "./ports"\nimport ${up(entry.replace(/\.ts$/, ""))}\n`)
    return dir
}

let swept = false

/** Removes the folders of runs whose process is gone (killed before it could clean up). */
function sweepRunDirs() {
    if (swept) return
    swept = true
    let names: string[] = []
    try {
        names = fs.readdirSync(RUNS)
    } catch {
        return
    }
    for (const n of names) {
        const m = /^r(\d+)-/.exec(n)
        if (!m || +m[1] === process.pid) continue
        try {
            process.kill(+m[1], 0)
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ESRCH") fs.rmSync(path.join(RUNS, n), { recursive: true, force: true })
        }
    }
}

/** Makes sure something accepts the VM's devtools (jacdac) connection on 127.0.0.1:8082. */
function ensureDevtoolsSink(): Promise<void> {
    if (sink) return Promise.resolve()
    return new Promise(resolve => {
        const server = net.createServer(s => {
            s.on("data", () => {})
            s.on("error", () => {})
        })
        server.once("error", () => resolve()) // in use: a devtools server (or another sink) is there
        server.listen(8082, "127.0.0.1", () => {
            server.unref()
            sink = server
            resolve()
        })
    })
}

const ANSI = /\x1b\[[0-9;]*m/g

/** Removes colours and the `WASM> ` prefix from one line of VM output. */
export function cleanLine(raw: string): string {
    return raw.replace(ANSI, "").replace(/^WASM> /, "")
}

/**
 * Builds and runs `entry` (a path relative to the repository root) in the VM, by default in test
 * mode (`--test -k`: GC stress on, the program ends the run with `ds.restart()`).
 */
export async function runVm(entry: string, opts: VmOptions = {}): Promise<VmRun> {
    const device = opts.mode === "device"
    for (let attempt = 1; ; attempt++) {
        if (device) await ensureDevtoolsSink()
        const run = await runOnce(entry, opts)
        // the devtools sink of another process can go away between our check and the VM's connect
        if (device && attempt < 3 && run.lines.some(l => l.includes("can't connect to 127.0.0.1:8082"))) continue
        return run
    }
}

async function runOnce(entry: string, opts: VmOptions): Promise<VmRun> {
    const timeoutMs = opts.timeoutMs ?? 20000
    const device = opts.mode === "device"
    const dir = makeRunDir(entry, portsFor(opts.ports))
    // compiler messages name files relative to the run folder: show them relative to the repository
    const up = path.relative(dir, ROOT).split(path.sep).join("/") + "/"
    const args = device ? [DEVS_CLI, "run", "entry.ts", "--tcp"] : [DEVS_CLI, "run", "entry.ts", "--test", "-k", "-T", String(timeoutMs)]
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, args, {
            cwd: dir,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1" },
        })
        opts.onSpawn?.(child)
        const run: VmRun = { code: null, lines: [], tests: [], timedOut: false }
        const timer = device
            ? setTimeout(() => {
                  run.timedOut = true
                  child.kill("SIGKILL")
              }, timeoutMs)
            : undefined
        let stopped = false
        const onRaw = (raw: string) => {
            const line = cleanLine(raw).split(up).join("")
            run.lines.push(line)
            opts.onLine?.(line)
            parseLine(run, line)
            if (!stopped && opts.stopWhen?.(line)) {
                stopped = true
                child.kill("SIGKILL")
            }
        }
        createInterface({ input: child.stdout! }).on("line", onRaw)
        createInterface({ input: child.stderr! }).on("line", onRaw)
        const remove = () => fs.rmSync(dir, { recursive: true, force: true })
        child.on("error", e => {
            remove()
            reject(e)
        })
        child.on("close", code => {
            if (timer) clearTimeout(timer)
            remove()
            run.code = stopped ? null : code
            resolve(run)
        })
    })
}

function parseLine(run: VmRun, line: string) {
    const i = line.indexOf(TEST_MARK)
    if (i >= 0) {
        const rest = line.slice(i + TEST_MARK.length)
        const sp = rest.indexOf(" ")
        const verb = rest.slice(0, sp)
        const body = rest.slice(sp + 1)
        if (verb === "pass") run.tests.push({ name: body, ok: true })
        else if (verb === "fail") {
            const j = body.indexOf(" :: ")
            run.tests.push({ name: j < 0 ? body : body.slice(0, j), ok: false, message: j < 0 ? "" : body.slice(j + 4) })
        }
        return
    }
    const m = /^tests: (\d+), pass: (\d+), error: (\d+)/.exec(line.trim())
    if (m) run.summary = { total: +m[1], pass: +m[2], error: +m[3] }
    if (line.trim() === "timeout") run.timedOut = true
}
