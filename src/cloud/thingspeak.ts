/**
 * ThingSpeak, per /work/shared/reference/platforms.md: the device publishes
 * `field1=21.5&field2=45&...` to `channels/{TS_CHANNEL}/publish` with QoS 0 (the only QoS it
 * takes). TS_FIELDS says which model property goes into which field (default
 * temperature,humidity,led,interval,uptime = field1..field5; booleans as 1/0). ThingSpeak has no
 * command channel, so this profile subscribes to nothing and never replies: the device only reports.
 * Credentials are the channel's "MQTT device" (TS_CLIENT, TS_USER, TS_PASS); nothing to sign.
 */
import { Parsed, Reply } from "../app/commands"
import { findProperty, Snapshot } from "../app/properties"
import { Config, ThingSpeakConfig } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription } from "./profile"
import { sessionParams, valueJson } from "./thing-model"

/** Shortest interval between updates a free ThingSpeak account accepts, ms. */
export const THINGSPEAK_MIN_INTERVAL_MS = 15000

/** The ThingSpeak profile (reports only). */
export class ThingSpeakProfile implements CloudProfile {
    readonly name = "thingspeak"
    readonly requiresTls = false
    readonly needsTime = false
    readonly publishTopic: string
    private id: ThingSpeakConfig

    constructor(private cfg: Config) {
        this.id = cfg.thingspeak || { channel: "", clientId: "", username: "", password: "", fields: [] }
        this.publishTopic = `channels/${this.id.channel}/publish`
    }

    connectParams(nowMs: number): ConnectParams {
        const t = this.id
        if (!t.channel || !t.clientId || !t.password) throw new Error("thingspeak: TS_CHANNEL, TS_CLIENT and TS_PASS must be set")
        return sessionParams(this.cfg, { clientId: t.clientId, username: t.username || t.clientId, password: t.password })
    }

    subscriptions(): Subscription[] {
        return []
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(): Message[] {
        return []
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const parts: string[] = []
        const fields = this.id.fields
        for (let i = 0; i < fields.length && i < 8; i++) {
            const name = fields[i]
            const p = name ? findProperty(name) : undefined
            if (!p || snapshot[name] === undefined) continue
            parts.push(`field${i + 1}=` + valueJson(p, snapshot[name], { boolAsInt: true }))
        }
        return { topic: this.publishTopic, payload: parts.join("&"), qos: 0, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        return undefined
    }

    reply(cmd: Parsed, reply: Reply): Message {
        return undefined
    }
}
