import { test } from "node:test"
import { startHostLink } from "../../sim/hostlink.ts"
import { runVmSuite } from "./lib/vm.ts"

test("host link hands settings to the VM", async t => {
    const link = await startHostLink({ T_STR: "hello", T_NUM: 1883 }, { waitMs: 120000 })
    try {
        await runVmSuite(t, "test/vm/hostlink.vm.ts")
    } finally {
        await link.close()
    }
})
