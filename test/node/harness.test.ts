/** The VM test harness itself: a failing VM assertion must fail the run and name the test. */
import { test } from "node:test"
import assert from "node:assert/strict"
import { runVm } from "../../sim/devs.ts"

test("a failing VM test is reported by name, with its message, and fails the run", async () => {
    const run = await runVm("test/vm/fixtures/failing.vm.ts")
    const byName = new Map(run.tests.map(r => [r.name, r]))
    assert.equal(byName.get("passes")?.ok, true)
    assert.equal(byName.get("fails on purpose")?.ok, false)
    assert.match(byName.get("fails on purpose")?.message ?? "", /Expected 3, got 2/)
    assert.equal(byName.get("runs after a failure")?.ok, true)
    assert.deepEqual(run.summary, { total: 3, pass: 2, error: 1 })
    assert.notEqual(run.code, 0, "the VM run must exit non-zero")
})

test("a compile error gives no summary and a non-zero exit", async () => {
    const run = await runVm("test/vm/fixtures/does-not-exist.vm.ts")
    assert.equal(run.summary, undefined)
    assert.notEqual(run.code, 0)
})
