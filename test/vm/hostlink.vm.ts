import { readSetting } from "@devicescript/settings"
import { loadSimSettings } from "../../src/sim/hostlink"
import { describe, expect, test } from "./harness"

describe("hostlink", () => {
    test("settings arrive from the runner", async () => {
        const n = await loadSimSettings()
        expect(n).toBe(2)
        expect(await readSetting("T_STR", "")).toBe("hello")
        expect(await readSetting("T_NUM", 0)).toBe(1883)
    })
})
