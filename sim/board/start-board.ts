/**
 * `npm start -- --board ID`: the UF2 bundled from the user's settings running on the emulated
 * board, with the embedded broker, the dashboard, a banner and Ctrl-C as in the simulator mode
 * (sim/start.ts). The device reaches the broker as broker.lan:1883 on the emulated LAN. The
 * console is the runtime's, read over USB: the program's lines as `[device]`, the runtime's own
 * DMESG lines as `[runtime]`; the LED pin's changes as `[board]` lines.
 */
import crypto from "node:crypto"
import path from "node:path"
import { startAedes, type AedesBroker } from "../brokers.ts"
import { startDashboard, type Dashboard } from "../dashboard/server.ts"
import { ROOT } from "../devs.ts"
import { BundleError } from "../bundle.ts"
import type { SettingValue } from "../envfile.ts"
import { BROKER_NAME, redactor } from "../start.ts"
import { EmulatedBoard } from "./board.ts"
import { readBoardWiring } from "./boardfile.ts"
import { boardLan, bundleForEmulatedBoard, LAN_BROKER_PORT } from "./firmware.ts"
import { runtimeDir, RuntimeMissingError } from "./runtime.ts"

/** Options of the emulated-board mode. */
export interface StartBoardOptions {
    board: string
    bridgeLostWakeups: boolean
    brokerPort: number
    /** undefined: no dashboard */
    dashboardPort?: number
    /** the settings layered from the files (for the banner, the dashboard and secret redaction) */
    settings: Record<string, SettingValue>
    /** the settings files, for the banner */
    found: string
}

/** Virtual seconds within which the runtime must print its banner, else the UF2 "does not boot". */
export const BOOT_DEADLINE_S = 10

const say = (tag: string, msg: string) => console.log(`[${tag}] ${msg}`)

