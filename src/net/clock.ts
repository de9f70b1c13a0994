/**
 * Wall-clock time: unknown at boot, set by SNTP (on the board) or by the simulator's host link;
 * kept as an offset from `millis()`.
 */
import { millis } from "../util/rt"
import { Signal } from "../util/signal"

let offset = 0
// where the time came from; "" while it is unknown
let source = ""
// wakes the fibers in `untilTimeKnown`
const known = new Signal()

/** Sets the current Unix time (ms) and where it came from ("sntp", "host"...; not empty). */
export function setUnixTime(unixMs: number, from: string) {
    offset = unixMs - millis()
    source = from
    known.notify()
}

/** Current Unix time in ms, or 0 while the time is unknown. */
export function unixNow(): number {
    if (source) return Math.round(millis() + offset)
    return 0
}

/** True once the time was set. */
export function timeKnown(): boolean {
    return source !== ""
}

/** Where the time came from ("" while unknown). */
export function timeSource(): string {
    return source
}

/** Waits until the time is set or `ms` has passed; resolves to whether it is known. */
export async function untilTimeKnown(ms: number): Promise<boolean> {
    const deadline = millis() + ms
    for (let left = ms; left > 0; left = deadline - millis()) {
        if (timeKnown()) break
        await known.wait(left)
    }
    return timeKnown()
}
