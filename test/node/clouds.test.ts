/**
 * The platform profiles in the VM (test/vm/clouds.vm.ts), with the credentials they print
 * (`##CRED` lines) checked by the independent Node verifiers; and the emulated clouds
 * (sim/clouds/emulated.ts): right credentials accepted, wrong ones refused with the platform's
 * CONNACK code, report shapes checked, commands sent and their replies checked, driven here by a
 * scripted mqtt.js "device".
 */
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import mqtt from "mqtt"
import { runVmSuite } from "./lib/vm.ts"
import { verifyAlibaba, verifyAzure, verifyHuawei, verifyOneNet, verifyTencent, type Verdict } from "../../sim/clouds/verify.ts"
import {
    CLOUD_PLATFORMS,
    REFUSAL_CODES,
    TEST_IDENTITIES,
    mintFor,
    startEmulatedCloud,
    type CloudPlatform,
    type EmulatedCloud,
} from "../../sim/clouds/emulated.ts"

// the identities of test/vm/clouds.vm.ts
const ALI = { productKey: "a1X2bEnP82z", deviceName: "example1", deviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" }
const ONENET = { productId: "123123", deviceName: "mydev", deviceKey: "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw=", productKey: "MDEyMzQ1Njc4OWFiY2RlZg==" }
const AZURE = { hubHost: "myiothub.azure-devices.net", deviceId: "my_device", deviceKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }
const HUAWEI = { deviceId: "65a1b2c3_dev1", secret: "huawei-secret-1" }
const TENCENT = { productId: "ABCDEFGHIJ", deviceName: "dev1", psk: "MDEyMzQ1Njc4OWFiY2RlZg==" }

function verdictOf(c: any): Verdict {
    const f = { clientId: c.clientId, username: c.username, password: c.password }
    // the VM signs at a fixed time in 2030; verify at that time
    const nowMs = c.nowMs
    switch (c.platform) {
        case "alibaba":
            return verifyAlibaba(f, ALI, { tls: c.tlsConn })
        case "onenet":
            return verifyOneNet(f, ONENET, { nowMs })
        case "azure":
            return verifyAzure(f, AZURE, { nowMs })
        case "huawei":
            return verifyHuawei(f, HUAWEI, { nowMs })
        case "tencent":
            return verifyTencent(f, TENCENT, { nowMs })
    }
    return { ok: false, reason: "unknown platform " + c.platform }
}

test("cloud profiles (VM)", async t => {
    const byLabel = new Map<string, any>()
    await runVmSuite(t, "test/vm/clouds.vm.ts", {
        timeoutMs: 120000,
        onLine: l => {
            const i = l.indexOf("##CRED ")
            if (i < 0) return
            // `label|field|json` (the value may hold "|": Alibaba client ids)
            const body = l.slice(i + 7)
            const a = body.indexOf("|")
            const b = body.indexOf("|", a + 1)
            const label = body.slice(0, a)
            const c = byLabel.get(label) ?? { label }
            c[body.slice(a + 1, b)] = JSON.parse(body.slice(b + 1))
            byLabel.set(label, c)
        },
    })
    const creds = [...byLabel.values()]
    await t.test("the profiles' credentials pass the platforms' checks (Node verifiers)", () => {
        const labels = creds.map(c => c.label)
        for (const want of ["alibaba plain", "alibaba own client id", "onenet device key", "onenet product key", "azure", "huawei", "huawei checked", "tencent"])
            assert.ok(labels.includes(want), `the VM printed credentials for ${want}: ${labels.join(", ")}`)
        for (const c of creds) assert.deepEqual(verdictOf(c), { ok: true }, c.label)
        // and a wrong secret or an expired token is refused
        const ali = creds.find(c => c.label === "alibaba plain")
        assert.equal(verifyAlibaba(ali, { ...ALI, deviceSecret: "x" + ALI.deviceSecret.slice(1) }).ok, false)
        assert.equal(verifyAlibaba(ali, ALI, { tls: true }).ok, false, "securemode=3 on a TLS connection")
        const az = creds.find(c => c.label === "azure")
        assert.equal(verifyAzure(az, AZURE, { nowMs: az.expiresAtMs + 1000 }).ok, false, "the SAS expires at expiresAtMs")
        assert.equal(verifyAzure(az, AZURE, { nowMs: az.expiresAtMs - 1000 }).ok, true, "valid until expiresAtMs")
        const on = creds.find(c => c.label === "onenet device key")
        assert.equal(verifyOneNet(on, ONENET, { nowMs: on.expiresAtMs + 1000 }).ok, false, "the token expires at expiresAtMs")
        const tc = creds.find(c => c.label === "tencent")
        assert.equal(verifyTencent(tc, TENCENT, { nowMs: tc.expiresAtMs + 1000 }).ok, false, "the user name expires at expiresAtMs")
        const hw = creds.find(c => c.label === "huawei checked")
        assert.equal(verifyHuawei(hw, HUAWEI, { nowMs: hw.nowMs + 5 * 3600000 }).ok, false, "a checked timestamp is refused hours later")
    })
})

/** Connects like a device; resolves with the CONNACK return code (0 = accepted). */
async function connackCode(url: string, creds: { clientId: string; username?: string; password?: string }): Promise<number> {
    const c = mqtt.connect(url, { ...creds, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, clean: true })
    try {
        return await new Promise<number>((resolve, reject) => {
            c.once("connect", () => resolve(0))
            c.once("error", (e: any) => (typeof e.code === "number" ? resolve(e.code) : reject(e)))
        })
    } finally {
        c.end(true)
    }
}

describe("emulated clouds", () => {
    for (const platform of CLOUD_PLATFORMS) {
        test(`${platform}: right credentials accepted, wrong ones refused with CONNACK ${REFUSAL_CODES[platform]}`, async () => {
            const cloud = await startEmulatedCloud(platform)
            try {
                const good = mintFor(platform, TEST_IDENTITIES[platform], Date.now())
                assert.equal(await connackCode(cloud.url, good), 0, "right credentials")
                const bad = mintFor(platform, TEST_IDENTITIES[platform], Date.now(), { wrongSecret: true })
                assert.equal(await connackCode(cloud.url, bad), REFUSAL_CODES[platform], "wrong secret")
                assert.equal(await connackCode(cloud.url, { ...good, password: undefined }), REFUSAL_CODES[platform], "no password")
                assert.equal(await connackCode(cloud.url, { ...good, clientId: good.clientId + "x" }), REFUSAL_CODES[platform], "another client id")
                if (platform === "onenet" || platform === "azure" || platform === "tencent") {
                    const old = mintFor(platform, TEST_IDENTITIES[platform], Date.now() - 7200000, { lifetimeSec: 60 })
                    assert.equal(await connackCode(cloud.url, old), REFUSAL_CODES[platform], "expired token")
                }
                const refused = cloud.connects.filter(c => !c.ok)
                assert.ok(refused.length >= 3, "refusals are recorded")
                for (const r of refused) assert.ok(r.reason.length > 0, "with a reason")
                assert.equal(cloud.connects.filter(c => c.ok).length, 1, "one accepted")
                // the recorded reasons never hold the secret
                const secret = JSON.stringify(TEST_IDENTITIES[platform])
                for (const r of cloud.connects) assert.ok(!secret.includes(r.reason) || r.reason.length < 8)
            } finally {
                await cloud.close()
            }
        })
    }

    /** A scripted device over mqtt.js that answers commands like the firmware should. */
    async function scriptedDevice(cloud: EmulatedCloud, platform: CloudPlatform) {
        const dev = await mqtt.connectAsync(cloud.url, { ...mintFor(platform, TEST_IDENTITIES[platform], Date.now()), reconnectPeriod: 0, protocolVersion: 4 })
        dev.on("error", () => {})
        return dev
    }

    test("report shapes are checked: a good report passes, a bad one is flagged", async () => {
        const cloud = await startEmulatedCloud("alibaba")
        try {
            const dev = await scriptedDevice(cloud, "alibaba")
            const topic = "/sys/a1X2bEnP82z/example1/thing/event/property/post"
            // floats keep their decimal point (40.0): JSON.stringify would drop it
            const good = '{"id":"1","version":"1.0","params":{"CurrentTemperature":21.5,"CurrentHumidity":40.0,"LightSwitch":0,"ReportInterval":5000,"Uptime":3},"method":"thing.event.property.post"}'
            await dev.publishAsync(topic, good, { qos: 1 })
            const r = await cloud.waitReport(5000)
            assert.deepEqual(r.problems, [])
            await dev.publishAsync(topic, JSON.stringify({ id: 7, params: { LightSwitch: true } }), { qos: 1 })
            const r2 = await cloud.waitFor("second report", u => u.kind === "report" && u !== r, 5000)
            assert.ok(r2.problems.length >= 3, "problems: " + r2.problems.join("; "))
            assert.ok(r2.problems.some(p => p.includes("id must be a decimal string")), "id problem")
            assert.ok(r2.problems.some(p => p.includes("LightSwitch must be 0 or 1")), "bool problem")
            assert.ok(r2.problems.some(p => p.includes("version")), "version problem")
            await dev.publishAsync(topic, '{"id":"2","version":"1.0","params":{"CurrentHumidity":40},"method":"thing.event.property.post"}', { qos: 1 })
            const r3 = await cloud.waitFor("third report", u => u.kind === "report" && u !== r && u !== r2, 5000)
            assert.deepEqual(r3.problems, ["CurrentHumidity is a float: it must keep a decimal point"])
            await dev.endAsync()
        } finally {
            await cloud.close()
        }
    })

    test("commands are sent and a missing reply is reported, not waited for forever", async () => {
        const cloud = await startEmulatedCloud("tencent")
        try {
            const dev = await scriptedDevice(cloud, "tencent")
            await dev.subscribeAsync("$thing/down/property/ABCDEFGHIJ/dev1", { qos: 1 })
            // answer control like the firmware would
            dev.on("message", (topic, payload) => {
                const m = JSON.parse(payload.toString())
                if (m.method === "control")
                    dev.publish("$thing/up/property/ABCDEFGHIJ/dev1", JSON.stringify({ method: "control_reply", clientToken: m.clientToken, code: 0, status: "success" }), { qos: 1 })
            })
            const r = await cloud.send("control", 5000)
            assert.deepEqual(r.problems, [], "control reply accepted")
            assert.ok(r.reply, "reply collected")
            const missing = await cloud.send("action toggle", 1000)
            assert.equal(missing.reply, undefined)
            assert.match(missing.problems.join(" "), /no reply/)
            await dev.endAsync()
        } finally {
            await cloud.close()
        }
    })
})
