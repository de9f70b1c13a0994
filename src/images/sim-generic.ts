/** Simulator image, generic platform: runtime sockets and the W5500 emulator bridge, simulated sensor. */
import { startSimSensor } from "../app/sensors"
import { platform as generic } from "../cloud/generic"
import { runDevice } from "../device"
import { hostNetwork, simW5500 } from "../compose/sim-starters"
import { withHeapProbe } from "../simdev/ballast"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-generic",
    platform: withHeapProbe(generic),
    host: hostNetwork,
    w5500: simW5500,
    sensors: startSimSensor,
    settings: simSettings,
})
