/** Board image (W55RP20-EVB-Pico, W5500-EVB-Pico), thingspeak platform: the W5500 as the board file wires it, I2C sensors. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as thingspeak } from "../cloud/thingspeak"
import { runDevice } from "../device"
import { boardW5500 } from "../compose/starters"

await runDevice({
    name: "board-thingspeak",
    platform: thingspeak,
    w5500: boardW5500,
    sensors: startBoardSensor,
})
