/**
 * Independent Node implementations of the cloud platforms' MQTT credential checks (formulas from
 * docs/platforms.md, Node's crypto only): reference minters that compute what a
 * device must send, and verifiers that accept or refuse a CONNECT the way the platform does, for
 * emulated clouds (an aedes `authenticate` hook) and for tests of the device-side signers.
 */
import { createHmac, timingSafeEqual } from "node:crypto"

/** A verifier's answer; `reason` says what was wrong (never a secret). */
export type Verdict = { ok: true } | { ok: false; reason: string }

/** The CONNECT fields a verifier looks at (aedes hands the password over as a Buffer). */
export interface ConnectFields {
    clientId: string
    username?: string
    password?: string | Buffer
}

/** The credentials a reference minter produces. */
export interface Minted {
    clientId: string
    username: string
    password: string
    /** Unix seconds */
    expires?: number
}

type Hash = "sha256" | "sha1" | "md5"

const OK: Verdict = { ok: true }
const fail = (reason: string): Verdict => ({ ok: false, reason })

function mac(hash: Hash, key: string | Buffer, msg: string): Buffer {
    return createHmac(hash, key).update(msg, "utf8").digest()
}

/** Constant-time comparison of two strings (length leaks, content does not). */
function sameText(a: string, b: string): boolean {
    const x = Buffer.from(a, "utf8")
    const y = Buffer.from(b, "utf8")
    return x.length === y.length && timingSafeEqual(x, y)
}

