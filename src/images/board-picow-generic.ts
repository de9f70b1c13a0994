/** Board image (Raspberry Pi Pico W, stock DeviceScript Pico W runtime), generic platform: the runtime's Wi-Fi sockets, no W5500 code, I2C sensors. */
import { startBoardSensor } from "../app/i2c-sensors"
import { platform as generic } from "../cloud/generic"
import { runDevice } from "../device"
import { boardPicoW } from "../net/wifi"

await runDevice({
    name: "board-picow-generic",
    platform: generic,
    host: boardPicoW,
    sensors: startBoardSensor,
})
