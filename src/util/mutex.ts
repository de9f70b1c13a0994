/**
 * A mutual-exclusion lock between fibers: `lock()` suspends until the lock is free. The VM is
 * cooperative, so nothing runs between the check and the take.
 */
import { Signal } from "./signal"

/** An async lock; every `lock()` must be paired with one `unlock()` (use try/finally). */
export class Mutex {
    private locked = false
    /** made by the first `lock` that has to wait: most locks never do (~100 bytes of heap each) */
    private freed: Signal

    /** Waits until the lock is free, then takes it. */
    async lock() {
        while (this.locked) {
            if (!this.freed) this.freed = new Signal()
            await this.freed.wait()
        }
        this.locked = true
    }

    /** Releases the lock and wakes the waiters (the first to run takes it). */
    unlock() {
        this.locked = false
        if (this.freed) this.freed.notify()
    }

    /** True while some fiber holds the lock. */
    isLocked() {
        return this.locked
    }
}
