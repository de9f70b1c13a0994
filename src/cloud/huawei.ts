/**
 * Huawei Cloud IoTDA, per docs/platforms.md:
 *   report       $oc/devices/{id}/sys/properties/report
 *                `{"services":[{"service_id":"Sensor","properties":{"temperature":21.5,...}}]}`
 *   commands     $oc/devices/{id}/sys/commands/request_id={rid}
 *                `{"service_id":"Sensor","command_name":"toggle","paras":{"name":"led"}}` (set, toggle, report) ->
 *                $oc/devices/{id}/sys/commands/response/request_id={rid}
 *                `{"result_code":0,"response_name":"toggle","paras":{"led":true}}` (on failure the
 *                app's code, e.g. 422, and `"paras":{"error":"..."}`)
 *   property set $oc/devices/{id}/sys/properties/set/request_id={rid}
 *                `{"services":[{"service_id":"Sensor","properties":{"led":true}}]}` ->
 *                .../properties/set/response/request_id={rid} `{"result_code":0,"result_desc":"success"}`
 * HUAWEI_SVC names the service (default Sensor); identifiers are the model's unless CLOUD_PROPS maps
 * them. Credentials are keyed by the UTC hour; the platform checks that hour only with
 * HUAWEI_TSCHK=true, so only then does the device need the real time. They do not expire.
 */
