/** Board image (W5100S-EVB-Pico), thingspeak platform: src/images/board-thingspeak.ts with the W5100S as the board file's "wiz" section wires it. Written by `npx tsx sim/images.ts --write-w5100s`: edit src/images/board-thingspeak.ts, then rerun. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as thingspeak } from "../cloud/thingspeak"
import { runDevice } from "../device"
import { boardW5100S } from "../compose/starters-w5100s"

await runDevice({
    name: "board-w5100s-thingspeak",
    platform: thingspeak,
    w5500: boardW5100S,
    sensors: startBoardSensor,
})
