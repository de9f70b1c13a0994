/**
 * End-to-end per cloud platform: the real firmware (the platform's simulator image) in the simulator against the
 * platform's emulated cloud (sim/clouds/emulated.ts). The cloud checks the credentials the device
 * mints, the shape of every report, sends the platform's commands and checks each reply. Plus: a
 * wrong secret is refused with the platform's CONNACK code (and never printed), and with a short
 * TOKEN_TTL the device renews its Azure SAS before the hub drops the connection, reporting on.
 */
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import path from "node:path"
import type { ChildProcess } from "node:child_process"
import { ROOT, runVm, type VmRun } from "../../sim/devs.ts"
import { loadEnvFiles } from "../../sim/envfile.ts"
import { startHostLink, type Settings } from "../../sim/hostlink.ts"
import { deviceSettings } from "../../sim/start.ts"
import { imageFor } from "../../sim/images.ts"
import { Device } from "./lib/e2e.ts"
import { CLOUD_PLATFORMS, REFUSAL_CODES, TEST_IDENTITIES, startEmulatedCloud, type CloudPlatform, type EmulatedCloud } from "../../sim/clouds/emulated.ts"

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** .env.defaults as npm start serves it, pointed at `cloud`, with `over` on top. */
function settingsFor(cloud: EmulatedCloud, over: Settings = {}): Settings {
    const env = loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: true }])
    return { ...(deviceSettings(env.settings) as Settings), MQTT_USER: "", MQTT_PASS: "", REPORT_MS: 1000, ...cloud.settings(), ...over }
}

/** Serves `settings` over the host link until the device has them, then frees the port. */
async function boot(dev: Device, settings: Settings, timeoutMs: number) {
    const link = await startHostLink(settings, { waitMs: 120000 })
    try {
        dev.start(timeoutMs)
        const deadline = Date.now() + 30000
        while (link.served < 1 && !dev.exited && Date.now() < deadline) await sleep(50)
        assert.ok(link.served >= 1, `the device never asked the host link for its settings\n${dev.tail()}`)
    } finally {
        await link.close()
    }
}

/** Waits for `n` reports after index `from`; fails with the device's console when they do not come. */
async function reports(cloud: EmulatedCloud, dev: Device, n: number, from: number, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs
    for (;;) {
        const got = cloud.uplinks.slice(from).filter(u => u.kind === "report")
        if (got.length >= n) return got
        if (dev.exited) throw new Error(`the VM exited before ${n} reports\n${dev.tail()}`)
        if (Date.now() > deadline)
            throw new Error(`${got.length} of ${n} reports after ${timeoutMs} ms; connects: ${JSON.stringify(cloud.connects)}\n${dev.tail()}`)
        await sleep(50)
    }
}

/** Secrets of a platform's test identity (must never show on the console). */
function secretsOf(platform: CloudPlatform): string[] {
    const i = TEST_IDENTITIES
    const bySecret: Record<CloudPlatform, string[]> = {
        alibaba: [i.alibaba.deviceSecret],
        onenet: [i.onenet.deviceKey],
        azure: [i.azure.deviceKey],
        thingspeak: [i.thingspeak.password],
        huawei: [i.huawei.secret],
        tencent: [i.tencent.psk],
    }
    return bySecret[platform]
}

