/**
 * What the dashboard server sends to the page (Server-Sent Events, one JSON object per event) and
 * what the page posts back. Types only: shared by the Node server and the browser bundle.
 */

/** The device's MQTT topics (generic profile), as the dashboard uses them. */
export interface DeviceTopics {
    /** `{TOPIC_PREFIX}/{DEVICE_ID}` */
    base: string
    telemetry: string
    status: string
    replies: string
    /** `{base}/commands/` followed by set, toggle or report */
    commandPrefix: string
    /** `{HA_PREFIX}/+/{DEVICE_ID}/+/config` (Home Assistant discovery), or "" when off */
    discovery: string
}

/** Static facts about the session, sent once in the snapshot. */
export interface SessionInfo {
    deviceId: string
    /** CLOUD setting */
    cloud: string
    /** where the device's broker is, e.g. mqtt://127.0.0.1:1883 */
    brokerUrl: string
    /** true when the broker is the runner's embedded aedes */
    embedded: boolean
    /** undefined when the MQTT view is off (a cloud platform's own topics) */
    topics?: DeviceTopics
    /** why the MQTT view is off, for the page */
    mqttNote?: string
}

/** Bring-up phases shown on the page, in order. */
export const PHASES = ["config", "network", "time", "broker", "subscribe", "reporting"] as const
/** One of PHASES. */
export type PhaseName = (typeof PHASES)[number]
/** pending: not reached; active: in progress or retrying; ok: done; failed: the last attempt failed */
export type PhaseState = "pending" | "active" | "ok" | "failed"

/** The state of one bring-up phase. */
export interface Phase {
    name: PhaseName
    state: PhaseState
    /** what the device said about it (address, clock source, broker, reason of a failure) */
    detail: string
    /** duration the device logged, ms */
    ms?: number
    /** when it last changed (ms since the epoch, server clock) */
    at: number
}

/** Counters since the dashboard started. */
export interface Counters {
    /** telemetry messages received */
    reports: number
    /** device sessions with the broker after the first (status "online" seen again) */
    reconnects: number
    /** VM restarts by the runner */
    restarts: number
    /** reports missing from the cadence (gaps) */
    missed: number
    /** commands that got no reply within REPLY_TIMEOUT_MS */
    unanswered: number
    /** error replies (code >= 400) */
    errorReplies: number
    /** error lines on the device console (exceptions, failures) */
    consoleErrors: number
    /** commands published (by the dashboard or any other client) */
    commands: number
}

/** Last known device values. */
export interface DeviceView {
    /** from the retained status topic: true online, false offline (will), null unknown */
    online: boolean | null
    temperature?: number
    humidity?: number
    led?: boolean
    /** report interval, ms */
    interval?: number
    uptime?: number
    /** when the last report arrived (server clock, ms since the epoch) */
    lastReportAt?: number
    /** measured spacing of recent reports at the current interval, ms (device clock when reports carry ts) */
    cadenceMs?: number
}

/** The dashboard's own connection to the broker. */
export interface LinkState {
    state: "off" | "connecting" | "connected" | "error"
    detail: string
}

/** One point of the charts. */
export interface TelemetryPoint {
    /** ms since the epoch: the report's ts, or its arrival time when it has none */
    t: number
    temperature: number | null
    humidity: number | null
}

/** One console line. */
export interface ConsoleLine {
    seq: number
    at: number
    source: "device" | "runner" | "broker" | "dashboard"
    text: string
    level: "info" | "boot" | "warn" | "error"
}

/** What a message on the device's topics is. */
export type MqttKind = "telemetry" | "status" | "command" | "reply" | "discovery" | "other"

/** The reply a command got (or its absence). */
export interface ReplyInfo {
    /** 0 = no reply within REPLY_TIMEOUT_MS */
    code: number
    message?: string
    data?: Record<string, unknown>
    /** from publishing the command to the reply arriving */
    ms?: number
    /** seq of the reply's own log entry */
    replySeq?: number
}

/** One MQTT message in the log. */
export interface MqttEntry {
    seq: number
    at: number
    /** in: seen on the broker; out: published by this dashboard */
    dir: "in" | "out"
    topic: string
    /** topic relative to the device's base (or the full topic outside it) */
    name: string
    payload: string
    retain: boolean
    kind: MqttKind
    /** the command id (commands and replies) */
    id?: string
    /** commands: the reply, once it came */
    reply?: ReplyInfo
    /** replies: seq of the command entry they answer */
    answers?: number
    /** replies: code and message */
    code?: number
}

/** Everything the page needs, sent when it connects. */
export interface Snapshot {
    info: SessionInfo
    phases: Phase[]
    counters: Counters
    device: DeviceView
    link: LinkState
    telemetry: TelemetryPoint[]
    console: ConsoleLine[]
    mqtt: MqttEntry[]
}

/** Changing state, sent whenever any of it changes. */
export interface StateUpdate {
    phases: Phase[]
    counters: Counters
    device: DeviceView
    link: LinkState
}

/** One Server-Sent Event's data. */
export type ServerEvent =
    | ({ type: "snapshot" } & Snapshot)
    | ({ type: "state" } & StateUpdate)
    | { type: "telemetry"; point: TelemetryPoint }
    | { type: "console"; line: ConsoleLine }
    | { type: "mqtt"; entry: MqttEntry }
    /** a command entry got its reply (or timed out) */
    | { type: "reply"; seq: number; reply: ReplyInfo }

/** Body of POST /api/command. */
export type CommandRequest =
    | { command: "set"; params: Record<string, unknown> }
    | { command: "toggle" }
    | { command: "report" }

/** Answer of POST /api/command. */
export interface CommandResponse {
    ok: boolean
    /** the id put in the payload */
    id?: string
    /** seq of the log entry of the command */
    seq?: number
    error?: string
}

/** How long a command waits for its reply before it counts as unanswered. */
export const REPLY_TIMEOUT_MS = 10000
