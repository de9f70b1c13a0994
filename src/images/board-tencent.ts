/** Board image (W55RP20-EVB-Pico, W5500-EVB-Pico), tencent platform: the W5500 as the board file wires it, I2C sensors. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as tencent } from "../cloud/tencent"
import { runDevice } from "../device"
import { boardW5500 } from "../compose/starters"

await runDevice({
    name: "board-tencent",
    platform: tencent,
    w5500: boardW5500,
    sensors: startBoardSensor,
})
