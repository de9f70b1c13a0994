/** Simulator image, azure platform: runtime sockets, simulated sensor. Azure IoT Hub takes TLS only, so no W5500 (plain TCP) here. */
import { startSimSensor } from "../app/sensors"
import { platform } from "../cloud/azure"
import { runDevice } from "../device"
import { hostNetwork } from "../net/starters"
import { simSettings } from "../sim/ballast"

await runDevice({
    name: "sim-azure",
    platform,
    host: hostNetwork,
    sensors: startSimSensor,
    settings: simSettings,
})
