/**
 * Alibaba Cloud IoT Platform (Alink JSON thing model), per docs/platforms.md:
 *   report       /sys/{pk}/{dn}/thing/event/property/post
 *                `{"id":"123","version":"1.0","params":{"CurrentTemperature":21.5,...},"method":"thing.event.property.post"}`
 *   property set /sys/{pk}/{dn}/thing/service/property/set -> .../property/set_reply `{"id","code","data":{}}`
 *   services     /sys/{pk}/{dn}/thing/service/{toggle|report|set} -> ..._reply `{"id","code","data":{...}}`
 * Default identifiers (CLOUD_PROPS overrides): temperature CurrentTemperature, humidity
 * CurrentHumidity, led LightSwitch (bool as 0/1), interval ReportInterval, uptime Uptime.
 * Credentials: hmacsha256 without a timestamp (the platform does not check it), so no clock is needed.
 */
import { Parsed, Reply, commandError } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot } from "../model/properties"
import { Config, ReadSetting, isChars, asHost, setting, settings, checkSettings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { HOST_TEXT, ID_TEXT, idValue, propNames } from "./settings"
import { signAlibaba } from "./sign-alibaba"
import { BOOL_AS_INT, FLOAT_POINT, PropertyMap, nextId, platformCommand, propertyMap, requestWithId, sessionParams, valuesJson } from "./thing-model"

/** Alibaba's identifiers for the model properties (standard thing-model names where one exists). */
export const ALIBABA_NAMES: { [name: string]: string } = {
    temperature: "CurrentTemperature",
    humidity: "CurrentHumidity",
    led: "LightSwitch",
    interval: "ReportInterval",
    uptime: "Uptime",
}

/** Keepalive range the platform accepts, seconds. */
export const ALIBABA_KEEPALIVE_MIN = 30
export const ALIBABA_KEEPALIVE_MAX = 1200
/** Default ALI_REGION. */
export const ALI_REGION_DEFAULT = "cn-shanghai"

/** Alibaba Cloud IoT device certificate. */
export interface AlibabaConfig {
    /** ALI_PK: ProductKey */
    productKey: string
    /** ALI_DN: DeviceName */
    deviceName: string
    /** ALI_SECRET: DeviceSecret; secret */
    deviceSecret: string
    /** ALI_CLIENT_ID: id before the `|` parameters ("" = `{ProductKey}.{DeviceName}`) */
    clientId: string
}

const STYLE = BOOL_AS_INT | FLOAT_POINT
const EXAMPLE = '{"id":"1","version":"1.0","params":{"LightSwitch":1}}'

/** The Alibaba Cloud IoT profile. */
export class AlibabaProfile implements CloudProfile {
    readonly name = "alibaba"
    readonly requiresTls = false
    readonly needsTime = false
    /** `/sys/{pk}/{dn}/thing/service/` followed by a service identifier */
    readonly servicePrefix: string
    readonly reportTopic: string
    readonly props: PropertyMap

    /** `names`: CLOUD_PROPS */
    constructor(private cfg: Config, private id: AlibabaConfig, names?: { [name: string]: string }) {
        const base = `/sys/${id.productKey}/${id.deviceName}/thing/`
        this.servicePrefix = base + "service/"
        this.reportTopic = base + "event/property/post"
        this.props = propertyMap(ALIBABA_NAMES, names)
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        const a = this.id
        const cr = signAlibaba({ productKey: a.productKey, deviceName: a.deviceName, deviceSecret: a.deviceSecret, clientId: a.clientId, tls: c.mqttTls })
        return sessionParams(c, cr, Math.constrain(c.keepAliveS, ALIBABA_KEEPALIVE_MIN, ALIBABA_KEEPALIVE_MAX))
    }

    subscriptions(): Subscription[] {
        return [
            { filter: this.servicePrefix + "property/set", qos: 1 },
            { filter: this.servicePrefix + "+", qos: 1 },
        ]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        // (a plain assignment: fewer bytes than a ternary)
        let time: number = undefined
        if (tsMs > 0) time = tsMs
        const payload = '{"id":"' + nextId() + '","version":"1.0","params":' + valuesJson(snapshot, this.props, STYLE, time) + ',"method":"thing.event.property.post"}'
        return { topic: this.reportTopic, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        const pre = this.servicePrefix
        // (one test a line and plain assignments: fewer bytes than &&/|| chains and ternaries)
        if (!topic) return undefined
        if (!topic.startsWith(pre)) return undefined
        const ident = topic.slice(pre.length)
        const set = ident === "property/set"
        // replies (ours, echoed by a plain broker) and deeper topics (property/get...) are not calls
        if (!set) {
            if (!ident.length) return undefined
            if (ident.indexOf("/") >= 0) return undefined
            if (ident.endsWith("_reply")) return undefined
        }
        const ctx = topic + "_reply"
        const req = requestWithId(payload, "id", ctx, EXAMPLE)
        if (req.error) return req.error
        const method = req.body["method"]
        let name = "set"
        if (!set) {
            name = ident
            if (method !== undefined)
                if (method !== "thing.service." + ident)
                    return commandError(req.id, 400, `method must be "thing.service.${ident}" on this topic, got ${toJson(method)}`, ctx)
        }
        return platformCommand(name, req.id, req.body["params"], this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        // (one test a line and plain assignments: fewer bytes than && chains and ternaries)
        if (!cmd) return undefined
        const ctx = cmd.ctx
        if (!ctx) return undefined
        if (!ctx.startsWith(this.servicePrefix)) return undefined
        // a property set answers with empty data; service calls return their output (the new values)
        let data = "{}"
        if (!ctx.endsWith("/property/set_reply")) data = valuesJson(reply.data, this.props, STYLE)
        let payload = '{"id":' + toJson(reply.id) + ',"code":' + reply.code + ',"data":' + data
        if (reply.code !== 200) if (reply.message) payload += ',"message":' + toJson(reply.message)
        return { topic: ctx, payload: payload + "}", qos: 1, retain: false }
    }
}

/** CLOUD=alibaba: ALI_PK, ALI_DN, ALI_SECRET; optional ALI_CLIENT_ID, ALI_REGION, ALI_INSTANCE, ALI_HOST, CLOUD_PROPS. */
export const platform: Platform = {
    kind: "alibaba",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=alibaba "
        const id: AlibabaConfig = {
            productKey: await setting(s, "ALI_PK", "", ID_TEXT, idValue, false, m + "(the ProductKey from the console)"),
            deviceName: await setting(s, "ALI_DN", "", ID_TEXT, idValue, false, m + "(the DeviceName)"),
            deviceSecret: await setting(s, "ALI_SECRET", "", "the DeviceSecret", undefined, true, m + "(the DeviceSecret)"),
            clientId: await setting(s, "ALI_CLIENT_ID", "", "at most 64 characters without '|' or ','", t => {
                // (one test a line: fewer bytes than an && chain and a ternary)
                if (t.length > 64) return undefined
                if (t.indexOf("|") >= 0) return undefined
                if (t.indexOf(",") >= 0) return undefined
                return t
            }),
        }
        const region = await setting(s, "ALI_REGION", ALI_REGION_DEFAULT, "a region id like cn-shanghai", t => {
                if (isChars(t, "-")) return t
                return undefined
            })
        const instance = await setting(s, "ALI_INSTANCE", "", "an instance id like iot-06z00ax1o4qyvz9", t => {
                if (isChars(t, "-_")) return t
                return undefined
            })
        const host = await setting(s, "ALI_HOST", "", HOST_TEXT, asHost)
        const names = await propNames(s)
        checkSettings(s)
        // MQTT_HOST, else ALI_HOST, else the instance's or the region's endpoint
        // (plain assignments and one test a line: fewer bytes than ternaries and || chains)
        if (!cfg.mqttHost) {
            let endpoint = host
            if (!endpoint) {
                if (instance) endpoint = instance + ".mqtt.iothub.aliyuncs.com"
                else endpoint = `${id.productKey}.iot-as-mqtt.${region}.aliyuncs.com`
            }
            cfg.mqttHost = endpoint
        }
        let clientId = ""
        if (id.clientId) clientId = " ALI_CLIENT_ID=" + id.clientId
        log(`alibaba: ALI_PK=${id.productKey} ALI_DN=${id.deviceName} ALI_SECRET=(set)${clientId}`)
        if (!cfg.mqttTls) log("alibaba: plain MQTT (securemode=3); accounts created since 2022-08 accept TLS only (MQTT_TLS=true)")
        if (cfg.keepAliveS < ALIBABA_KEEPALIVE_MIN || cfg.keepAliveS > ALIBABA_KEEPALIVE_MAX)
            log(`alibaba: MQTT_KEEPALV=${cfg.keepAliveS} is outside the ${ALIBABA_KEEPALIVE_MIN}..${ALIBABA_KEEPALIVE_MAX} s the platform accepts; clamped`)
        return new AlibabaProfile(cfg, id, names)
    },
}
