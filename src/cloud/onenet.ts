/**
 * China Mobile OneNET (OneJSON thing model), per docs/platforms.md:
 *   report       $sys/{pid}/{dn}/thing/property/post
 *                `{"id":"123","version":"1.0","params":{"temp":{"value":23.6,"time":1599534283111}}}`
 *   property set $sys/{pid}/{dn}/thing/property/set -> .../property/set_reply `{"id","code":200,"msg":"success"}`
 *   services     $sys/{pid}/{dn}/thing/service/{toggle|report|set}/invoke -> .../invoke_reply (with "data")
 * Default identifiers (CLOUD_PROPS overrides): temperature temp, humidity humi, led led,
 * interval interval, uptime uptime. The token carries an expiry (`et`, TOKEN_TTL after now), so
 * the device needs the real time and reconnects with a fresh token before it expires.
 */
import { Parsed, Reply } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot } from "../model/properties"
import { Config, ReadSetting, checkSettings, choiceSetting, setting, settings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { B64_TEXT, ID_TEXT, base64Value, idValue, propNames, tokenTtl } from "./settings"
import { signOneNet } from "./sign-onenet"
import { PropertyMap, nextId, platformCommand, propertyMap, requestWithId, sessionParams, valuesJson } from "./thing-model"

/** OneNET's identifiers for the model properties. */
export const ONENET_NAMES: { [name: string]: string } = {
    temperature: "temp",
    humidity: "humi",
}

/** China Mobile OneNET device. */
export interface OneNetConfig {
    /** ONENET_PID: product id */
    productId: string
    /** ONENET_DEV: device name */
    deviceName: string
    /** ONENET_KEY: base64 access key (device key, or product key with ONENET_SCOPE=product); secret */
    key: string
    /** ONENET_SCOPE: which key ONENET_KEY is; default "device" */
    keyScope: "device" | "product"
}

/** OneNET message ids are decimal strings of at most 13 digits. */
const ID_LIMIT = 9999999999999
const EXAMPLE = '{"id":"1","version":"1.0","params":{"led":true}}'

/** The OneNET profile. */
export class OneNetProfile implements CloudProfile {
    readonly name = "onenet"
    readonly requiresTls = false
    readonly needsTime = true
    /** `$sys/{pid}/{dn}/thing/` */
    readonly base: string
    readonly props: PropertyMap

    /** `ttlS`: TOKEN_TTL; `names`: CLOUD_PROPS */
    constructor(private cfg: Config, private id: OneNetConfig, private ttlS = 3600, names?: { [name: string]: string }) {
        this.base = `$sys/${id.productId}/${id.deviceName}/thing/`
        this.props = propertyMap(ONENET_NAMES, names)
    }

    connectParams(nowMs: number): ConnectParams {
        // the settings are the identity signOneNet takes (it reads them, never keeps or changes them)
        return sessionParams(this.cfg, signOneNet(this.id, nowMs, this.ttlS))
    }

    subscriptions(): Subscription[] {
        // every downlink of the thing model; replies to our posts arrive here too and are ignored
        return [{ filter: this.base + "#", qos: 1 }]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        // (a plain assignment: fewer bytes than a ternary)
        let time = 0
        if (tsMs > 0) time = tsMs
        const payload = '{"id":"' + nextId(ID_LIMIT) + '","version":"1.0","params":' + valuesJson(snapshot, this.props, 0, time) + "}"
        return { topic: this.base + "property/post", payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        // (one test a line: fewer bytes than || chains)
        if (!topic) return undefined
        if (!topic.startsWith(this.base)) return undefined
        const rest = topic.slice(this.base.length)
        let name = "set"
        if (rest !== "property/set") {
            // service/{identifier}/invoke
            if (!rest.startsWith("service/")) return undefined
            if (!rest.endsWith("/invoke")) return undefined
            name = rest.slice(8, rest.length - 7)
            if (!name.length) return undefined
            if (name.indexOf("/") >= 0) return undefined
        }
        const ctx = topic + "_reply"
        const req = requestWithId(payload, "id", ctx, EXAMPLE)
        if (req.error) return req.error
        return platformCommand(name, req.id, req.body["params"], this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd) return undefined
        const ctx = cmd.ctx
        if (!ctx) return undefined
        if (!ctx.startsWith(this.base)) return undefined
        const ok = reply.code === 200
        // (plain assignments: fewer bytes than a ternary and a && chain)
        let msg = "success"
        if (!ok) msg = reply.message || "error"
        let payload = '{"id":' + toJson(reply.id) + ',"code":' + reply.code + ',"msg":' + toJson(msg)
        if (ok) if (ctx.endsWith("/invoke_reply")) payload += ',"data":' + valuesJson(reply.data, this.props, 0)
        return { topic: ctx, payload: payload + "}", qos: 1, retain: false }
    }
}

/** CLOUD=onenet: ONENET_PID, ONENET_DEV, ONENET_KEY; optional ONENET_SCOPE, TOKEN_TTL, CLOUD_PROPS. */
export const platform: Platform = {
    kind: "onenet",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=onenet "
        const plain = (t: string) => {
            if (t.indexOf("/") >= 0) return undefined
            return idValue(t)
        }
        const id: OneNetConfig = {
            productId: await setting(s, "ONENET_PID", "", ID_TEXT, plain, false, m + "(the product id)"),
            deviceName: await setting(s, "ONENET_DEV", "", ID_TEXT, plain, false, m + "(the device name)"),
            key: await setting(s, "ONENET_KEY", "", B64_TEXT, base64Value, true, m + "(the access key)"),
            keyScope: await choiceSetting(s, "ONENET_SCOPE", "device", ["device", "product"]),
        }
        const ttl = await tokenTtl(s)
        const names = await propNames(s)
        checkSettings(s)
        if (!cfg.mqttHost) {
            // (plain assignments: fewer bytes than a ternary)
            if (cfg.mqttTls) cfg.mqttHost = "mqttstls.heclouds.com"
            else cfg.mqttHost = "mqtts.heclouds.com"
        }
        log(`onenet: ONENET_PID=${id.productId} ONENET_DEV=${id.deviceName} ONENET_KEY=(set) ONENET_SCOPE=${id.keyScope} TOKEN_TTL=${ttl}s`)
        return new OneNetProfile(cfg, id, ttl, names)
    },
}
