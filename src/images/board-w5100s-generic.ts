/** Board image (W5100S-EVB-Pico), generic platform: the W5100S as the board file's "w5100s" section wires it, I2C sensors. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as generic } from "../cloud/generic"
import { runDevice } from "../device"
import { boardW5100S } from "../compose/starters-w5100s"

await runDevice({
    name: "board-w5100s-generic",
    platform: generic,
    w5500: boardW5100S,
    sensors: startBoardSensor,
})
