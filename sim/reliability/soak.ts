/**
 * The soak: thousands of reports requested one at a time with faults injected, over the emulated
 * W5500 with most of the heap held (the ballast), then the heap probe (heap.ts).
 */
import { probeHeadroom } from "./heap.ts"
import { judge, requestReport, sleep, withRig, type ScenarioResult } from "./rig.ts"

/** How far below the largest surviving ballast the soak holds (the peak moves by a few KB between runs). */
export const SOAK_MARGIN_KB = 6

/**
 * The soak: `total` reports requested by `commands/report` (one at a time, closed loop) with a
 * fault every 1,000 reports (every sixth of a shorter run): connection resets and broker restarts
 * in turn, over the emulated W5500, with
 * `ballastKb` of the heap held. Returns the result; lost reports and missing replies are problems.
 * `probeKb` > 0: afterwards, when nothing went wrong, `probeHeadroom` measures the heap left
 * (`headroom`), up to that many KB.
 */
export async function soak(total: number, ballastKb: number, log = false, progress?: (s: string) => void, probeKb = 0): Promise<ScenarioResult> {
    return await withRig("soak", { net: "w5500", log, timeoutMs: 3 * 3600 * 1000, settings: { REPORT_MS: 3600000, BALLAST_KB: ballastKb } }, async (rig, t0) => {
        await rig.reports(1, 90000, "first report")
        const recovery: number[] = []
        let i = 0
        let stalls = 0
        let faults = 0
        let lastFault = 0
        const every = total >= 5000 ? 1000 : Math.max(25, Math.floor(total / 6))
        while (rig.made.size < total) {
            if (rig.exited || rig.panic) break
            if (!(await requestReport(rig, `s${i++}`, 5000))) stalls++
            const n = rig.made.size
            // a fault every `every` reports: connection resets and broker restarts in turn
            if (n > 0 && n % every === 0 && n !== lastFault) {
                lastFault = n
                const kind = (n / every) % 2 ? "reset" : "broker restart"
                if (kind === "reset") rig.proxy.resetAll()
                else {
                    await rig.broker.stop()
                    await sleep(2000)
                    await rig.broker.start()
                }
                const at = Date.now()
                recovery.push((await rig.reports(1, 60000, `report after the ${kind} at ${n}`, rig.arrivals.length)) - at)
                faults++
            }
            if (progress && n % 500 === 0) progress(`soak: ${n}/${total} reports, ${rig.received.size} at the broker`)
        }
        await sleep(5000)
        const r = judge(await rig.tally(`soak: ${total} reports with ${ballastKb} KB ballast, a fault every ${every}`, t0, recovery, []), rig)
        r.notes.push(`${i} report commands sent, ${stalls} not answered by a report within 5 s (sent again; commands sent while the broker was down are lost); ${faults} faults injected; ${(r.made / (r.ms / 1000)).toFixed(1)} reports/s over ${Math.round(r.ms / 1000)} s`)
        if (probeKb > 0 && !r.problems.length) r.headroom = await probeHeadroom(rig, ballastKb, probeKb)
        return r
    })
}
