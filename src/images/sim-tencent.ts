/** Simulator image, tencent platform: runtime sockets and the W5500 emulator bridge, simulated sensor. */
import { startSimSensor } from "../app/sensors"
import { platform as tencent } from "../cloud/tencent"
import { runDevice } from "../device"
import { hostNetwork, simW5500 } from "../compose/sim-starters"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-tencent",
    platform: tencent,
    host: hostNetwork,
    w5500: simW5500,
    sensors: startSimSensor,
    settings: simSettings,
})
