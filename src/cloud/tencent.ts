/**
 * Tencent Cloud IoT Explorer (data template), per docs/platforms.md:
 *   report   $thing/up/property/{pid}/{dn} `{"method":"report","clientToken":"123","params":{"temperature":21.5,...}}`
 *   control  $thing/down/property/{pid}/{dn} `{"method":"control","clientToken":"x","params":{"led":1}}` ->
 *            $thing/up/property/{pid}/{dn} `{"method":"control_reply","clientToken":"x","code":0,"status":"success"}`
 *   actions  $thing/down/action/{pid}/{dn} `{"method":"action","clientToken":"y","actionId":"toggle","params":{}}`
 *            (set, toggle, report) -> $thing/up/action/{pid}/{dn}
 *            `{"method":"action_reply","clientToken":"y","code":0,"status":"success","response":{"led":1}}`
 * Failures carry the app's code (e.g. 422) and its message in "status". Booleans are 0/1 (the
 * template's bool type); identifiers are the model's unless CLOUD_PROPS maps them. The user name
 * carries an expiry (TOKEN_TTL after now), so the device needs the real time.
 */
import { Parsed, Reply, commandError, decodeRequest } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot } from "../model/properties"
import { Config, ReadSetting, checkSettings, isChars, setting, settings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { B64_TEXT, ID_TEXT, base64Value, propNames, tokenTtl } from "./settings"
import { signTencent, tencentConnId } from "./sign-tencent"
import { BOOL_AS_INT, PropertyMap, nextId, platformCommand, propertyMap, requestWithId, sessionParams, valuesJson } from "./thing-model"

/** Tencent Cloud IoT Explorer device with key authentication. */
export interface TencentConfig {
    /** TENCENT_PID: product id */
    productId: string
    /** TENCENT_DEV: device name */
    deviceName: string
    /** TENCENT_PSK: base64 device secret; secret */
    psk: string
}

const STYLE = BOOL_AS_INT
/** Reply context markers; they are also the request methods (parseCommand and reply rely on it). */
const CTX_CONTROL = "control"
const CTX_ACTION = "action"

/** The Tencent IoT Explorer profile. */
export class TencentProfile implements CloudProfile {
    readonly name = "tencent"
    readonly requiresTls = false
    readonly needsTime = true
    readonly upProperty: string
    readonly downProperty: string
    readonly upAction: string
    readonly downAction: string
    readonly props: PropertyMap

    /** `ttlS`: TOKEN_TTL; `names`: CLOUD_PROPS */
    constructor(private cfg: Config, private id: TencentConfig, private ttlS = 3600, names?: { [name: string]: string }) {
        const pd = `${id.productId}/${id.deviceName}`
        this.upProperty = "$thing/up/property/" + pd
        this.downProperty = "$thing/down/property/" + pd
        this.upAction = "$thing/up/action/" + pd
        this.downAction = "$thing/down/action/" + pd
        this.props = propertyMap(undefined, names)
    }

    connectParams(nowMs: number): ConnectParams {
        // the settings are the identity signTencent takes (it reads them, never keeps or changes them)
        return sessionParams(this.cfg, signTencent(this.id, tencentConnId(), nowMs, this.ttlS))
    }

    subscriptions(): Subscription[] {
        return [
            { filter: this.downProperty, qos: 1 },
            { filter: this.downAction, qos: 1 },
        ]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        // the sample's own time (Unix ms) when known (a plain assignment: fewer bytes than a ternary)
        let time = '",'
        if (tsMs > 0) time = '","timestamp":' + toJson(tsMs) + ","
        const payload = '{"method":"report","clientToken":"' + nextId() + time + '"params":' + valuesJson(snapshot, this.props, STYLE) + "}"
        return { topic: this.upProperty, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        // the property and the action topics share the decoding (their methods are their contexts)
        let action = false
        if (topic !== this.downProperty) {
            if (topic !== this.downAction) return undefined
            action = true
        }
        let ctx = CTX_CONTROL
        let where = "property"
        let example = '{"method":"control","clientToken":"1","params":{"led":1}}'
        if (action) {
            ctx = CTX_ACTION
            where = "action"
            example = '{"method":"action","clientToken":"1","actionId":"toggle","params":{}}'
        }
        const r = requestWithId(payload, "clientToken", ctx, example)
        // (nested ifs and plain assignments: fewer bytes than && and a ternary)
        let method: any = undefined
        if (r.body) method = r.body["method"]
        // the property topic also carries the platform's answers to our reports (report_reply...)
        if (!action) if (typeof method === "string") if ((method as string).endsWith("_reply")) return undefined
        if (r.error) return r.error
        if (method !== ctx) return commandError(r.id, 404, `unknown method ${toJson(method)} on the ${where} topic (known: ${ctx})`, ctx)
        if (!action) return platformCommand("set", r.id, r.body["params"], this.props, ctx)
        const actionId = r.body["actionId"]
        // (one test of a plain assignment: fewer bytes than an || chain)
        let name = ""
        if (typeof actionId === "string") name = actionId
        if (!name.length)
            return commandError(r.id, 400, `actionId must be an action name (set, toggle, report), got ${toJson(actionId)}`, ctx)
        return platformCommand(name, r.id, r.body["params"], this.props, ctx)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd) return undefined
        const action = cmd.ctx === CTX_ACTION
        if (!action) if (cmd.ctx !== CTX_CONTROL) return undefined
        const ok = reply.code === 200
        // (plain assignments and nested ifs: fewer bytes than ternaries and && chains)
        let topic = this.upProperty
        if (action) topic = this.upAction
        let code = 0
        let status = "success"
        if (!ok) {
            code = reply.code
            status = reply.message || "error"
        }
        // the reply's method is the context's (control, action) with "_reply"
        let payload = '{"method":"' + cmd.ctx + '_reply","clientToken":' + toJson(reply.id) + ',"code":' + code + ',"status":' + toJson(status)
        if (action) if (ok) payload += ',"response":' + valuesJson(reply.data, this.props, STYLE)
        payload += "}"
        return { topic, payload, qos: 1, retain: false }
    }
}

/** CLOUD=tencent: TENCENT_PID, TENCENT_DEV, TENCENT_PSK; optional TOKEN_TTL, CLOUD_PROPS. */
export const platform: Platform = {
    kind: "tencent",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=tencent "
        const id: TencentConfig = {
            productId: await setting(s, "TENCENT_PID", "", "letters and digits", t => {
                if (isChars(t, "", false, 32)) return t
                return undefined
            }, false, m + "(the product id)"),
            deviceName: await setting(s, "TENCENT_DEV", "", ID_TEXT, t => {
                if (isChars(t, "_-.:@", false, 48)) return t
                return undefined
            }, false, m + "(the device name)"),
            psk: await setting(s, "TENCENT_PSK", "", B64_TEXT, base64Value, true, m + "(the device secret)"),
        }
        const ttl = await tokenTtl(s)
        const names = await propNames(s)
        checkSettings(s)
        if (!cfg.mqttHost) cfg.mqttHost = id.productId + ".iotcloud.tencentdevices.com"
        log(`tencent: TENCENT_PID=${id.productId} TENCENT_DEV=${id.deviceName} TENCENT_PSK=(set) TOKEN_TTL=${ttl}s`)
        return new TencentProfile(cfg, id, ttl, names)
    },
}
