/**
 * JSON Web Tokens (HS256) as MQTT passwords, for brokers with JWT authentication such as EMQX.
 */
import { hmac } from "@devicescript/crypto"
import { jsonString } from "../util/json"
import { MqttCredentials, decodeKey, expiry, requireText } from "./credentials"
import { base64Encode } from "./encoding"

/** Setting names the JWT identity comes from (used in error messages). */
export const JWT_SETTINGS = {
    clientId: "DEVICE_ID",
    username: "MQTT_USER",
    secret: "JWT_SECRET",
}

/** A client of a broker that checks HS256 JWTs. */
export interface JwtIdentity {
    clientId: string
    /** may be empty: the token then carries an empty `username` claim */
    username: string
    /** the broker's shared secret, as text (or base64 when `secretIsBase64`) */
    secret: string
    secretIsBase64?: boolean
}

/** base64url of `{"alg":"HS256","typ":"JWT"}` */
const HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/**
 * Mints a JWT password with claims `username`, `clientid`, `iat` and `exp` (`lifetimeSec` after
 * `nowMs`, Unix ms), signed with HMAC-SHA256.
 */
export function signJwt(id: JwtIdentity, nowMs: number, lifetimeSec = 3600): MqttCredentials {
    const P = "jwt"
    const S = JWT_SETTINGS
    requireText(P, S.clientId, id.clientId)
    if (typeof id.username !== "string") throw new TypeError(`jwt: ${S.username} must be a string`)
    requireText(P, S.secret, id.secret)
    const key: Buffer | string = id.secretIsBase64 ? decodeKey(P, S.secret, id.secret) : id.secret
    const exp = expiry(P, nowMs, lifetimeSec)
    const iat = Math.floor(nowMs / 1000)
    const claims = `{"username":${jsonString(id.username)},"clientid":${jsonString(id.clientId)},"iat":${iat},"exp":${exp}}`
    const body = HEADER + "." + base64Encode(Buffer.from(claims), true)
    return {
        clientId: id.clientId,
        username: id.username,
        password: body + "." + base64Encode(hmac(key, "sha256", body), true),
        expires: exp,
    }
}
