/** Helpers that run VM suites under node:test, one subtest per VM test. */
import { test, type TestContext } from "node:test"
import { appendFileSync } from "node:fs"
import assert from "node:assert/strict"
import { runVm, type VmOptions, type VmRun } from "../../../sim/devs.ts"

/** Last lines of a run, for failure messages. */
export function tail(run: VmRun, n = 30): string {
    return run.lines.slice(-n).join("\n")
}

/**
 * Runs a VM entry file and reports each of its tests as a subtest of `t`; fails when any VM test
 * fails, when the VM prints no summary, or when it exits non-zero.
 */
export async function runVmSuite(t: TestContext, entry: string, opts: VmOptions = {}): Promise<VmRun> {
    // VM_LOG=file keeps the whole console of every VM run, for debugging
    const logFile = process.env.VM_LOG
    const onLine = opts.onLine
    const run = await runVm(entry, {
        ...opts,
        onLine: line => {
            if (logFile) appendFileSync(logFile, line + "\n")
            onLine?.(line)
        },
    })
    for (const r of run.tests)
        await t.test(r.name, () => {
            if (!r.ok) assert.fail(r.message || "failed")
        })
    assert.ok(run.summary, `${entry}: no test summary (compile error, crash or timeout?)\n${tail(run)}`)
    assert.ok(run.tests.length > 0, `${entry}: ran no test`)
    assert.equal(run.summary.error, 0, `${entry}: ${run.summary.error} VM test(s) failed\n${tail(run)}`)
    assert.equal(run.code, 0, `${entry}: VM exited with ${run.code}\n${tail(run)}`)
    return run
}

/** Declares a node:test test that runs a self-contained VM suite. */
export function vmSuite(entry: string, opts: VmOptions = {}) {
    test(entry, async t => {
        await runVmSuite(t, entry, opts)
    })
}
