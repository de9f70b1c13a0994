/**
 * Secrets hygiene: every platform (generic with MQTT_PASS, and each emulated cloud) runs the real
 * firmware with a recognisable secret; it connects, reports and answers a command, and a second
 * boot with a wrong secret is refused. Neither the secret (raw, base64, hex, decoded) nor any
 * password or token the device actually sent in its CONNECT (captured at the broker) may appear in
 * the device console, in what this process prints, in what the emulations record (what a failing
 * test would print), or in what the device publishes. `npm start` with MQTT_PASS in its --env file
 * must not print it either. Failure messages name where a secret was found, never the secret.
 */
import { after, describe, test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { spawn, type ChildProcess } from "node:child_process"
import mqtt from "mqtt"
import { ROOT, runVm, type VmRun } from "../../sim/devs.ts"
import { loadEnvFiles } from "../../sim/envfile.ts"
import { startHostLink, type Settings } from "../../sim/hostlink.ts"
import { imageFor } from "../../sim/images.ts"
import { deviceSettings } from "../../sim/start.ts"
import { startAedes, type AedesBroker } from "../../sim/brokers.ts"
import { CLOUD_PLATFORMS, TEST_IDENTITIES, cloudSettings, startEmulatedCloud, type AnyIdentity, type CloudPlatform } from "../../sim/clouds/emulated.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** Every secret used here contains this marker (as text, or inside its base64 when the platform takes base64 keys). */
const MARK = "SECRETMARKER"

type Platform = "generic" | CloudPlatform
const PLATFORMS: Platform[] = ["generic", ...CLOUD_PLATFORMS]
/** Refused boots for a representative subset: a plain password, a base64 key with a signed token, a SAS token, a PSK. */
const WRONG_SUBSET: Platform[] = ["generic", "onenet", "azure", "tencent"]

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")

/** The recognisable secret of a platform (`wrong`: a different, equally recognisable one). */
function secretFor(p: Platform, wrong: boolean): string {
    const w = wrong ? "WRONG" : "right"
    switch (p) {
        case "onenet":
            return b64(`${MARK}-onenet-${w}-key-0123`) // base64 key
        case "azure":
            return b64(`${MARK}-azure-${w}-key-01234`) // base64 key
        case "tencent":
            return b64(`${MARK}-tc-${w}`) // base64 PSK
        default:
            return `${MARK}-${p}-${w}-s3cr3t`
    }
}

/** Every textual form a secret could leak in: raw, base64, hex, and for base64 keys the decoded bytes. */
function secretForms(secret: string): string[] {
    const raw = Buffer.from(secret, "utf8")
    const forms = [secret, raw.toString("base64"), raw.toString("hex"), raw.toString("hex").toUpperCase()]
    if (/^[A-Za-z0-9+/]+=*$/.test(secret) && secret.length % 4 === 0) {
        const dec = Buffer.from(secret, "base64")
        forms.push(dec.toString("latin1"), dec.toString("hex"), dec.toString("hex").toUpperCase(), dec.toString("base64url"))
    }
    forms.push(encodeURIComponent(secret))
    return [...new Set(forms.filter(f => f.length >= 8))]
}

/** The password a device sent, and its distinctive parts (signature values, HMAC hex). */
function tokenForms(pw: string): string[] {
    const out = [pw]
    const sig = /(?:^|[&?\s])sign?=([^&\s]+)/.exec(pw)
    if (sig) {
        let dec = sig[1]
        try {
            dec = decodeURIComponent(sig[1])
        } catch {}
        out.push(sig[1], dec, dec.slice(0, 16))
    } else {
        const head = pw.split(";")[0]
        out.push(head, head.slice(0, 16))
    }
    return [...new Set(out.filter(f => f.length >= 12))]
}

/** Identity of `p` with `secret` in place of the test identity's. */
function identityWith(p: CloudPlatform, secret: string): AnyIdentity {
    const i = TEST_IDENTITIES
    switch (p) {
        case "alibaba":
            return { ...i.alibaba, deviceSecret: secret }
        case "onenet":
            return { ...i.onenet, deviceKey: secret }
        case "azure":
            return { ...i.azure, deviceKey: secret }
        case "thingspeak":
            return { ...i.thingspeak, password: secret }
        case "huawei":
            return { ...i.huawei, secret }
        case "tencent":
            return { ...i.tencent, psk: secret }
    }
}

/** Where output was collected, by name, for the leak check. */
class Outputs {
    readonly sources = new Map<string, string[]>()
    add(source: string, line: string) {
        let a = this.sources.get(source)
        if (!a) this.sources.set(source, (a = []))
        a.push(line)
    }
    /** Fails naming the source and line number of the first needle found, never the needle. */
    assertClean(needles: { what: string; forms: string[] }[]) {
        for (const [source, lines] of this.sources)
            for (let n = 0; n < lines.length; n++)
                for (const nd of needles)
                    if (nd.forms.some(f => lines[n].includes(f))) assert.fail(`${nd.what} found in line ${n + 1} of ${source}`)
    }
}

/** What this process writes to stdout/stderr while the tests run (passed through unchanged). */
const ownOutput: string[] = []
{
    for (const stream of [process.stdout, process.stderr]) {
        const orig = stream.write.bind(stream) as (...a: any[]) => boolean
        ;(stream as any).write = (chunk: any, ...rest: any[]) => {
            try {
                ownOutput.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("latin1"))
            } catch {}
            return orig(chunk, ...rest)
        }
    }
}