describe("clouds end-to-end (firmware in the simulator)", () => {
    for (const platform of CLOUD_PLATFORMS) {
        test(`${platform}: connect with minted credentials, reports, commands and replies`, async t => {
            const cloud = await startEmulatedCloud(platform)
            const dev = new Device(imageFor("sim", platform))
            try {
                await boot(dev, settingsFor(cloud, { DEVICE_ID: `e2e-${platform}` }), 120000)
                const first = await reports(cloud, dev, 2, 0, 40000)
                for (const r of first) assert.deepEqual(r.problems, [], `report shape: ${r.topic} ${r.text}`)
                assert.ok(cloud.connects.length >= 1 && cloud.connects.every(c => c.ok), `connects: ${JSON.stringify(cloud.connects)}`)

                for (const name of cloud.commands) {
                    await t.test(name, async () => {
                        const r = await cloud.send(name, 10000)
                        assert.deepEqual(r.problems, [], `${name}: ${r.payload} -> ${r.reply ? r.reply.topic + " " + r.reply.text : "no reply"}\n${dev.tail(10)}`)
                    })
                }
                if (platform === "thingspeak")
                    assert.ok(dev.lines.some(l => l.includes("ThingSpeak has no command channel")), "the device says it takes no commands")

                // still reporting, every report well-formed; nothing outside the device's topics
                const later = await reports(cloud, dev, 2, cloud.uplinks.length, 15000)
                for (const r of later) assert.deepEqual(r.problems, [], `report shape: ${r.text}`)
                for (const r of cloud.reports()) assert.deepEqual(r.problems, [], `report shape: ${r.text}`)
                assert.deepEqual(cloud.problems, [], "subscriptions and publishes within the device's topics")
                assert.ok(cloud.subscriptions.length > 0 || platform === "thingspeak", "the device subscribed to its command topics")
                for (const s of secretsOf(platform))
                    assert.ok(!dev.lines.some(l => l.includes(s)), `the console never shows the secret of ${platform}`)
            } finally {
                await dev.kill()
                await cloud.close()
            }
        })
    }

    test("a wrong secret is refused with the platform's CONNACK code and never printed", async () => {
        const cloud = await startEmulatedCloud("onenet")
        const dev = new Device(imageFor("sim", "onenet"))
        const wrong = "AAAA" + TEST_IDENTITIES.onenet.deviceKey.slice(4)
        try {
            await boot(dev, settingsFor(cloud, { ONENET_KEY: wrong }), 60000)
            const deadline = Date.now() + 30000
            while (!cloud.connects.length && Date.now() < deadline && !dev.exited) await sleep(50)
            assert.ok(cloud.connects.length >= 1, `the device tried to connect\n${dev.tail()}`)
            assert.ok(cloud.connects.every(c => !c.ok && c.code === REFUSAL_CODES.onenet), JSON.stringify(cloud.connects))
            const until = Date.now() + 10000
            while (!dev.lines.some(l => /bad user name or password/.test(l)) && Date.now() < until) await sleep(50)
            assert.ok(dev.lines.some(l => /bad user name or password/.test(l)), `the device names the refusal\n${dev.tail()}`)
            assert.ok(!dev.lines.some(l => l.includes(wrong) || l.includes("sign=")), "neither the key nor the token is printed")
            assert.equal(cloud.reports().length, 0, "nothing reported without a session")
        } finally {
            await dev.kill()
            await cloud.close()
        }
    })

    test("token renewal: with TOKEN_TTL=10 the device reconnects with fresh SAS tokens before the hub drops it", async () => {
        const cloud = await startEmulatedCloud("azure")
        const dev = new Device(imageFor("sim", "azure"))
        try {
            await boot(dev, settingsFor(cloud, { TOKEN_TTL: 10 }), 120000)
            await reports(cloud, dev, 1, 0, 40000)
            // three token lifetimes
            const deadline = Date.now() + 60000
            while (cloud.connects.filter(c => c.ok).length < 4 && Date.now() < deadline && !dev.exited) await sleep(200)
            const ok = cloud.connects.filter(c => c.ok)
            assert.ok(ok.length >= 4, `${ok.length} accepted connects in 60 s with 10 s tokens: ${JSON.stringify(cloud.connects)}\n${dev.tail()}`)
            assert.equal(cloud.connects.filter(c => !c.ok).length, 0, "every renewed token was accepted")
            assert.equal(cloud.expiredDrops, 0, "the hub never had to drop an expired connection")
            // reports kept coming across the renewals
            const at = ok.map(c => c.at)
            for (let i = 1; i < at.length - 1; i++) {
                const between = cloud.reports().filter(r => r.at > at[i] && r.at < at[i + 1])
                assert.ok(between.length >= 1, `reports between renewal ${i} and ${i + 1}\n${dev.tail()}`)
            }
            const after = cloud.uplinks.length
            await reports(cloud, dev, 2, after, 10000)
            for (const r of cloud.reports()) assert.deepEqual(r.problems, [], r.text)
        } finally {
            await dev.kill()
            await cloud.close()
        }
    })
})
