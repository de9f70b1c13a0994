/**
 * The emulated board's run loop: executes the core instruction by instruction on virtual time
 * (one instruction's cycles at 125 MHz each), skips ahead to the next alarm while the core sleeps
 * (WFI/WFE), yields to Node's event loop every few ms of wall time (the broker and sockets share
 * the process), and watches for the runtime's lost timer wake-up: a core asleep with no event of
 * the MCU's peripherals due within a second (no timer alarm armed, or only the ~71-minute wrap;
 * the W5500 model's timers do not count, they cannot wake the core). Such a wake-up is counted and, by default, the
 * board is reported frozen; with `bridge` it is woken after the Jacdac tick (10 ms) instead.
 */
import type { RP2040 } from "rp2040js"
import type { VirtualClock } from "./clock.ts"

/** Core clock of the emulation (the runtime's 125 MHz). */
export const CORE_HZ = 125e6
/** A sleep with no timer alarm due within this is a lost wake-up (the runtime's longest healthy sleep is 10 ms). */
export const LOST_WAKEUP_NS = 1e9
/** How long a bridged lost wake-up sleeps: the Jacdac tick. */
export const BRIDGE_SLEEP_NS = 10e6
/** Wall time between yields to the event loop. */
const SLICE_WALL_MS = 8
/** Instructions between wall-clock checks. */
const BATCH = 4000

/** Cycle and time accounting (for the benchmark). */
export interface RunCounters {
    /** core cycles executed (busy) */
    busyCycles: number
    /** virtual ns the core spent asleep */
    sleepNanos: number
    instructions: number
    /** times the core woke from WFI/WFE (each a pass of the runtime's main loop) */
    wakes: number
    /** lost wake-ups seen (bridged or not) */
    lostWakeups: number
    /** virtual times (ns) of the first lost wake-ups */
    lostAt: number[]
    /** the last run stopped frozen on a lost wake-up (already counted: a bridged resume does not count it again) */
    frozenPending: boolean
    /** when set, called with each executed instruction's address and cycles (the profiler, sim/board/profile.ts) */
    onInstruction?: (pc: number, cycles: number) => void
}

/** A fresh set of counters. */
export function newRunCounters(): RunCounters {
    return { busyCycles: 0, sleepNanos: 0, instructions: 0, wakes: 0, lostWakeups: 0, lostAt: [], frozenPending: false }
}

/** Why a run stopped. */
export type RunStop = "done" | "frozen" | "virtual-limit" | "wall-limit" | "closed"

/** Limits and behaviour of one call to `run`. */
export interface RunLimits {
    /** stop when this returns true (checked between batches) */
    until?: () => boolean
    /** stop at this virtual time (ns) */
    untilNanos?: number
    /** stop after this much wall time (ms) */
    wallMs?: number
    /** wake the core after BRIDGE_SLEEP_NS instead of reporting the board frozen */
    bridge: boolean
    /** virtual time may not run ahead of wall time by more than this factor while the core sleeps (default 20) */
    maxSpeed?: number
    /** true when the board was closed (checked between slices) */
    closed?: () => boolean
    /** told of each lost wake-up as it is counted (its number, virtual ns) */
    onLost?: (n: number, atNanos: number) => void
    /** called after each batch of instructions (the heap watch, sim/board/heap.ts) */
    onBatch?: () => void
}


/**
 * Runs the core until a limit is reached; resolves with the reason. Virtual time goes on from
 * where it was; `counters` accumulate.
 */
export async function run(mcu: RP2040, clock: VirtualClock, counters: RunCounters, lim: RunLimits): Promise<RunStop> {
    const nsPerCycle = 1e9 / CORE_HZ
    const wall0 = Date.now()
    const virt0 = clock.nanos
    const maxSpeed = lim.maxSpeed ?? 20
    const core = mcu.core
    for (;;) {
        const sliceEnd = Date.now() + SLICE_WALL_MS
        let ahead = false
        while (!ahead && Date.now() < sliceEnd) {
            for (let i = 0; i < BATCH; i++) {
                if (core.waiting) {
                    const now = clock.nanos
                    // the nearest event of the MCU's own peripherals (timer alarms, SPI bytes...): what can wake the core
                    const wake = clock.nextInternalAt
                    if (wake - now > LOST_WAKEUP_NS) {
                        if (!counters.frozenPending) {
                            counters.lostWakeups++
                            if (counters.lostAt.length < 100) counters.lostAt.push(now)
                            lim.onLost?.(counters.lostWakeups, now)
                        }
                        counters.frozenPending = !lim.bridge
                        if (!lim.bridge) return "frozen"
                        clock.advanceTo(now + BRIDGE_SLEEP_NS)
                        counters.sleepNanos += clock.nanos - now
                        core.waiting = false
                        continue
                    }
                    // do not run ahead of the wall clock too far while asleep: the broker answers in wall time
                    if (now - virt0 > (Date.now() - wall0 + 1) * 1e6 * maxSpeed) {
                        ahead = true
                        break
                    }
                    clock.advanceTo(Math.min(clock.nextAt, wake))
                    counters.sleepNanos += clock.nanos - now
                    if (!core.waiting) counters.wakes++
                } else {
                    const hook = counters.onInstruction
                    const pc = hook ? core.PC : 0
                    const cycles = core.executeInstruction()
                    if (hook) hook(pc, cycles)
                    counters.busyCycles += cycles
                    counters.instructions++
                    clock.tick(cycles * nsPerCycle)
                }
            }
            lim.onBatch?.()
            if (lim.untilNanos !== undefined && clock.nanos >= lim.untilNanos) return "virtual-limit"
            if (lim.until?.()) return "done"
        }
        if (ahead) await new Promise(r => setTimeout(r, 1))
        else await new Promise(r => setImmediate(r))
        if (lim.closed?.()) return "closed"
        if (lim.until?.()) return "done"
        if (lim.wallMs !== undefined && Date.now() - wall0 > lim.wallMs) return "wall-limit"
    }
}