/** RFC 3986 percent-encoding of UTF-8 (unreserved kept, upper-case hex). */
export function rfc3986(s: string): string {
    return encodeURIComponent(s).replace(/[!'()*]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase())
}

/** OneNET's token escaping: only + space / ? % # & = are percent-encoded. */
export function oneNetEscape(s: string): string {
    return s.replace(/[+ /?%#&=]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"))
}

function passwordText(p: string | Buffer | undefined): string | undefined {
    return p === undefined ? undefined : typeof p === "string" ? p : p.toString("utf8")
}

function nowSeconds(nowMs?: number): number {
    return Math.floor((nowMs ?? Date.now()) / 1000)
}

// ---------------------------------------------------------------- Alibaba

/** An Alibaba device certificate. */
export interface AlibabaDevice {
    productKey: string
    deviceName: string
    deviceSecret: string
}

/** Reference Alibaba minter (hmacsha256; `timestamp` omitted when undefined). */
export function mintAlibaba(
    d: AlibabaDevice,
    o: { cid?: string; tls: boolean; timestamp?: number | string; signmethod?: "hmacsha256" | "hmacsha1" | "hmacmd5" }
): Minted {
    const cid = o.cid || `${d.productKey}.${d.deviceName}`
    const method = o.signmethod ?? "hmacsha256"
    const ts = o.timestamp === undefined ? undefined : String(o.timestamp)
    const fields: [string, string][] = [
        ["clientId", cid],
        ["deviceName", d.deviceName],
        ["productKey", d.productKey],
    ]
    if (ts !== undefined) fields.push(["timestamp", ts])
    fields.sort((a, b) => (a[0] < b[0] ? -1 : 1))
    const content = fields.map(([k, v]) => k + v).join("")
    const hash = method.slice(4) as Hash
    return {
        clientId: `${cid}|securemode=${o.tls ? 2 : 3},signmethod=${method}${ts !== undefined ? `,timestamp=${ts}` : ""}|`,
        username: `${d.deviceName}&${d.productKey}`,
        password: mac(hash, Buffer.from(d.deviceSecret, "utf8"), content).toString("hex"),
    }
}

/**
 * Checks an Alibaba CONNECT: the `cid|k=v,...|` client id (securemode 2 on TLS, 3 on plain TCP
 * when `tls` is given), `deviceName&productKey`, and the hex HMAC (any case) of the sorted
 * signed parameters. The platform does not check the timestamp, so neither does this.
 */
export function verifyAlibaba(c: ConnectFields, d: AlibabaDevice, opts: { tls?: boolean } = {}): Verdict {
    const m = /^([^|]*)\|([^|]*)\|$/.exec(c.clientId)
    if (!m) return fail("clientId must be cid|params|")
    const cid = m[1]
    if (!cid) return fail("clientId has an empty id before the parameters")
    if (cid.length > 64) return fail("clientId id part is longer than 64 characters")
    const params = new Map<string, string>()
    for (const kv of m[2].split(",")) {
        const i = kv.indexOf("=")
        if (i <= 0) return fail(`clientId parameter "${kv}" is not name=value`)
        params.set(kv.slice(0, i), kv.slice(i + 1))
    }
    const mode = params.get("securemode")
    if (mode !== "2" && mode !== "3") return fail(`securemode must be 2 (TLS) or 3 (TCP), got ${mode}`)
    if (opts.tls !== undefined && (mode === "2") !== opts.tls)
        return fail(`securemode=${mode} does not match a ${opts.tls ? "TLS" : "plain TCP"} connection`)
    const method = params.get("signmethod")
    if (method !== "hmacsha256" && method !== "hmacsha1" && method !== "hmacmd5")
        return fail(`unsupported signmethod ${method}`)
    if (c.username !== `${d.deviceName}&${d.productKey}`) return fail("username must be deviceName&productKey")
    const password = passwordText(c.password)
    if (!password) return fail("no password")
    const want = mintAlibaba(d, { cid, tls: mode === "2", timestamp: params.get("timestamp"), signmethod: method })
    if (!sameText(password.toLowerCase(), want.password)) return fail("bad password (signature mismatch)")
    return OK
}

// ---------------------------------------------------------------- OneNET

/** A OneNET device and the keys that may sign for it. */
export interface OneNetDevice {
    productId: string
    deviceName: string
    /** base64 device key (signs res = products/{pid}/devices/{dn}) */
    deviceKey?: string
    /** base64 product access key (signs res = products/{pid}) */
    productKey?: string
}

/** The OneNET string to sign and its HMAC (base64). */
function oneNetSign(key: string, et: string, method: string, res: string, version: string): string {
    return mac(method as Hash, Buffer.from(key, "base64"), `${et}\n${method}\n${res}\n${version}`).toString("base64")
}

/** Reference OneNET minter (version 2018-10-31, sha256). */
export function mintOneNet(
    d: { productId: string; deviceName: string; key: string; keyScope?: "device" | "product" },
    et: number
): Minted {
    const res = d.keyScope === "product" ? `products/${d.productId}` : `products/${d.productId}/devices/${d.deviceName}`
    const sign = oneNetSign(d.key, String(et), "sha256", res, "2018-10-31")
    return {
        clientId: d.deviceName,
        username: d.productId,
        password: `version=2018-10-31&res=${oneNetEscape(res)}&et=${et}&method=sha256&sign=${oneNetEscape(sign)}`,
        expires: et,
    }
}

/**
 * Checks a OneNET CONNECT: clientId = device name, username = product id, and the token
 * (version 2018-10-31, method md5/sha1/sha256, res for the device or its product, et in the future).
 */
export function verifyOneNet(c: ConnectFields, d: OneNetDevice, opts: { nowMs?: number } = {}): Verdict {
    if (c.clientId !== d.deviceName) return fail("clientId must be the device name")
    if (c.username !== d.productId) return fail("username must be the product id")
    const token = passwordText(c.password)
    if (!token) return fail("no token")
    const f = new Map<string, string>()
    for (const kv of token.split("&")) {
        const i = kv.indexOf("=")
        if (i <= 0) return fail(`token field "${kv.slice(0, 20)}" is not name=value`)
        try {
            f.set(kv.slice(0, i), decodeURIComponent(kv.slice(i + 1)))
        } catch {
            return fail(`token field ${kv.slice(0, i)} has a bad %-escape`)
        }
    }
    for (const k of ["version", "res", "et", "method", "sign"]) if (!f.has(k)) return fail(`token has no ${k}`)
    const version = f.get("version")!
    if (version !== "2018-10-31") return fail(`unsupported token version ${version}`)
    const method = f.get("method")!
    if (method !== "sha256" && method !== "sha1" && method !== "md5") return fail(`unsupported method ${method}`)
    const etText = f.get("et")!
    if (!/^\d{1,12}$/.test(etText)) return fail("et must be Unix seconds")
    if (+etText <= nowSeconds(opts.nowMs)) return fail(`token expired (et ${etText})`)
    const res = f.get("res")!
    let key: string | undefined
    if (res === `products/${d.productId}/devices/${d.deviceName}`) key = d.deviceKey
    else if (res === `products/${d.productId}`) key = d.productKey
    else return fail(`res ${res} is not this device or its product`)
    if (!key) return fail(`no key registered for ${res}`)
    const sign = f.get("sign")!
    if (!sameText(sign, oneNetSign(key, etText, method, res, version))) return fail("bad token (signature mismatch)")
    return OK
}

// ---------------------------------------------------------------- Azure IoT Hub

/** An IoT Hub device with a symmetric key. */
export interface AzureDevice {
    hubHost: string
    deviceId: string
    /** base64 primary (or secondary) key */
    deviceKey: string
    secondaryKey?: string
}

function azureSig(key: string, srEncoded: string, se: string): string {
    return mac("sha256", Buffer.from(key, "base64"), `${srEncoded}\n${se}`).toString("base64")
}

/** Reference Azure SAS minter. */
export function mintAzure(d: AzureDevice, se: number, apiVersion = "2021-04-12"): Minted {
    const sr = rfc3986(`${d.hubHost}/devices/${d.deviceId}`)
    return {
        clientId: d.deviceId,
        username: `${d.hubHost}/${d.deviceId}/?api-version=${apiVersion}`,
        password: `SharedAccessSignature sr=${sr}&sig=${rfc3986(azureSig(d.deviceKey, sr, String(se)))}&se=${se}`,
        expires: se,
    }
}

/**
 * Checks an IoT Hub CONNECT: clientId = device id, username `{host}/{id}/?api-version=...`, and a
 * SharedAccessSignature whose sr is this device, whose se is in the future, signed with one of
 * the device's keys.
 */
export function verifyAzure(c: ConnectFields, d: AzureDevice, opts: { nowMs?: number } = {}): Verdict {
    if (c.clientId !== d.deviceId) return fail("clientId must be the device id")
    const prefix = `${d.hubHost}/${d.deviceId}/?api-version=`
    if (!c.username?.startsWith(prefix) || c.username.length === prefix.length)
        return fail(`username must be ${prefix}<version>`)
    const password = passwordText(c.password)
    const head = "SharedAccessSignature "
    if (!password?.startsWith(head)) return fail("password must be a SharedAccessSignature")
    const f = new Map<string, string>()
    for (const kv of password.slice(head.length).split("&")) {
        const i = kv.indexOf("=")
        if (i <= 0) return fail(`SAS field "${kv.slice(0, 20)}" is not name=value`)
        f.set(kv.slice(0, i), kv.slice(i + 1))
    }
    const sr = f.get("sr")
    const sigEnc = f.get("sig")
    const se = f.get("se")
    if (sr === undefined || sigEnc === undefined || se === undefined) return fail("SAS needs sr, sig and se")
    let srText: string, sig: string
    try {
        srText = decodeURIComponent(sr)
        sig = decodeURIComponent(sigEnc)
    } catch {
        return fail("SAS has a bad %-escape")
    }
    const slash = srText.indexOf("/")
    if (slash < 0 || srText.slice(0, slash).toLowerCase() !== d.hubHost.toLowerCase() || srText.slice(slash) !== `/devices/${d.deviceId}`)
        return fail(`sr ${srText} is not this device`)
    if (!/^\d{1,12}$/.test(se)) return fail("se must be Unix seconds")
    if (+se <= nowSeconds(opts.nowMs)) return fail(`SAS expired (se ${se})`)
    for (const key of [d.deviceKey, d.secondaryKey])
        if (key && sameText(sig, azureSig(key, sr, se))) return OK
    return fail("bad SAS (signature mismatch)")
}

// ---------------------------------------------------------------- Huawei IoTDA

/** An IoTDA device with its secret. */
export interface HuaweiDevice {
    deviceId: string
    secret: string
}

/** `YYYYMMDDHH` of a Unix time in ms, UTC. */
export function huaweiHour(ms: number): string {
    return new Date(ms).toISOString().slice(0, 13).replace(/[-T]/g, "")
}

/** Reference IoTDA minter for the UTC hour of `nowMs`. */
export function mintHuawei(d: HuaweiDevice, nowMs: number, checkTimestamp = false): Minted {
    const hour = huaweiHour(nowMs)
    return {
        clientId: `${d.deviceId}_0_${checkTimestamp ? 1 : 0}_${hour}`,
        username: d.deviceId,
        password: mac("sha256", Buffer.from(hour, "utf8"), d.secret).toString("hex"),
    }
}

/**
 * Checks an IoTDA CONNECT: clientId `{deviceId}_0_{0|1}_{YYYYMMDDHH}`, username = device id,
 * password = hex HMAC-SHA256 of the secret keyed by that hour string. With sign type 1 the hour
 * must be within `skewHours` (default 1, an assumption: the documentation names no figure) of now.
 */
export function verifyHuawei(c: ConnectFields, d: HuaweiDevice, opts: { nowMs?: number; skewHours?: number } = {}): Verdict {
    const prefix = `${d.deviceId}_0_`
    if (!c.clientId.startsWith(prefix)) return fail("clientId must be {deviceId}_0_{signType}_{YYYYMMDDHH}")
    const m = /^([01])_(\d{10})$/.exec(c.clientId.slice(prefix.length))
    if (!m) return fail("clientId must end in _0_{0|1}_{YYYYMMDDHH}")
    const [, signType, hour] = m
    if (c.username !== d.deviceId) return fail("username must be the device id")
    const t = Date.UTC(+hour.slice(0, 4), +hour.slice(4, 6) - 1, +hour.slice(6, 8), +hour.slice(8, 10))
    if (huaweiHour(t) !== hour) return fail(`timestamp ${hour} is not a valid UTC hour`)
    if (signType === "1") {
        const skew = (opts.skewHours ?? 1) * 3600000
        const now = Math.floor((opts.nowMs ?? Date.now()) / 3600000) * 3600000
        if (Math.abs(t - now) > skew) return fail(`timestamp ${hour} is too far from the platform's time`)
    }
    const password = passwordText(c.password)
    if (!password) return fail("no password")
    const want = mac("sha256", Buffer.from(hour, "utf8"), d.secret).toString("hex")
    if (!sameText(password.toLowerCase(), want)) return fail("bad password (signature mismatch)")
    return OK
}

// ---------------------------------------------------------------- Tencent IoT Explorer

/** A Tencent device with its base64 PSK. */
export interface TencentDevice {
    productId: string
    deviceName: string
    psk: string
}

/** Reference Tencent minter. */
export function mintTencent(d: TencentDevice, connId: string, expiry: number): Minted {
    const clientId = d.productId + d.deviceName
    const username = `${clientId};12010126;${connId};${expiry}`
    return {
        clientId,
        username,
        password: mac("sha256", Buffer.from(d.psk, "base64"), username).toString("hex") + ";hmacsha256",
        expires: expiry,
    }
}

/**
 * Checks a Tencent CONNECT: clientId = productId+deviceName, username
 * `{clientId};{appid};{connid};{expiry}` with expiry in the future, password
 * `hex(HMAC(psk, username));hmacsha256` (or `;hmacsha1`).
 */
export function verifyTencent(c: ConnectFields, d: TencentDevice, opts: { nowMs?: number } = {}): Verdict {
    const clientId = d.productId + d.deviceName
    if (c.clientId !== clientId) return fail("clientId must be productId followed by deviceName")
    const parts = (c.username ?? "").split(";")
    if (parts.length !== 4 || parts[0] !== clientId) return fail("username must be {clientId};{appid};{connid};{expiry}")
    if (!/^\d+$/.test(parts[1])) return fail("username appid must be digits")
    if (!/^[A-Za-z0-9]{1,5}$/.test(parts[2])) return fail("username connid must be 1..5 letters or digits")
    if (!/^\d{1,19}$/.test(parts[3])) return fail("username expiry must be Unix seconds")
    if (+parts[3] <= nowSeconds(opts.nowMs)) return fail(`credentials expired (expiry ${parts[3]})`)
    const password = passwordText(c.password) ?? ""
    const semi = password.lastIndexOf(";")
    const method = password.slice(semi + 1)
    if (semi < 0 || (method !== "hmacsha256" && method !== "hmacsha1"))
        return fail("password must be {hex signature};hmacsha256")
    const want = mac(method.slice(4) as Hash, Buffer.from(d.psk, "base64"), c.username!).toString("hex")
    if (!sameText(password.slice(0, semi).toLowerCase(), want)) return fail("bad password (signature mismatch)")
    return OK
}

// ---------------------------------------------------------------- JWT (EMQX-style HS256)

/** A broker's JWT secret. */
export interface JwtSecret {
    secret: string
    secretIsBase64?: boolean
}

function jwtKey(s: JwtSecret): Buffer {
    return s.secretIsBase64 ? Buffer.from(s.secret, "base64") : Buffer.from(s.secret, "utf8")
}

/** JSON with every non-ASCII character escaped as \uXXXX (the device's claim encoding). */
export function asciiJson(v: unknown): string {
    return JSON.stringify(v).replace(/[\u007f-\uffff]/g, c => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))
}

/** Reference JWT minter with the device's claims, in the device's order. */
export function mintJwt(id: { clientId: string; username: string } & JwtSecret, nowMs: number, lifetimeSec: number): Minted {
    const iat = Math.floor(nowMs / 1000)
    const exp = iat + lifetimeSec
    const b64url = (b: Buffer) => b.toString("base64url")
    const head = b64url(Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })))
    const body = b64url(Buffer.from(asciiJson({ username: id.username, clientid: id.clientId, iat, exp })))
    const sig = createHmac("sha256", jwtKey(id)).update(`${head}.${body}`).digest("base64url")
    return { clientId: id.clientId, username: id.username, password: `${head}.${body}.${sig}`, expires: exp }
}

