/**
 * The device-side credential signers and encoders (src/cloud/), run in the VM against values that
 * Node derives on its own from the documented formulas (sim/clouds/verify.ts and Node's crypto).
 *
 * The cases travel to the VM as settings through the host link. A setting value holds at most
 * ~220 bytes and the simulator's settings store about 8 KB, so the JSON document is cut into
 * numbered chunks (SIGN_0.., count in SIGN_N), signer cases are packed as arrays (see `packCase`;
 * the VM calls them "sign #k"), and each signer case carries a fingerprint of the
 * expected credentials (the first 20 hex digits of sha256 over clientId, username, password and
 * expiry, one per line) instead of the full strings; on a mismatch the VM reports what it got
 * and this file adds what was expected.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { createHash, createHmac } from "node:crypto"
import { startHostLink, type Settings } from "../../sim/hostlink.ts"
import { runVm } from "../../sim/devs.ts"
import { tail } from "./lib/vm.ts"
import {
    type Minted,
    asciiJson,
    huaweiHour,
    mintAlibaba,
    mintAzure,
    mintHuawei,
    mintJwt,
    mintOneNet,
    mintTencent,
    oneNetEscape,
    rfc3986,
    verifyAlibaba,
    verifyAzure,
    verifyHuawei,
    verifyJwt,
    verifyOneNet,
    verifyTencent,
    type Verdict,
} from "../../sim/clouds/verify.ts"

/** A string repeated, written `[unit, count]` in the case data and expanded by the VM. */
type Rep = [string, number]
const rep = (unit: string, count: number): Rep => [unit, count]
const expand = (v: string | Rep): string => (typeof v === "string" ? v : v[0].repeat(v[1]))

/** One signer case: platform, identity (strings may be `Rep`s), inputs and expected result. */
interface SignCase {
    n: string
    p: "alibaba" | "onenet" | "azure" | "huawei" | "tencent" | "jwt"
    i: Record<string, string | Rep | boolean>
    t?: number
    l?: number
    c?: string
    x?: string
}

function fingerprint(m: Minted): string {
    const text = `${m.clientId}\n${m.username}\n${m.password}\n${m.expires ?? ""}`
    return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 20)
}

function str(id: SignCase["i"], k: string): string {
    const v = id[k]
    assert.ok(typeof v === "string" || Array.isArray(v), `case field ${k}`)
    return expand(v as string | Rep)
}

/** Node's own credentials for a case, plus the platform verifier's verdict on them. */
function expected(c: SignCase): { m: Minted; v: Verdict } {
    const id = c.i
    const nowMs = c.t ?? 0
    const life = c.l ?? 3600
    const exp = Math.floor(nowMs / 1000) + life
    switch (c.p) {
        case "alibaba": {
            const d = { productKey: str(id, "productKey"), deviceName: str(id, "deviceName"), deviceSecret: str(id, "deviceSecret") }
            const m = mintAlibaba(d, { tls: id.tls === true, cid: id.clientId ? str(id, "clientId") : undefined, timestamp: c.t })
            return { m, v: verifyAlibaba(m, d, { tls: id.tls === true }) }
        }
        case "onenet": {
            const d = { productId: str(id, "productId"), deviceName: str(id, "deviceName"), key: str(id, "key"), keyScope: id.keyScope as "device" | "product" | undefined }
            const m = mintOneNet(d, exp)
            const dev = { ...d, [d.keyScope === "product" ? "productKey" : "deviceKey"]: d.key }
            return { m, v: verifyOneNet(m, dev, { nowMs }) }
        }
        case "azure": {
            const d = { hubHost: str(id, "hubHost"), deviceId: str(id, "deviceId"), deviceKey: str(id, "deviceKey") }
            const m = mintAzure(d, exp)
            return { m, v: verifyAzure(m, d, { nowMs }) }
        }
        case "huawei": {
            const d = { deviceId: str(id, "deviceId"), secret: str(id, "secret") }
            const m = mintHuawei(d, nowMs, id.checkTimestamp === true)
            return { m, v: verifyHuawei(m, d, { nowMs }) }
        }
        case "tencent": {
            const d = { productId: str(id, "productId"), deviceName: str(id, "deviceName"), psk: str(id, "psk") }
            const m = mintTencent(d, c.c!, exp)
            return { m, v: verifyTencent(m, d, { nowMs }) }
        }
        case "jwt": {
            const d = { clientId: str(id, "clientId"), username: str(id, "username"), secret: str(id, "secret"), secretIsBase64: id.secretIsBase64 === true }
            const m = mintJwt(d, nowMs, life)
            return { m, v: verifyJwt(m, d, { nowMs }) }
        }
    }
}

/** The first key `base64(sha256(label + i))` whose HMAC output (via `sigOf`) contains + and /. */
function keyWithPlusSlash(label: string, sigOf: (key: string) => string): string {
    for (let i = 0; ; i++) {
        const key = createHash("sha256").update(label + i).digest("base64")
        const s = sigOf(key)
        if (s.includes("+") && s.includes("/") && s.endsWith("=")) return key
    }
}

