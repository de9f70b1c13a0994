/**
 * Virtual time of the emulated board: the clock rp2040js's peripherals schedule their alarms on
 * (an `IClock`), advanced by the run loop, and the same time as a `TimerClock` for the W5500 model
 * and its LAN, so their timeouts follow the MCU's clock rather than the wall clock.
 */
import type { TimerClock, TimerHandle } from "../w5500/clock.ts"

/** One alarm on the virtual clock (what rp2040js calls IAlarm). */
export class VirtualAlarm {
    /** virtual time it fires at (ns), valid while `scheduled` */
    at = 0
    /** true while linked into the clock's queue */
    scheduled = false
    /** a timer of the models outside the MCU (W5500, LAN): it cannot wake the core by itself */
    external = false
    /** @param clock its clock @param callback run when it fires */
    constructor(private readonly clock: VirtualClock, readonly callback: () => void) {}
    /** Fires `deltaNanos` from now (re-schedules when already scheduled). */
    schedule(deltaNanos: number): void {
        this.clock.unlink(this)
        this.at = this.clock.nanos + Math.max(0, deltaNanos)
        this.clock.link(this)
    }
    /** Takes it out of the queue. */
    cancel(): void {
        this.clock.unlink(this)
    }
}

/** The emulated board's clock: nanoseconds since power-on, an ordered queue of alarms. */
export class VirtualClock {
    private now = 0
    private queue: VirtualAlarm[] = []
    /** @param epochMs wall-clock time (ms since 1970) that virtual time 0 stands for, for `now()` */
    constructor(readonly epochMs = Date.now()) {}
    /** Virtual time in nanoseconds. */
    get nanos(): number {
        return this.now
    }
    /** IClock: a new (unscheduled) alarm. */
    createAlarm(callback: () => void): VirtualAlarm {
        return new VirtualAlarm(this, callback)
    }
    /** Queues `a` (by time, then in order of scheduling). */
    link(a: VirtualAlarm): void {
        let i = this.queue.length
        while (i > 0 && this.queue[i - 1].at > a.at) i--
        this.queue.splice(i, 0, a)
        a.scheduled = true
    }
    /** Takes `a` out of the queue (no-op when not queued). */
    unlink(a: VirtualAlarm): void {
        if (!a.scheduled) return
        const i = this.queue.indexOf(a)
        if (i >= 0) this.queue.splice(i, 1)
        a.scheduled = false
    }
    /** Virtual time of the next alarm, or Infinity. */
    get nextAt(): number {
        return this.queue.length ? this.queue[0].at : Infinity
    }
    /** Virtual time of the next alarm made by the MCU side (not `external`), or Infinity. */
    get nextInternalAt(): number {
        for (const a of this.queue) if (!a.external) return a.at
        return Infinity
    }
    /** Advances time by `deltaNanos`, firing every alarm due on the way, at its own time. */
    tick(deltaNanos: number): void {
        this.advanceTo(this.now + deltaNanos)
    }
    /** Advances time to `target` (never backwards), firing the alarms due. */
    advanceTo(target: number): void {
        while (this.queue.length && this.queue[0].at <= target) {
            const a = this.queue.shift()!
            a.scheduled = false
            if (a.at > this.now) this.now = a.at
            a.callback()
        }
        if (target > this.now) this.now = target
    }
    /** The same time as a TimerClock (ms since 1970, timers in virtual ms) for the W5500 model and LAN. */
    timers(): TimerClock {
        return {
            now: () => this.epochMs + this.now / 1e6,
            setTimeout: (fn: () => void, ms: number): TimerHandle => {
                const a = this.createAlarm(fn)
                a.external = true
                a.schedule(Math.max(0, ms) * 1e6)
                return a
            },
            clearTimeout: (h: TimerHandle) => {
                if (h instanceof VirtualAlarm) h.cancel()
            },
        }
    }
}
