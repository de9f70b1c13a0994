/**
 * Azure IoT Hub, per /work/shared/reference/platforms.md (MQTT 3.1.1, TLS only):
 *   telemetry      devices/{id}/messages/events/$.ct=application%2Fjson&$.ce=utf-8
 *                  `{"ts":...,"temperature":21.5,"humidity":45,"led":false,"interval":5000,"uptime":12}`
 *   direct methods $iothub/methods/POST/{set|toggle|report}/?$rid={rid} with the parameters as the
 *                  payload (`{"led":true}`; toggle `{"name":"led"}` or nothing) ->
 *                  $iothub/methods/res/{code}/?$rid={rid} `{"code":200,"data":{...}}` / `{"code":422,"message":"..."}`
 *   cloud-to-device devices/{id}/messages/devicebound/... with `{"id":"1","method":"set","params":{...}}`
 *                  (method also from a `method=` property, default set); C2D has no reply channel, so
 *                  the answer goes out as telemetry with the property `type=reply`: `{"id","code",...}`
 *   desired twin   $iothub/twin/PATCH/properties/desired/?$version=N `{"led":true,"$version":N}` is a
 *                  set; it is answered with a reported-properties patch of the new values
 *                  ($iothub/twin/PATCH/properties/reported/?$rid={n}), or `{"lastError":{"code","message"}}`.
 * Property names are the model's unless CLOUD_PROPS maps them. The SAS token expires TOKEN_TTL
 * after now; the hub drops the connection then, so the device reconnects with a fresh one before.
 */
import { Parsed, Reply, commandError } from "../app/commands"
import { toJson } from "../app/json"
import { Snapshot } from "../app/properties"
import { AzureConfig, Config, TOKEN_TTL_DEFAULT } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription } from "./profile"
import { signAzure } from "./sign-azure"
import { dataJson, decodeBody, optionalBody, paramsJson, platformCommand, PropertyMap, sessionParams, ValueStyle } from "./thing-model"

const STYLE: ValueStyle = {}
/** System properties of our telemetry: JSON in UTF-8 (lets hub routing read the body). */
const JSON_PROPS = "$.ct=application%2Fjson&$.ce=utf-8"
const METHOD_PREFIX = "$iothub/methods/POST/"
const DESIRED_PREFIX = "$iothub/twin/PATCH/properties/desired/"
const REPORTED_PREFIX = "$iothub/twin/PATCH/properties/reported/?$rid="
/** Reply context markers. */
const CTX_METHOD = "m:"
const CTX_C2D = "c2d"
const CTX_TWIN = "twin"

/** The value of `name` in a `k=v&k=v` property bag (URL-decoding not needed for our keys), or "". */
function bagValue(bag: string, name: string): string {
    for (const kv of bag.split("&")) {
        const eq = kv.indexOf("=")
        if (eq > 0 && kv.slice(0, eq) === name) return kv.slice(eq + 1)
    }
    return ""
}

/** The Azure IoT Hub profile. */
export class AzureProfile implements CloudProfile {
    readonly name = "azure"
    readonly requiresTls = true
    readonly needsTime = true
    readonly telemetryTopic: string
    /** telemetry topic of command replies to cloud-to-device messages */
    readonly c2dReplyTopic: string
    /** `devices/{id}/messages/devicebound/` */
    readonly c2dPrefix: string
    readonly props: PropertyMap
    private id: AzureConfig
    private rid = 0

    constructor(private cfg: Config) {
        this.id = cfg.azure || { hubHost: "", deviceId: "", deviceKey: "" }
        const dev = `devices/${this.id.deviceId}/messages/`
        this.telemetryTopic = dev + "events/" + JSON_PROPS
        this.c2dReplyTopic = this.telemetryTopic + "&type=reply"
        this.c2dPrefix = dev + "devicebound/"
        this.props = new PropertyMap(undefined, cfg.propNames)
    }

    connectParams(nowMs: number): ConnectParams {
        const c = this.cfg
        const z = this.id
        return sessionParams(c, signAzure({ hubHost: z.hubHost, deviceId: z.deviceId, deviceKey: z.deviceKey }, nowMs, c.tokenTtlS || TOKEN_TTL_DEFAULT))
    }

    subscriptions(): Subscription[] {
        return [
            { filter: this.c2dPrefix + "#", qos: 1 },
            { filter: METHOD_PREFIX + "#", qos: 0 },
            { filter: DESIRED_PREFIX + "#", qos: 0 },
            { filter: "$iothub/twin/res/#", qos: 0 },
        ]
    }

