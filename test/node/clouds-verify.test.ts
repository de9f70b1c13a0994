/**
 * The Node-side platform verifiers (sim/clouds/verify.ts) against the reference vectors of
 * docs/platforms.md, and against tampered, expired and mismatched CONNECTs.
 */
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import { createHmac } from "node:crypto"
import {
    type Verdict,
    mintAlibaba,
    mintAzure,
    mintHuawei,
    mintJwt,
    mintOneNet,
    mintTencent,
    huaweiHour,
    oneNetEscape,
    rfc3986,
    verifyAlibaba,
    verifyAzure,
    verifyHuawei,
    verifyJwt,
    verifyOneNet,
    verifyTencent,
} from "../../sim/clouds/verify.ts"

function ok(v: Verdict) {
    assert.deepEqual(v, { ok: true })
}

function refused(v: Verdict, why: RegExp) {
    assert.equal(v.ok, false, "expected a refusal")
    if (!v.ok) assert.match(v.reason, why)
}

describe("encoders used by the verifiers", () => {
    test("rfc3986 keeps only unreserved characters", () => {
        assert.equal(rfc3986("aZ09-._~"), "aZ09-._~")
        assert.equal(rfc3986("!*'() /+=é"), "%21%2A%27%28%29%20%2F%2B%3D%C3%A9")
    })
    test("oneNetEscape maps exactly + space / ? % # & =", () => {
        assert.equal(oneNetEscape("+ /?%#&="), "%2B%20%2F%3F%25%23%26%3D")
        assert.equal(oneNetEscape("~!*'()é:;@"), "~!*'()é:;@")
    })
})

