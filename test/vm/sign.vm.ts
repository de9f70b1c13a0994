/**
 * VM tests of src/cloud/encoding.ts and the platform signers. Fixed vectors (RFC 4648, RFC 3986)
 * and error cases live here; the signer cases and their expected results come from
 * test/node/sign.test.ts through the host link (settings SIGN_N and SIGN_0..).
 */
import * as ds from "@devicescript/core"
import { digest } from "@devicescript/crypto"
import { readSetting } from "./settings"
import { loadSimSettings } from "../../src/simdev/hostlink"
import { MqttCredentials } from "../../src/cloud/credentials"
import { base64Decode, base64Encode, hexDecode, hexEncode, oneNetEncode, urlEncode } from "../../src/cloud/encoding"
import { signAlibaba } from "../../src/cloud/sign-alibaba"
import { signAzure } from "../../src/cloud/sign-azure"
import { signHuawei, utcHourStamp } from "../../src/cloud/sign-huawei"
import { signJwt } from "../../src/cloud/sign-jwt"
import { signOneNet } from "../../src/cloud/sign-onenet"
import { signTencent, tencentConnId } from "../../src/cloud/sign-tencent"
import { describe, expect, noise, test } from "./harness"
import { eq } from "./asserts"


/** Runs `f`, expecting an Error whose message contains `part` and none of `secrets`. */
function throwsWith(f: () => void, part: string, secrets: string[] = []) {
    let msg: string = undefined
    try {
        f()
    } catch (e: any) {
        msg = e.message
    }
    if (msg === undefined) throw new Error(`expected an error containing "${part}", got none`)
    if (msg.indexOf(part) < 0) throw new Error(`expected an error containing "${part}", got "${msg}"`)
    for (const s of secrets) if (msg.indexOf(s) >= 0) throw new Error(`error message reveals a secret: ${msg}`)
}


/** Expands `[unit, count]` into the repeated string (the test data's way to send long inputs). */
function expand(v: any): any {
    if (Array.isArray(v)) {
        const unit: string = v[0]
        const count: number = v[1]
        const b = Buffer.alloc(unit.byteLength * count)
        for (let i = 0; i < count; i++) b.blitAt(i * unit.byteLength, unit, 0, unit.byteLength)
        return b.toString()
    }
    return v
}

/** The test document from the runner, or an error message saying why there is none. */
async function loadCases(): Promise<any> {
    const n = await loadSimSettings()
    if (n < 0) return "no host link runner (run this file from test/node/sign.test.ts)"
    const count = await readSetting<number>("SIGN_N", -1)
    if (count < 0) return "the runner sent no SIGN_N setting"
    const parts: string[] = []
    for (let i = 0; i < count; i++) {
        const p = await readSetting<string>("SIGN_" + i, undefined)
        if (p === undefined) return `setting SIGN_${i} of ${count} is missing (settings store full?)`
        parts.push(p)
    }
    return JSON.parse(parts.join(""))
}

function fingerprint(m: MqttCredentials): string {
    const exp = m.expires === undefined ? "" : `${m.expires}`
    return digest("sha256", `${m.clientId}\n${m.username}\n${m.password}\n${exp}`).toString("hex").slice(0, 20)
}

/** JSON null as undefined, so that default parameters apply. */
function opt(v: any): any {
    return v === null ? undefined : v
}

/** Mints credentials for a packed case `[platform, [identity...], nowMs, lifetime, connId, fingerprint]`. */
function mint(c: any[]): MqttCredentials {
    const p: string = c[0]
    const f: any[] = (c[1] as any[]).map(v => opt(expand(v)))
    const t: number = opt(c[2])
    const l: number = opt(c[3])
    if (p === "alibaba") return signAlibaba({ productKey: f[0], deviceName: f[1], deviceSecret: f[2], clientId: f[3], tls: f[4] }, t)
    if (p === "onenet") return signOneNet({ productId: f[0], deviceName: f[1], key: f[2], keyScope: f[3] }, t, l)
    if (p === "azure") return signAzure({ hubHost: f[0], deviceId: f[1], deviceKey: f[2] }, t, l)
    if (p === "huawei") return signHuawei({ deviceId: f[0], secret: f[1], checkTimestamp: f[2] }, t)
    if (p === "tencent") return signTencent({ productId: f[0], deviceName: f[1], psk: f[2] }, c[4], t, l)
    if (p === "jwt") return signJwt({ clientId: f[0], username: f[1], secret: f[2], secretIsBase64: f[3] }, t, l)
    throw new Error(`unknown platform ${p}`)
}

const data = await loadCases()
const noData = typeof data === "string" ? (data as string) : undefined

