/**
 * `npm start`: the firmware running in the DeviceScript simulator against an embedded MQTT broker.
 * Starts aedes on 127.0.0.1, reads the settings files the way the DeviceScript CLI does, points the
 * device at the broker, serves the settings over the host link, runs the VM with its console
 * prefixed `[device] `, restarts it when it exits (as a device reboots), and on Ctrl-C / SIGTERM
 * stops the VM, the host link and the broker. It also serves the dashboard (sim/dashboard/) on
 * 127.0.0.1. Run `npm start -- --help` for the options.
 */
import dns from "node:dns/promises"
import fs from "node:fs"
import nodeNet from "node:net"
import path from "node:path"
import { spawn, type ChildProcess } from "node:child_process"
import { parseArgs } from "node:util"
import { startAedes, type AedesBroker } from "./brokers.ts"
import { startDashboard, type Dashboard } from "./dashboard/server.ts"
import { ROOT, runVm, type VmRun } from "./devs.ts"
import { isSecretKey, loadEnvFiles, type SettingValue } from "./envfile.ts"
import { startHostLink, type HostLink } from "./hostlink.ts"
import { chipOfBoard, imageFor, type NetChip } from "./images.ts"
import { startW5500Sim, type LanOptions, type W5500Options, type W5500Sim } from "./w5500/index.ts"
import { startW5100SSim, type W5100SSim } from "./w5100s/index.ts"

/** The `--help` text: every option. */
export const USAGE = `Usage: npm start -- [options]

Runs the firmware in the DeviceScript simulator against an embedded MQTT broker
(aedes on 127.0.0.1), streams the device console, restarts the device when it exits,
and serves a dashboard page (live charts, commands, console) on 127.0.0.1.
By default the device reaches the network through an emulated W5500 on an emulated LAN
(DHCP, DNS and NTP servers at 192.168.50.1; the broker is broker.lan), running the same
driver, DHCP, DNS and SNTP code as the board.

Options:
  --broker-port N     port of the embedded broker on 127.0.0.1 (default 1883; 0 = any free port)
  --no-broker         do not start a broker: the device uses MQTT_HOST/MQTT_PORT from the settings
                      (a local Mosquitto, a cloud)
  --dashboard-port N  port of the dashboard on 127.0.0.1 (default 8080, or any free port when
                      8080 is taken; 0 = any free port); the start banner prints its URL
  --no-dashboard      do not serve the dashboard
  --net w5500|host    w5500 (default): the emulated W5500 and LAN; host: the simulator's own
                      socket (needed for TLS, e.g. CLOUD=azure, which picks host by default)
  --allow-external    --net w5500 --no-broker: let the emulated LAN reach MQTT_HOST on the real
                      network (its name is resolved on this computer); otherwise loopback only
  --board pico_w      run the Pico W image over the simulator's own socket (Wi-Fi not emulated)
  --env FILE          settings layered over .env.defaults (e.g. one file per device identity)
  --entry FILE        firmware entry file (default: src/images/sim-<CLOUD>.ts, the image of the
                      platform the settings choose)
  --board ID          run the UF2 bundled from the settings (.env.defaults, .env.local) on the
                      emulated board instead of the simulator: w55rp20_evb_pico, w5500_evb_pico
                      or w5100s_evb_pico (every plain-TCP CLOUD)
                      (rp2040js running the DeviceScript RP2040 runtime; the embedded broker only)
  --bridge-lost-wakeups  --board: wake the core after the stock runtime's lost timer wake-ups
                      (10 ms) instead of reporting the board frozen; the banner says so
  -h, --help          show this help and exit

Settings: .env.defaults, then --env FILE, then .env.local (if present), each over the one before.
Unless --no-broker, MQTT_HOST, MQTT_PORT and MQTT_TLS are replaced to point at the embedded broker;
the runner also sets NET (and, with --net host, hands the device the desktop's time).
Stop with Ctrl-C.`

/** Parsed command line. */
export interface StartOptions {
    help: boolean
    /** undefined with --no-broker */
    brokerPort?: number
    /** undefined with --no-dashboard */
    dashboardPort?: number
    envFile?: string
    /** undefined: from CLOUD */
    entry?: string
    /** undefined: w5500, or host when the platform needs TLS */
    net?: "w5500" | "host"
    allowExternal: boolean
    /** --board: the board: the emulated RP2040 runs the bundled UF2 of a WIZnet board; the simulator runs the Pico W image */
    board?: string
    bridgeLostWakeups: boolean
}

