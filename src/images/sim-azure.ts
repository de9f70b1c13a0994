/** Simulator image, azure platform: runtime sockets, simulated sensor. Azure IoT Hub takes TLS only, so no W5500 (plain TCP) here. */
import { startSimSensor } from "../app/sensors"
import { platform as azure } from "../cloud/azure"
import { runDevice } from "../device"
import { hostNetwork } from "../compose/sim-starters"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-azure",
    platform: azure,
    host: hostNetwork,
    sensors: startSimSensor,
    settings: simSettings,
})
