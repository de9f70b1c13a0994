/**
 * VM-side test harness: `describe`/`expect` from @devicescript/test, and a `test` that marks the
 * start and outcome of each test with a `##T>` line, which the Node runner (sim/devs.ts) turns into
 * one node:test subtest per VM test.
 */
import * as ds from "@devicescript/core"
import { describe, expect, test as dsTest } from "@devicescript/test"

export { describe, expect }

/** Declares a VM test; its outcome is reported to the Node runner by name. */
export function test(name: string, body: () => Promise<void> | void) {
    dsTest(name, async () => {
        // the runner does not yield between tests: without this, steps of synchronous tests add
        // up toward the VM's ~128K-steps-without-await limit
        await ds.sleep(0)
        try {
            await body()
            console.log(`##T> pass ${name}`)
        } catch (e: any) {
            const msg = e && e.message !== undefined ? `${e.name}: ${e.message}` : `${e}`
            console.log(`##T> fail ${name} :: ${msg}`)
            throw e
        }
    })
}

/** `n` deterministic pseudo-random bytes (a linear congruential sequence from `seed`). */
export function noise(n: number, seed: number): Buffer {
    const b = Buffer.alloc(n)
    let x = seed | 1
    for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff
        b[i] = x >> 16
    }
    return b
}
