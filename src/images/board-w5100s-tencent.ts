/** Board image (W5100S-EVB-Pico), tencent platform: src/images/board-tencent.ts with the W5100S as the board file's "wiz" section wires it. Written by `npx tsx sim/images.ts --write-w5100s`: edit src/images/board-tencent.ts, then rerun. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as tencent } from "../cloud/tencent"
import { runDevice } from "../device"
import { boardW5100S } from "../compose/starters-w5100s"

await runDevice({
    name: "board-w5100s-tencent",
    platform: tencent,
    w5500: boardW5100S,
    sensors: startBoardSensor,
})