describe("base64", () => {
    test("RFC 4648 section 10 vectors encode and decode", () => {
        const plain = ["", "f", "fo", "foo", "foob", "fooba", "foobar"]
        const coded = ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"]
        for (let i = 0; i < plain.length; i++) {
            eq(base64Encode(Buffer.from(plain[i])), coded[i], `encode "${plain[i]}"`)
            eq(base64Decode(coded[i]).toString(), plain[i], `decode "${coded[i]}"`)
        }
    })
    test("base64url uses - and _ and no padding", () => {
        eq(base64Encode(hex`fbffbf`), "+/+/", "standard")
        eq(base64Encode(hex`fbffbf`, true), "-_-_", "url")
        eq(base64Encode(Buffer.from("fo"), true), "Zm8", "url, 2 bytes")
        eq(base64Encode(Buffer.from("f"), true), "Zg", "url, 1 byte")
        eq(base64Encode(Buffer.alloc(0), true), "", "url, empty")
    })
    test("round trips every length 0..48 and all 256 byte values", async () => {
        for (let n = 0; n <= 48; n++) {
            const b = noise(n, n + 7)
            eq(base64Decode(base64Encode(b)).toString("hex"), b.toString("hex"), `length ${n}`)
            await ds.sleep(0)
        }
        const all = Buffer.alloc(256)
        for (let i = 0; i < 256; i++) all[i] = i
        eq(base64Decode(base64Encode(all)).toString("hex"), all.toString("hex"), "all byte values")
    })
    test("base64: malformed input is refused with the position, not the text", () => {
        throwsWith(() => base64Decode("Zg="), "base64: length 3 is not a multiple of 4")
        throwsWith(() => base64Decode("Zm9v Zg=="), "base64: length 9")
        throwsWith(() => base64Decode("Zm$v"), "base64: invalid character at position 2", ["$"])
        throwsWith(() => base64Decode("Zg=a"), "position 2")
        throwsWith(() => base64Decode("Z==="), "position 1")
        throwsWith(() => base64Decode("===="), "position 0")
        throwsWith(() => base64Decode("Zm9vZg==Zm9v"), "position 6")
        throwsWith(() => base64Decode("-_-_"), "position 0")
        throwsWith(() => base64Decode("Zé=="), "position 1")
        throwsWith(() => base64Decode("Zm9\n"), "position 3")
    })
    test("base64 of Node-derived vectors", () => {
        if (noData) throw new Error(noData)
        for (const v of data.b as string[][]) {
            const b = hexDecode(v[0])
            eq(base64Encode(b), v[1], `base64 of ${v[0]}`)
            eq(base64Encode(b, true), v[2], `base64url of ${v[0]}`)
            eq(hexEncode(base64Decode(v[1])), v[0], `decode ${v[1]}`)
        }
    })
})

describe("hex", () => {
    test("RFC 4648 base16 vector, lower case out, either case in", () => {
        eq(hexEncode(Buffer.from("foobar")), "666f6f626172", "encode")
        eq(hexEncode(hex`ABCDEF`), "abcdef", "lower case")
        eq(hexDecode("666F6f626172").toString(), "foobar", "decode")
        eq(hexDecode("").length, 0, "empty")
    })
    test("hex: malformed input is refused", () => {
        throwsWith(() => hexDecode("abc"), "hex: length 3 is odd")
        throwsWith(() => hexDecode("zz"), "hex: invalid character at position 0")
        throwsWith(() => hexDecode("0g"), "position 1")
        throwsWith(() => hexDecode("0 "), "position 1")
    })
})

describe("url encoding", () => {
    test("RFC 3986: unreserved kept, the rest as upper-case %XX of UTF-8", () => {
        eq(urlEncode(""), "", "empty")
        eq(urlEncode("AZaz09-._~"), "AZaz09-._~", "unreserved")
        eq(urlEncode("a b/c"), "a%20b%2Fc", "reserved")
        eq(urlEncode("é😀"), "%C3%A9%F0%9F%98%80", "UTF-8")
    })
    test("OneNET escapes exactly + space / ? % # & =", () => {
        eq(oneNetEncode("+ /?%#&="), "%2B%20%2F%3F%25%23%26%3D", "mapped")
        eq(oneNetEncode("~!*'()é:;@"), "~!*'()é:;@", "kept")
    })
    test("url and OneNET escaping of Node-derived vectors", () => {
        if (noData) throw new Error(noData)
        for (const v of data.u as string[][]) {
            eq(urlEncode(v[0]), v[1], `urlEncode(${v[0]})`)
            eq(oneNetEncode(v[0]), v[2], `oneNetEncode(${v[0]})`)
        }
    })
})

describe("huawei hour stamp", () => {
    test("Node-derived UTC hours", () => {
        if (noData) throw new Error(noData)
        for (const h of data.h as any[][]) eq(utcHourStamp(h[0]), h[1], `hour of ${h[0]}`)
    })
})

describe("signers", () => {
    if (noData)
        test("signer cases from the runner", () => {
            throw new Error(noData)
        })
    else
        (data.s as any[][]).forEach((c, k) => {
            test(`sign #${k}`, () => {
                const m = mint(c)
                if (fingerprint(m) !== c[5])
                    throw new Error(
                        `got clientId=${m.clientId} username=${m.username} password=${m.password} expires=${m.expires}`
                    )
            })
        })
})

