/** Simulator image for the Raspberry Pi Pico W, generic platform: the Wi-Fi settings checked, the simulator's own sockets for the Wi-Fi (`npm start -- --board pico_w`), simulated sensor. */
import { startSimSensor } from "../app/sensors"
import { platform as generic } from "../cloud/generic"
import { runDevice } from "../device"
import { simPicoW } from "../simdev/picow"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-picow-generic",
    platform: generic,
    host: simPicoW,
    sensors: startSimSensor,
    settings: simSettings,
})
