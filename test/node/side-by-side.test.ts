/**
 * Two simulators on one machine, from one checkout, at the same time: two `npm start` runners,
 * each with its own settings file (its own DEVICE_ID), broker and dashboard on free ports. Each
 * runner's host link and W5500 bridge listen on ports the OS picks and its device is handed
 * those (sim/simports.ts), so both devices get their own settings and both report.
 */
import { after, test } from "node:test"
import assert from "node:assert/strict"
import { spawn, type ChildProcess } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { createInterface } from "node:readline"
import mqtt from "mqtt"
import { ROOT } from "../../sim/devs.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

const children = new Set<ChildProcess>()
after(() => {
    for (const c of children) {
        try {
            process.kill(-c.pid!, "SIGKILL")
        } catch {}
    }
})

interface Runner {
    id: string
    child: ChildProcess
    lines: string[]
    exited: Promise<number | null>
}

function startRunner(dir: string, id: string): Runner {
    const env = path.join(dir, `${id}.env`)
    fs.writeFileSync(env, `DEVICE_ID=${id}\nREPORT_MS=2000\n`)
    const child = spawn(process.execPath, ["--import", "tsx", "sim/start.ts", "--env", env, "--broker-port", "0", "--dashboard-port", "0"], {
        cwd: ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NO_COLOR: "1" },
    })
    children.add(child)
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on("line", l => lines.push(l))
    createInterface({ input: child.stderr! }).on("line", l => lines.push(l))
    const exited = new Promise<number | null>(r => child.on("exit", code => r(code)))
    return { id, child, lines, exited }
}

/** Waits for the runner's banner and returns its broker port. */
async function brokerPort(r: Runner): Promise<number> {
    const deadline = Date.now() + 60000
    for (;;) {
        for (const l of r.lines) {
            const m = /broker\s+mqtt:\/\/127\.0\.0\.1:(\d+) \(embedded/.exec(l)
            if (m) return +m[1]
        }
        assert.ok(Date.now() < deadline, `${r.id}: no banner after 60 s\n${r.lines.slice(-30).join("\n")}`)
        assert.equal(r.child.exitCode, null, `${r.id}: npm start exited\n${r.lines.slice(-30).join("\n")}`)
        await sleep(100)
    }
}

test("two npm start runners with two settings files at once: both devices report", { timeout: 300000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "side-by-side-"))
    const runners = [startRunner(dir, "side-a"), startRunner(dir, "side-b")]
    const clients: mqtt.MqttClient[] = []
    let codes: unknown[] = []
    try {
        const ports = await Promise.all(runners.map(brokerPort))
        assert.notEqual(ports[0], ports[1])
        // each broker sees a report of its own device, and nothing of the other
        const got = await Promise.all(
            runners.map(async (r, i) => {
                const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${ports[i]}`, { reconnectPeriod: 0, connectTimeout: 5000 })
                clients.push(c)
                c.on("error", () => {})
                const topics: string[] = []
                c.on("message", t => topics.push(t))
                await c.subscribeAsync("devices/#", { qos: 0 })
                const deadline = Date.now() + 150000
                while (!topics.includes(`devices/${r.id}/telemetry`)) {
                    assert.ok(Date.now() < deadline, `${r.id}: no report at its broker after 150 s\n${r.lines.slice(-30).join("\n")}`)
                    assert.equal(r.child.exitCode, null, `${r.id}: npm start exited\n${r.lines.slice(-30).join("\n")}`)
                    await sleep(200)
                }
                return topics
            })
        )
        for (const [i, topics] of got.entries()) {
            const other = runners[1 - i].id
            assert.ok(!topics.some(t => t.includes(`/${other}/`)), `${runners[i].id}'s broker saw ${other}: ${topics.join(", ")}`)
        }
        for (const r of runners) assert.ok(r.lines.some(l => l.includes(`device    ${r.id}`)), `${r.id}: the banner names its device`)
    } finally {
        await Promise.all(clients.map(c => c.endAsync(true).catch(() => {})))
        for (const r of runners) {
            try {
                process.kill(-r.child.pid!, "SIGINT")
            } catch {}
        }
        const hung = new Promise<string>(r => setTimeout(() => r("hung"), 30000).unref())
        codes = await Promise.all(runners.map(r => Promise.race([r.exited, hung])))
        for (const r of runners) {
            try {
                process.kill(-r.child.pid!, "SIGKILL")
            } catch {}
            children.delete(r.child)
        }
        fs.rmSync(dir, { recursive: true, force: true })
    }
    assert.deepEqual(codes, [0, 0], "both runners stop cleanly on Ctrl-C")
})