describe("Alibaba", () => {
    const dev = { productKey: "a1X2bEnP82z", deviceName: "example1", deviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" }
    const VECTOR = "B8CE8F1D706DD3C61D13BFD9855DEF7E321B785084CA9C93F0169A2B46785DD2"
    const connect = {
        clientId: "a1X2bEnP82z.example1|securemode=3,signmethod=hmacsha256,timestamp=2524608000000|",
        username: "example1&a1X2bEnP82z",
        password: VECTOR,
    }

    test("the reference minter re-derives the documented vector", () => {
        const m = mintAlibaba(dev, { tls: false, timestamp: 2524608000000 })
        assert.equal(m.password, VECTOR.toLowerCase())
        assert.equal(m.clientId, connect.clientId)
        assert.equal(m.username, connect.username)
        // and the formula by hand: sorted names+values, no separators
        const content = "clientIda1X2bEnP82z.example1deviceNameexample1productKeya1X2bEnP82ztimestamp2524608000000"
        assert.equal(createHmac("sha256", dev.deviceSecret).update(content).digest("hex"), VECTOR.toLowerCase())
    })
    test("accepts the vector (upper-case hex, plain TCP), also as a Buffer password", () => {
        ok(verifyAlibaba(connect, dev, { tls: false }))
        ok(verifyAlibaba({ ...connect, password: Buffer.from(VECTOR) }, dev))
    })
    test("refuses securemode 3 on a TLS connection, and securemode 2 on plain TCP", () => {
        refused(verifyAlibaba(connect, dev, { tls: true }), /securemode=3/)
        const tls = mintAlibaba(dev, { tls: true, timestamp: 1 })
        ok(verifyAlibaba(tls, dev, { tls: true }))
        refused(verifyAlibaba(tls, dev, { tls: false }), /securemode=2/)
    })
    test("accepts credentials without a timestamp, and other sign methods", () => {
        ok(verifyAlibaba(mintAlibaba(dev, { tls: false }), dev))
        ok(verifyAlibaba(mintAlibaba(dev, { tls: false, cid: "sn-42", signmethod: "hmacsha1" }), dev))
        ok(verifyAlibaba(mintAlibaba(dev, { tls: false, timestamp: 5, signmethod: "hmacmd5" }), dev))
    })
    test("refuses a wrong secret, a changed timestamp, a wrong username, a bad client id", () => {
        refused(verifyAlibaba(connect, { ...dev, deviceSecret: "x" + dev.deviceSecret.slice(1) }), /bad password/)
        refused(verifyAlibaba({ ...connect, clientId: connect.clientId.replace("2524608000000", "2524608000001") }, dev), /bad password/)
        refused(verifyAlibaba({ ...connect, username: "example1&other" }, dev), /username/)
        refused(verifyAlibaba({ ...connect, clientId: "a1X2bEnP82z.example1" }, dev), /cid\|params\|/)
        refused(verifyAlibaba({ ...connect, clientId: connect.clientId.replace("hmacsha256", "hmacsha512") }, dev), /signmethod/)
        refused(verifyAlibaba({ ...connect, password: undefined }, dev), /no password/)
    })
})

describe("OneNET", () => {
    const dev = { productId: "123123", deviceName: "mydev", deviceKey: "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw=" }
    const TOKEN =
        "version=2018-10-31&res=products%2F123123%2Fdevices%2Fmydev&et=1537255523&method=sha256&sign=dL9mxHdJXyd2TZcmTna60TMUei2dYU5W6iOow7fH%2F7w%3D"
    const connect = { clientId: "mydev", username: "123123", password: TOKEN }
    const before = (1537255523 - 60) * 1000

    test("the reference minter re-derives the documented token", () => {
        const sign = createHmac("sha256", Buffer.from(dev.deviceKey, "base64"))
            .update("1537255523\nsha256\nproducts/123123/devices/mydev\n2018-10-31")
            .digest("base64")
        assert.equal(sign, "dL9mxHdJXyd2TZcmTna60TMUei2dYU5W6iOow7fH/7w=")
        assert.equal(mintOneNet({ ...dev, key: dev.deviceKey }, 1537255523).password, TOKEN)
    })
    test("accepts the documented token before et, refuses it after", () => {
        ok(verifyOneNet(connect, dev, { nowMs: before }))
        refused(verifyOneNet(connect, dev, { nowMs: 1537255523 * 1000 }), /expired/)
        refused(verifyOneNet(connect, dev), /expired/) // today is long after 2018
    })
    test("product-key tokens need the product key", () => {
        const productKey = Buffer.alloc(32, 7).toString("base64")
        const m = mintOneNet({ productId: "123123", deviceName: "mydev", key: productKey, keyScope: "product" }, 4102444800)
        assert.match(m.password, /res=products%2F123123&/)
        ok(verifyOneNet(m, { ...dev, productKey }))
        refused(verifyOneNet(m, dev), /no key registered for products\/123123/)
    })
    test("refuses a tampered token, a token for another device, wrong ids", () => {
        refused(verifyOneNet({ ...connect, password: TOKEN.replace("et=1537255523", "et=1537255524") }, dev, { nowMs: before }), /bad token/)
        refused(verifyOneNet({ ...connect, password: TOKEN.replace("mydev", "other") }, dev, { nowMs: before }), /not this device/)
        refused(verifyOneNet({ ...connect, clientId: "other" }, dev, { nowMs: before }), /clientId/)
        refused(verifyOneNet({ ...connect, username: "1" }, dev, { nowMs: before }), /username/)
        refused(verifyOneNet({ ...connect, password: TOKEN.replace("version=2018-10-31", "version=2017") }, dev, { nowMs: before }), /version/)
        refused(verifyOneNet({ ...connect, password: TOKEN.replace(/&sign=.*/, "") }, dev, { nowMs: before }), /no sign/)
        refused(verifyOneNet({ ...connect, password: TOKEN.replace("sign=", "sign=%ZZ") }, dev, { nowMs: before }), /%-escape/)
    })
})

describe("Azure IoT Hub", () => {
    const dev = { hubHost: "myiothub.azure-devices.net", deviceId: "my_device", deviceKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }
    const SIG = "je8UikTizl6AEUxHmJlP/8N7+HxNSbIBV554qJc8zWw="
    const connect = {
        clientId: "my_device",
        username: "myiothub.azure-devices.net/my_device/?api-version=2021-04-12",
        password: `SharedAccessSignature sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device&sig=${encodeURIComponent(SIG)}&se=1578941692`,
    }
    const before = (1578941692 - 60) * 1000

    test("the reference minter re-derives the documented signature", () => {
        const sig = createHmac("sha256", Buffer.from(dev.deviceKey, "base64"))
            .update("myiothub.azure-devices.net%2Fdevices%2Fmy_device\n1578941692")
            .digest("base64")
        assert.equal(sig, SIG)
        assert.deepEqual(mintAzure(dev, 1578941692), { ...connect, expires: 1578941692 })
    })
    test("accepts the documented SAS before se, refuses it after", () => {
        ok(verifyAzure(connect, dev, { nowMs: before }))
        refused(verifyAzure(connect, dev, { nowMs: 1578941692 * 1000 }), /expired/)
    })
    test("accepts the secondary key and any api-version", () => {
        const secondaryKey = Buffer.alloc(32, 1).toString("base64")
        const m = mintAzure({ ...dev, deviceKey: secondaryKey }, 4102444800, "2018-06-30")
        ok(verifyAzure(m, { ...dev, secondaryKey }))
        refused(verifyAzure(m, dev), /signature mismatch/)
    })
    test("refuses a wrong key, another device's sr, a bad username", () => {
        refused(verifyAzure(connect, { ...dev, deviceKey: Buffer.alloc(32).toString("base64") }, { nowMs: before }), /signature mismatch/)
        refused(verifyAzure({ ...connect, password: connect.password.replace("my_device", "my_other") }, dev, { nowMs: before }), /not this device/)
        refused(verifyAzure({ ...connect, username: "myiothub.azure-devices.net/my_device" }, dev, { nowMs: before }), /username/)
        refused(verifyAzure({ ...connect, password: "sr=x&sig=y&se=1" }, dev, { nowMs: before }), /SharedAccessSignature/)
        refused(verifyAzure({ ...connect, password: connect.password.replace(/&se=.*/, "") }, dev, { nowMs: before }), /sr, sig and se/)
    })
})

describe("Huawei IoTDA", () => {
    const dev = { deviceId: "5f0c_node-1", secret: "s3cret-Pass" }
    const now = Date.UTC(2024, 1, 29, 23, 59, 59, 999)

    test("the hour stamp is the UTC hour", () => {
        assert.equal(huaweiHour(now), "2024022923")
        assert.equal(huaweiHour(0), "1970010100")
    })
    test("the reference minter follows the formula", () => {
        const m = mintHuawei(dev, now)
        assert.equal(m.clientId, "5f0c_node-1_0_0_2024022923")
        assert.equal(m.username, dev.deviceId)
        assert.equal(m.password, createHmac("sha256", "2024022923").update(dev.secret).digest("hex"))
        ok(verifyHuawei(m, dev))
    })
    test("sign type 0 ignores the clock, sign type 1 checks it", () => {
        ok(verifyHuawei(mintHuawei(dev, 0), dev, { nowMs: now }))
        const checked = mintHuawei(dev, now, true)
        ok(verifyHuawei(checked, dev, { nowMs: now + 3600000 }))
        refused(verifyHuawei(checked, dev, { nowMs: now + 3 * 3600000 }), /too far/)
    })
    test("refuses a wrong secret, an impossible hour, a bad client id", () => {
        refused(verifyHuawei(mintHuawei({ ...dev, secret: "other" }, now), dev), /bad password/)
        const m = mintHuawei(dev, now)
        refused(verifyHuawei({ ...m, clientId: "5f0c_node-1_0_0_2024023012" }, dev), /not a valid UTC hour/)
        refused(verifyHuawei({ ...m, clientId: "5f0c_node-1_0_2_2024022923" }, dev), /_0_\{0\|1\}/)
        refused(verifyHuawei({ ...m, clientId: "other_0_0_2024022923" }, dev), /clientId/)
        refused(verifyHuawei({ ...m, username: "other" }, dev), /username/)
    })
})

describe("Tencent IoT Explorer", () => {
    const dev = { productId: "ABCDEFGHIJ", deviceName: "dev1", psk: "MDEyMzQ1Njc4OWFiY2RlZg==" }
    const connect = {
        clientId: "ABCDEFGHIJdev1",
        username: "ABCDEFGHIJdev1;12010126;5AiF2;1893456000",
        password: "c094a76af66c11a4a7d131126d7a6d9c0748cd46e25935efd55fb726f5da8f01;hmacsha256",
    }
    const before = (1893456000 - 60) * 1000

    test("the reference minter re-derives the documented password", () => {
        const hex = createHmac("sha256", Buffer.from(dev.psk, "base64")).update(connect.username).digest("hex")
        assert.equal(hex + ";hmacsha256", connect.password)
        assert.deepEqual(mintTencent(dev, "5AiF2", 1893456000), { ...connect, expires: 1893456000 })
    })
    test("accepts the documented credentials before expiry, refuses them after", () => {
        ok(verifyTencent(connect, dev, { nowMs: before }))
        refused(verifyTencent(connect, dev, { nowMs: 1893456000 * 1000 }), /expired/)
    })
    test("refuses a wrong key, tampered fields, a bad password shape", () => {
        refused(verifyTencent(connect, { ...dev, psk: Buffer.alloc(16).toString("base64") }, { nowMs: before }), /bad password/)
        refused(verifyTencent({ ...connect, username: connect.username.replace("5AiF2", "5AiF3") }, dev, { nowMs: before }), /bad password/)
        refused(verifyTencent({ ...connect, username: connect.username.replace("5AiF2", "5AiF2x") }, dev, { nowMs: before }), /connid/)
        refused(verifyTencent({ ...connect, clientId: "ABCDEFGHIJdev2" }, dev, { nowMs: before }), /clientId/)
        refused(verifyTencent({ ...connect, password: connect.password.replace(";hmacsha256", "") }, dev, { nowMs: before }), /password must be/)
    })
})

describe("JWT (HS256)", () => {
    const now = 1_700_000_000_000
    const id = { clientId: "dev-1", username: "alice", secret: "emqxsecret" }

    test("accepts a minted token, with the claims the device sends", () => {
        const m = mintJwt(id, now, 600)
        const [, body] = m.password.split(".")
        assert.deepEqual(JSON.parse(Buffer.from(body, "base64url").toString()), {
            username: "alice",
            clientid: "dev-1",
            iat: 1_700_000_000,
            exp: 1_700_000_600,
        })
        ok(verifyJwt(m, id, { nowMs: now }))
    })
    test("base64 secrets are decoded", () => {
        const secret = Buffer.from([0xfb, 0xff, 0x00, 0x41]).toString("base64")
        const m = mintJwt({ ...id, secret, secretIsBase64: true }, now, 600)
        ok(verifyJwt(m, { secret, secretIsBase64: true }, { nowMs: now }))
        refused(verifyJwt(m, { secret }, { nowMs: now }), /signature/)
    })
    test("refuses expired tokens, wrong secrets, claim mismatches, non-JWTs", () => {
        const m = mintJwt(id, now, 600)
        refused(verifyJwt(m, id, { nowMs: now + 600_000 }), /expired/)
        refused(verifyJwt(m, { secret: "other" }, { nowMs: now }), /signature/)
        refused(verifyJwt({ ...m, username: "bob" }, id, { nowMs: now }), /username claim/)
        refused(verifyJwt({ ...m, clientId: "dev-2" }, id, { nowMs: now }), /clientid claim/)
        refused(verifyJwt({ ...m, password: "abc" }, id, { nowMs: now }), /not a JWT/)
        const none = m.password.replace(/^[^.]+/, Buffer.from('{"alg":"none"}').toString("base64url"))
        refused(verifyJwt({ ...m, password: none }, id, { nowMs: now }), /alg must be HS256/)
    })
})
