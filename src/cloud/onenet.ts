/**
 * China Mobile OneNET (OneJSON thing model), per /work/shared/reference/platforms.md:
 *   report       $sys/{pid}/{dn}/thing/property/post
 *                `{"id":"123","version":"1.0","params":{"temp":{"value":23.6,"time":1599534283111}}}`
 *   property set $sys/{pid}/{dn}/thing/property/set -> .../property/set_reply `{"id","code":200,"msg":"success"}`
 *   services     $sys/{pid}/{dn}/thing/service/{toggle|report|set}/invoke -> .../invoke_reply (with "data")
 * Default identifiers (CLOUD_PROPS overrides): temperature temp, humidity humi, led led,
 * interval interval, uptime uptime. The token carries an expiry (`et`, TOKEN_TTL after now), so
 * the device needs the real time and reconnects with a fresh token before it expires.
 */
import { Parsed, Reply } from "../app/commands"
import { toJson } from "../app/json"
import { Snapshot } from "../app/properties"
import { Config, OneNetConfig, TOKEN_TTL_DEFAULT } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription } from "./profile"
import { signOneNet } from "./sign-onenet"
import { dataJson, IdCounter, paramsJson, platformCommand, PropertyMap, requestWithId, sessionParams, ValueStyle } from "./thing-model"

/** OneNET's identifiers for the model properties. */
export const ONENET_NAMES: { [name: string]: string } = {
    temperature: "temp",
    humidity: "humi",
    led: "led",
    interval: "interval",
    uptime: "uptime",
}

/** OneNET message ids are decimal strings of at most 13 digits. */
const ID_LIMIT = 9999999999999
const STYLE: ValueStyle = {}
const EXAMPLE = '{"id":"1","version":"1.0","params":{"led":true}}'

/** The OneNET profile. */
export class OneNetProfile implements CloudProfile {
    readonly name = "onenet"
    readonly requiresTls = false
    readonly needsTime = true
    /** `$sys/{pid}/{dn}/thing/` */
    readonly base: string
    readonly reportTopic: string
    readonly setTopic: string
    /** `$sys/{pid}/{dn}/thing/service/` followed by `{identifier}/invoke` */
    readonly servicePrefix: string
    readonly props: PropertyMap
    private id: OneNetConfig
    private ids = new IdCounter(ID_LIMIT)

    constructor(private cfg: Config) {
        this.id = cfg.onenet || { productId: "", deviceName: "", key: "", keyScope: "device" }
        this.base = `$sys/${this.id.productId}/${this.id.deviceName}/thing/`
        this.reportTopic = this.base + "property/post"
        this.setTopic = this.base + "property/set"
        this.servicePrefix = this.base + "service/"
        this.props = new PropertyMap(ONENET_NAMES, cfg.propNames)
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        const o = this.id
        return sessionParams(c, signOneNet({ productId: o.productId, deviceName: o.deviceName, key: o.key, keyScope: o.keyScope }, nowMs, c.tokenTtlS || TOKEN_TTL_DEFAULT))
    }

    subscriptions(): Subscription[] {
        // every downlink of the thing model; replies to our posts arrive here too and are ignored
        return [{ filter: this.base + "#", qos: 1 }]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(): Message[] {
        return []
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const payload = '{"id":"' + this.ids.next() + '","version":"1.0","params":' + paramsJson(snapshot, this.props, STYLE, tsMs > 0 ? tsMs : 0) + "}"
        return { topic: this.reportTopic, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        if (!topic || !topic.startsWith(this.base)) return undefined
        if (topic === this.setTopic) {
            const ctx = this.setTopic + "_reply"
            const req = requestWithId(payload, "id", ctx, EXAMPLE)
            if (req.error) return req.error
            return platformCommand("set", req.id, req.body["params"], this.props, ctx)
        }
        if (!topic.startsWith(this.servicePrefix) || !topic.endsWith("/invoke")) return undefined
        const ident = topic.slice(this.servicePrefix.length, topic.length - "/invoke".length)
        if (!ident.length || ident.indexOf("/") >= 0) return undefined
        const ctx = topic + "_reply"
        const req = requestWithId(payload, "id", ctx, EXAMPLE)
        if (req.error) return req.error
        return platformCommand(ident, req.id, req.body["params"], this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd || !cmd.ctx || !cmd.ctx.startsWith(this.base)) return undefined
        let payload = '{"id":' + toJson(reply.id) + ',"code":' + reply.code + ',"msg":' + toJson(reply.code === 200 ? "success" : reply.message || "error")
        if (cmd.ctx.endsWith("/invoke_reply") && reply.code === 200) payload += ',"data":' + dataJson(reply, this.props, STYLE)
        payload += "}"
        return { topic: cmd.ctx, payload, qos: 1, retain: false }
    }
}
