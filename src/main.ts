/**
 * The default firmware entry (VS Code, `devs build`, the generic platform in the simulator).
 * Images are composed in src/images: one cloud platform each (the DeviceScript VM caps an image at
 * 64 KB of bytecode), `sim-*` for the desktop simulator, `board-*` for the W55RP20-EVB-Pico and
 * the W5500-EVB-Pico. `npm start`, `npm run build` and `npm run bundle` pick the image from CLOUD.
 */
import "./images/sim-generic"