/** One platform's device run. */
interface Run {
    platform: Platform
    wrong: boolean
    secret: string
    lines: string[]
    /** console lines of an earlier boot attempt */
    console: string[]
    child?: ChildProcess
    run?: Promise<VmRun>
    exited: boolean
    /** passwords the device sent in CONNECT */
    passwords: string[]
    /** CONNECT verdicts (true = accepted) */
    verdicts: boolean[]
    /** what the emulation recorded, as a failing test would print it */
    recorded: () => string[]
    /** the device's publishes, as text */
    published: () => string[]
    /** sends one command and resolves to true when its reply came */
    command: () => Promise<boolean>
    reports: () => number
    close: () => Promise<void>
}

const BASE_ENV = () => deviceSettings(loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: true }]).settings) as Settings

/** Wraps aedes' authenticate to record each CONNECT's password (everyone but `skip`). */
function capturePasswords(broker: AedesBroker, skip: (clientId: string) => boolean, into: string[]) {
    const a = broker.aedes as any
    const orig = a.authenticate
    a.authenticate = (client: any, username: any, password: any, done: any) => {
        if (!skip(client.id)) into.push(password === undefined || password === null ? "" : Buffer.from(password).toString("utf8"))
        return orig.call(a, client, username, password, done)
    }
}

/** Starts the cloud side of `p` with `secret` (a generic aedes broker with user/password for "generic"). */
async function prepare(p: Platform, wrong: boolean): Promise<{ r: Run; settings: Settings }> {
    const right = secretFor(p, false)
    const secret = secretFor(p, wrong)
    const passwords: string[] = []
    const verdicts: boolean[] = []
    const devId = `sec-${p}${wrong ? "-w" : ""}`
    const base: Omit<Run, "recorded" | "published" | "command" | "reports" | "close"> = { platform: p, wrong, secret, lines: [], console: [], exited: false, passwords, verdicts }
    if (p === "generic") {
        const observerPass = "observer-" + Math.random().toString(36).slice(2)
        const broker = await startAedes({
            authenticate(clientId, username, password) {
                const pw = password?.toString("utf8")
                if (clientId === "sec-observer") return pw === observerPass ? 0 : 5
                const ok = username === "sec-user" && pw === right
                verdicts.push(ok)
                return ok ? 0 : 4
            },
        })
        capturePasswords(broker, id => id === "sec-observer", passwords)
        const obs = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: "sec-observer", username: "obs", password: observerPass, protocolVersion: 4 })
        obs.on("error", () => {})
        const msgs: { topic: string; text: string }[] = []
        obs.on("message", (topic, payload) => msgs.push({ topic, text: payload.toString("utf8") }))
        await obs.subscribeAsync("#", { qos: 1 })
        const prefix = `devices/${devId}`
        const settings: Settings = {
            ...BASE_ENV(),
            CLOUD: "generic",
            MQTT_HOST: "127.0.0.1",
            MQTT_PORT: broker.port,
            MQTT_TLS: false,
            MQTT_USER: "sec-user",
            MQTT_PASS: secret,
            DEVICE_ID: devId,
            TOPIC_PREFIX: "devices",
            REPORT_MS: 1000,
        }
        const r: Run = {
            ...base,
            recorded: () => [],
            published: () => msgs.map(m => `${m.topic} ${m.text}`),
            reports: () => msgs.filter(m => m.topic === `${prefix}/telemetry`).length,
            async command() {
                const from = msgs.length
                await obs.publishAsync(`${prefix}/commands/set`, JSON.stringify({ id: "sec-1", params: { led: true } }), { qos: 1 })
                const deadline = Date.now() + 10000
                while (Date.now() < deadline) {
                    if (msgs.slice(from).some(m => m.topic === `${prefix}/replies` && m.text.includes('"sec-1"'))) return true
                    await sleep(50)
                }
                return false
            },
            async close() {
                await obs.endAsync(true).catch(() => {})
                await broker.close()
            },
        }
        return { r, settings }
    }
    const cloud = await startEmulatedCloud(p, { identity: identityWith(p, right) })
    capturePasswords(cloud.broker, id => id.startsWith("emulated-cloud-"), passwords)
    const settings: Settings = {
        ...BASE_ENV(),
        MQTT_USER: "",
        MQTT_PASS: "",
        REPORT_MS: 1000,
        DEVICE_ID: devId,
        // the device holds `secret` (the wrong one for a refused boot)
        ...cloudSettings(p, identityWith(p, secret), cloud.port),
    }
    const r: Run = {
        ...base,
        recorded: () => [JSON.stringify(cloud.connects), JSON.stringify(cloud.problems)],
        published: () => cloud.uplinks.map(u => `${u.topic} ${u.text}`),
        reports: () => cloud.reports().length,
        async command() {
            if (!cloud.commands.length) return true // ThingSpeak takes no commands
            const res = await cloud.send(cloud.commands[0], 10000)
            return res.reply !== undefined && res.problems.length === 0
        },
        async close() {
            await cloud.close()
        },
    }
    Object.defineProperty(r, "verdicts", { get: () => cloud.connects.map(c => c.ok) })
    return { r, settings }
}