/** Runs the emulated board until Ctrl-C or a freeze; resolves to the exit code. */
export async function startBoard(o: StartBoardOptions): Promise<number> {
    let runnerSink: ((s: string) => void) | undefined
    const log = (msg: string) => {
        say("runner", msg)
        runnerSink?.(msg)
    }
    let wiring
    try {
        wiring = readBoardWiring(o.board)
    } catch (e) {
        console.error(`npm start: --board: ${(e as Error).message}`)
        return 2
    }
    // the UF2, as npm run bundle makes it, pointed at the emulated LAN's broker
    log(`bundling the firmware for ${wiring.devName} (npm run bundle machinery, some 20 s)...`)
    let uf2: string
    try {
        const r = await bundleForEmulatedBoard(o.board, { log: s => log(s) })
        uf2 = r.file
    } catch (e) {
        console.error(e instanceof BundleError || e instanceof RuntimeMissingError ? e.message : `npm start: bundling failed: ${(e as Error).message}`)
        return 1
    }

    let broker: AedesBroker
    try {
        broker = await startAedes({ port: o.brokerPort })
    } catch (e) {
        console.error(`npm start: cannot start the embedded broker: ${(e as Error).message} (pick another with --broker-port N)`)
        return 1
    }
    let dashboard: Dashboard | undefined
    broker.aedes.on("client", c => {
        say("broker", `${c.id} connected`)
        dashboard?.state.infoLine("broker", `${c.id} connected`)
    })
    broker.aedes.on("clientDisconnect", c => {
        say("broker", `${c.id} disconnected`)
        dashboard?.state.infoLine("broker", `${c.id} disconnected`)
    })

    const uid = crypto.randomBytes(8)
    const id = String(o.settings.DEVICE_ID ?? `w55-${uid.toString("hex")}`)
    const prefix = typeof o.settings.TOPIC_PREFIX === "string" ? o.settings.TOPIC_PREFIX : "devices"
    const seen: Record<string, SettingValue> = { ...o.settings, DEVICE_ID: id, MQTT_HOST: "127.0.0.1", MQTT_PORT: broker.port, MQTT_TLS: false }
    if (o.dashboardPort !== undefined) {
        try {
            dashboard = await startDashboard({ port: o.dashboardPort, settings: seen, embedded: true }).catch(async e => {
                if (!/in use/.test((e as Error).message)) throw e
                return await startDashboard({ port: 0, settings: seen, embedded: true })
            })
            runnerSink = m => dashboard?.state.runnerLine(m)
        } catch (e) {
            log(`dashboard not started: ${(e as Error).message}`)
        }
    }

    const redact = redactor(o.settings)
    const board = await EmulatedBoard.create({
        board: o.board,
        uf2,
        uid,
        bridgeLostWakeups: o.bridgeLostWakeups,
        lan: { ...boardLan(broker.port), log: (level, msg) => log(`lan: ${level}: ${msg}`) },
        onConsole: l => {
            const text = redact(l.text)
            say(l.program ? "device" : "runtime", text)
            if (l.program) dashboard?.state.deviceLine(text)
        },
        onLostWakeup: (n, at) => {
            // every one is counted; print the first ones and then one in a hundred
            if (n <= 3 || n % 100 === 0)
                say("board", `lost timer wake-up #${n} at ${at.toFixed(3)} virtual s${o.bridgeLostWakeups ? " (bridged: the core is woken after 10 ms)" : ""}`)
        },
        onLed: on => {
            const msg = `LED (GPIO${wiring.led?.pin}) ${on ? "on" : "off"} at ${board.seconds.toFixed(3)} virtual s`
            say("board", msg)
            dashboard?.state.infoLine("dashboard", `board: ${msg}`)
        },
    })

    const hp = `-h 127.0.0.1 -p ${broker.port}`
    console.log(
        [
            "",
            `W55RP20 kit: firmware on the emulated ${wiring.devName} (rp2040js running the DeviceScript RP2040 runtime)`,
            ...(dashboard ? [`  dashboard ${dashboard.url}`] : []),
            `  board     boards/${o.board}.board.json: ${wiring.wiz.chip.toUpperCase()} on ${wiring.wiz.bus === "gpio" ? "bit-banged GPIO" : "SPI0"}, ${wiring.i2c ? `AHT20 model on I2C GP${wiring.i2c.pinSDA}/GP${wiring.i2c.pinSCL}` : "no I2C"}, LED GPIO${wiring.led?.pin}`,
            `  runtime   ${path.relative(process.cwd(), runtimeDir()) || "."} (docs/runtime.md)`,
            `  uf2       ${path.relative(ROOT, uf2)}`,
            `  network   emulated ${wiring.wiz.chip.toUpperCase()} on LAN 192.168.50.0/24 (DHCP, DNS, NTP at 192.168.50.1), on the board's virtual time`,
            `  broker    mqtt://127.0.0.1:${broker.port} (embedded aedes; the device knows it as ${BROKER_NAME}:${LAN_BROKER_PORT})`,
            `  device    ${id}, topics under ${prefix}/${id}/`,
            `  settings  ${o.found}`,
            `  wake-ups  ${o.bridgeLostWakeups ? "lost timer wake-ups are BRIDGED (--bridge-lost-wakeups): the board would freeze without it" : "lost timer wake-ups are reported, not bridged: the stock runtime freezes within seconds (add --bridge-lost-wakeups to go on)"}`,
            `  watch     mosquitto_sub ${hp} -t '#' -v`,
            `  command   mosquitto_pub ${hp} -t ${prefix}/${id}/commands/set -m '{"id":"1","params":{"led":true}}'`,
            `  stop      Ctrl-C`,
            "",
        ].join("\n")
    )

    let stopping = false
    const onSignal = (sig: NodeJS.Signals) => {
        if (stopping) process.exit(130)
        log(`${sig}: stopping the board and the broker`)
        stopping = true
        board.close()
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    let code = 0
    try {
        log(`starting ${path.relative(ROOT, uf2)} on the emulated ${wiring.devName}`)
        const booted = () => board.lines.some(l => /^\* .* v\d+\.\d+\.\d+/.test(l.text))
        let stop = await board.run({ until: booted, seconds: BOOT_DEADLINE_S })
        if (stop === "virtual-limit" || (stop === "frozen" && !booted())) {
            console.error(
                `npm start: ${path.relative(ROOT, uf2)} does not boot on the emulated ${wiring.devName}: no runtime banner within ${BOOT_DEADLINE_S} virtual s` +
                    (board.lines.length ? `; last console lines:\n  ${board.lines.slice(-8).map(l => l.text).join("\n  ")}` : " (no console output at all)")
            )
            code = 1
        } else if (stop !== "closed") {
            stop = await board.run({})
            if (stop === "frozen" && board.frozen) {
                const f = board.frozen
                console.error(
                    [
                        `[board] FROZEN at ${f.atSeconds.toFixed(3)} virtual s: the core sleeps with no timer wake-up pending (lost wake-up #${f.lostWakeups},`,
                        `        the stock runtime's timer bug: docs/hardware.md, "The emulated board"). Nothing will wake it; on a real board it would hang the same way.`,
                        `        Last console lines:`,
                        ...f.lastLines.map(l => `          ${redact(l)}`),
                        `        Run with --bridge-lost-wakeups to bridge lost wake-ups (10 ms, the Jacdac tick) and go on.`,
                    ].join("\n")
                )
                code = 1
            }
        }
    } finally {
        process.off("SIGINT", onSignal)
        process.off("SIGTERM", onSignal)
        board.close()
        log(`stopped at ${board.seconds.toFixed(1)} virtual s; lost wake-ups: ${board.counters.run.lostWakeups}${o.bridgeLostWakeups ? " (bridged)" : ""}`)
        runnerSink = undefined
        if (dashboard) await dashboard.close().catch(() => {})
        await broker.close().catch(() => {})
    }
    return code
}
