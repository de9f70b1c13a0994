/**
 * Alibaba Cloud IoT Platform (Alink JSON thing model), per /work/shared/reference/platforms.md:
 *   report       /sys/{pk}/{dn}/thing/event/property/post
 *                `{"id":"123","version":"1.0","params":{"CurrentTemperature":21.5,...},"method":"thing.event.property.post"}`
 *   property set /sys/{pk}/{dn}/thing/service/property/set -> .../property/set_reply `{"id","code","data":{}}`
 *   services     /sys/{pk}/{dn}/thing/service/{toggle|report|set} -> ..._reply `{"id","code","data":{...}}`
 * Default identifiers (CLOUD_PROPS overrides): temperature CurrentTemperature, humidity
 * CurrentHumidity, led LightSwitch (bool as 0/1), interval ReportInterval, uptime Uptime.
 * Credentials: hmacsha256 without a timestamp (the platform does not check it), so no clock is needed.
 */
import { Parsed, Reply, commandError } from "../app/commands"
import { toJson } from "../app/json"
import { Snapshot } from "../app/properties"
import { AlibabaConfig, Config } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription } from "./profile"
import { signAlibaba } from "./sign-alibaba"
import { dataJson, IdCounter, paramsJson, platformCommand, PropertyMap, requestWithId, sessionParams, ValueStyle } from "./thing-model"

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

const STYLE: ValueStyle = { boolAsInt: true, floatPoint: true }
const EXAMPLE = '{"id":"1","version":"1.0","params":{"LightSwitch":1}}'

/** The Alibaba Cloud IoT profile. */
export class AlibabaProfile implements CloudProfile {
    readonly name = "alibaba"
    readonly requiresTls = false
    readonly needsTime = false
    /** `/sys/{pk}/{dn}/thing/` */
    readonly base: string
    readonly reportTopic: string
    readonly setTopic: string
    readonly setReplyTopic: string
    /** `/sys/{pk}/{dn}/thing/service/` followed by a service identifier */
    readonly servicePrefix: string
    readonly props: PropertyMap
    private id: AlibabaConfig
    private ids = new IdCounter()

    constructor(private cfg: Config) {
        this.id = cfg.alibaba || { productKey: "", deviceName: "", deviceSecret: "", clientId: "", region: "", instance: "" }
        this.base = `/sys/${this.id.productKey}/${this.id.deviceName}/thing/`
        this.reportTopic = this.base + "event/property/post"
        this.servicePrefix = this.base + "service/"
        this.setTopic = this.servicePrefix + "property/set"
        this.setReplyTopic = this.setTopic + "_reply"
        this.props = new PropertyMap(ALIBABA_NAMES, cfg.propNames)
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        const a = this.id
        const cr = signAlibaba({ productKey: a.productKey, deviceName: a.deviceName, deviceSecret: a.deviceSecret, clientId: a.clientId, tls: c.mqttTls })
        return sessionParams(c, cr, Math.constrain(c.keepAliveS, ALIBABA_KEEPALIVE_MIN, ALIBABA_KEEPALIVE_MAX))
    }

    subscriptions(): Subscription[] {
        return [
            { filter: this.setTopic, qos: 1 },
            { filter: this.servicePrefix + "+", qos: 1 },
        ]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(): Message[] {
        return []
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const payload =
            '{"id":"' + this.ids.next() + '","version":"1.0","params":' + paramsJson(snapshot, this.props, STYLE) + ',"method":"thing.event.property.post"}'
        return { topic: this.reportTopic, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        if (!topic || !topic.startsWith(this.servicePrefix)) return undefined
        if (topic === this.setTopic) {
            const ctx = this.setReplyTopic
            const req = requestWithId(payload, "id", ctx, EXAMPLE)
            if (req.error) return req.error
            return platformCommand("set", req.id, req.body["params"], this.props, ctx)
        }
        const ident = topic.slice(this.servicePrefix.length)
        // replies (ours, echoed by a plain broker) and deeper topics (property/get...) are not calls
        if (!ident.length || ident.indexOf("/") >= 0 || ident.endsWith("_reply")) return undefined
        const ctx = topic + "_reply"
        const req = requestWithId(payload, "id", ctx, EXAMPLE)
        if (req.error) return req.error
        const method = req.body["method"]
        if (method !== undefined && method !== "thing.service." + ident)
            return commandError(req.id, 400, `method must be "thing.service.${ident}" on this topic, got ${toJson(method)}`, ctx)
        return platformCommand(ident, req.id, req.body["params"], this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd || !cmd.ctx || !cmd.ctx.startsWith(this.servicePrefix)) return undefined
        // a property set answers with empty data; service calls return their output (the new values)
        const data = cmd.ctx === this.setReplyTopic ? "{}" : dataJson(reply, this.props, STYLE)
        let payload = '{"id":' + toJson(reply.id) + ',"code":' + reply.code + ',"data":' + data
        if (reply.code !== 200 && reply.message) payload += ',"message":' + toJson(reply.message)
        payload += "}"
        return { topic: cmd.ctx, payload, qos: 1, retain: false }
    }
}
