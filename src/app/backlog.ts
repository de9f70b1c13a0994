/**
 * Store and forward: report messages, built when their sample is taken (so they carry its own
 * time), wait here while the connection is down and go out oldest first once it is back. Bounded:
 * when full, the oldest is dropped and counted.
 */
import { Message } from "../cloud/profile"

/**
 * The bound, in samples. A queued report costs 150 to 300 bytes of heap (a generic report is
 * about 100 characters, a OneNET one with a time per property about 250), so 32 take 5 to 10 KB
 * of the 25 to 30 KB spare while the W5500 image runs (docs/guarantees.md): 32 s of reports at a
 * 1 s interval, 160 s at the default 5 s.
 */
export const BACKLOG_LIMIT = 32

/** A bounded queue of report messages, oldest first. */
export class Backlog {
    items: Message[] = []
    /** samples dropped since the start */
    dropped = 0
    /** dropped since the last `takeLost()` */
    lost = 0

    constructor(public limit = BACKLOG_LIMIT) {}

    /** Queues `m`; when full, the oldest is dropped and counted. */
    push(m: Message) {
        const q = this.items
        if (q.length >= this.limit) {
            q.shift()
            this.dropped++
            this.lost++
        }
        q.push(m)
    }

    /** The samples dropped since the last call (for one log line per outage). */
    takeLost(): number {
        const n = this.lost
        this.lost = 0
        return n
    }
}
