/** Board image (W5100S-EVB-Pico), generic platform: src/images/board-generic.ts with the W5100S as the board file's "wiz" section wires it. Written by `npx tsx sim/images.ts --write-w5100s`: edit src/images/board-generic.ts, then rerun. */
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
