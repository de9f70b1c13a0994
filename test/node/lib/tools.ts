/**
 * Tests that need a program this machine may lack (Mosquitto, Chromium) ask here whether to skip.
 * On a developer's machine a missing program skips the test with the reason. With
 * W55_REQUIRE_ALL=1 (set by .ci/run) nothing is skipped: each missing program adds one failing
 * test that names it, and the tests that need it run (and fail), so CI cannot go green by skipping.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import { mosquittoPath } from "../../../sim/brokers.ts"

/** The Chromium the dashboard's browser test drives. */
export const CHROMIUM = "/usr/bin/chromium"

/** Programs some tests need, with how to tell they are there and how to install them. */
const TOOLS = {
    mosquitto: { have: () => mosquittoPath() !== undefined, missing: "mosquitto is not installed (apt-get install -y mosquitto)" },
    chromium: { have: () => fs.existsSync(CHROMIUM), missing: `${CHROMIUM} is missing (apt-get install -y chromium)` },
}

export type Tool = keyof typeof TOOLS

/** True when every test must run: W55_REQUIRE_ALL=1 (CI). */
export function requireAll(): boolean {
    return process.env.W55_REQUIRE_ALL === "1"
}

const reported = new Set<string>()

/**
 * The `skip` option of a test that needs `tool`: false when it is there; the reason when it is
 * missing; false again under W55_REQUIRE_ALL=1, after adding a failing test that names it.
 */
export function skipUnless(tool: Tool): false | string {
    const t = TOOLS[tool]
    return t.have() ? false : missing(tool, t.missing)
}

/** The skip decision for a program that is missing, with `why` as the reason. */
export function missing(name: string, why: string): false | string {
    if (!requireAll()) return why
    if (!reported.has(name)) {
        reported.add(name)
        test(`${name} is present (W55_REQUIRE_ALL=1: no test may be skipped)`, () => assert.fail(why))
    }
    return false
}
