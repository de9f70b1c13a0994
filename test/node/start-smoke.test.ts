/**
 * `npm start` smoke test: two runners (sim/start.ts) at once, each with its own settings file
 * (DEVICE_ID), embedded broker and dashboard on free ports; each device's report reaches its own
 * broker, a command gets its reply, and SIGINT (to one runner alone, and to the other's whole
 * process group as Ctrl-C in a terminal does) stops everything: each runner exits 0 and no process
 * it started (the VM, watchdogs) is left behind.
 */
import { after, test } from "node:test"
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { createInterface } from "node:readline"
import mqtt from "mqtt"
import { freePort } from "../../sim/brokers.ts"
import { ROOT } from "../../sim/devs.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** Process groups still to kill if a test times out (its own cleanup never runs then). */
const groups = new Set<number>()
after(() => {
    for (const g of groups) {
        try {
            process.kill(-g, "SIGKILL")
        } catch {}
    }
})

interface Proc {
    pid: number
    ppid: number
    pgid: number
    args: string
}

/** Every process on the machine (ps). */
function processes(): Proc[] {
    const r = spawnSync("ps", ["-e", "-o", "pid=,ppid=,pgid=,args="], { encoding: "utf8" })
    assert.equal(r.status, 0, `ps failed: ${r.stderr}`)
    return r.stdout
        .split("\n")
        .map(l => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map(m => ({ pid: +m[1], ppid: +m[2], pgid: +m[3], args: m[4] }))
}

/** `root` and all its descendants now. */
function tree(root: number): Proc[] {
    const all = processes()
    const out: Proc[] = []
    const seen = new Set([root])
    for (let grew = true; grew; ) {
        grew = false
        for (const p of all)
            if (!out.includes(p) && (p.pid === root || seen.has(p.ppid))) {
                out.push(p)
                seen.add(p.pid)
                grew = true
            }
    }
    return out
}

function refused(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const s = net.connect({ host: "127.0.0.1", port })
        s.once("connect", () => {
            s.destroy()
            resolve(false)
        })
        s.once("error", () => resolve(true))
    })
}

