/**
 * The fault scenarios of `npm run soak` in their reduced form (`--quick`): the real firmware in
 * the simulator's device mode, QoS 1 reports to aedes through the fault proxy, over the
 * simulator's socket or the emulated W5500. Each must lose no report, keep the VM alive, and
 * recover; the figures go to the test output as diagnostics.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { ballastSearch } from "../../sim/reliability/heap.ts"
import { Rig, describe } from "../../sim/reliability/rig.ts"
import { SCENARIOS } from "../../sim/reliability/scenarios.ts"
import { SOAK_MARGIN_KB, soak } from "../../sim/reliability/soak.ts"

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

test("heap: the largest ballast the firmware works with, a 100-report soak with faults while holding it less the margin, then 1 KB more", { timeout: 900000 }, async t => {
    // between 18 KB (well below every run seen, 25..30 KB) and 34 KB: four boots
    const kb = await ballastSearch(false, 18, 34)
    t.diagnostic(`largest ballast the device works with (boot, subscribe, reports, commands, a reconnect): ${kb} KB`)
    // above the search's lower bound: at least one probe above 18 KB worked
    assert.ok(kb > 18, `the firmware should work with more than 18 KB of its heap taken, found ${kb} KB`)
    // and then one step of the heap probe (npm run soak measures the whole headroom): 1 KB more
    const r = await soak(100, kb - SOAK_MARGIN_KB, false, undefined, 1)
    t.diagnostic(describe(r))
    for (const n of r.notes) t.diagnostic(n)
    assert.deepEqual(r.problems, [], describe(r))
    const h = r.headroom!
    t.diagnostic(`heap probe after the soak: the device still works with 1 KB more than the ${kb - SOAK_MARGIN_KB} KB held: ${h.kb === 1 ? "yes" : `no (${h.why})`}`)
    assert.equal(h.kb, 1, `after 100 reports the device should still work with 1 KB more held (${h.why})`)
})

/** Boots the firmware over the simulator's socket, waits for its subscription, runs `body`. */
async function withDevice(name: string, settings: Record<string, number>, body: (rig: Rig, send: (payload: string) => Promise<void>) => Promise<void>) {
    const rig = await Rig.start(name, { net: "host", log: !!process.env.VM_LOG, settings })
    try {
        await rig.ready()
        const cmd = await rig.commander()
        await body(rig, async p => void (await cmd.publishAsync(`devices/${rig.id}/commands/ballast`, p, { qos: 1 })))
    } finally {
        await rig.close()
    }
}

test("heap probe (commands/ballast): the platform's error reply without BALLAST_KB; with it, a bad size refused, a good one held", { timeout: 300000 }, async () => {
    await withDevice("probe-off", {}, async (rig, send) => {
        await send("3")
        // the platform sees it: a number is not a command object
        await rig.line(/command error id=[^:]*: 400 payload must be a JSON object/, 10000, "the platform's answer")
        assert.ok(!rig.lines.some(l => /ballast:/.test(l)), "no ballast without BALLAST_KB")
    })
    await withDevice("probe-on", { BALLAST_KB: 0 }, async (rig, send) => {
        for (const bad of ["3x", "0", "65", "-1", ""]) await send(bad)
        await send("3")
        await rig.line(/ballast: holding 3 KB/, 10000, "the ballast grown by 3 KB")
        assert.equal(rig.lines.filter(l => /ballast: ignored: expected a whole number of KB/.test(l)).length, 5, rig.tail())
        assert.ok(!rig.lines.some(l => /command error/.test(l)), "the probe's messages never reach the platform")
        await rig.reports(2, 20000, "reports with the probe's ballast")
    })
})
