/**
 * ThingSpeak, per docs/platforms.md: the device publishes
 * `field1=21.5&field2=45&...` to `channels/{TS_CHANNEL}/publish` with QoS 0 (the only QoS it
 * takes). TS_FIELDS says which model property goes into which field (default
 * temperature,humidity,led,interval,uptime = field1..field5; booleans as 1/0). ThingSpeak has no
 * command channel, so this profile subscribes to nothing and never replies: the device only reports.
 * Credentials are the channel's "MQTT device" (TS_CLIENT, TS_USER, TS_PASS); nothing to sign.
 */
import { Parsed, Reply } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot, findProperty } from "../model/properties"
import { Config, ReadSetting, checkSettings, isChars, setting, settings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { ID_TEXT } from "./settings"
import { sessionParams } from "./thing-model"
import { words } from "../util/words"

/** Shortest interval between updates a free ThingSpeak account accepts, ms. */
export const THINGSPEAK_MIN_INTERVAL_MS = 15000
/** Default TS_FIELDS: field1..field5 in model order. */
export const TS_FIELDS_DEFAULT = "temperature,humidity,led,interval,uptime"

/** ThingSpeak channel and MQTT device. */
export interface ThingSpeakConfig {
    /** TS_CHANNEL: channel id */
    channel: string
    /** TS_CLIENT: the MQTT device's client id */
    clientId: string
    /** TS_USER: the MQTT device's user name (default TS_CLIENT) */
    username: string
    /** TS_PASS: the MQTT device's password; secret */
    password: string
    /** TS_FIELDS: model property reported in field1..field8 ("" = field not sent) */
    fields: string[]
}

/**
 * Parses TS_FIELDS: up to 8 model property names separated by commas, position n = field n;
 * an empty position or "-" leaves that field out. Returns the list, or a description of the problem.
 */
export function parseTsFields(text: string): { fields?: string[]; error?: string } {
    const parts = words(text, ",")
    if (parts.length > 8) return { error: `${parts.length} fields listed, ThingSpeak has 8` }
    const fields: string[] = []
    let any = false
    for (const part of parts) {
        let name = part.trim()
        if (name === "-") name = ""
        if (name.length) {
            if (!findProperty(name)) return { error: `${JSON.stringify(name)} is not a property of the device` }
            if (fields.indexOf(name) >= 0) return { error: `${name} is listed twice` }
            any = true
        }
        fields.push(name)
    }
    if (!any) return { error: "no field is mapped" }
    return { fields }
}

/** The ThingSpeak profile (reports only). */
export class ThingSpeakProfile implements CloudProfile {
    readonly name = "thingspeak"
    readonly requiresTls = false
    readonly needsTime = false
    readonly publishTopic: string

    constructor(private cfg: Config, private id: ThingSpeakConfig) {
        this.publishTopic = `channels/${id.channel}/publish`
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

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const parts: string[] = []
        const fields = this.id.fields
        for (let i = 0; i < fields.length && i < 8; i++) {
            const v = fields[i] ? snapshot[fields[i]] : undefined
            if (v !== undefined) parts.push(`field${i + 1}=` + (v === true ? "1" : v === false ? "0" : toJson(v)))
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

/** CLOUD=thingspeak: TS_CHANNEL, TS_CLIENT, TS_PASS; optional TS_USER, TS_FIELDS. */
export const platform: Platform = {
    kind: "thingspeak",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=thingspeak "
        const channel = await setting(s, "TS_CHANNEL", "", "the channel id (digits)", t => (isChars(t, "", true) ? t : undefined), false, m + "(the channel id)")
        const clientId = await setting(s, "TS_CLIENT", "", ID_TEXT, t => (isChars(t, "_-.", false, 64) ? t : undefined), false,
            m + "(the MQTT device's client id)")
        const id: ThingSpeakConfig = {
            channel,
            clientId,
            username: await setting(s, "TS_USER", clientId),
            password: await setting(s, "TS_PASS", "", "the MQTT device's password", undefined, true, m + "(the MQTT device's password)"),
            fields: await setting(s, "TS_FIELDS", words(TS_FIELDS_DEFAULT, ","), "property names separated by commas, position n = field n", t => {
                const f = parseTsFields(t)
                if (f.error) throw new Error(f.error)
                return f.fields
            }),
        }
        checkSettings(s)
        if (!cfg.mqttHost) cfg.mqttHost = "mqtt3.thingspeak.com"
        const shown: string[] = []
        for (let i = 0; i < id.fields.length; i++) if (id.fields[i]) shown.push(`field${i + 1}=${id.fields[i]}`)
        log(`thingspeak: TS_CHANNEL=${channel} TS_CLIENT=${clientId} TS_USER=${id.username} TS_PASS=(set)`)
        log(`thingspeak: reports only (${shown.join(" ")}); ThingSpeak has no command channel, so the device takes no commands`)
        if (cfg.reportMs < THINGSPEAK_MIN_INTERVAL_MS)
            log(`thingspeak: REPORT_MS=${cfg.reportMs} is below the ${THINGSPEAK_MIN_INTERVAL_MS} ms a free account accepts; ThingSpeak drops the updates in between`)
        return new ThingSpeakProfile(cfg, id)
    },
}
