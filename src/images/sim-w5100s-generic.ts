/** Simulator image for the W5100S-EVB-Pico, generic platform: the W5100S emulator behind the bridge (`npm start -- --chip w5100s`), simulated sensor. */
import { startSimSensor } from "../app/sensors"
import { platform as generic } from "../cloud/generic"
import { runDevice } from "../device"
import { simW5100S } from "../compose/sim-starters-w5100s"
import { simSettings } from "../simdev/settings"

await runDevice({
    name: "sim-w5100s-generic",
    platform: generic,
    w5500: simW5100S,
    sensors: startSimSensor,
    settings: simSettings,
})
