/**
 * Tencent Cloud IoT Explorer (data template), per /work/shared/reference/platforms.md:
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
import { Parsed, Reply, commandError } from "../app/commands"
import { toJson } from "../app/json"
import { Snapshot } from "../app/properties"
import { Config, TOKEN_TTL_DEFAULT, TencentConfig } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription } from "./profile"
import { signTencent, tencentConnId } from "./sign-tencent"
import { dataJson, decodeBody, IdCounter, paramsJson, platformCommand, PropertyMap, requestWithId, requiredId, sessionParams, ValueStyle } from "./thing-model"

const STYLE: ValueStyle = { boolAsInt: true }
/** Reply context markers. */
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
    private id: TencentConfig
    private tokens = new IdCounter()

    constructor(private cfg: Config) {
        this.id = cfg.tencent || { productId: "", deviceName: "", psk: "" }
        const pd = `${this.id.productId}/${this.id.deviceName}`
        this.upProperty = "$thing/up/property/" + pd
        this.downProperty = "$thing/down/property/" + pd
        this.upAction = "$thing/up/action/" + pd
        this.downAction = "$thing/down/action/" + pd
        this.props = new PropertyMap(undefined, cfg.propNames)
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        const t = this.id
        return sessionParams(c, signTencent({ productId: t.productId, deviceName: t.deviceName, psk: t.psk }, tencentConnId(), nowMs, c.tokenTtlS || TOKEN_TTL_DEFAULT))
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

    discovery(): Message[] {
        return []
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const payload = '{"method":"report","clientToken":"' + this.tokens.next() + '","params":' + paramsJson(snapshot, this.props, STYLE) + "}"
        return { topic: this.upProperty, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        if (topic === this.downProperty) {
            // the down topic also carries the platform's answers to our reports (report_reply...)
            const req = decodeBody(payload, false, CTX_CONTROL)
            if (req.error) return req.error
            const method = req.body["method"]
            if (typeof method === "string" && (method as string).endsWith("_reply")) return undefined
            const r = requiredId(req.body, "clientToken", CTX_CONTROL, '{"method":"control","clientToken":"1","params":{"led":1}}')
            if (r.error) return r.error
            if (method !== "control")
                return commandError(r.id, 404, `unknown method ${toJson(method)} on the property topic (known: control)`, CTX_CONTROL)
            return platformCommand("set", r.id, req.body["params"], this.props, CTX_CONTROL)
        }
        if (topic === this.downAction) {
            const r = requestWithId(payload, "clientToken", CTX_ACTION, '{"method":"action","clientToken":"1","actionId":"toggle","params":{}}')
            if (r.error) return r.error
            const method = r.body["method"]
            if (method !== "action") return commandError(r.id, 404, `unknown method ${toJson(method)} on the action topic (known: action)`, CTX_ACTION)
            const actionId = r.body["actionId"]
            if (typeof actionId !== "string" || !(actionId as string).length)
                return commandError(r.id, 400, `actionId must be an action name (set, toggle, report), got ${toJson(actionId)}`, CTX_ACTION)
            return platformCommand(actionId as string, r.id, r.body["params"], this.props, CTX_ACTION)
        }
        return undefined
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd || (cmd.ctx !== CTX_CONTROL && cmd.ctx !== CTX_ACTION)) return undefined
        const ok = reply.code === 200
        const action = cmd.ctx === CTX_ACTION
        let payload =
            '{"method":"' + (action ? "action_reply" : "control_reply") + '","clientToken":' + toJson(reply.id) +
            ',"code":' + (ok ? 0 : reply.code) + ',"status":' + toJson(ok ? "success" : reply.message || "error")
        if (action && ok) payload += ',"response":' + dataJson(reply, this.props, STYLE)
        payload += "}"
        return { topic: action ? this.upAction : this.upProperty, payload, qos: 1, retain: false }
    }
}
