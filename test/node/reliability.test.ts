/**
 * The fault scenarios of `npm run soak` in their reduced form (`--quick`): the real firmware in
 * the simulator's device mode, QoS 1 reports to aedes through the fault proxy, over the
 * simulator's socket or the emulated W5500. Each must lose no report, keep the VM alive, and
 * recover; the figures go to the test output as diagnostics.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { SCENARIOS, SOAK_MARGIN_KB, ballastSearch, describe, soak } from "../../sim/scenarios.ts"

// the rest (half-open-idle, link-flap, dhcp-gone, ntp-gone) run in `npm run soak`; the W5500 link
// and lease paths are also covered by test/node/w5500-e2e.test.ts. CI time is the limit here.
const QUICK = ["broker-restart", "half-open-publish", "reset-mid-packet", "partition", "dns-gone", "lan-garbage"]

for (const name of QUICK) {
    test(`fault scenario ${name} (reduced): no QoS 1 report lost, the device recovers`, { timeout: 300000 }, async t => {
        const r = await SCENARIOS[name](true, !!process.env.VM_LOG)
        t.diagnostic(describe(r))
        for (const n of r.notes) t.diagnostic(n)
        assert.deepEqual(r.problems, [], describe(r))
        assert.ok(r.made > 0 && r.delivered > 0, `reports made ${r.made}, delivered ${r.delivered}`)
        assert.equal(r.lost, 0)
    })
}

test("heap: the largest ballast the firmware works with, and a 100-report soak with faults while holding it less the margin", { timeout: 900000 }, async t => {
    // between 18 KB (well below every run seen, 25..30 KB) and 34 KB: four boots
    const kb = await ballastSearch(false, 18, 34)
    t.diagnostic(`largest ballast the device works with (boot, subscribe, reports, commands, a reconnect): ${kb} KB`)
    // above the search's lower bound: at least one probe above 18 KB worked
    assert.ok(kb > 18, `the firmware should work with more than 18 KB of its heap taken, found ${kb} KB`)
    const r = await soak(100, kb - SOAK_MARGIN_KB)
    t.diagnostic(describe(r))
    for (const n of r.notes) t.diagnostic(n)
    assert.deepEqual(r.problems, [], describe(r))
})
