/**
 * What one firmware image is built from. The DeviceScript VM caps an image's function bytecode at
 * 64 KB, so an image carries one cloud platform, the network stacks of its target and the sensors
 * its target can have; each file in src/images composes one and calls `runDevice` (src/device.ts).
 * Only what an image names is compiled into it.
 */
import { Sensor } from "./app/sensors"
import { Platform } from "./cloud/profile"
import { Config, ReadSetting, SensorKind } from "./config"
import { NetStack } from "./net/stack"

/** Brings up one network stack (throws an Error with the reason when it cannot). */
export type NetStarter = (cfg: Config, log: (msg: string) => void) => Promise<NetStack>

/** Starts the sensor SENSOR names (falls back to fixed values when a chip does not answer). */
export type SensorStarter = (kind: SensorKind, log: (msg: string) => void) => Promise<Sensor>

/** A firmware image. */
export interface Image {
    /** e.g. "sim-generic", "board-alibaba" */
    name: string
    platform: Platform
    /** the runtime's own sockets (simulator) */
    host?: NetStarter
    /** the W5500 (the emulator bridge in the simulator, the board's wiring on a board) */
    w5500?: NetStarter
    sensors: SensorStarter
    /** simulator images: the settings (and the time) from the runner; undefined: use the settings store */
    settings?: () => Promise<ReadSetting>
}
