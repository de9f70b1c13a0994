/**
 * The clock the W5500 model and its LAN run on: "now" and one-shot timers. The WASM simulator's
 * bridge uses the wall clock (the default); the emulated board (sim/board/) injects its virtual
 * time, so retransmission timeouts, DHCP lease times and NTP answers follow the MCU's clock.
 */

/** Handle of a timer made by a TimerClock (opaque). */
export type TimerHandle = unknown

/** Time source and one-shot timers. */
export interface TimerClock {
    /** milliseconds since 1970 (NTP answers and DHCP leases use it) */
    now(): number
    /** runs `fn` once, `ms` milliseconds of this clock's time from now */
    setTimeout(fn: () => void, ms: number): TimerHandle
    /** cancels a timer made by setTimeout (an unknown or fired handle is ignored) */
    clearTimeout(h: TimerHandle): void
}

/** The wall clock: Date.now and Node's timers. */
export const wallClock: TimerClock = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: h => clearTimeout(h as NodeJS.Timeout),
}
