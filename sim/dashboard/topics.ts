/**
 * The device's MQTT topics (generic profile) and where its broker is, worked out from the same
 * settings the runner hands the device, so the dashboard listens and commands exactly where the
 * device does.
 */
import type { SettingValue } from "../envfile.ts"
import type { DeviceTopics, MqttKind } from "./protocol.ts"

/** Where the device's broker is and how to log in, from the settings. */
export interface BrokerTarget {
    /** mqtt://host:port or mqtts://host:port */
    url: string
    username?: string
    password?: string
}

const str = (v: SettingValue | undefined, def: string) => (typeof v === "string" && v !== "" ? v : v === undefined || v === "" ? def : String(v))

/** The topics of the generic profile for these settings (TOPIC_PREFIX, DEVICE_ID, HA_DISCOVERY, HA_PREFIX). */
export function deviceTopics(settings: Record<string, SettingValue>): DeviceTopics {
    const id = str(settings.DEVICE_ID, "")
    if (!id) throw new Error("dashboard: DEVICE_ID is not set; the runner sets it before starting the dashboard")
    const base = `${str(settings.TOPIC_PREFIX, "devices")}/${id}`
    const ha = settings.HA_DISCOVERY !== false && settings.HA_DISCOVERY !== "false"
    return {
        base,
        telemetry: `${base}/telemetry`,
        status: `${base}/status`,
        replies: `${base}/replies`,
        commandPrefix: `${base}/commands/`,
        discovery: ha ? `${str(settings.HA_PREFIX, "homeassistant")}/+/${id}/+/config` : "",
    }
}

/** The broker the device uses: MQTT_HOST, MQTT_PORT (default 1883, 8883 with TLS), MQTT_TLS, MQTT_USER, MQTT_PASS. */
export function brokerTarget(settings: Record<string, SettingValue>): BrokerTarget {
    const host = str(settings.MQTT_HOST, "")
    if (!host) throw new Error("dashboard: MQTT_HOST is not set, so there is no broker to watch")
    const tls = settings.MQTT_TLS === true || settings.MQTT_TLS === "true"
    const port = Number(settings.MQTT_PORT ?? (tls ? 8883 : 1883))
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`dashboard: MQTT_PORT must be 1..65535, got ${JSON.stringify(settings.MQTT_PORT)}`)
    const user = str(settings.MQTT_USER, "")
    const pass = str(settings.MQTT_PASS, "")
    return { url: `${tls ? "mqtts" : "mqtt"}://${host}:${port}`, username: user || undefined, password: pass || undefined }
}

/** Which kind of message a topic carries, and its name relative to the device's base. */
export function classifyTopic(topics: DeviceTopics, topic: string): { kind: MqttKind; name: string } {
    if (topic === topics.telemetry) return { kind: "telemetry", name: "telemetry" }
    if (topic === topics.status) return { kind: "status", name: "status" }
    if (topic === topics.replies) return { kind: "reply", name: "replies" }
    if (topic.startsWith(topics.commandPrefix)) return { kind: "command", name: topic.slice(topics.base.length + 1) }
    if (topics.discovery && topicMatches(topics.discovery, topic)) return { kind: "discovery", name: topic }
    return { kind: "other", name: topic.startsWith(topics.base + "/") ? topic.slice(topics.base.length + 1) : topic }
}

/** MQTT topic filter matching (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
    const f = filter.split("/")
    const t = topic.split("/")
    for (let i = 0; i < f.length; i++) {
        if (f[i] === "#") return true
        if (i >= t.length) return false
        if (f[i] !== "+" && f[i] !== t[i]) return false
    }
    return f.length === t.length
}