    status(online: boolean): Message {
        return undefined
    }

    discovery(): Message[] {
        return []
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const params = paramsJson(snapshot, this.props, STYLE)
        const payload = tsMs > 0 ? '{"ts":' + toJson(tsMs) + (params.length > 2 ? "," : "") + params.slice(1) : params
        return { topic: this.telemetryTopic, payload, qos: 1, retain: false }
    }

    parseCommand(topic: string, payload: Buffer): Parsed {
        if (!topic) return undefined
        if (topic.startsWith(METHOD_PREFIX)) return this.parseMethod(topic.slice(METHOD_PREFIX.length), payload)
        if (topic.startsWith(this.c2dPrefix)) return this.parseC2d(topic.slice(this.c2dPrefix.length), payload)
        if (topic.startsWith(DESIRED_PREFIX)) return this.parseDesired(topic.slice(DESIRED_PREFIX.length), payload)
        return undefined
    }

    /** `{name}/?$rid={rid}` and the method's parameters. */
    private parseMethod(rest: string, payload: Buffer): Parsed {
        const q = rest.indexOf("/?")
        const name = q < 0 ? rest : rest.slice(0, q)
        const rid = q < 0 ? "" : bagValue(rest.slice(q + 2), "$rid")
        // without a request id there is nobody to answer: an error without a reply
        if (!rid.length) return commandError("", 400, `direct method ${toJson(name)} has no $rid`)
        const ctx = CTX_METHOD + rid
        const b = optionalBody(payload, ctx, rid)
        if (b.error) return b.error
        return platformCommand(name, rid, b.body, this.props, ctx)
    }

    /** A cloud-to-device message: the generic request shape, the command from "method". */
    private parseC2d(bag: string, payload: Buffer): Parsed {
        const req = decodeBody(payload, false, CTX_C2D)
        if (req.error) return req.error
        let name = "set"
        const m = req.body["method"]
        if (typeof m === "string") name = m as string
        else if (m !== undefined) return commandError(req.id, 400, `method must be a command name (set, toggle, report), got ${toJson(m)}`, CTX_C2D)
        else {
            const fromBag = bagValue(bag, "method")
            if (fromBag) name = fromBag
        }
        return platformCommand(name, req.id, req.body["params"], this.props, CTX_C2D)
    }

    /** A desired-properties patch: a set of every non-`$` member. */
    private parseDesired(rest: string, payload: Buffer): Parsed {
        const version = bagValue(rest.startsWith("?") ? rest.slice(1) : rest, "$version")
        const req = decodeBody(payload, false, CTX_TWIN)
        if (req.error) return req.error
        const params: { [k: string]: any } = {}
        let n = 0
        for (const k of Object.keys(req.body)) {
            if (k.charAt(0) === "$") continue
            params[k] = req.body[k]
            n++
        }
        // a patch of nothing we own (only $version and metadata): nothing to do
        if (!n) return undefined
        return platformCommand("set", version, params, this.props, CTX_TWIN)
    }

    reply(cmd: Parsed, reply: Reply): Message {
        if (!cmd || !cmd.ctx) return undefined
        const ctx = cmd.ctx
        if (ctx.startsWith(CTX_METHOD)) {
            const rid = ctx.slice(CTX_METHOD.length)
            let body = '{"code":' + reply.code
            if (reply.code === 200) body += ',"data":' + dataJson(reply, this.props, STYLE)
            else body += ',"message":' + toJson(reply.message || "error")
            body += "}"
            return { topic: `$iothub/methods/res/${reply.code}/?$rid=${rid}`, payload: body, qos: 0, retain: false }
        }
        if (ctx === CTX_C2D) {
            let body = '{"id":' + toJson(reply.id) + ',"code":' + reply.code
            if (reply.code === 200) body += ',"data":' + dataJson(reply, this.props, STYLE)
            else body += ',"message":' + toJson(reply.message || "error")
            body += "}"
            return { topic: this.c2dReplyTopic, payload: body, qos: 1, retain: false }
        }
        if (ctx === CTX_TWIN) {
            this.rid = this.rid >= 999999 ? 1 : this.rid + 1
            const body =
                reply.code === 200
                    ? dataJson(reply, this.props, STYLE)
                    : '{"lastError":{"code":' + reply.code + ',"message":' + toJson(reply.message || "error") + "}}"
            return { topic: REPORTED_PREFIX + this.rid, payload: body, qos: 0, retain: false }
        }
        return undefined
    }
}
