/**
 * The MQTT client (in the VM) against the hostile broker (sim/hostile-broker.ts): a seeded run of
 * malformed and mutated packets, one case per connection. The VM must never panic, must keep
 * reconnecting after every case, and must count the malformed packets.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { CASE_KINDS, makeCase, runHostileVm, type HostileRunResult } from "../../sim/hostile-broker.ts"

const SEED = Number(process.env.HOSTILE_SEED ?? 20261122)
const CASES = Number(process.env.HOSTILE_CASES ?? 216) // 12 of each of the 18 kinds

test("hostile broker: cases are deterministic per seed and index", () => {
    const a = makeCase(SEED, 5), b = makeCase(SEED, 5), c = makeCase(SEED + 1, 5)
    assert.equal(a.kind, b.kind)
    assert.deepEqual(Buffer.concat(a.chunks), Buffer.concat(b.chunks))
    assert.notEqual(a.seed, c.seed)
    const kinds = new Set(Array.from({ length: CASE_KINDS.length }, (_, i) => makeCase(SEED, i).kind))
    assert.equal(kinds.size, CASE_KINDS.length, "every kind in one round")
})

test(`hostile broker: ${CASES} seeded cases (seed ${SEED}), device-mode VM`, { timeout: 180000 }, async t => {
    const r: HostileRunResult = await runHostileVm({ seed: SEED, cases: CASES, mode: "device", timeoutMs: 150000 })
    const last = r.lines.slice(-25).join("\n")
    const where = `seed ${SEED}\n${last}`
    await t.test("the VM never panicked nor threw", () => {
        assert.deepEqual(r.panics, [], `panic lines (${where})`)
    })
    await t.test("the VM printed its summary before the timeout", () => {
        assert.equal(r.timedOut, false, `timed out (${where})`)
        assert.ok(r.stats, `no ##HOSTILE summary (${where})`)
    })
    const s = r.stats!
    await t.test("the client made every connection attempt (it kept reconnecting)", () => {
        assert.ok(s.attempts >= CASES + 1, `attempts ${s.attempts} < ${CASES + 1}`)
        assert.ok(r.connections >= CASES + 1, `broker saw ${r.connections} connections, ${CASES + 1} expected`)
        assert.ok(s.reconnects >= CASES, `reconnects ${s.reconnects} < ${CASES}`)
    })
    await t.test("the malformed counter shows the hostile packets", () => {
        assert.ok(s.malformed > 0, "malformed counter is 0")
        // every varint-5 and qos3 case is malformed for sure: at least that many
        const sure = r.records.filter(x => x.kind === "varint-5" || x.kind === "qos3").length
        assert.ok(s.malformed >= sure, `malformed ${s.malformed} < ${sure} certainly-malformed cases`)
    })
    await t.test("per case: every case was served, sent and followed by a reconnect", () => {
        assert.equal(r.records.length, CASES)
        for (let i = 0; i < CASES; i++) {
            const x = r.records[i]
            assert.ok(x, `case ${i} never served`)
            assert.equal(x.index, i)
            assert.equal(x.seed, makeCase(SEED, i).seed, `case ${i} seed`)
            assert.ok(x.bytes > 0, `case ${i} (${x.kind}, seed ${x.seed}) sent nothing`)
            assert.ok(x.reconnected, `no reconnect after case ${i} (${x.kind}, seed ${x.seed})`)
        }
    })
    await t.test("fatal cases: the client closed the connection itself at least once per kind", () => {
        for (const kind of ["varint-5", "qos3", "bad-utf8-topic"]) {
            const xs = r.records.filter(x => x.kind === kind)
            assert.ok(xs.some(x => x.clientClosedFirst), `${kind}: the client never closed first`)
        }
    })
    await t.test("PUBREL storms were answered (PUBCOMP replies)", () => {
        const storms = r.records.filter(x => x.kind === "pubrel-storm")
        assert.ok(storms.length > 0)
        for (const x of storms) assert.ok(x.replies > 0, `PUBREL storm case ${x.index} (seed ${x.seed}) got no PUBCOMP`)
    })
    t.diagnostic(`hostile: ${CASES} cases in ${r.ms} ms; attempts=${s.attempts} malformed=${s.malformed} received=${s.received} reconnects=${s.reconnects}`)
})
