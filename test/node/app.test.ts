import { test } from "node:test"
import path from "node:path"
import { ROOT } from "../../sim/devs.ts"
import { loadEnvFiles } from "../../sim/envfile.ts"
import { startHostLink } from "../../sim/hostlink.ts"
import { deviceSettings } from "../../sim/start.ts"
import { runVmSuite } from "./lib/vm.ts"

// config, properties, commands, the generic profile with HA discovery, schedule, sensors; the
// host link serves what `npm start` would (the committed .env.defaults plus the runner's overrides)
test("device application (VM)", async t => {
    const env = loadEnvFiles([{ file: path.join(ROOT, ".env.defaults"), required: true }])
    const link = await startHostLink(deviceSettings(env.settings, 1883), { waitMs: 120000 })
    try {
        await runVmSuite(t, "test/vm/app.vm.ts", { timeoutMs: 120000 })
    } finally {
        await link.close()
    }
})
