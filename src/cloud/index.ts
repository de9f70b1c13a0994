/** Chooses the cloud profile named by the CLOUD setting. */
import { Config } from "../config"
import { GenericProfile } from "./generic"
import { CloudProfile } from "./profile"

/** The profile for `cfg.cloud`; throws an Error naming the setting when it is not available. */
export function createProfile(cfg: Config): CloudProfile {
    if (cfg.cloud === "generic") return new GenericProfile(cfg)
    throw new Error(`CLOUD=${cfg.cloud} is not available in this build (only generic so far)`)
}
