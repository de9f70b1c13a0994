/**
 * The emulation of Azure IoT Hub for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation, isObject, propsProblems, replyCode } from "./common.ts"
import { type AzureDevice, mintAzure, verifyAzure } from "./verify.ts"

export const azure: Emulation<AzureDevice> = {
    testIdentity: { hubHost: "myiothub.azure-devices.net", deviceId: "my_device", deviceKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" },
    refusalCode: 5,
    names: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
    mint: (d, o) => mintAzure({ ...d, deviceKey: o.secret(d.deviceKey) }, o.exp),
    settings: d => ({ AZURE_HOST: d.hubHost, AZURE_DEVICE: d.deviceId, AZURE_KEY: d.deviceKey }),
    rules(d, names) {
        const events = `devices/${d.deviceId}/messages/events/`
        const c2d = `devices/${d.deviceId}/messages/devicebound/`
        const reported = "$iothub/twin/PATCH/properties/reported/"
        let twinVersion = 1
        return {
            upFilters: [events + "#", "$iothub/methods/res/#", reported + "#", "$iothub/twin/GET/#"],
            downPrefixes: [c2d, "$iothub/methods/POST/", "$iothub/twin/"],
            clientId: d.deviceId,
            verify: (c, now) => verifyAzure(c, d, { nowMs: now }),
            dropAt(c) {
                const m = /&se=(\d+)/.exec(typeof c.password === "string" ? c.password : c.password?.toString("utf8") ?? "")
                return m ? +m[1] : undefined
            },
            classify(topic, text, j, qos, now) {
                if (topic.startsWith(events)) {
                    const bag = new URLSearchParams(topic.slice(events.length))
                    if (bag.get("type") === "reply") return { kind: "reply", problems: [] }
                    if (!isObject(j)) return { kind: "report", problems: [`telemetry is not a JSON object: ${text}`] }
                    const p: string[] = []
                    const { ts, ...props } = j
                    if (ts !== undefined && !(Number.isInteger(ts) && Math.abs(ts - now) < 600000)) p.push(`ts must be the Unix time in ms, got ${JSON.stringify(ts)}`)
                    p.push(...propsProblems(props, names, false, now))
                    if (bag.get("$.ct") !== "application/json") p.push("telemetry should declare $.ct=application/json")
                    return { kind: "report", problems: p }
                }
                if (topic.startsWith("$iothub/methods/res/") || topic.startsWith(reported)) return { kind: "reply", problems: [] }
                return { kind: "other", problems: [] }
            },
            autoReply(u) {
                const m = /\?\$rid=([^&]+)/.exec(u.topic)
                if (u.topic.startsWith(reported) && m) return { topic: `$iothub/twin/res/204/?$rid=${m[1]}&$version=${++twinVersion}`, payload: "" }
                return undefined
            },
            commands(seq) {
                const a = seq(), b = seq(), c = seq(), e = seq()
                const cid = `c2d-${a}`
                return [
                    {
                        name: "c2d",
                        topic: `${c2d}%24.to=%2Fdevices%2F${d.deviceId}%2Fmessages%2FdeviceBound&method=set`,
                        payload: JSON.stringify({ id: cid, params: { [names.led]: true } }),
                        isReply: u => u.kind === "reply" && u.topic.startsWith(events) && isObject(u.json) && u.json.id === cid,
                        check: u => replyCode(u, "code", 200, 200),
                    },
                    {
                        name: "direct method",
                        topic: `$iothub/methods/POST/toggle/?$rid=${b}`,
                        payload: "{}",
                        isReply: u => u.topic.startsWith("$iothub/methods/res/") && u.topic.endsWith(`/?$rid=${b}`),
                        check: u => {
                            const p = u.topic === `$iothub/methods/res/200/?$rid=${b}` ? [] : [`expected status 200 in ${u.topic}`]
                            p.push(...replyCode(u, "code", 200, 200))
                            if (typeof u.json?.data?.[names.led] !== "boolean") p.push(`method response data.${names.led} must be a boolean`)
                            return p
                        },
                    },
                    {
                        name: "desired twin",
                        topic: `$iothub/twin/PATCH/properties/desired/?$version=${c}`,
                        payload: JSON.stringify({ [names.interval]: 2000, $version: c }),
                        isReply: u => u.topic.startsWith(reported + "?$rid=") && isObject(u.json) && names.interval in u.json,
                        check: u => (u.json[names.interval] === 2000 ? [] : [`reported ${names.interval} must be 2000: ${u.text}`]),
                    },
                    {
                        name: "bad direct method",
                        topic: `$iothub/methods/POST/reboot/?$rid=${e}`,
                        payload: "{}",
                        isReply: u => u.topic.startsWith("$iothub/methods/res/") && u.topic.endsWith(`/?$rid=${e}`),
                        check: u => (u.topic === `$iothub/methods/res/404/?$rid=${e}` ? [] : [`expected status 404 in ${u.topic}`]),
                    },
                ]
            },
        }
    },
}
