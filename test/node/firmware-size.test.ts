/**
 * The firmware image must fit the DeviceScript VM: the bytecode of all functions together must
 * stay under 64 KB (the image verifier refuses more, and the device would not start).
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import { DEVS_CLI, ROOT } from "../../sim/devs.ts"

const LIMIT = 0x10000

test("src/main.ts fits the VM's 64 KB function bytecode limit", () => {
    // --no-verify: read the size even when the image is too large, and say so by number
    execFileSync(process.execPath, [DEVS_CLI, "build", "src/main.ts", "--no-verify"], { cwd: ROOT, stdio: "pipe" })
    const md = fs.readFileSync(path.join(ROOT, ".devicescript/bin/bytecode-sizes.md"), "utf8")
    const m = /^\s*(\d+)\s*\|\s*Function TOTAL/m.exec(md)
    assert.ok(m, "no Function TOTAL line in bytecode-sizes.md")
    const used = Number(m[1])
    console.log(`firmware functions: ${used} bytes of ${LIMIT} (${LIMIT - used} left)`)
    assert.ok(used < LIMIT, `src/main.ts has ${used} bytes of function bytecode; the VM accepts at most ${LIMIT - 1}`)
})
