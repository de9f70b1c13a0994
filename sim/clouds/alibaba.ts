/**
 * The emulation of Alibaba Cloud IoT Platform for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation, isObject, propsProblems, idProblem, replyCode, replyTo } from "./common.ts"
import { type AlibabaDevice, mintAlibaba, verifyAlibaba } from "./verify.ts"

export const alibaba: Emulation<AlibabaDevice> = {
    testIdentity: { productKey: "a1X2bEnP82z", deviceName: "example1", deviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" },
    refusalCode: 4,
    names: { temperature: "CurrentTemperature", humidity: "CurrentHumidity", led: "LightSwitch", interval: "ReportInterval", uptime: "Uptime" },
    mint: (d, o) => mintAlibaba({ ...d, deviceSecret: o.secret(d.deviceSecret) }, { tls: o.tls ?? false, timestamp: o.nowMs }),
    settings: d => ({ ALI_PK: d.productKey, ALI_DN: d.deviceName, ALI_SECRET: d.deviceSecret }),
    rules(d, names) {
        const base = `/sys/${d.productKey}/${d.deviceName}/thing/`
        const report = base + "event/property/post"
        const svc = base + "service/"
        const idNum = (n: number) => String(n)
        return {
            upFilters: [base + "event/#", svc + "#"],
            downPrefixes: [base],
            clientId: `${d.productKey}.${d.deviceName}`,
            verify: c => verifyAlibaba(c, d, { tls: false }),
            classify(topic, text, j, qos, now) {
                if (topic === report) {
                    const p: string[] = []
                    if (!isObject(j)) return { kind: "report", problems: [`report is not a JSON object: ${text}`] }
                    const ip = idProblem(j.id, 10, 4294967295)
                    if (ip) p.push(ip)
                    if (j.version !== "1.0") p.push(`version must be "1.0", got ${JSON.stringify(j.version)}`)
                    if (j.method !== "thing.event.property.post") p.push(`method must be thing.event.property.post, got ${JSON.stringify(j.method)}`)
                    // {"value":...,"time":...} per property carries the sample's own time (Alink)
                    const wrapped = isObject(j.params) && Object.values(j.params).some(isObject)
                    p.push(...propsProblems(j.params, names, true, now, wrapped))
                    for (const m of ["temperature", "humidity"]) {
                        const idn = names[m]
                        if (isObject(j.params) && idn in j.params && !new RegExp(`"${idn}":(\\{"value":)?-?[0-9]+\\.[0-9]`).test(text))
                            p.push(`${idn} is a float: it must keep a decimal point`)
                    }
                    return { kind: "report", problems: p }
                }
                if (topic.startsWith(svc) && topic.endsWith("_reply")) return { kind: "reply", problems: [] }
                return { kind: "other", problems: [] }
            },
            autoReply: u =>
                u.kind === "report" && isObject(u.json)
                    ? { topic: report + "_reply", payload: JSON.stringify({ id: u.json.id, code: 200, data: {}, method: "thing.event.property.post" }) }
                    : undefined,
            commands(seq) {
                const set = svc + "property/set"
                const a = idNum(seq()), b = idNum(seq()), c = idNum(seq())
                return [
                    {
                        name: "property set",
                        topic: set,
                        payload: JSON.stringify({ id: a, version: "1.0", params: { [names.led]: 1 }, method: "thing.service.property.set" }),
                        isReply: replyTo(set + "_reply", a),
                        check: u => [...replyCode(u, "code", 200, 200), ...(isObject(u.json?.data) ? [] : ["reply has no data object"])],
                    },
                    {
                        name: "service toggle",
                        topic: svc + "toggle",
                        payload: JSON.stringify({ id: b, version: "1.0", params: {}, method: "thing.service.toggle" }),
                        isReply: replyTo(svc + "toggle_reply", b),
                        check: u => {
                            const p = replyCode(u, "code", 200, 200)
                            const v = u.json?.data?.[names.led]
                            if (v !== 0 && v !== 1) p.push(`toggle reply data.${names.led} must be 0 or 1, got ${JSON.stringify(v)}`)
                            return p
                        },
                    },
                    {
                        name: "bad property set",
                        topic: set,
                        payload: JSON.stringify({ id: c, version: "1.0", params: { [names.led]: "maybe" }, method: "thing.service.property.set" }),
                        isReply: replyTo(set + "_reply", c),
                        check: u => [...replyCode(u, "code", 200, 422), ...(typeof u.json?.message === "string" ? [] : ["error reply has no message"])],
                    },
                ]
            },
        }
    },
}
