/**
 * The dashboard's MQTT bridge: one mqtt.js client on the broker the device uses, subscribed to the
 * device's own topics (telemetry, status, replies, commands/+, Home Assistant discovery), feeding
 * DashboardState and publishing the page's commands. Works with any broker the device can use.
 */
import crypto from "node:crypto"
import mqtt from "mqtt"
import type { DashboardState } from "./state.ts"
import type { BrokerTarget } from "./topics.ts"

/** A running bridge. */
export interface Bridge {
    /** Disconnects for good. */
    close(): Promise<void>
}

/** Connects to `target` and keeps `state` fed until close(); never throws on broker trouble (the link state shows it). */
export function startBridge(state: DashboardState, target: BrokerTarget): Bridge {
    const topics = state.info.topics
    if (!topics) throw new Error("startBridge: the session has no device topics")
    const filters = [topics.telemetry, topics.status, topics.replies, topics.commandPrefix + "+"]
    if (topics.discovery) filters.push(topics.discovery)
    const clientId = `${state.info.deviceId}-dashboard-${crypto.randomBytes(3).toString("hex")}`.slice(0, 64)
    const client = mqtt.connect(target.url, {
        clientId,
        username: target.username,
        password: target.password,
        clean: true,
        protocolVersion: 4,
        reconnectPeriod: 2000,
        connectTimeout: 10000,
        keepalive: 30,
        // a command must not go out minutes later when the link comes back
        queueQoSZero: false,
    })
    const where = target.url
    state.setLink("connecting", `connecting to ${where}`)
    let lastError = ""
    client.on("connect", () => {
        lastError = ""
        client.subscribe(filters, { qos: 1 }, err => {
            if (err) {
                state.setLink("error", `subscribe failed: ${err.message}`)
                state.infoLine("dashboard", `subscribe to the device's topics failed: ${err.message}`, "error")
                return
            }
            state.setLink("connected", `connected to ${where} as ${clientId}`)
        })
    })
    client.on("message", (topic, payload, packet) => state.mqttIn(topic, payload, packet.retain === true))
    client.on("error", err => {
        // mqtt.js reports refused CONNACKs and socket errors here and goes on reconnecting
        if (err.message !== lastError) state.infoLine("dashboard", `broker ${where}: ${err.message}`, "warn")
        lastError = err.message
        state.setLink("error", err.message)
    })
    client.on("offline", () => state.setLink("connecting", lastError ? `${lastError}; retrying` : `reconnecting to ${where}`))
    client.on("reconnect", () => state.setLink("connecting", lastError ? `${lastError}; retrying` : `reconnecting to ${where}`))

    state.setPublisher(async (topic, payload) => {
        if (!client.connected) throw new Error(`the dashboard is not connected to ${where}`)
        await client.publishAsync(topic, payload, { qos: 1, retain: false })
    })

    return {
        async close() {
            state.setPublisher(undefined)
            await client.endAsync(true).catch(() => {})
            state.setLink("off", "stopped")
        },
    }
}