const T2030 = Date.UTC(2030, 0, 1, 12, 30, 0)
const ALI = { productKey: "a1X2bEnP82z", deviceName: "example1", deviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" }
const ONENET_KEY = "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw="
const AZURE = { hubHost: "myiothub.azure-devices.net", deviceId: "my_device", deviceKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }

const onenetPlusKey = keyWithPlusSlash("onenet", key => {
    const et = Math.floor(T2030 / 1000) + 3600
    return createHmac("sha256", Buffer.from(key, "base64")).update(`${et}\nsha256\nproducts/P1/devices/d1\n2018-10-31`).digest("base64")
})
const azureId = "dev:1=a$b@c(x)!*'"
const azurePlusKey = keyWithPlusSlash("azure", key => {
    const sr = rfc3986(`${AZURE.hubHost}/devices/${azureId}`)
    return createHmac("sha256", Buffer.from(key, "base64")).update(`${sr}\n${Math.floor(T2030 / 1000) + 86400}`).digest("base64")
})
const tencentPsk = Buffer.from("fbffbf" + "00112233445566778899aabbcc", "hex").toString("base64")
assert.ok(tencentPsk.includes("+") && tencentPsk.includes("/"), tencentPsk)

const SIGN_CASES: SignCase[] = [
    { n: "alibaba: reference vector (plain TCP)", p: "alibaba", i: { ...ALI, tls: false }, t: 2524608000000 },
    { n: "alibaba: TLS (securemode 2)", p: "alibaba", i: { ...ALI, tls: true }, t: T2030 },
    { n: "alibaba: no timestamp", p: "alibaba", i: { ...ALI, tls: false } },
    { n: "alibaba: UTF-8 device name, own client id", p: "alibaba", i: { productKey: "a1X2bEnP82z", deviceName: "温度计-1", deviceSecret: "Sé©ret", clientId: "SN-0042_ab", tls: false }, t: T2030 },
    { n: "alibaba: 300-byte secret, 60-char name", p: "alibaba", i: { productKey: "a1X2bEnP82z", deviceName: rep("n", 60), deviceSecret: rep("Ab9", 100), clientId: "c", tls: false }, t: 1 },
    { n: "onenet: reference vector (device key)", p: "onenet", i: { productId: "123123", deviceName: "mydev", key: ONENET_KEY }, t: (1537255523 - 3600) * 1000 },
    { n: "onenet: product key", p: "onenet", i: { productId: "123123", deviceName: "mydev", key: ONENET_KEY, keyScope: "product" }, t: T2030, l: 86400 * 365 },
    { n: "onenet: signature with + / =", p: "onenet", i: { productId: "P1", deviceName: "d1", key: onenetPlusKey }, t: T2030 },
    { n: "onenet: UTF-8 device name", p: "onenet", i: { productId: "Ck2AF9QD2K", deviceName: "传感器 #1&2", key: ONENET_KEY }, t: T2030 },
    { n: "onenet: 150-byte key", p: "onenet", i: { productId: "123123", deviceName: "mydev", key: rep("QUJD", 50) }, t: T2030, l: 60 },
    { n: "azure: reference vector", p: "azure", i: AZURE, t: (1578941692 - 3600) * 1000 },
    { n: "azure: reserved characters in the device id, signature with + / =", p: "azure", i: { ...AZURE, deviceId: azureId, deviceKey: azurePlusKey }, t: T2030, l: 86400 },
    { n: "azure: 128-char device id", p: "azure", i: { ...AZURE, deviceId: rep("d", 128) }, t: T2030, l: 7200 },
    { n: "huawei: sign type 0", p: "huawei", i: { deviceId: "64f1a2b3c4_node1", secret: "s3cret-Pass" }, t: T2030 },
    { n: "huawei: sign type 1, UTF-8 secret, leap day", p: "huawei", i: { deviceId: "dev", secret: "密钥🔑", checkTimestamp: true }, t: Date.UTC(2024, 1, 29, 23, 59, 59, 999) },
    { n: "huawei: time 0, 200-byte secret", p: "huawei", i: { deviceId: "d_0_0", secret: rep("x7", 100) }, t: 0 },
    { n: "tencent: reference vector", p: "tencent", i: { productId: "ABCDEFGHIJ", deviceName: "dev1", psk: "MDEyMzQ1Njc4OWFiY2RlZg==" }, c: "5AiF2", t: (1893456000 - 3600) * 1000 },
    { n: "tencent: key with + and /, UTF-8 device name", p: "tencent", i: { productId: "XYZ0123456", deviceName: "灯-1", psk: tencentPsk }, c: "a", t: T2030, l: 1 },
    { n: "tencent: 180-byte key", p: "tencent", i: { productId: "XYZ0123456", deviceName: "d", psk: rep("MDEy", 60) }, c: "Zz9", t: T2030 },
    { n: "jwt: text secret", p: "jwt", i: { clientId: "dev-1", username: "alice", secret: "emqxsecret" }, t: T2030, l: 600 },
    { n: "jwt: base64 secret, UTF-8 and escaped claims", p: "jwt", i: { clientId: "c\"1\\", username: "Zoë \"Z\"\n😀", secret: tencentPsk, secretIsBase64: true }, t: T2030 },
    { n: "jwt: empty username, 200-char client id", p: "jwt", i: { clientId: rep("c", 200), username: "", secret: rep("k", 100) }, t: T2030 },
]

// Hour stamps: Node's Date is the reference
const HOURS = [0, 951782400000, 951868799999, 4107542400000, 1709251199999, 1735689600000 - 1, 1735689600000, 2524608000000, 99999999999999]
    .map(ms => [ms, huaweiHour(ms)])

// base64 / base64url of deterministic byte strings
const B64 = [1, 2, 3, 4, 5, 31].map(n => {
    const b = createHash("sha256").update("b64-" + n).digest().subarray(0, n)
    return [b.toString("hex"), b.toString("base64"), b.toString("base64url")]
})

// URL and OneNET escaping of awkward text
const URLS = ["", "AZaz09-._~", "a b+c/d?e%f#g&h=i", "!*'();:@$,[]", "é€😀\n\t", "%2F"].map(s => [s, rfc3986(s), oneNetEscape(s)])

/** Identity fields in the order test/vm/sign.vm.ts reads them, per platform. */
const FIELDS: Record<SignCase["p"], string[]> = {
    alibaba: ["productKey", "deviceName", "deviceSecret", "clientId", "tls"],
    onenet: ["productId", "deviceName", "key", "keyScope"],
    azure: ["hubHost", "deviceId", "deviceKey"],
    huawei: ["deviceId", "secret", "checkTimestamp"],
    tencent: ["productId", "deviceName", "psk"],
    jwt: ["clientId", "username", "secret", "secretIsBase64"],
}

/** A case as the VM reads it: `[platform, [identity fields...], nowMs, lifetime, connId, fingerprint]`. */
function packCase(c: SignCase): unknown[] {
    return [c.p, FIELDS[c.p].map(k => c.i[k] ?? null), c.t ?? null, c.l ?? null, c.c ?? null, c.x]
}

/** Cuts ASCII text into setting values whose stored (JSON) form is at most `max` bytes. */
function chunkSettings(text: string, prefix: string, max = 200): Settings {
    const out: Settings = {}
    let k = 0
    for (let i = 0; i < text.length; k++) {
        let j = Math.min(text.length, i + max)
        while (JSON.stringify(text.slice(i, j)).length > max) j--
        out[prefix + k] = text.slice(i, j)
        i = j
    }
    out[prefix + "N"] = k
    return out
}

test("device signers and encoders match Node's independent derivation (VM)", async t => {
    const expect = new Map<string, Minted>()
    const cases = SIGN_CASES.map(c => {
        const { m, v } = expected(c)
        // the reference credentials must satisfy our own platform verifier, or the case is wrong
        assert.deepEqual(v, { ok: true }, `${c.n}: Node's verifier refuses Node's credentials`)
        expect.set(c.n, m)
        return { ...c, x: fingerprint(m) }
    })
    const text = asciiJson({ s: cases.map(packCase), h: HOURS, b: B64, u: URLS })
    const settings = chunkSettings(text, "SIGN_")
    // the simulator's settings store holds ~8 KB (about 25 bytes of overhead per entry)
    const stored = Object.entries(settings).reduce((a, [k, v]) => a + k.length + JSON.stringify(v).length + 25, 0)
    t.diagnostic(`test data: ${Object.keys(settings).length} settings, ~${stored} bytes of the settings store`)
    assert.ok(stored < 7000, `test data needs ${stored} bytes of settings; the simulator keeps ~8 KB: trim the cases`)

    const link = await startHostLink(settings, { waitMs: 120000 })
    let run
    try {
        run = await runVm("test/vm/sign.vm.ts", { timeoutMs: 60000 })
    } finally {
        await link.close()
    }
    // the VM names signer cases "sign #k"; show them under their names here
    for (const r of run.tests) {
        const k = /^sign #(\d+)$/.exec(r.name)
        const name = k ? SIGN_CASES[+k[1]]?.n ?? r.name : r.name
        await t.test(name, () => {
            if (r.ok) return
            const m = expect.get(name)
            const want = m
                ? `\nexpected clientId=${m.clientId} username=${m.username} password=${m.password} expires=${m.expires}`
                : ""
            assert.fail((r.message || "failed") + want)
        })
    }
    assert.ok(run.summary, `no test summary (compile error, crash or timeout?)\n${tail(run)}`)
    SIGN_CASES.forEach((c, k) =>
        assert.ok(run.tests.some(r => r.name === `sign #${k}`), `VM did not run case "${c.n}"\n${tail(run)}`))
    assert.equal(run.summary.error, 0, `${run.summary.error} VM test(s) failed\n${tail(run)}`)
    assert.equal(run.code, 0, `VM exited with ${run.code}\n${tail(run)}`)
})
