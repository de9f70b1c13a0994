/**
 * The emulation of Tencent IoT Explorer for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation, type Uplink, isObject, propsProblems, replyCode } from "./common.ts"
import { type TencentDevice, mintTencent, verifyTencent } from "./verify.ts"

export const tencent: Emulation<TencentDevice> = {
    testIdentity: { productId: "ABCDEFGHIJ", deviceName: "dev1", psk: "MDEyMzQ1Njc4OWFiY2RlZg==" },
    refusalCode: 4,
    names: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
    mint: (d, o) => mintTencent({ ...d, psk: o.secret(d.psk) }, "a1B2c", o.exp),
    settings: d => ({ TENCENT_PID: d.productId, TENCENT_DEV: d.deviceName, TENCENT_PSK: d.psk }),
    rules(d, names) {
        const pd = `${d.productId}/${d.deviceName}`
        const up = `$thing/up/property/${pd}`
        const upAction = `$thing/up/action/${pd}`
        return {
            upFilters: [`$thing/up/+/${pd}`],
            downPrefixes: [`$thing/down/`],
            clientId: d.productId + d.deviceName,
            verify: (c, now) => verifyTencent(c, d, { nowMs: now }),
            classify(topic, text, j, qos, now) {
                if (topic === up && isObject(j) && j.method === "report") {
                    const p: string[] = []
                    if (typeof j.clientToken !== "string" || !j.clientToken) p.push("clientToken must be a non-empty string")
                    if (j.timestamp !== undefined && !(Number.isInteger(j.timestamp) && j.timestamp < now + 600000 && j.timestamp > now - 86400000))
                        p.push(`timestamp must be the sample's Unix time in ms, got ${JSON.stringify(j.timestamp)}`)
                    p.push(...propsProblems(j.params, names, true, now))
                    return { kind: "report", problems: p }
                }
                if (topic === up && !isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                if ((topic === up || topic === upAction) && isObject(j) && typeof j.method === "string" && j.method.endsWith("_reply"))
                    return { kind: "reply", problems: [] }
                return { kind: "other", problems: [] }
            },
            autoReply: u =>
                u.kind === "report" && isObject(u.json)
                    ? { topic: `$thing/down/property/${pd}`, payload: JSON.stringify({ method: "report_reply", clientToken: u.json.clientToken, code: 0, status: "success" }) }
                    : undefined,
            commands(seq) {
                const a = `ct-${seq()}`, b = `at-${seq()}`, c = `ct-${seq()}`
                const byToken = (topic: string, method: string, t: string) => (u: Uplink) =>
                    u.topic === topic && isObject(u.json) && u.json.method === method && u.json.clientToken === t
                return [
                    {
                        name: "control",
                        topic: `$thing/down/property/${pd}`,
                        payload: JSON.stringify({ method: "control", clientToken: a, params: { [names.led]: 1 } }),
                        isReply: byToken(up, "control_reply", a),
                        check: u => replyCode(u, "code", 0, 0),
                    },
                    {
                        name: "action toggle",
                        topic: `$thing/down/action/${pd}`,
                        payload: JSON.stringify({ method: "action", clientToken: b, actionId: "toggle", timestamp: Math.floor(Date.now() / 1000), params: {} }),
                        isReply: byToken(upAction, "action_reply", b),
                        check: u => {
                            const p = replyCode(u, "code", 0, 0)
                            const v = u.json?.response?.[names.led]
                            if (v !== 0 && v !== 1) p.push(`action_reply response.${names.led} must be 0 or 1`)
                            return p
                        },
                    },
                    {
                        name: "bad control",
                        topic: `$thing/down/property/${pd}`,
                        payload: JSON.stringify({ method: "control", clientToken: c, params: { [names.led]: "dim" } }),
                        isReply: byToken(up, "control_reply", c),
                        check: u => [...replyCode(u, "code", 0, "error"), ...(typeof u.json?.status === "string" ? [] : ["error reply has no status"])],
                    },
                ]
            },
        }
    },
}
