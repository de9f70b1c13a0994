/**
 * The platform interface: what the application needs from a cloud (or a plain broker) profile.
 * Every platform (generic, Alibaba, OneNET, Azure, ThingSpeak, Huawei, Tencent) implements it;
 * the application and the MQTT client never know which one they talk to.
 * Profiles are pure: they build topics, payloads and credentials and parse commands; no I/O.
 */
import { CloudKind, Config, ReadSetting } from "../config"
import { Parsed, Reply } from "../model/commands"
import { Snapshot } from "../model/properties"

/** One MQTT message to publish. */
export interface Message {
    topic: string
    payload: string
    qos: number
    retain: boolean
}

/** One subscription. */
export interface Subscription {
    filter: string
    qos: number
}

/** Everything needed to open the MQTT session. */
export interface ConnectParams {
    host: string
    port: number
    /** whether to connect with TLS */
    tls: boolean
    clientId: string
    /** undefined = no user name */
    username?: string
    /** undefined = no password; a secret: never log it */
    password?: string
    keepAliveS: number
    cleanSession: boolean
    /** last will (the profile's "offline" status), if the platform has one */
    will?: Message
    /**
     * When the credentials stop working, in the same clock as the `nowMs` given to
     * `connectParams`; 0 = never. Reconnect with fresh parameters well before this.
     */
    expiresAtMs: number
}

/** A cloud platform profile. */
export interface CloudProfile {
    /** short name for logs, e.g. "generic" */
    readonly name: string
    /** true when the platform accepts only TLS connections (refuse early on a transport without TLS) */
    readonly requiresTls: boolean
    /** true when credentials or payloads need the real (Unix) time, so the device must wait for it */
    readonly needsTime: boolean
    /**
     * Connection parameters at `nowMs` (Unix ms when `needsTime`, otherwise any clock).
     * Throws an Error naming the missing or bad identity setting.
     */
    connectParams(nowMs: number): ConnectParams
    /** Topic filters to subscribe to after connecting. */
    subscriptions(): Subscription[]
    /**
     * The status message (retained "online"/"offline" on platforms that have one), or undefined.
     * Publish `status(true)` after each connect; the will carries `status(false)`.
     */
    status(online: boolean): Message
    /**
     * The `i`-th (from 0) retained discovery message to publish after each connect (Home Assistant),
     * built when asked so that one payload at a time is in memory; undefined after the last (at 0
     * when there are none).
     */
    discovery(i: number): Message
    /** The report message for a snapshot of the device's properties taken at `tsMs` (Unix ms, 0 if unknown). */
    report(snapshot: Snapshot, tsMs: number): Message
    /**
     * Turns an incoming message into a command or a command error (which still gets a reply);
     * undefined when the topic is not a command topic of this profile. Never throws.
     */
    parseCommand(topic: string, payload: Buffer): Parsed
    /** The reply message for a command's outcome; undefined when the platform has no replies. */
    reply(cmd: Parsed, reply: Reply): Message
}

/** One cloud platform: reads its own settings and makes its profile. */
export interface Platform {
    kind: CloudKind
    /**
     * Reads and checks this platform's settings (throws a ConfigError naming every bad key),
     * fills in what the common configuration leaves to the platform (e.g. the default MQTT host),
     * logs what the user should know about the platform, and returns the profile.
     */
    create(cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile>
}