/** Boots the firmware with `settings` over the host link (released as soon as the device has them). */
async function bootOnce(r: Run, settings: Settings, timeoutMs: number): Promise<boolean> {
    r.lines.length = 0
    r.exited = false
    const link = await startHostLink(settings, { waitMs: 120000 })
    try {
        r.run = runVm(imageFor("sim", r.platform), {
            // test mode: its settings store lives in memory ("device" mode keeps it, secrets included,
            // in the run's .devicescript/flash/sim.bin until the run ends)
            timeoutMs,
            onSpawn: c => (r.child = c),
            onLine: l => r.lines.push(l),
        })
        r.run.finally(() => (r.exited = true)).catch(() => {})
        const deadline = Date.now() + 60000
        while (link.served < 1 && !r.exited && Date.now() < deadline) await sleep(50)
        assert.ok(link.served >= 1, `${r.platform}: the device never asked the host link for its settings`)
    } finally {
        await link.close()
    }
    // the settings reached this device (a guard from when every run shared one host link port)
    const id = `device=${settings.DEVICE_ID} `
    const until = Date.now() + 20000
    while (!r.lines.some(l => l.includes(id)) && !r.exited && Date.now() < until) await sleep(50)
    return r.lines.some(l => l.includes(id))
}

/** bootOnce, once more if another VM took the settings (no longer expected: each run has its own host link port). */
async function boot(r: Run, settings: Settings, timeoutMs: number) {
    if (await bootOnce(r, settings, timeoutMs)) return
    if (r.child && r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL")
    await r.run?.catch(() => {})
    r.console.push(...r.lines)
    assert.ok(await bootOnce(r, settings, timeoutMs), `${r.platform}: the device did not boot with its settings (another VM on the host link?)`)
}

async function stop(r: Run) {
    if (r.child && r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL")
    await r.run?.catch(() => {})
    await r.close()
}

/** Needles for a set of runs: every secret form and every token form they involve. */
function needlesOf(runs: Run[]) {
    const out: { what: string; forms: string[] }[] = [{ what: "the secret marker", forms: [MARK, b64(MARK).slice(0, 12), Buffer.from(MARK).toString("hex")] }]
    for (const r of runs) {
        out.push({ what: `the ${r.wrong ? "wrong " : ""}secret of ${r.platform}`, forms: secretForms(r.secret) })
        r.passwords.forEach((pw, i) => {
            // thingspeak and generic send the secret itself: covered above
            if (pw.length) out.push({ what: `CONNECT password ${i + 1} of ${r.platform}${r.wrong ? " (wrong secret)" : ""}`, forms: tokenForms(pw) })
        })
    }
    return out
}

const live: Run[] = []
after(async () => {
    for (const r of live) await stop(r).catch(() => {})
})

describe("secrets hygiene", () => {
    for (const wrong of [false, true]) {
        test(`${wrong ? WRONG_SUBSET.join(", ") + " with a wrong" : "every platform with a recognisable"} secret: ${wrong ? "refused" : "connects, reports, answers"}, and neither secret nor token appears anywhere`, async () => {
            const runs: Run[] = []
            const ownFrom = ownOutput.length
            try {
                // boots one after the other (the host link is a mutex), then all run side by side
                for (const p of wrong ? WRONG_SUBSET : PLATFORMS) {
                    const { r, settings } = await prepare(p, wrong)
                    runs.push(r)
                    live.push(r)
                    await boot(r, settings, 150000)
                }
                if (!wrong) {
                    await Promise.all(
                        runs.map(async r => {
                            const deadline = Date.now() + 60000
                            while (r.reports() < 1 && !r.exited && Date.now() < deadline) await sleep(100)
                            assert.ok(r.reports() >= 1, `${r.platform}: no report (${r.lines.length} console lines, verdicts ${JSON.stringify(r.verdicts)})`)
                            assert.ok(await r.command(), `${r.platform}: no reply to a command`)
                            assert.ok(r.verdicts.length >= 1 && r.verdicts.every(v => v), `${r.platform}: every CONNECT accepted: ${JSON.stringify(r.verdicts)}`)
                        })
                    )
                } else {
                    await Promise.all(
                        runs.map(async r => {
                            const deadline = Date.now() + 60000
                            while (r.verdicts.length < 1 && !r.exited && Date.now() < deadline) await sleep(100)
                            assert.ok(r.verdicts.length >= 1, `${r.platform}: the device never tried to connect`)
                            assert.ok(r.verdicts.every(v => !v), `${r.platform}: a wrong secret was accepted`)
                            // give it time to log the refusal
                            const until = Date.now() + 8000
                            while (!r.lines.some(l => /refused|not authori[sz]ed|bad user name/i.test(l)) && Date.now() < until) await sleep(100)
                            assert.equal(r.reports(), 0, `${r.platform}: nothing reported without a session`)
                        })
                    )
                }
                for (const r of runs) assert.ok(r.passwords.some(pw => pw.length > 0), `${r.platform}: the broker saw a CONNECT password`)
            } finally {
                for (const r of runs) {
                    await stop(r)
                    live.splice(live.indexOf(r), 1)
                }
            }
            const out = new Outputs()
            for (const r of runs) {
                for (const l of [...r.console, ...r.lines]) out.add(`the ${r.platform} device console`, l)
                for (const l of r.recorded()) out.add(`the ${r.platform} cloud emulation's records`, l)
                for (const l of r.published()) out.add(`the ${r.platform} device's publishes`, l)
            }
            for (const l of ownOutput.slice(ownFrom).join("").split("\n")) out.add("this test process's output", l)
            for (const r of runs) assert.ok(r.lines.length > 0, `${r.platform}: the device console was collected`)
            // the device knew its password: the config line says so without showing it
            const g = runs.find(r => r.platform === "generic")
            if (g) assert.ok(g.lines.some(l => l.includes("pass=(set)")), "the generic device's config line shows pass=(set)")
            const needles = needlesOf(runs)
            // the check itself finds every needle (and its message never shows one)
            for (const nd of needles)
                for (const f of nd.forms) {
                    const probe = new Outputs()
                    probe.add("a probe", `before ${f} after`)
                    assert.throws(
                        () => probe.assertClean(needles),
                        (e: Error) => e.message.endsWith("line 1 of a probe") && !needles.some(n => n.forms.some(g => e.message.includes(g)))
                    )
                }
            out.assertClean(needles)
        })
    }

    test("npm start never prints MQTT_PASS from its --env file", async () => {
        const secret = secretFor("generic", false).replace("generic", "npmstart")
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "secrets-test-"))
        const envFile = path.join(dir, "device.env")
        fs.writeFileSync(envFile, `MQTT_USER=someone\nMQTT_PASS=${secret}\nREPORT_MS=1000\n`)
        const child = spawn(process.execPath, ["--import", "tsx", "sim/start.ts", "--broker-port", "0", "--no-dashboard", "--env", envFile], {
            cwd: ROOT,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1" },
        })
        const out = new Outputs()
        const all: string[] = []
        const take = (source: string) => (chunk: Buffer) => {
            for (const l of chunk.toString("utf8").split("\n")) {
                out.add(source, l)
                all.push(l)
            }
        }
        child.stdout!.on("data", take("npm start's stdout"))
        child.stderr!.on("data", take("npm start's stderr"))
        const closed = new Promise<void>(res => child.on("close", () => res()))
        try {
            // until the device reported through the embedded broker (or 60 s)
            const deadline = Date.now() + 60000
            while (Date.now() < deadline && child.exitCode === null && !all.some(l => /^\[device\].*(report|publish|telemetry)/i.test(l))) await sleep(100)
            await sleep(2000)
            assert.ok(all.some(l => l.startsWith("[device]")), "npm start ran the device")
            assert.ok(all.some(l => /\[broker\] .* connected/.test(l)), "the device connected to the embedded broker")
        } finally {
            try {
                process.kill(-child.pid!, "SIGINT")
            } catch {}
            const t = setTimeout(() => {
                try {
                    process.kill(-child.pid!, "SIGKILL")
                } catch {}
            }, 10000)
            await closed
            clearTimeout(t)
            fs.rmSync(dir, { recursive: true, force: true })
        }
        out.assertClean([{ what: "MQTT_PASS", forms: [MARK, ...secretForms(secret)] }])
    })
})