/** One `npm start` with its own settings file (DEVICE_ID `id`) and broker, stopped by SIGINT to `signalTo`. */
async function smoke(signalTo: "runner" | "group", id: string) {
    const port = await freePort()
    const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "smoke-")), `${id}.env`)
    fs.writeFileSync(envFile, `DEVICE_ID=${id}\n`)
    const args = ["--env", envFile, "--broker-port", String(port), "--dashboard-port", "0"]
    const child = spawn(process.execPath, ["--import", "tsx", "sim/start.ts", ...args], {
        cwd: ROOT,
        detached: true, // its own process group, like a shell job
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NO_COLOR: "1" },
    })
    const pid = child.pid!
    groups.add(pid)
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on("line", l => lines.push(l))
    createInterface({ input: child.stderr! }).on("line", l => lines.push(l))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(r => child.on("exit", (code, signal) => r({ code, signal })))
    let done = false
    exited.then(() => (done = true))
    const out = () => lines.slice(-40).join("\n")
    const seen = new Map<number, Proc>()
    const sample = () => {
        for (const p of tree(pid)) if (p.pid !== pid) seen.set(p.pid, p)
    }
    const until = async (what: string, cond: () => boolean, ms: number) => {
        const deadline = Date.now() + ms
        while (!cond()) {
            if (done) throw new Error(`waiting for ${what}: npm start exited\n${out()}`)
            if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${ms} ms\n${out()}`)
            sample()
            await sleep(100)
        }
    }
    let obs: mqtt.MqttClient | undefined
    try {
        await until("the runner to start the device", () => lines.some(l => l.startsWith("[runner] starting ")), 30000)
        assert.ok(lines.some(l => l.includes(`mqtt://127.0.0.1:${port} (embedded aedes`)), `the banner names the broker\n${out()}`)
        assert.ok(lines.some(l => /^\s+watch\s+mosquitto_sub -h 127\.0\.0\.1 -p \d+ -t '#' -v/.test(l)), `the banner tells how to watch\n${out()}`)

        obs = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5000 })
        obs.on("error", () => {})
        const msgs: { topic: string; text: string }[] = []
        obs.on("message", (topic, payload) => msgs.push({ topic, text: payload.toString() }))
        await obs.subscribeAsync("#", { qos: 1 })

        const isReport = (m: { topic: string; text: string }) => {
            if (!m.topic.endsWith("/telemetry")) return false
            try {
                const r = JSON.parse(m.text)
                return typeof r.temperature === "number" && typeof r.led === "boolean" && typeof r.uptime === "number"
            } catch {
                return false
            }
        }
        await until("a telemetry report at the broker", () => msgs.some(isReport), 40000)
        const report = msgs.find(isReport)!
        const base = report.topic.slice(0, -"/telemetry".length)
        assert.equal(base, `devices/${id}`, "the report comes from the device of this runner's settings file")
        assert.ok(lines.some(l => l.startsWith("[device] ")), "the device console is streamed with a prefix")
        sample()
        const vm = [...seen.values()].filter(p => p.args.includes("devicescript-cli"))
        assert.ok(vm.length >= 1, `the VM process is a descendant of npm start:\n${[...seen.values()].map(p => `${p.pid} ${p.args}`).join("\n")}`)

        const from = msgs.length
        await obs.publishAsync(`${base}/commands/set`, JSON.stringify({ id: "smoke-1", params: { led: true } }), { qos: 1 })
        const isReply = (m: { topic: string; text: string }) => m.topic === `${base}/replies` && m.text.includes('"smoke-1"')
        await until("the reply to the command", () => msgs.slice(from).some(isReply), 10000)
        const reply = JSON.parse(msgs.slice(from).find(isReply)!.text)
        assert.deepEqual(reply, { id: "smoke-1", code: 200, data: { led: true } })
        await until("a report with the LED on", () => msgs.slice(from).some(m => isReport(m) && JSON.parse(m.text).led === true), 10000)
        await obs.endAsync(true)
        obs = undefined

        sample()
        process.kill(signalTo === "group" ? -pid : pid, "SIGINT")
        const deadline = Date.now() + 20000
        while (!done && Date.now() < deadline) await sleep(100)
        assert.ok(done, `npm start did not exit within 20 s of SIGINT\n${out()}`)
        const { code, signal } = await exited
        assert.equal(signal, null, `npm start was killed by ${signal}`)
        assert.equal(code, 0, `npm start exit code\n${out()}`)
        assert.ok(lines.includes("[runner] stopped"), `the runner says it stopped\n${out()}`)

        // nothing left: the processes it started, its process group, its broker port. The runner
        // waits for the VM before it exits, so only a moment's grace (an orphaned VM would linger
        // until its next console write fails)
        let left: number[] = []
        for (let i = 0; i < 5; i++) {
            // a pid counts when it runs the same command line (not a reused pid)
            const now = processes()
            left = now.filter(p => seen.get(p.pid)?.args === p.args || p.pgid === pid).map(p => p.pid)
            if (!left.length) break
            await sleep(100)
        }
        const desc = (p: number) => `${p} ${seen.get(p)?.args ?? processes().find(q => q.pid === p)?.args ?? ""}`
        assert.deepEqual(left.map(desc), [], "processes left behind")
        assert.ok(await refused(port), `the broker port ${port} is still open`)
    } finally {
        await obs?.endAsync(true).catch(() => {})
        // whatever happened, leave nothing running (the group is empty when all went well)
        try {
            process.kill(-pid, "SIGKILL")
        } catch {}
        await exited
        groups.delete(pid)
        fs.rmSync(path.dirname(envFile), { recursive: true, force: true })
    }
}

test("two npm start at once, each with its own settings file: a report, a command and its reply each; SIGINT to one runner, Ctrl-C (SIGINT to the process group) to the other, stop everything", { timeout: 240000 }, async () => {
    // side by side on one machine and one checkout: each runner's host link, W5500 bridge, broker,
    // dashboard and VM build folder are its own (sim/simports.ts, sim/devs.ts)
    const runs = await Promise.allSettled([smoke("runner", "smoke-a"), smoke("group", "smoke-b")])
    for (const r of runs) if (r.status === "rejected") throw r.reason
})
