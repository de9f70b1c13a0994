/** Board image (W5100S-EVB-Pico), onenet platform: src/images/board-onenet.ts with the W5100S as the board file's "wiz" section wires it. Written by `npx tsx sim/images.ts --write-w5100s`: edit src/images/board-onenet.ts, then rerun. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as onenet } from "../cloud/onenet"
import { runDevice } from "../device"
import { boardW5100S } from "../compose/starters-w5100s"

await runDevice({
    name: "board-w5100s-onenet",
    platform: onenet,
    w5500: boardW5100S,
    sensors: startBoardSensor,
})
