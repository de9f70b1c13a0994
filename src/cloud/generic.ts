/**
 * The generic profile, for any MQTT broker (Mosquitto, EMQX, the embedded aedes, HiveMQ):
 * topics under `{TOPIC_PREFIX}/{DEVICE_ID}/`:
 *   telemetry        JSON report `{"ts":..., "temperature":21.5, ...}` (ts omitted while the time is unknown)
 *   status           retained "online" / "offline" (the will)
 *   commands/set     `{"id":"1","params":{"led":true}}`;  commands/{name} for toggle and report
 *   replies          `{"id":"1","code":200,"data":{...}}` or `{"id":"1","code":422,"message":"..."}`
 * plus Home Assistant MQTT discovery (retained config messages under `{HA_PREFIX}/`).
 */
import { Parsed, Reply, commandError, parseCommand } from "../model/commands"
import { toJson } from "../util/json"
import { PROPERTIES, PropertyDesc, Snapshot } from "../model/properties"
import { Config } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"

/** Payloads of the status topic. */
export const ONLINE = "online"
export const OFFLINE = "offline"
/** The `id` Home Assistant's commands carry (replies to them go to the replies topic too). */
export const HA_COMMAND_ID = "ha"

/** Home Assistant extras per model unit: device class, HA unit, state class. */
const HA_UNITS: { [unit: string]: { cls?: string; unit: string; state?: string } } = {
    C: { cls: "temperature", unit: "\u00b0C", state: "measurement" },
    "%RH": { cls: "humidity", unit: "%", state: "measurement" },
    s: { cls: "duration", unit: "s", state: "total_increasing" },
    ms: { unit: "ms" },
}

/**
 * A set command payload for HA with `value` inserted as raw JSON text (or an HA template).
 * Built by concatenation: the compiler mangles `}}` right after a template substitution.
 */
function setPayload(name: string, value: string): string {
    return '{"id":"' + HA_COMMAND_ID + '","params":{"' + name + '":' + value + "}}"
}

/** The generic profile over plain topics. */
export class GenericProfile implements CloudProfile {
    readonly name = "generic"
    readonly requiresTls = false
    readonly needsTime = false
    /** `{TOPIC_PREFIX}/{DEVICE_ID}` */
    readonly base: string
    /** where reports go */
    readonly telemetryTopic: string
    /** retained online/offline */
    readonly statusTopic: string
    /** `{base}/commands/` (followed by the command name) */
    readonly commandPrefix: string
    /** where replies go */
    readonly replyTopic: string

    constructor(private cfg: Config) {
        this.base = `${cfg.topicPrefix}/${cfg.deviceId}`
        this.telemetryTopic = this.base + "/telemetry"
        this.statusTopic = this.base + "/status"
        this.commandPrefix = this.base + "/commands/"
        this.replyTopic = this.base + "/replies"
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        return {
            host: c.mqttHost,
            port: c.mqttPort,
            tls: c.mqttTls,
            clientId: c.deviceId,
            username: c.mqttUser ? c.mqttUser : undefined,
            password: c.mqttPass ? c.mqttPass : undefined,
            keepAliveS: c.keepAliveS,
            // commands queued while offline would be stale: start clean
            cleanSession: true,
            will: this.status(false),
            expiresAtMs: 0,
        }
    }

    subscriptions(): Subscription[] {
        return [{ filter: this.commandPrefix + "+", qos: 1 }]
    }

