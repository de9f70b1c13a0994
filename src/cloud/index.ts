/**
 * Picks the cloud profile for CLOUD (see src/config.ts for each platform's settings), and says
 * what a user should know about it at boot (platform limits, no commands on ThingSpeak, ...).
 */
import { CloudKind, Config } from "../config"
import { AlibabaProfile, ALIBABA_KEEPALIVE_MAX, ALIBABA_KEEPALIVE_MIN } from "./alibaba"
import { AzureProfile } from "./azure"
import { GenericProfile } from "./generic"
import { HuaweiProfile } from "./huawei"
import { OneNetProfile } from "./onenet"
import { CloudProfile } from "./profile"
import { TencentProfile } from "./tencent"
import { THINGSPEAK_MIN_INTERVAL_MS, ThingSpeakProfile } from "./thingspeak"

export type { CloudProfile } from "./profile"

/** The profile of `cfg.cloud`; `log` gets the profile's notes (profileNotes), one line each. */
export function createProfile(cfg: Config, log: (msg: string) => void = m => console.log(m)): CloudProfile {
    let p: CloudProfile
    const kind: CloudKind = cfg.cloud
    if (kind === "alibaba") p = new AlibabaProfile(cfg)
    else if (kind === "onenet") p = new OneNetProfile(cfg)
    else if (kind === "azure") p = new AzureProfile(cfg)
    else if (kind === "thingspeak") p = new ThingSpeakProfile(cfg)
    else if (kind === "huawei") p = new HuaweiProfile(cfg)
    else if (kind === "tencent") p = new TencentProfile(cfg)
    else if (kind === "generic") p = new GenericProfile(cfg)
    else throw new Error(`cloud: unknown CLOUD ${JSON.stringify(kind)} (known: generic, alibaba, onenet, azure, thingspeak, huawei, tencent)`)
    if (log) for (const line of profileNotes(cfg)) log(line)
    return p
}

/** What the user should know about the chosen platform, as log lines (never a secret). */
export function profileNotes(cfg: Config): string[] {
    const out: string[] = []
    const c = cfg.cloud
    if (c === "thingspeak") {
        const fields: string[] = []
        const f = cfg.thingspeak ? cfg.thingspeak.fields : []
        for (let i = 0; i < f.length; i++) if (f[i]) fields.push(`field${i + 1}=${f[i]}`)
        out.push(`thingspeak: reports only (${fields.join(" ")}); ThingSpeak has no command channel, so the device takes no commands`)
        if (cfg.reportMs < THINGSPEAK_MIN_INTERVAL_MS)
            out.push(`thingspeak: REPORT_MS=${cfg.reportMs} is below the ${THINGSPEAK_MIN_INTERVAL_MS} ms a free account accepts; ThingSpeak drops the updates in between`)
    }
    if (c === "azure" && !cfg.mqttTls)
        out.push("azure: MQTT_TLS=false: IoT Hub accepts TLS connections only; this works against an emulated hub, never the real one")
    if (c === "alibaba") {
        if (!cfg.mqttTls) out.push("alibaba: plain MQTT (securemode=3); accounts created since 2022-08 accept TLS only (MQTT_TLS=true)")
        if (cfg.keepAliveS < ALIBABA_KEEPALIVE_MIN || cfg.keepAliveS > ALIBABA_KEEPALIVE_MAX)
            out.push(`alibaba: MQTT_KEEPALV=${cfg.keepAliveS} is outside the ${ALIBABA_KEEPALIVE_MIN}..${ALIBABA_KEEPALIVE_MAX} s the platform accepts; clamped`)
    }
    if (c === "huawei" && cfg.huawei && !cfg.huawei.checkTimestamp)
        out.push("huawei: connect timestamp not checked (HUAWEI_TSCHK=false), so the device does not wait for the time")
    return out
}
