/** Simulator image, thingspeak platform: runtime sockets and the W5500 emulator bridge, simulated sensor. */
import { startSimSensor } from "../app/sensors"
import { platform as thingspeak } from "../cloud/thingspeak"
import { runDevice } from "../device"
import { hostNetwork, simW5500 } from "../compose/sim-starters"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-thingspeak",
    platform: thingspeak,
    host: hostNetwork,
    w5500: simW5500,
    sensors: startSimSensor,
    settings: simSettings,
})
