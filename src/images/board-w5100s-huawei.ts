/** Board image (W5100S-EVB-Pico), huawei platform: src/images/board-huawei.ts with the W5100S as the board file's "wiz" section wires it. Written by `npx tsx sim/images.ts --write-w5100s`: edit src/images/board-huawei.ts, then rerun. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as huawei } from "../cloud/huawei"
import { runDevice } from "../device"
import { boardW5100S } from "../compose/starters-w5100s"

await runDevice({
    name: "board-w5100s-huawei",
    platform: huawei,
    w5500: boardW5100S,
    sensors: startBoardSensor,
})