describe("signer input checks", () => {
    const ali = { productKey: "pk", deviceName: "dn", deviceSecret: "topsecret", tls: false }
    test("alibaba: input errors name the setting", () => {
        throwsWith(() => signAlibaba({ ...ali, deviceName: "" }), "alibaba: ALI_DN is empty")
        throwsWith(() => signAlibaba({ ...ali, deviceSecret: "" }), "alibaba: ALI_SECRET is empty")
        throwsWith(() => signAlibaba({ ...ali, clientId: "a|b" }), 'alibaba: ALI_CLIENT_ID must not contain "|"')
        throwsWith(() => signAlibaba({ ...ali, clientId: expand(["x", 65]) }), "ALI_CLIENT_ID is 65 characters long, at most 64")
        throwsWith(() => signAlibaba({ ...ali, deviceName: expand(["n", 62]) }), "alibaba: the default client id ALI_PK.ALI_DN is 65 characters long, at most 64 allowed: set ALI_CLIENT_ID")
        throwsWith(() => signAlibaba(ali, -1), "alibaba: the time must be Unix milliseconds", ["topsecret"])
    })
    test("onenet: input errors name the setting", () => {
        const id = { productId: "123", deviceName: "d", key: "abc$" }
        throwsWith(() => signOneNet(id, 0), "onenet: ONENET_KEY is not valid base64 (base64: invalid character at position 3)", ["abc$"])
        throwsWith(() => signOneNet({ ...id, key: "" }, 0), "onenet: ONENET_KEY is empty")
        throwsWith(() => signOneNet({ ...id, key: "QQ=" }, 0), "ONENET_KEY is not valid base64 (base64: length 3")
        throwsWith(() => signOneNet({ ...id, deviceName: "a/b", key: "QQ==" }, 0), 'onenet: ONENET_DEV must not contain "/"')
        throwsWith(() => signOneNet({ ...id, key: "QQ==" }, 0, 0), "onenet: token lifetime must be at least 1 s")
    })
    test("azure: input errors name the setting", () => {
        const id = { hubHost: "h.azure-devices.net", deviceId: "d", deviceKey: "QQ==" }
        throwsWith(() => signAzure({ ...id, deviceKey: "Q Q=" }, 0), "azure: AZURE_KEY is not valid base64", ["Q Q="])
        throwsWith(() => signAzure({ ...id, deviceKey: "====" }, 0), "azure: AZURE_KEY is not valid base64")
        throwsWith(() => signAzure({ ...id, deviceId: "" }, 0), "azure: AZURE_DEVICE is empty")
        throwsWith(() => signAzure({ ...id, hubHost: "h/x" }, 0), 'azure: AZURE_HOST must not contain "/"')
        throwsWith(() => signAzure(id, NaN), "azure: the time must be Unix milliseconds")
    })
    test("huawei: input errors name the setting", () => {
        throwsWith(() => signHuawei({ deviceId: "d", secret: "" }, 0), "huawei: HUAWEI_SECRET is empty")
        throwsWith(() => signHuawei({ deviceId: "", secret: "s" }, 0), "huawei: HUAWEI_DEVICE is empty")
        throwsWith(() => signHuawei({ deviceId: "d", secret: "s" }, 1e15), "huawei: the time must be")
    })
    test("tencent: input errors name the setting", () => {
        const id = { productId: "P", deviceName: "d", psk: "MDEy" }
        throwsWith(() => signTencent({ ...id, psk: "MDE" }, "a", 0), "tencent: TENCENT_PSK is not valid base64 (base64: length 3")
        throwsWith(() => signTencent(id, "abcdef", 0), "tencent: connection id is 6 characters long, at most 5")
        throwsWith(() => signTencent(id, "a;b", 0), "tencent: connection id must be letters and digits")
        throwsWith(() => signTencent(id, "", 0), "tencent: connection id is empty")
    })
    test("jwt: input errors name the setting", () => {
        const id = { clientId: "c", username: "u", secret: "s" }
        throwsWith(() => signJwt({ ...id, secret: "" }, 0), "jwt: JWT_SECRET is empty")
        throwsWith(() => signJwt({ ...id, secret: "s*==", secretIsBase64: true }, 0), "jwt: JWT_SECRET is not valid base64", ["s*=="])
        throwsWith(() => signJwt({ ...id, clientId: "" }, 0), "jwt: DEVICE_ID is empty")
    })
    test("tencentConnId gives 5 letters or digits", () => {
        const a = tencentConnId()
        eq(a.length, 5, "length")
        for (let i = 0; i < 5; i++) {
            const c = a.charCodeAt(i)
            if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122))) throw new Error(`bad char in ${a}`)
        }
        expect(signTencent({ productId: "P", deviceName: "d", psk: "MDEy" }, a, 0).username.indexOf(`;${a};`) > 0).toBe(true)
    })
})
