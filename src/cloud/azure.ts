/**
 * Azure IoT Hub, per docs/platforms.md (MQTT 3.1.1, TLS only):
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
import { Parsed, Reply, commandError, decodeRequest } from "../model/commands"
import { toJson } from "../util/json"
import { Snapshot } from "../model/properties"
import { Config, ReadSetting, checkSettings, asHost, setting, settings } from "../config"
import { CloudProfile, ConnectParams, Message, Subscription, Platform } from "./profile"
import { B64_TEXT, HOST_TEXT, ID_TEXT, base64Value, idValue, propNames, tokenTtl } from "./settings"
import { signAzure } from "./sign-azure"
import { utf8ErrorAt } from "../util/utf8"
import { PropertyMap, platformCommand, propertyMap, sessionParams, valuesJson } from "./thing-model"
import { words } from "../util/words"

/** Azure IoT Hub device with a symmetric key. */
export interface AzureConfig {
    /** AZURE_HOST: the hub's host name, e.g. `myhub.azure-devices.net` */
    hubHost: string
    /** AZURE_DEVICE: device id */
    deviceId: string
    /** AZURE_KEY: base64 device key; secret */
    deviceKey: string
}

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
    for (const kv of words(bag, "&")) {
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
    private rid = 0

    /** `ttlS`: TOKEN_TTL; `names`: CLOUD_PROPS */
    constructor(private cfg: Config, private id: AzureConfig, private ttlS = 3600, names?: { [name: string]: string }) {
        const dev = `devices/${id.deviceId}/messages/`
        this.telemetryTopic = dev + "events/" + JSON_PROPS
        this.c2dReplyTopic = this.telemetryTopic + "&type=reply"
        this.c2dPrefix = dev + "devicebound/"
        this.props = propertyMap(undefined, names)
    }

    connectParams(nowMs: number): ConnectParams {
        const z = this.id
        return sessionParams(this.cfg, signAzure({ hubHost: z.hubHost, deviceId: z.deviceId, deviceKey: z.deviceKey }, nowMs, this.ttlS))
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

    discovery(i: number): Message {
        return undefined
    }

    report(snapshot: Snapshot, tsMs: number): Message {
        const params = valuesJson(snapshot, this.props, 0)
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
        // the parameters are the payload; "", blanks and null mean none
        const t = payload && payload.length <= 8 && utf8ErrorAt(payload) < 0 ? payload.toString().trim() : ""
        const req = decodeRequest(t === "null" ? undefined : payload, true, ctx)
        if (req.error) return commandError(rid, req.error.code, req.error.message, ctx)
        return platformCommand(name, rid, req.body, this.props, ctx)
    }

    /** A cloud-to-device message: the generic request shape, the command from "method". */
    private parseC2d(bag: string, payload: Buffer): Parsed {
        const req = decodeRequest(payload, false, CTX_C2D)
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
        const req = decodeRequest(payload, false, CTX_TWIN)
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
        const ctx = cmd ? cmd.ctx : undefined
        if (!ctx) return undefined
        const ok = reply.code === 200
        const data = valuesJson(reply.data, this.props, 0)
        const msg = toJson(reply.message || "error")
        if (ctx === CTX_TWIN) {
            this.rid = this.rid >= 999999 ? 1 : this.rid + 1
            const body = ok ? data : '{"lastError":{"code":' + reply.code + ',"message":' + msg + "}}"
            return { topic: REPORTED_PREFIX + this.rid, payload: body, qos: 0, retain: false }
        }
        const method = ctx.startsWith(CTX_METHOD)
        if (!method && ctx !== CTX_C2D) return undefined
        const body = (method ? "{" : '{"id":' + toJson(reply.id) + ",") + '"code":' + reply.code + (ok ? ',"data":' + data : ',"message":' + msg) + "}"
        if (method) return { topic: `$iothub/methods/res/${reply.code}/?$rid=${ctx.slice(CTX_METHOD.length)}`, payload: body, qos: 0, retain: false }
        return { topic: this.c2dReplyTopic, payload: body, qos: 1, retain: false }
    }
}

/** CLOUD=azure: AZURE_HOST, AZURE_DEVICE, AZURE_KEY; optional TOKEN_TTL, CLOUD_PROPS. */
export const platform: Platform = {
    kind: "azure",
    create: async (cfg: Config, log: (msg: string) => void, read?: ReadSetting): Promise<CloudProfile> => {
        const s = settings(read)
        const m = "CLOUD=azure "
        const id: AzureConfig = {
            hubHost: await setting(s, "AZURE_HOST", "", HOST_TEXT, t => (t.indexOf(":") < 0 ? asHost(t) : undefined), false,
                m + "(the hub's host name, e.g. myhub.azure-devices.net)"),
            deviceId: await setting(s, "AZURE_DEVICE", "", ID_TEXT, idValue, false, m + "(the device id)"),
            deviceKey: await setting(s, "AZURE_KEY", "", B64_TEXT, base64Value, true, m + "(the device's primary key)"),
        }
        const ttl = await tokenTtl(s)
        const names = await propNames(s)
        checkSettings(s)
        if (!cfg.mqttHost) cfg.mqttHost = id.hubHost
        log(`azure: AZURE_HOST=${id.hubHost} AZURE_DEVICE=${id.deviceId} AZURE_KEY=(set) TOKEN_TTL=${ttl}s`)
        if (!cfg.mqttTls) log("azure: MQTT_TLS=false: IoT Hub accepts TLS connections only; this works against an emulated hub, never the real one")
        return new AzureProfile(cfg, id, ttl, names)
    },
}