/**
 * Checks a JWT password the way EMQX's JWT authenticator does with an HS256 secret: the
 * signature, `exp` (when present) in the future, and the `username`/`clientid` claims (when
 * present) equal to the CONNECT's.
 */
export function verifyJwt(c: ConnectFields, s: JwtSecret, opts: { nowMs?: number } = {}): Verdict {
    const token = passwordText(c.password) ?? ""
    const parts = token.split(".")
    if (parts.length !== 3 || parts.some(p => !/^[A-Za-z0-9_-]*$/.test(p))) return fail("password is not a JWT")
    let header: any, claims: any
    try {
        header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"))
        claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"))
    } catch {
        return fail("JWT header or claims are not JSON")
    }
    if (header?.alg !== "HS256") return fail(`JWT alg must be HS256, got ${header?.alg}`)
    if (typeof claims !== "object" || claims === null) return fail("JWT claims are not an object")
    const want = createHmac("sha256", jwtKey(s)).update(`${parts[0]}.${parts[1]}`).digest("base64url")
    if (!sameText(parts[2], want)) return fail("bad JWT signature")
    if (claims.exp !== undefined && !(typeof claims.exp === "number" && claims.exp > nowSeconds(opts.nowMs)))
        return fail(`JWT expired (exp ${claims.exp})`)
    if (claims.username !== undefined && claims.username !== (c.username ?? ""))
        return fail("JWT username claim does not match the CONNECT username")
    if (claims.clientid !== undefined && claims.clientid !== c.clientId)
        return fail("JWT clientid claim does not match the CONNECT client id")
    return OK
}
