/**
 * The emulated board (rp2040js running the DeviceScript RP2040 runtime and our UF2): see board.ts.
 */
export { EmulatedBoard, type BoardOptions, type ConsoleLine, type FrozenReport } from "./board.ts"
export { boardIds, readBoardWiring, type BoardWiring } from "./boardfile.ts"
export { driftingClimate, type Climate } from "./i2c.ts"
export { CORE_HZ, LOST_WAKEUP_NS, type RunStop } from "./run.ts"
export { runtimeDir, runtimeUf2Path, runtimeUnavailable, RUNTIME_SHA256, RuntimeMissingError } from "./runtime.ts"
