/**
 * The runtime's clock and fiber calls, looked up once. `ds.millis()` and the like look the name up
 * in the runtime's namespace object at every call (~9 us of an RP2040's core each: the interrupt
 * poll alone made ~170 such lookups a report, `npm run profile`); a module constant is one load.
 */
import * as ds from "@devicescript/core"

/** `ds.millis`: milliseconds since boot. */
export const millis = ds.millis
/** `ds.sleep`: waits that many milliseconds. */
export const sleep = ds.sleep
/** `ds.suspend`: suspends the fiber until resumed or the timeout. */
export const suspend = ds.suspend
