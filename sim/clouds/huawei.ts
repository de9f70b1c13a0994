/**
 * The emulation of Huawei Cloud IoTDA for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation, isObject, propsProblems, replyCode } from "./common.ts"
import { type HuaweiDevice, mintHuawei, verifyHuawei } from "./verify.ts"

export const huawei: Emulation<HuaweiDevice> = {
    testIdentity: { deviceId: "65a1b2c3_dev1", secret: "huawei-secret-1" },
    refusalCode: 4,
    names: { temperature: "temperature", humidity: "humidity", led: "led", interval: "interval", uptime: "uptime" },
    mint: (d, o) => mintHuawei({ ...d, secret: o.secret(d.secret) }, o.nowMs),
    settings: d => ({ HUAWEI_DEVICE: d.deviceId, HUAWEI_SECRET: d.secret, HUAWEI_HOST: "127.0.0.1" }),
    rules(d, names) {
        const base = `$oc/devices/${d.deviceId}/sys/`
        return {
            upFilters: [base + "#"],
            downPrefixes: [base],
            clientId: d.deviceId,
            verify: (c, now) => verifyHuawei(c, d, { nowMs: now }),
            classify(topic, text, j, qos, now) {
                if (topic === base + "properties/report") {
                    if (!isObject(j) || !Array.isArray(j.services) || !j.services.length)
                        return { kind: "report", problems: [`report must be {"services":[...]}: ${text}`] }
                    const p: string[] = []
                    for (const s of j.services) {
                        if (!isObject(s) || typeof s.service_id !== "string" || !s.service_id) p.push("each service needs a service_id")
                        else p.push(...propsProblems(s.properties, names, false, now))
                        if (isObject(s) && s.event_time !== undefined && !/^[0-9]{8}T[0-9]{6}Z$/.test(String(s.event_time)))
                            p.push(`event_time must be yyyyMMddTHHmmssZ (UTC), got ${JSON.stringify(s.event_time)}`)
                    }
                    return { kind: "report", problems: p }
                }
                if (topic.includes("/response/request_id=")) return { kind: "reply", problems: [] }
                return { kind: "other", problems: [] }
            },
            commands(seq) {
                const a = `cmd-${seq()}`, b = `set-${seq()}`, c = `cmd-${seq()}`
                return [
                    {
                        name: "command",
                        topic: `${base}commands/request_id=${a}`,
                        payload: JSON.stringify({ object_device_id: d.deviceId, service_id: "Sensor", command_name: "toggle", paras: {} }),
                        isReply: u => u.topic === `${base}commands/response/request_id=${a}`,
                        check: u => replyCode(u, "result_code", 0, 0),
                    },
                    {
                        name: "property set",
                        topic: `${base}properties/set/request_id=${b}`,
                        payload: JSON.stringify({ object_device_id: d.deviceId, services: [{ service_id: "Sensor", properties: { [names.led]: true } }] }),
                        isReply: u => u.topic === `${base}properties/set/response/request_id=${b}`,
                        check: u => replyCode(u, "result_code", 0, 0),
                    },
                    {
                        name: "bad command",
                        topic: `${base}commands/request_id=${c}`,
                        payload: JSON.stringify({ object_device_id: d.deviceId, service_id: "Sensor", command_name: "reboot", paras: {} }),
                        isReply: u => u.topic === `${base}commands/response/request_id=${c}`,
                        check: u => replyCode(u, "result_code", 0, "error"),
                    },
                ]
            },
        }
    },
}
