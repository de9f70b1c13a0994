/**
 * The report schedule: deadlines on a fixed grid (next = previous + interval, so lateness never
 * accumulates into drift). After an outage the missed slots are skipped, not replayed: one report
 * goes out on recovery, then the schedule is back on the grid. Pure: it takes the time and says
 * when to wake; no timers.
 */

/**
 * The first grid point after `now`, for a grid through `deadline` with step `interval`, when a
 * report due at `deadline` was sent at `now` (`deadline + interval` when on time).
 */
export function nextDeadline(deadline: number, interval: number, now: number): number {
    let next = deadline + interval
    if (next <= now) next += (Math.floor((now - next) / interval) + 1) * interval
    return next
}

/** A drift-free periodic schedule on one clock (e.g. `ds.millis()`). */
export class Schedule {
    /** the deadline of the next report */
    next: number
    /** the deadline served last (the grid's anchor); NaN before the first */
    last = NaN
    /** grid slots skipped because the report was late by more than one interval */
    skipped = 0

    /** Reports every `interval` ms, the first one due at `first`. */
    constructor(public interval: number, first: number) {
        this.next = first
    }

    /** True when the next report is due at `now`. */
    due(now: number): boolean {
        return now >= this.next
    }

    /** How long to sleep from `now` until the next deadline (0 when due). */
    waitMs(now: number): number {
        const w = this.next - now
        return w > 0 ? w : 0
    }

    /**
     * Marks the current deadline as served (the report went out at `now`) and returns the next
     * deadline: the previous one plus the interval, or the first grid point after `now` when the
     * report was more than one interval late (the slots in between are skipped and counted).
     */
    done(now: number): number {
        const n = nextDeadline(this.next, this.interval, now)
        this.skipped += (n - this.next) / this.interval - 1
        this.last = this.next
        this.next = n
        return n
    }

    /**
     * Changes the interval at `now`: the grid restarts from the last served deadline (so a shorter
     * interval can make a report due at once, a longer one pushes the next report out), never
     * earlier than `now`. Returns the new next deadline.
     */
    retime(interval: number, now: number): number {
        this.interval = interval
        const anchor = isNaN(this.last) ? now : this.last
        const n = anchor + interval
        this.next = n < now ? now : n
        return this.next
    }
}
