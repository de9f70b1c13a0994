/**
 * test/node/lib/tools.ts: a test that needs a missing program is skipped on a developer's machine
 * and fails under W55_REQUIRE_ALL=1 (CI), naming the program.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { ROOT } from "../../sim/devs.ts"

/** Runs a one-test file that needs a program that is never there, with `env` added. */
function runNeedy(env: Record<string, string>) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tools-test-"))
    const file = path.join(dir, "needy.test.ts")
    const lib = JSON.stringify(path.join(ROOT, "test/node/lib/tools.ts"))
    fs.writeFileSync(file, `import { test } from "node:test"\nimport { missing } from ${lib}\n` +
        `test("needs no-such-program", { skip: missing("no-such-program", "no-such-program is not installed") }, () => { throw new Error("ran without it") })\n`)
    try {
        // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP
        const { W55_REQUIRE_ALL: _, NODE_TEST_CONTEXT: __, ...base } = process.env
        return spawnSync(process.execPath, ["--import", "tsx", "--test", file], { cwd: ROOT, encoding: "utf8", env: { ...base, ...env }, timeout: 60000 })
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
}

test("a missing program skips its tests with the reason", () => {
    const r = runNeedy({})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /# SKIP no-such-program is not installed/)
    assert.match(r.stdout, /# skipped 1/)
})

test("W55_REQUIRE_ALL=1 turns the skip into failures that name the program", () => {
    const r = runNeedy({ W55_REQUIRE_ALL: "1" })
    assert.notEqual(r.status, 0, r.stdout)
    assert.match(r.stdout, /not ok \d+ - no-such-program is present \(W55_REQUIRE_ALL=1/)
    assert.match(r.stdout, /no-such-program is not installed/)
    assert.match(r.stdout, /# skipped 0/)
})
