/**
 * `npm run soak`: the fault scenarios, the heap ballast search, the heap probe and the soak
 * (sim/reliability/), each printed as a table line.
 *
 *   npm run soak                 every scenario in full, then the heap ballast search, the heap
 *                                probe in a fresh device, the 10,000-report soak with faults
 *                                injected, and the heap probe after it (SOAK_REPORTS=N for fewer)
 *   npm run soak -- --quick      the reduced versions (what npm test runs)
 *   npm run soak -- NAME ...     only those scenarios (names: see SCENARIOS)
 */
import path from "node:path"
import { ballastSearch, freshHeadroom, HEADROOM_TOLERANCE_KB, PROBE_MAX_KB } from "./heap.ts"
import { describe, TABLE_HEAD, type ScenarioResult } from "./rig.ts"
import { SCENARIOS } from "./scenarios.ts"
import { soak, SOAK_MARGIN_KB } from "./soak.ts"

async function main(argv: string[]): Promise<number> {
    const quick = argv.includes("--quick")
    const log = argv.includes("--log")
    const names = argv.filter(a => !a.startsWith("--"))
    for (const n of names) if (!SCENARIOS[n] && n !== "soak" && n !== "ballast") {
        console.error(`soak: unknown scenario ${n} (known: ${Object.keys(SCENARIOS).join(", ")}, ballast, soak)`)
        return 2
    }
    const run = names.length ? names : [...Object.keys(SCENARIOS), "ballast", "soak"]
    const results: ScenarioResult[] = []
    let failed = false
    console.log(...TABLE_HEAD.slice(0, 1))
    console.log(TABLE_HEAD[1])
    let ballast = -1
    for (const n of run) {
        if (n === "ballast" || n === "soak") continue
        const r = await SCENARIOS[n](quick, log)
        results.push(r)
        failed ||= r.problems.length > 0
        console.log(describe(r))
        for (const note of r.notes) console.log(`|   ${note} | | | | | | | |`)
    }
    if (run.includes("ballast") || run.includes("soak")) {
        ballast = await ballastSearch(log)
        console.log(`\nheap: the firmware (W5500 image: boot, subscribe, reports, 5 commands, a reconnect) survives ${ballast} KB of ballast held from boot (BALLAST_KB, 1 KB steps)`)
    }
    if (run.includes("soak")) {
        const total = quick ? 300 : Number(process.env.SOAK_REPORTS ?? 10000)
        // the peak at connect moves by a few KB from run to run (timing, fragmentation): hold 6 KB less
        const hold = Math.max(0, ballast - SOAK_MARGIN_KB)
        // the same heap probe in a fresh device and after the soak: a leak shows as a difference
        const fresh = await freshHeadroom(hold, 20, log)
        console.log(`\nheap probe, fresh device holding ${hold} KB (20 reports made): ${fresh.kb} KB more could be added (next step: ${fresh.why})`)
        const r = await soak(total, hold, log, s => console.log(s), PROBE_MAX_KB)
        failed ||= r.problems.length > 0
        console.log(TABLE_HEAD.join("\n"))
        console.log(describe(r))
        for (const note of r.notes) console.log(`  ${note}`)
        console.log(`\nheadroom: with ${hold} KB held (${SOAK_MARGIN_KB} KB below the measured maximum) the device ${r.problems.length ? "did NOT complete" : "completed"} ${r.made} reports with faults injected`)
        if (r.headroom) {
            const drop = fresh.kb - r.headroom.kb
            console.log(`heap probe after the soak: ${r.headroom.kb} KB more could be added (next step: ${r.headroom.why}); fresh device: ${fresh.kb} KB; difference ${drop} KB, tolerance ${HEADROOM_TOLERANCE_KB} KB`)
            if (drop > HEADROOM_TOLERANCE_KB) {
                failed = true
                console.log(`FAIL: the headroom shrank by ${drop} KB over ${r.made} reports: a leak?`)
            }
        }
    }
    return failed ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
    main(process.argv.slice(2)).then(
        code => process.exit(code),
        e => {
            console.error(`soak: ${(e as Error)?.stack ?? e}`)
            process.exit(1)
        }
    )
}
