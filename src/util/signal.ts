/**
 * A wake-up signal between fibers: `wait(ms)` suspends the calling fiber until `notify()` or the
 * timeout. The VM is cooperative, so a check-then-wait cannot miss a notify in between.
 */
import * as ds from "@devicescript/core"
import { suspend } from "./rt"

/** Fibers waiting for something to change. */
export class Signal {
    /** the waiting fibers; made by the first `wait` after a `notify` (an idle signal holds no array) */
    private waiters: ds.Fiber[]

    /** Suspends until notified (true) or until `ms` passes (false). */
    async wait(ms?: number): Promise<boolean> {
        const me = ds.Fiber.self()
        if (!this.waiters) this.waiters = []
        this.waiters.push(me)
        const r = await suspend<boolean>(ms)
        // a notify in between took the array away: `me` is not in the new one
        const ws = this.waiters
        const i = ws ? ws.indexOf(me) : -1
        if (i >= 0) ws.insert(i, -1)
        return r === true
    }

    /** Wakes every waiting fiber. */
    notify() {
        const ws = this.waiters
        if (!ws) return
        this.waiters = undefined
        for (const f of ws)
            if (f.suspended) {
                try {
                    f.resume(true)
                } catch (e) {
                    // a terminated fiber: nothing to wake
                }
            }
    }
}
