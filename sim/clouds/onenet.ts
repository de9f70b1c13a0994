/**
 * The emulation of China Mobile OneNET for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation, isObject, propsProblems, idProblem, replyCode, replyTo } from "./common.ts"
import { mintOneNet, verifyOneNet } from "./verify.ts"

/** A OneNET device registered with its device key. */
export interface OneNetIdentity {
    productId: string
    deviceName: string
    /** base64 device key */
    deviceKey: string
}

export const onenet: Emulation<OneNetIdentity> = {
    testIdentity: { productId: "123123", deviceName: "mydev", deviceKey: "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw=" },
    refusalCode: 4,
    names: { temperature: "temp", humidity: "humi", led: "led", interval: "interval", uptime: "uptime" },
    mint: (d, o) => mintOneNet({ productId: d.productId, deviceName: d.deviceName, key: o.secret(d.deviceKey) }, o.exp),
    settings: d => ({ ONENET_PID: d.productId, ONENET_DEV: d.deviceName, ONENET_KEY: d.deviceKey }),
    rules(d, names) {
        const base = `$sys/${d.productId}/${d.deviceName}/thing/`
        const report = base + "property/post"
        return {
            upFilters: [base + "#"],
            downPrefixes: [base],
            clientId: d.deviceName,
            verify: (c, now) => verifyOneNet(c, { productId: d.productId, deviceName: d.deviceName, deviceKey: d.deviceKey }, { nowMs: now }),
            classify(topic, text, j, qos, now) {
                if (topic === report) {
                    if (!isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                    const p: string[] = []
                    const ip = idProblem(j.id, 13, 9999999999999)
                    if (ip) p.push(ip)
                    if (j.version !== undefined && j.version !== "1.0") p.push(`version must be "1.0", got ${JSON.stringify(j.version)}`)
                    p.push(...propsProblems(j.params, names, false, now, true))
                    return { kind: "report", problems: p }
                }
                if (topic.endsWith("_reply")) return { kind: "reply", problems: [] }
                return { kind: "other", problems: [] }
            },
            autoReply: u =>
                u.kind === "report" && isObject(u.json) ? { topic: report + "/reply", payload: JSON.stringify({ id: u.json.id, code: 200, msg: "success" }) } : undefined,
            commands(seq) {
                const set = base + "property/set"
                const inv = base + "service/toggle/invoke"
                const a = String(seq()), b = String(seq()), c = String(seq())
                return [
                    {
                        name: "property set",
                        topic: set,
                        payload: JSON.stringify({ id: a, version: "1.0", params: { [names.led]: true } }),
                        isReply: replyTo(set + "_reply", a),
                        check: u => [...replyCode(u, "code", 200, 200), ...(typeof u.json?.msg === "string" ? [] : ["reply has no msg"])],
                    },
                    {
                        name: "service toggle",
                        topic: inv,
                        payload: JSON.stringify({ id: b, version: "1.0", params: {} }),
                        isReply: replyTo(inv + "_reply", b),
                        check: u => {
                            const p = replyCode(u, "code", 200, 200)
                            if (typeof u.json?.data?.[names.led] !== "boolean") p.push(`invoke reply data.${names.led} must be a boolean`)
                            return p
                        },
                    },
                    {
                        name: "bad property set",
                        topic: set,
                        payload: JSON.stringify({ id: c, version: "1.0", params: { [names.temperature]: 30 } }),
                        isReply: replyTo(set + "_reply", c),
                        check: u => replyCode(u, "code", 200, 403),
                    },
                ]
            },
        }
    },
}
