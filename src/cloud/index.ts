/**
 * Every cloud platform in one table, for the VM tests (test/vm/clouds.vm.ts). No firmware image
 * links this file: each imports only its own platform module (`platform` of src/cloud/<kind>.ts).
 */
import { Config, ReadSetting } from "../config"
import { platform as alibaba } from "./alibaba"
import { platform as azure } from "./azure"
import { platform as generic } from "./generic"
import { platform as huawei } from "./huawei"
import { platform as onenet } from "./onenet"
import { CloudProfile, Platform } from "./profile"
import { platform as tencent } from "./tencent"
import { platform as thingspeak } from "./thingspeak"

export type { CloudProfile } from "./profile"

/** All platforms, in documentation order. */
export const PLATFORMS: Platform[] = [generic, alibaba, onenet, azure, thingspeak, huawei, tencent]

/**
 * Reads the settings of `cfg.cloud`'s platform and makes its profile (`log` gets what the user
 * should know about the platform, one line each). Throws a ConfigError naming every bad key.
 */
export async function createProfile(cfg: Config, log: (msg: string) => void = m => console.log(m), read?: ReadSetting): Promise<CloudProfile> {
    for (const p of PLATFORMS) if (p.kind === cfg.cloud) return await p.create(cfg, log, read)
    throw new Error(`cloud: unknown CLOUD ${JSON.stringify(cfg.cloud)} (known: generic, alibaba, onenet, azure, thingspeak, huawei, tencent)`)
}