import { Parsed, Reply, commandError, decodeRequest } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot } from "../model/properties"
import { Config, ReadSetting, boolSetting, checkSettings, isChars, asHost, setting, settings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { HOST_TEXT, ID_TEXT, idValue, propNames } from "./settings"
import { pad2, signHuawei, utcHourStamp } from "./sign-huawei"
import { PropertyMap, platformCommand, propertyMap, sessionParams, valuesJson } from "./thing-model"

/** Default HUAWEI_SVC. */
export const HUAWEI_SVC_DEFAULT = "Sensor"

/** Huawei Cloud IoTDA device. */
export interface HuaweiConfig {
    /** HUAWEI_DEVICE: device id */
    deviceId: string
    /** HUAWEI_SECRET: device secret; secret */
    secret: string
    /** HUAWEI_SVC: service id of the product model holding the properties, default "Sensor" */
    serviceId: string
    /** HUAWEI_TSCHK: ask the platform to check the connect timestamp (needs the real time); default false */
    checkTimestamp: boolean
}

const RID = "request_id="

/** The value of `request_id=` right after `prefix` in `topic` (no further levels), or "". */
function requestId(topic: string, prefix: string): string {
    const rest = topic.slice(prefix.length)
    if (!rest.startsWith(RID)) return ""
    const rid = rest.slice(RID.length)
    if (rid.indexOf("/") >= 0) return ""
    return rid
}

/** The Huawei IoTDA profile. */
/** `,"event_time":"yyyyMMddTHHmmssZ"` (UTC) of a sample taken at `ms` (Unix ms), or "" when the time is unknown. */
function eventTime(ms: number): string {
    if (!(ms > 0)) return ""
    const h = utcHourStamp(ms)
    const s = Math.floor(ms / 1000)
    const m = Math.floor(s / 60) % 60
    return ',"event_time":"' + h.slice(0, 8) + "T" + h.slice(8) + pad2(m) + pad2(s % 60) + 'Z"'
}

export class HuaweiProfile implements CloudProfile {
    readonly name = "huawei"
    readonly requiresTls = false
    readonly needsTime: boolean
    /** `$oc/devices/{id}/sys/` */
    readonly base: string
    readonly reportTopic: string
    readonly commandPrefix: string
    readonly setPrefix: string
    readonly props: PropertyMap

    /** `names`: CLOUD_PROPS */
    constructor(private cfg: Config, private id: HuaweiConfig, names?: { [name: string]: string }) {
        this.needsTime = id.checkTimestamp
        this.base = `$oc/devices/${id.deviceId}/sys/`
        this.reportTopic = this.base + "properties/report"
        this.commandPrefix = this.base + "commands/"
        this.setPrefix = this.base + "properties/set/"
        this.props = propertyMap(undefined, names)
    }

    connectParams(nowMs: number): ConnectParams {
        // the hour in the client id is for the platform's optional timestamp check: nothing expires
        // (signHuawei sets no expiry; it reads the settings, never keeps or changes them)
        return sessionParams(this.cfg, signHuawei(this.id, nowMs))
    }

    subscriptions(): Subscription[] {
        return [
            { filter: this.commandPrefix + "#", qos: 1 },
            { filter: this.setPrefix + "#", qos: 1 },
        ]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const payload =
            '{"services":[{"service_id":' + toJson(this.id.serviceId) + ',"properties":' + valuesJson(snapshot, this.props, 0) + eventTime(tsMs) + "}]}"
        return { topic: this.reportTopic, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        // (one test a line and plain assignments: fewer bytes than &&/|| chains and ternaries)
        if (!topic) return undefined
        if (!topic.startsWith(this.base)) return undefined
        // a command or a property set: the same request id, reply context and decoding
        let prefix = this.commandPrefix
        const command = topic.startsWith(prefix)
        if (!command) {
            prefix = this.setPrefix
            if (!topic.startsWith(prefix)) return undefined
        }
        const rid = requestId(topic, prefix)
        if (!rid) return undefined // responses (ours, echoed) and other levels
        const ctx = prefix + "response/" + RID + rid
        const req = decodeRequest(payload, false, ctx)
        if (req.error) return commandError(rid, req.error.code, req.error.message, ctx)
        if (command) {
            const given = req.body["command_name"]
            let name = ""
            if (typeof given === "string") name = given
            if (!name.length)
                return commandError(rid, 400, `command_name must be a command name (set, toggle, report), got ${toJson(given)}`, ctx)
            return platformCommand(name, rid, req.body["paras"], this.props, ctx)
        }
        // a property set
        const services = req.body["services"]
        let count = 0
        if (Array.isArray(services)) count = services.length
        if (!count)
            return commandError(rid, 400, 'services must be a non-empty array like [{"service_id":"Sensor","properties":{"led":true}}]', ctx)
        // merge the properties of every service entry; the app's validation judges the names
        const params: { [k: string]: any } = {}
        for (const s of services as any[]) {
            let props: any = undefined
            if (s !== null) if (typeof s === "object") props = s["properties"]
            let bad = true
            if (props !== null) if (typeof props === "object") bad = Array.isArray(props)
            if (bad)
                return commandError(rid, 400, "each services entry needs a properties object", ctx)
            for (const k of Object.keys(props)) params[k] = props[k]
        }
        return platformCommand("set", rid, params, this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd) return undefined
        const ctx = cmd.ctx
        if (!ctx) return undefined
        if (!ctx.startsWith(this.base)) return undefined
        const ok = reply.code === 200
        // (plain assignments: fewer bytes than ternaries)
        let code = 0
        let why = "success"
        if (!ok) {
            code = reply.code
            why = reply.message || "error"
        }
        let payload = '{"result_code":' + code
        if (ctx.startsWith(this.commandPrefix)) {
            if (cmd.kind !== "error") payload += ',"response_name":' + toJson(cmd.kind)
            if (ok) payload += ',"paras":' + valuesJson(reply.data, this.props, 0)
            else payload += ',"paras":{"error":' + toJson(why) + "}"
        } else payload += ',"result_desc":' + toJson(why)
        return { topic: ctx, payload: payload + "}", qos: 1, retain: false }
    }
}

/** CLOUD=huawei: HUAWEI_DEVICE, HUAWEI_SECRET, HUAWEI_HOST (or MQTT_HOST); optional HUAWEI_SVC, HUAWEI_TSCHK, CLOUD_PROPS. */
export const platform: Platform = {
    kind: "huawei",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=huawei "
        const id: HuaweiConfig = {
            deviceId: await setting(s, "HUAWEI_DEVICE", "", ID_TEXT, idValue, false, m + "(the device id)"),
            secret: await setting(s, "HUAWEI_SECRET", "", "the device secret", undefined, true, m + "(the device secret)"),
            serviceId: await setting(s, "HUAWEI_SVC", HUAWEI_SVC_DEFAULT, "a service id of the product model", t => {
                if (isChars(t, "_-", false, 64)) return t
                return undefined
            }),
            checkTimestamp: await boolSetting(s, "HUAWEI_TSCHK", false),
        }
        // missing is an error unless MQTT_HOST is set (a plain assignment: fewer bytes than a ternary)
        let missing: string = undefined
        if (!cfg.mqttHost) missing = m + "(the MQTT access address from the IoTDA console)"
        const host = await setting(s, "HUAWEI_HOST", "", HOST_TEXT, asHost, false, missing)
        const names = await propNames(s)
        checkSettings(s)
        if (!cfg.mqttHost) cfg.mqttHost = host
        log(`huawei: HUAWEI_DEVICE=${id.deviceId} HUAWEI_SECRET=(set) HUAWEI_SVC=${id.serviceId} HUAWEI_TSCHK=${id.checkTimestamp}`)
        if (!id.checkTimestamp) log("huawei: connect timestamp not checked (HUAWEI_TSCHK=false), so the device does not wait for the time")
        return new HuaweiProfile(cfg, id, names)
    },
}
