import { test } from "node:test"
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import net from "node:net"
import path from "node:path"
import { ROOT, type VmRun } from "../../sim/devs.ts"
import { SIM_DEVICE_ID, USAGE, deviceSettings, exitReason, onEmulatedBoard, parseOptions, redactor } from "../../sim/start.ts"

const TSX = path.join(ROOT, "node_modules/tsx/dist/cli.mjs")

function start(args: string[]) {
    return spawnSync(process.execPath, [TSX, "sim/start.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60000 })
}

test("--help lists every option and exits 0", () => {
    const r = start(["--help"])
    assert.equal(r.status, 0, r.stderr)
    for (const opt of ["--broker-port N", "--no-broker", "--env FILE", "--entry FILE", "--help"]) assert.ok(r.stdout.includes(opt), `help mentions ${opt}:\n${r.stdout}`)
    assert.ok(r.stdout.includes(".env.defaults") && r.stdout.includes(".env.local"), "help explains the settings layers")
    assert.equal(r.stdout.trim(), USAGE.trim())
})

test("bad options are refused with a message and the usage, exit 2", () => {
    const cases: [string[], RegExp][] = [
        [["--bogus"], /Unknown option '--bogus'/],
        [["--broker-port", "abc"], /--broker-port must be an integer 0\.\.65535, got "abc"/],
        [["--broker-port", "70000"], /--broker-port must be an integer 0\.\.65535, got "70000"/],
        [["--no-broker", "--broker-port", "1883"], /cannot be combined/],
        [["--entry", "src/does-not-exist.ts"], /--entry src\/does-not-exist\.ts: no such file/],
        [["--env", "does-not-exist.env"], /settings: cannot read .*does-not-exist\.env: no such file/],
        [["--board", "nope_evb"], /no board file boards\/nope_evb\.board\.json; boards: .*w5100s_evb_pico.*pico_w/],
        [["--board", "pico_w", "--net", "w5500"], /--board pico_w has no W5500/],
    ]
    for (const [args, re] of cases) {
        const r = start(args)
        assert.equal(r.status, 2, `${args.join(" ")}: exit ${r.status}\n${r.stdout}${r.stderr}`)
        assert.match(r.stderr, re, args.join(" "))
    }
})

test("a taken broker port is refused with a clear message, exit 1", async () => {
    const blocker = net.createServer()
    await new Promise<void>(r => blocker.listen(0, "127.0.0.1", () => r()))
    const port = (blocker.address() as net.AddressInfo).port
    try {
        // async spawn: the blocking server lives in this process's event loop
        const child = spawn(process.execPath, [TSX, "sim/start.ts", "--broker-port", String(port)], { cwd: ROOT })
        let stderr = ""
        child.stderr.on("data", d => (stderr += d))
        const code = await new Promise<number | null>(r => child.on("close", c => r(c)))
        assert.equal(code, 1, stderr)
        assert.match(stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`))
        assert.match(stderr, /--broker-port N/)
    } finally {
        await new Promise<void>(r => blocker.close(() => r()))
    }
})

test("parseOptions defaults and values", () => {
    const none = { envFile: undefined, entry: undefined, net: undefined, allowExternal: false, board: undefined, bridgeLostWakeups: false }
    assert.deepEqual(parseOptions([]), { help: false, brokerPort: 1883, dashboardPort: 8080, ...none })
    assert.deepEqual(parseOptions(["--broker-port", "0", "--env", "a.env", "--entry", "x.ts", "--net", "host"]), {
        ...none, help: false, brokerPort: 0, dashboardPort: 8080, envFile: "a.env", entry: "x.ts", net: "host",
    })
    assert.equal(parseOptions(["--net", "w5500", "--no-broker", "--allow-external"]).allowExternal, true)
    assert.throws(() => parseOptions(["--net", "wifi"]), /--net must be w5500 or host, got "wifi"/)
    assert.throws(() => parseOptions(["--allow-external"]), /--allow-external goes with --net w5500 and --no-broker/)
    assert.equal(parseOptions(["--no-broker"]).brokerPort, undefined)
    assert.equal(parseOptions(["-h"]).help, true)
    // the emulated board
    assert.equal(parseOptions(["--board", "w5500_evb_pico", "--bridge-lost-wakeups"]).board, "w5500_evb_pico")
    assert.equal(parseOptions(["--board", "w5500_evb_pico", "--bridge-lost-wakeups"]).bridgeLostWakeups, true)
    assert.throws(() => parseOptions(["--board", "../x"]), /--board must be a board id/)
    assert.throws(() => parseOptions(["--board", "w55rp20_evb_pico", "--no-broker"]), /embedded broker only/)
    assert.throws(() => parseOptions(["--board", "w55rp20_evb_pico", "--env", "a.env"]), /--entry and --env do not apply/)
    assert.throws(() => parseOptions(["--bridge-lost-wakeups"]), /--bridge-lost-wakeups goes with --board/)
    assert.equal(parseOptions(["--board", "w5100s_evb_pico"]).board, "w5100s_evb_pico")
    // the W5100S-EVB-Pico runs on the emulated board too; the Pico W (no CYW43 model) in the simulator
    assert.equal(onEmulatedBoard("w5100s_evb_pico"), true)
    assert.equal(parseOptions(["--board", "w5100s_evb_pico", "--bridge-lost-wakeups"]).bridgeLostWakeups, true)
    assert.equal(onEmulatedBoard("pico_w"), false)
    assert.throws(() => parseOptions(["--board", "pico_w", "--bridge-lost-wakeups"]), /--bridge-lost-wakeups goes with a board the emulated RP2040 carries \(the WIZnet boards\), not pico_w/)
    assert.throws(() => parseOptions(["--board", "../boards/x"]), /--board must be a board id/)
})

test("device settings: broker override, DEVICE_ID default, nothing else touched", () => {
    const files = { MQTT_HOST: "cloud.example.com", MQTT_PORT: 8883, MQTT_TLS: true, MQTT_PASS: "s", REPORT_MS: 2000 }
    assert.deepEqual(deviceSettings(files, 1884), { ...files, MQTT_HOST: "127.0.0.1", MQTT_PORT: 1884, MQTT_TLS: false, DEVICE_ID: SIM_DEVICE_ID })
    assert.deepEqual(deviceSettings(files), { ...files, DEVICE_ID: SIM_DEVICE_ID })
    // over the emulated W5500 the device finds the embedded broker by name on the emulated LAN
    assert.deepEqual(deviceSettings(files, 1884, "w5500"), { ...files, MQTT_HOST: "broker.lan", MQTT_PORT: 1884, MQTT_TLS: false, NET: "w5500", DEVICE_ID: SIM_DEVICE_ID })
    assert.equal(deviceSettings({ DEVICE_ID: "mine" }).DEVICE_ID, "mine")
})

test("secret setting values are hidden in device output", () => {
    const r = redactor({ MQTT_PASS: "hunter22", DEVICE_SECRET: "abcd1234", MQTT_USER: "alice", SAS_KEY: "xy" })
    assert.equal(r("login alice/hunter22 with abcd1234"), "login alice/(secret) with (secret)")
    assert.equal(r("nothing here"), "nothing here")
})

test("exit reasons name the crash", () => {
    const run = (code: number | null, lines: string[], timedOut = false): VmRun => ({ code, lines, tests: [], timedOut })
    assert.equal(exitReason(run(0, [])), "restarted itself (ds.restart() or ds.reboot())")
    assert.equal(
        exitReason(run(1, ["Unhandled exception", "Exception: Error", " message: probe crash", " at main", "PANIC 60005", "test failed"])),
        "crashed: Error: probe crash (PANIC 60005)"
    )
    assert.equal(exitReason(run(1, ["Exception: InfiniteLoop", " at f", "PANIC 60001"])), "crashed: InfiniteLoop (PANIC 60001)")
    assert.equal(exitReason(run(1, ["something"])), "exited with code 1")
    assert.equal(exitReason(run(1, ["timeout"], true)), "hit the simulator's run time limit")
})