/** Port of the dashboard unless --dashboard-port says otherwise. */
export const DEFAULT_DASHBOARD_PORT = 8080

/** Reads a port option: an integer 0..65535. */
function portOption(name: string, s: string): number {
    const n = Number(s)
    if (!/^\d+$/.test(s) || n > 65535) throw new Error(`${name} must be an integer 0..65535, got ${JSON.stringify(s)}`)
    return n
}

/** Parses the command line; throws an Error with a message for the user on bad input. */
export function parseOptions(argv: string[]): StartOptions {
    const { values } = parseArgs({
        args: argv,
        options: {
            "broker-port": { type: "string" },
            "no-broker": { type: "boolean" },
            "dashboard-port": { type: "string" },
            "no-dashboard": { type: "boolean" },
            env: { type: "string" },
            entry: { type: "string" },
            net: { type: "string" },
            "allow-external": { type: "boolean" },
            board: { type: "string" },
            "bridge-lost-wakeups": { type: "boolean" },
            help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: false,
    })
    const noBroker = values["no-broker"] === true
    let brokerPort: number | undefined = 1883
    if (values["broker-port"] !== undefined) {
        if (noBroker) throw new Error("--broker-port and --no-broker cannot be combined")
        brokerPort = portOption("--broker-port", values["broker-port"])
    }
    if (noBroker) brokerPort = undefined
    const noDashboard = values["no-dashboard"] === true
    let dashboardPort: number | undefined = DEFAULT_DASHBOARD_PORT
    if (values["dashboard-port"] !== undefined) {
        if (noDashboard) throw new Error("--dashboard-port and --no-dashboard cannot be combined")
        dashboardPort = portOption("--dashboard-port", values["dashboard-port"])
    }
    if (noDashboard) dashboardPort = undefined
    const net = values.net
    if (net !== undefined && net !== "w5500" && net !== "host") throw new Error(`--net must be w5500 or host, got ${JSON.stringify(net)}`)
    const allowExternal = values["allow-external"] === true
    if (allowExternal && (net === "host" || !noBroker)) throw new Error("--allow-external goes with --net w5500 and --no-broker (the device then reaches MQTT_HOST through the emulated LAN)")
    const board = values.board
    const bridgeLostWakeups = values["bridge-lost-wakeups"] === true
    if (board !== undefined) {
        if (!/^[a-z0-9_]+$/.test(board)) throw new Error(`--board must be a board id such as w55rp20_evb_pico (letters, digits, _), got ${JSON.stringify(board)}`)
        if (onEmulatedBoard(board)) {
            if (noBroker) throw new Error("--board runs with the embedded broker only (the emulated LAN reaches it as broker.lan); drop --no-broker")
            if (net === "host") throw new Error("--board has no host network: the emulated board reaches the LAN through its W5500")
            if (values.entry !== undefined || values.env !== undefined) throw new Error("--board bundles src/images/board-<CLOUD>.ts with .env.defaults and .env.local, as npm run bundle does: --entry and --env do not apply")
        } else if (bridgeLostWakeups) throw new Error(`--bridge-lost-wakeups goes with a board the emulated RP2040 carries (the WIZnet boards), not ${board}`)
    } else if (bridgeLostWakeups) throw new Error("--bridge-lost-wakeups goes with --board")
    return { help: values.help === true, brokerPort, dashboardPort, envFile: values.env, entry: values.entry, net, allowExternal, board, bridgeLostWakeups }
}

/** True when `npm start -- --board id` runs on the emulated RP2040: the WIZnet boards (W5500, W5100S); not the Pico W (no CYW43 model). */
export function onEmulatedBoard(board: string): boolean {
    return chipOfBoard(board) !== "picow"
}

/** How long one VM run may last (`devs run -T`); below 2^31 ms, Node's timer limit. */
const VM_TIMEOUT_MS = 2_000_000_000
/** Restart backoff after the device exits: doubles from the first to the last value. */
const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 30000
/** A run longer than this resets the backoff. */
const STABLE_RUN_MS = 60000
/** DEVICE_ID the runner sets when the settings have none (so the banner can name the topics). */
export const SIM_DEVICE_ID = "w55rp20-sim"

/**
 * The settings the simulated device gets: the files' settings, DEVICE_ID defaulted to
 * SIM_DEVICE_ID, and with `brokerPort` the broker settings pointed at the embedded broker.
 */
export function deviceSettings(fromFiles: Record<string, SettingValue>, brokerPort?: number, net?: "w5500" | "host"): Record<string, SettingValue> {
    const s: Record<string, SettingValue> = { ...fromFiles }
    if (s.DEVICE_ID === undefined) s.DEVICE_ID = SIM_DEVICE_ID
    if (net) s.NET = net
    if (brokerPort !== undefined) {
        s.MQTT_HOST = net === "w5500" ? BROKER_NAME : "127.0.0.1"
        s.MQTT_PORT = brokerPort
        s.MQTT_TLS = false
    }
    return s
}

/** The emulated LAN (sim/w5500): the broker's name and address there. */
export const BROKER_NAME = "broker.lan"
export const BROKER_LAN_IP = "192.168.50.2"

/** Options of `startEmulatedNetwork`; `kind` "w5100s" puts an emulated W5100S on the LAN instead of the W5500. */
type EmulatedNetworkOptions = { external?: { name: string; ip: string }; lan?: LanOptions; chip?: W5500Options; kind?: "w5500" | "w5100s" }
/**
 * The emulated W5500 (or W5100S) and LAN for `npm start --net w5500`: DHCP, DNS (broker.lan, and with
 * `external` the user's MQTT_HOST) and NTP at the gateway; TCP to broker.lan reaches 127.0.0.1.
 */
export function startEmulatedNetwork(opts: EmulatedNetworkOptions & { kind: "w5100s" }): Promise<W5100SSim>
export function startEmulatedNetwork(opts?: EmulatedNetworkOptions & { kind?: "w5500" }): Promise<W5500Sim>
export function startEmulatedNetwork(opts?: EmulatedNetworkOptions): Promise<W5500Sim | W5100SSim>
export async function startEmulatedNetwork(opts: EmulatedNetworkOptions = {}): Promise<W5500Sim | W5100SSim> {
    return await (opts.kind === "w5100s" ? startW5100SSim : startW5500Sim)({
        chip: opts.chip,
        lan: { ...emulatedLanOptions(opts.external), log: (level, msg) => log(`lan: ${level}: ${msg}`), ...opts.lan },
    })
}

/**
 * The emulated LAN's names and hosts, shared by the simulator and the emulated board: router,
 * NTP (pool.ntp.org too) at the gateway, broker.lan at BROKER_LAN_IP, and with `external` the
 * user's MQTT_HOST.
 */
export function emulatedLanOptions(external?: { name: string; ip: string }): LanOptions {
    const dns: Record<string, string> = { "router.lan": "192.168.50.1", "ntp.lan": "192.168.50.1", "pool.ntp.org": "192.168.50.1", [BROKER_NAME]: BROKER_LAN_IP }
    if (external) dns[external.name] = external.ip
    return { dns, hosts: [BROKER_LAN_IP], allowExternal: !!external }
}

/** Where runner lines also go (the dashboard's console), once there is one. */
let runnerSink: ((msg: string) => void) | undefined
const log = (msg: string) => {
    console.log(`[runner] ${msg}`)
    runnerSink?.(msg)
}

/** Hides the values of secret settings in a line of device output. */
export function redactor(settings: Record<string, SettingValue>): (line: string) => string {
    const secrets = Object.keys(settings)
        .filter(isSecretKey)
        .map(k => settings[k])
        .map(v => (typeof v === "string" ? v : JSON.stringify(v)))
        .filter(v => v.length >= 4)
    if (!secrets.length) return l => l
    return line => {
        for (const s of secrets) if (line.includes(s)) line = line.split(s).join("(secret)")
        return line
    }
}

/** Why a VM run ended, in words, from its exit and its last lines. */
export function exitReason(run: VmRun): string {
    if (run.timedOut) return "hit the simulator's run time limit"
    if (run.code === 0) return "restarted itself (ds.restart() or ds.reboot())"
    if (run.code === null) return "was killed"
    const tail = run.lines.slice(-40).map(l => l.trim())
    let what = ""
    for (let i = tail.length - 1; i >= 0; i--) {
        const m = /^Exception: (.*)$/.exec(tail[i])
        if (!m) continue
        const msg = tail[i + 1]?.startsWith("message: ") ? tail[i + 1].slice(9) : ""
        what = msg ? `${m[1]}: ${msg}` : m[1]
        break
    }
    const panic = tail.map(l => /^PANIC (\d+)/.exec(l)).filter(Boolean).pop()
    const parts = [what ? `crashed: ${what}` : `exited with code ${run.code}`]
    if (panic) parts.push(`(PANIC ${panic[1]})`)
    return parts.join(" ")
}

/** True when the run failed to compile (restarting cannot help). */
function compileFailed(run: VmRun): boolean {
    return run.lines.some(l => /error TS\d+/.test(l))
}

/** Kills `pid` if this process dies in any way (its stdin pipe closes): no orphan VM. */
function watchdog(pid: number): ChildProcess {
    const wd = spawn("sh", ["-c", 'read x; kill -9 "$1" 2>/dev/null', "watchdog", String(pid)], {
        stdio: ["pipe", "ignore", "ignore"],
    })
    wd.on("error", () => {})
    wd.unref()
    ;(wd.stdin as unknown as { unref?: () => void } | null)?.unref?.()
    return wd
}

async function main(argv: string[]): Promise<number> {
    let opts: StartOptions
    try {
        opts = parseOptions(argv)
    } catch (e) {
        console.error(`npm start: ${(e as Error).message}\n\n${USAGE}`)
        return 2
    }
    if (opts.help) {
        console.log(USAGE)
        return 0
    }

    // settings, layered the way the DeviceScript CLI does
    const files = [{ file: path.join(ROOT, ".env.defaults"), required: false }]
    if (opts.envFile) files.push({ file: path.resolve(process.cwd(), opts.envFile), required: true })
    files.push({ file: path.join(ROOT, ".env.local"), required: false })
    let env
    try {
        env = loadEnvFiles(files)
    } catch (e) {
        console.error(`npm start: ${(e as Error).message}`)
        return 2
    }
    for (const w of env.warnings) log(`warning: ${w}`)

    if (opts.board !== undefined && onEmulatedBoard(opts.board)) {
        const { startBoard } = await import("./board/start-board.ts")
        return await startBoard({
            board: opts.board,
            bridgeLostWakeups: opts.bridgeLostWakeups,
            brokerPort: opts.brokerPort ?? 1883,
            dashboardPort: opts.dashboardPort,
            settings: env.settings,
            found: env.sources.map(s => path.relative(process.cwd(), s.file) + (s.found ? "" : " (not found)")).join(", "),
        })
    }

    // the image of the chosen platform, and the network: the emulated W5500 unless TLS is needed
    const cloud = env.settings.CLOUD ?? "generic"
    let chip: NetChip
    try {
        chip = chipOfBoard(opts.board ?? "w55rp20_evb_pico")
        if (chip === "picow" && opts.net === "w5500") throw new Error("--board pico_w has no W5500: it uses the runtime's sockets (--net host)")
        if (chip === "picow" && opts.net === undefined) opts = { ...opts, net: "host" }
    } catch (e) {
        console.error(`npm start: ${(e as Error).message}`)
        return 2
    }
    const needsTls = cloud === "azure" || (opts.brokerPort === undefined && env.settings.MQTT_TLS === true)
    const net = opts.net ?? (needsTls ? "host" : "w5500")
    if (net === "w5500" && needsTls) {
        console.error(`npm start: --net w5500 cannot carry TLS (the W5500 path is plain TCP), and ${cloud === "azure" ? "CLOUD=azure" : "MQTT_TLS=true"} needs it: use --net host`)
        return 2
    }
    if (opts.net === undefined && net === "host") log(`network: the simulator's own socket (${cloud === "azure" ? "CLOUD=azure" : "MQTT_TLS=true"} needs TLS, which the W5500 path lacks)`)
    let entry: string
    try {
        if (opts.entry === undefined) entry = imageFor("sim", cloud, chip)
        else {
            const entryAbs = path.resolve(process.cwd(), opts.entry)
            if (!fs.existsSync(entryAbs)) throw new Error(`--entry ${opts.entry}: no such file`)
            entry = path.relative(ROOT, entryAbs)
        }
    } catch (e) {
        console.error(`npm start: ${(e as Error).message}`)
        return 2
    }
    const settings = deviceSettings(env.settings, undefined, net)

    // the embedded broker
    let broker: AedesBroker | undefined
    let dashboard: Dashboard | undefined
    if (opts.brokerPort !== undefined) {
        try {
            broker = await startAedes({ port: opts.brokerPort })
        } catch (e) {
            const msg = (e as Error).message
            if (/in use/.test(msg))
                console.error(
                    `npm start: port ${opts.brokerPort} on 127.0.0.1 is already in use (another broker, or another npm start?).\n` +
                        `Pick another with --broker-port N, or use that broker with --no-broker and MQTT_HOST/MQTT_PORT in the settings.`
                )
            else console.error(`npm start: cannot start the embedded broker: ${msg}`)
            return 1
        }
        broker.aedes.on("client", c => {
            console.log(`[broker] ${c.id} connected`)
            dashboard?.state.infoLine("broker", `${c.id} connected`)
        })
        broker.aedes.on("clientDisconnect", c => {
            console.log(`[broker] ${c.id} disconnected`)
            dashboard?.state.infoLine("broker", `${c.id} disconnected`)
        })
        Object.assign(settings, deviceSettings(env.settings, broker.port, net))
    }

    // the dashboard, on the broker the device uses
    if (opts.dashboardPort !== undefined) {
        const want = opts.dashboardPort
        // the dashboard reaches the embedded broker from this computer, not through the emulated LAN
        const seen = broker ? { ...settings, MQTT_HOST: "127.0.0.1" } : settings
        try {
            try {
                dashboard = await startDashboard({ port: want, settings: seen, embedded: broker !== undefined })
            } catch (e) {
                // the default port is a convenience: take any free one rather than fail
                if (want !== DEFAULT_DASHBOARD_PORT || !/in use/.test((e as Error).message)) throw e
                dashboard = await startDashboard({ port: 0, settings: seen, embedded: broker !== undefined })
                log(`dashboard: port ${want} is in use; serving on port ${dashboard.port} instead`)
            }
            runnerSink = msg => dashboard?.state.runnerLine(msg)
        } catch (e) {
            const msg = (e as Error).message
            if (/in use/.test(msg)) {
                console.error(`npm start: ${msg}. Pick another with --dashboard-port N (0 = any free port), or --no-dashboard.`)
                if (broker) await broker.close().catch(() => {})
                return 1
            }
            log(`dashboard not started: ${msg}`)
        }
    }

    // the emulated W5500, its LAN and the bridge the simulated device's driver talks to
    let lan: W5500Sim | W5100SSim | undefined
    if (net === "w5500") {
        try {
            let external: { name: string; ip: string } | undefined
            if (opts.allowExternal) {
                const name = String(settings.MQTT_HOST ?? "")
                const ip = nodeNet.isIPv4(name) ? name : (await dns.lookup(name, { family: 4 })).address
                if (!nodeNet.isIPv4(name)) external = { name, ip }
                log(`lan: real destinations allowed; ${name} is ${ip}`)
            }
            lan = await startEmulatedNetwork({ external, lan: { allowExternal: opts.allowExternal }, kind: chip === "w5100s" ? "w5100s" : "w5500" })
        } catch (e) {
            const msg = (e as Error).message
            console.error(`npm start: cannot start the emulated W5500: ${msg}${/in use/i.test(msg) ? " (another npm start? or use --net host)" : ""}`)
            if (dashboard) await dashboard.close().catch(() => {})
            if (broker) await broker.close().catch(() => {})
            return 1
        }
    }

    let link: HostLink | undefined
    let child: ChildProcess | undefined
    let dog: ChildProcess | undefined
    let stopping = false
    let wake: (() => void) | undefined
    const closeAll = async () => {
        runnerSink = undefined
        if (dashboard) await dashboard.close().catch(() => {})
        dashboard = undefined
        if (link) await link.close().catch(() => {})
        link = undefined
        if (broker) await broker.close().catch(() => {})
        broker = undefined
        if (lan) await lan.close().catch(() => {})
        lan = undefined
    }
    const killVm = async () => {
        const c = child
        if (!c || c.exitCode !== null || c.signalCode !== null) return
        const gone = new Promise<void>(r => c.once("close", () => r()))
        c.kill("SIGTERM")
        const t = setTimeout(() => c.kill("SIGKILL"), 2000)
        await gone
        clearTimeout(t)
    }
    let signals = 0
    const onSignal = (sig: NodeJS.Signals) => {
        signals++
        if (signals > 1) {
            child?.kill("SIGKILL")
            process.exit(130)
        }
        log(`${sig}: stopping the device and the broker`)
        stopping = true
        wake?.()
        void killVm()
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)

    try {
        // over the W5500 the device sets its clock by SNTP from the emulated LAN, as a board does
        link = await startHostLink(settings, { waitMs: 10000, time: net === "host" })
    } catch (e) {
        console.error(`npm start: ${(e as Error).message}`)
        await closeAll()
        return 1
    }

    // the banner
    // where the user reaches the broker from this computer (the device may know it as broker.lan)
    const host = broker ? "127.0.0.1" : String(settings.MQTT_HOST ?? "(MQTT_HOST not set)")
    const port = Number(settings.MQTT_PORT ?? 1883)
    const id = String(settings.DEVICE_ID)
    const prefix = typeof settings.TOPIC_PREFIX === "string" ? settings.TOPIC_PREFIX : "devices"
    const found = env.sources.map(s => path.relative(process.cwd(), s.file) + (s.found ? "" : " (not found)")).join(", ")
    const hp = `-h ${host} -p ${port}`
    console.log(
        [
            "",
            "W55RP20 kit: firmware in the DeviceScript simulator",
            ...(dashboard ? [`  dashboard ${dashboard.url}`] : []),
            `  network   ${net === "w5500" ? `emulated ${chip === "w5100s" ? "W5100S" : "W5500"} on LAN 192.168.50.0/24 (DHCP, DNS, NTP at 192.168.50.1)` : "the simulator's own socket (--net host)"}`,
            `  broker    mqtt://${host}:${port}${broker ? ` (embedded aedes${net === "w5500" ? `; the device knows it as ${BROKER_NAME}` : ""})` : " (from the settings, --no-broker)"}`,
            `  image     ${entry}`,
            `  device    ${id}${env.settings.DEVICE_ID === undefined ? " (set by the runner; DEVICE_ID in .env.local changes it)" : ""}, topics under ${prefix}/${id}/`,
            `  settings  ${found}`,
            `  watch     mosquitto_sub ${hp} -t '#' -v`,
            `  command   mosquitto_pub ${hp} -t ${prefix}/${id}/commands/set -m '{"id":"1","params":{"led":true}}'`,
            `  stop      Ctrl-C`,
            "",
        ].join("\n")
    )

    const redact = redactor(settings)
    let backoff = BACKOFF_MIN_MS
    let code = 0
    while (!stopping) {
        const started = Date.now()
        log(`starting ${entry}`)
        const run = await runVm(entry, {
            timeoutMs: VM_TIMEOUT_MS,
            // this runner's own host link and bridge, on ports the OS picked: runners side by side
            ports: { hostlink: link.port, bridge: lan?.bridge.port },
            onSpawn: c => {
                child = c
                if (c.pid !== undefined) dog = watchdog(c.pid)
            },
            onLine: line => {
                const text = redact(line)
                console.log(`[device] ${text}`)
                dashboard?.state.deviceLine(text)
            },
        })
        child = undefined
        dog?.kill("SIGKILL")
        dog = undefined
        // Ctrl-C in a terminal signals the VM too; let our own handler see it before deciding
        if (run.code === null && !stopping) await new Promise(r => setTimeout(r, 300))
        if (stopping) break
        if (compileFailed(run)) {
            log(`${entry} does not compile (errors above); fix it and run npm start again`)
            code = 1
            break
        }
        if (Date.now() - started > STABLE_RUN_MS) backoff = BACKOFF_MIN_MS
        log(`device ${exitReason(run)}; restarting in ${backoff / 1000} s`)
        await new Promise<void>(r => {
            const t = setTimeout(r, backoff)
            wake = () => {
                clearTimeout(t)
                r()
            }
        })
        wake = undefined
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
    }
    await killVm()
    await closeAll()
    log("stopped")
    return code
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)
if (isMain) {
    main(process.argv.slice(2)).then(
        code => process.exit(code),
        e => {
            console.error(`npm start: ${(e as Error)?.stack ?? e}`)
            process.exit(1)
        }
    )
}
