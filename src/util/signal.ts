/**
 * A wake-up signal between fibers: `wait(ms)` suspends the calling fiber until `notify()` or the
 * timeout. The VM is cooperative, so a check-then-wait cannot miss a notify in between.
 */
import * as ds from "@devicescript/core"
import { suspend } from "./rt"

/** Fibers waiting for something to change. */
export class Signal {
    private waiters: ds.Fiber[] = []

    /** Suspends until notified (true) or until `ms` passes (false). */
    async wait(ms?: number): Promise<boolean> {
        const me = ds.Fiber.self()
        this.waiters.push(me)
        const r = await suspend<boolean>(ms)
        const i = this.waiters.indexOf(me)
        if (i >= 0) this.waiters.insert(i, -1)
        return r === true
    }

    /** Wakes every waiting fiber. */
    notify() {
        const ws = this.waiters
        if (!ws.length) return
        this.waiters = []
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