    status(online: boolean): Message {
        return { topic: this.statusTopic, payload: online ? ONLINE : OFFLINE, qos: 1, retain: true }
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const body: { [k: string]: any } = {}
        if (tsMs > 0) body["ts"] = tsMs
        for (const p of PROPERTIES) body[p.name] = snapshot[p.name]
        return { topic: this.telemetryTopic, payload: toJson(body), qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        if (!topic || !topic.startsWith(this.commandPrefix)) return undefined
        const name = topic.slice(this.commandPrefix.length)
        if (!name.length) return commandError("", 404, "command topic has no command name")
        return parseCommand(name, payload)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        return { topic: this.replyTopic, payload: toJson(reply), qos: 1, retain: false }
    }

    /** The `device` block shared by every discovery message. */
    haDevice(): any {
        return {
            identifiers: [this.cfg.deviceId],
            name: "W55RP20 " + this.cfg.deviceId,
            manufacturer: "WIZnet",
            model: "W55RP20",
        }
    }

    /** The discovery message for one property (sensor, switch or number). */
    haEntity(p: PropertyDesc): Message {
        const id = this.cfg.deviceId
        const extra = p.unit ? HA_UNITS[p.unit] : undefined
        const cfg: { [k: string]: any } = {
            name: p.label,
            unique_id: `${id}_${p.name}`,
            state_topic: this.telemetryTopic,
        }
        let component: string
        if (!p.writable) {
            component = "sensor"
            cfg["value_template"] = "{{ value_json." + p.name + " }}"
            if (extra) {
                if (extra.cls) cfg["device_class"] = extra.cls
                cfg["unit_of_measurement"] = extra.unit
                if (extra.state) cfg["state_class"] = extra.state
            } else if (p.unit) cfg["unit_of_measurement"] = p.unit
            if (p.name === "uptime") cfg["entity_category"] = "diagnostic"
        } else if (p.type === "bool") {
            component = "switch"
            cfg["value_template"] = "{{ 'ON' if value_json." + p.name + " else 'OFF' }}"
            cfg["state_on"] = "ON"
            cfg["state_off"] = "OFF"
            cfg["command_topic"] = this.commandPrefix + "set"
            cfg["payload_on"] = setPayload(p.name, "true")
            cfg["payload_off"] = setPayload(p.name, "false")
        } else {
            component = "number"
            cfg["value_template"] = "{{ value_json." + p.name + " }}"
            cfg["command_topic"] = this.commandPrefix + "set"
            cfg["command_template"] = setPayload(p.name, p.type === "int" ? "{{ value | int }}" : "{{ value }}")
            if (p.min !== undefined) cfg["min"] = p.min
            if (p.max !== undefined) cfg["max"] = p.max
            cfg["step"] = p.type === "int" ? 1 : 0.1
            cfg["mode"] = "box"
            if (extra) cfg["unit_of_measurement"] = extra.unit
            cfg["entity_category"] = "config"
        }
        cfg["availability_topic"] = this.statusTopic
        cfg["payload_available"] = ONLINE
        cfg["payload_not_available"] = OFFLINE
        cfg["device"] = this.haDevice()
        return { topic: `${this.cfg.haPrefix}/${component}/${id}/${p.name}/config`, payload: toJson(cfg), qos: 1, retain: true }
    }

    discovery(i: number): Message {
        if (!this.cfg.haDiscovery) return undefined
        const p = PROPERTIES[i]
        if (p) return this.haEntity(p)
        if (i > PROPERTIES.length) return undefined
        // after the properties: a button that asks for a report now
        const id = this.cfg.deviceId
        const btn = {
            name: "Report now",
            unique_id: `${id}_report`,
            command_topic: this.commandPrefix + "report",
            payload_press: '{"id":"' + HA_COMMAND_ID + '"}',
            availability_topic: this.statusTopic,
            payload_available: ONLINE,
            payload_not_available: OFFLINE,
            device: this.haDevice(),
        }
        return { topic: `${this.cfg.haPrefix}/button/${id}/report/config`, payload: toJson(btn), qos: 1, retain: true }
    }
}

/** CLOUD=generic: any MQTT broker; MQTT_HOST (checked by loadConfig), TOPIC_PREFIX and HA_* are common settings. */
export const platform: Platform = {
    kind: "generic",
    create: async (cfg: Config, log: (msg: string) => void): Promise<CloudProfile> => {
        return new GenericProfile(cfg)
    },
}
