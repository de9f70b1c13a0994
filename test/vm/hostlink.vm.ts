import { loadSimSettings, runnerSetting } from "../../src/simdev/hostlink"
import { describe, expect, test } from "./harness"

describe("hostlink", () => {
    test("settings arrive from the runner", async () => {
        const n = await loadSimSettings()
        expect(n).toBe(2)
        expect(await runnerSetting("T_STR")).toBe("hello")
        expect(await runnerSetting("T_NUM")).toBe(1883)
        expect(await runnerSetting("T_NONE")).toBe(undefined)
    })
})
