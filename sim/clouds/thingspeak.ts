/**
 * The emulation of ThingSpeak for sim/clouds/emulated.ts: its test identity, the credentials a
 * correct device sends, the firmware settings, and the rules its broker and cloud client follow
 * (topics, report checks, answers and commands).
 */
import { type Emulation } from "./common.ts"

/** A ThingSpeak MQTT device and its channel. */
export interface ThingSpeakIdentity {
    channel: string
    clientId: string
    username: string
    password: string
}

export const thingspeak: Emulation<ThingSpeakIdentity> = {
    testIdentity: { channel: "1234567", clientId: "MRoXDjcfBTgdOCIxDiIMMDA", username: "MRoXDjcfBTgdOCIxDiIMMDA", password: "tspass-secret-1" },
    refusalCode: 5,
    names: { temperature: "field1", humidity: "field2", led: "field3", interval: "field4", uptime: "field5" },
    mint: (d, o) => ({ clientId: d.clientId, username: d.username, password: o.secret(d.password) }),
    settings: d => ({ TS_CHANNEL: d.channel, TS_CLIENT: d.clientId, TS_USER: d.username, TS_PASS: d.password }),
    rules(d, names) {
        const topic0 = `channels/${d.channel}/publish`
        return {
            upFilters: [topic0, topic0 + "/#"],
            downPrefixes: [`channels/${d.channel}/subscribe`],
            clientId: d.clientId,
            verify(c) {
                if (c.clientId !== d.clientId) return { ok: false, reason: "unknown client id" }
                if (c.username !== d.username) return { ok: false, reason: "wrong user name" }
                const pw = typeof c.password === "string" ? c.password : c.password?.toString("utf8")
                if (pw !== d.password) return { ok: false, reason: "wrong password" }
                return { ok: true }
            },
            classify(topic, text, j, qos) {
                if (topic !== topic0) return { kind: "other", problems: [] }
                const p: string[] = []
                if (qos !== 0) p.push(`ThingSpeak takes QoS 0 only, got QoS ${qos}`)
                if (!text.length) p.push("empty update")
                for (const kv of text.split("&")) {
                    const m = /^(field[1-8]|status)=(.*)$/.exec(kv)
                    if (!m) p.push(`"${kv}" is not fieldN=value`)
                    else if (m[1] !== "status" && !/^-?[0-9]+(\.[0-9]+)?$/.test(m[2])) p.push(`${m[1]} must be a number, got "${m[2]}"`)
                }
                return { kind: "report", problems: p }
            },
            commands: () => [],
        }
    },
}
