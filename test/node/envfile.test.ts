import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { describeSettings, isSecretKey, keyWarnings, layerEnv, loadEnvFiles, parseEnv } from "../../sim/envfile.ts"
import { DEVS_CLI } from "../../sim/devs.ts"

test("comment lines and lines with a trailing comment are dropped", () => {
    const s = parseEnv("# a comment\nA=1\nB=2 # trailing\n  # indented\nC=x#y\nD=4\n")
    assert.deepEqual(s, { A: 1, D: 4 })
})

test("values are typed like JSON: numbers, booleans, strings, objects", () => {
    const s = parseEnv('N=1883\nF=1.5\nE=1e3\nT=true\nFL=false\nQ="1883"\nO={"a":[1,2]}\nA=[1,"x"]\nW=hello world\nNEG=-4\n')
    assert.deepEqual(s, { N: 1883, F: 1.5, E: 1000, T: true, FL: false, Q: "1883", O: { a: [1, 2] }, A: [1, "x"], W: "hello world", NEG: -4 })
})

test("null and other non-JSON stay text, exactly as written", () => {
    const s = parseEnv("Z=null\nP=0123\nU=http://x:1/y\nS= padded \nC=on\n")
    assert.deepEqual(s, { Z: "null", P: "0123", U: "http://x:1/y", S: " padded ", C: "on" })
})

test("spaces around '=' belong to the key and the value", () => {
    const s = parseEnv("KEY = 5\nK2= text\n")
    assert.deepEqual(Object.keys(s), ["KEY ", "K2"])
    assert.equal(s["KEY "], 5) // " 5" parses as JSON
    assert.equal(s["K2"], " text")
})

test("split at the first '='; leading '=' skipped; no '=' means no setting", () => {
    const s = parseEnv("A=b=c\n==X=1\nnoequals\n=\n\n")
    assert.deepEqual(s, { A: "b=c", X: 1 })
})

test("an empty value unsets the key, also over a lower layer", () => {
    const low = parseEnv("A=1\nB=2\n")
    const high = parseEnv("B=\nC=3\n")
    assert.ok("B" in high && high.B === undefined)
    assert.deepEqual(layerEnv(low, high), { A: 1, C: 3 })
})

test("later layers win; CRLF line ends work", () => {
    assert.deepEqual(layerEnv(parseEnv("A=1\r\nB=x\r\n"), parseEnv("A=2\r\n")), { A: 2, B: "x" })
})

test("loadEnvFiles layers files, skips missing optional ones, names a missing required one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envfile-"))
    try {
        const d = path.join(dir, ".env.defaults")
        const e = path.join(dir, "site.env")
        fs.writeFileSync(d, "MQTT_PORT=1883\nREPORT_MS=5000\nMQTT_KEEPALIVE=30\n")
        fs.writeFileSync(e, "REPORT_MS=2000\nDEVICE_ID = x\n")
        const r = loadEnvFiles([
            { file: d, required: true },
            { file: e, required: true },
            { file: path.join(dir, ".env.local"), required: false },
        ])
        assert.deepEqual(r.settings, { MQTT_PORT: 1883, REPORT_MS: 2000, MQTT_KEEPALIVE: 30, "DEVICE_ID ": " x" })
        assert.deepEqual(r.sources.map(s => [path.basename(s.file), s.found, s.keys]), [
            [".env.defaults", true, 3],
            ["site.env", true, 2],
            [".env.local", false, 0],
        ])
        assert.equal(r.warnings.length, 2)
        assert.match(r.warnings[0], /MQTT_KEEPALIVE is longer than 13 characters/)
        assert.match(r.warnings[1], /"DEVICE_ID " has spaces around its name/)
        assert.throws(() => loadEnvFiles([{ file: path.join(dir, "nope.env"), required: true }]), /settings: cannot read .*nope\.env: no such file/)
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
})

test("secrets are recognised and never described", () => {
    for (const k of ["MQTT_PASS", "DEVICE_SECRET", "ACCESS_KEY", "SAS_TOKEN", "PSK", "WIFI_PWD"]) assert.ok(isSecretKey(k), k)
    for (const k of ["MQTT_HOST", "MQTT_PORT", "DEVICE_ID", "REPORT_MS"]) assert.ok(!isSecretKey(k), k)
    const lines = describeSettings({ MQTT_PASS: "hunter2", MQTT_HOST: "h", DEVICE_SECRET: 123 })
    assert.deepEqual(lines, ["DEVICE_SECRET=(set)", 'MQTT_HOST="h"', "MQTT_PASS=(set)"])
    assert.ok(!lines.join("\n").includes("hunter2"))
    assert.deepEqual(keyWarnings("f", { OK: 1 }), [])
})

/**
 * Differential check against the DeviceScript CLI itself: its settings parser is not exported,
 * so take its source text out of the pinned CLI bundle and run it on the same inputs.
 */
test("parseEnv agrees with the DeviceScript CLI's own parser", () => {
    const src = fs.readFileSync(DEVS_CLI, "utf8")
    const grab = (name: string) => {
        const i = src.indexOf(`function ${name}(`)
        assert.ok(i >= 0, `function ${name} not found in the CLI bundle (version changed?)`)
        // functions in the bundle end at the first line that closes at the function's indentation
        const lineStart = src.lastIndexOf("\n", i) + 1
        const indent = src.slice(lineStart, i)
        const end = src.indexOf("\n" + indent + "}", i)
        return src.slice(i, end + indent.length + 2)
    }
    const code = [grab("JSONTryParse2"), grab("stringToSettingValue"), grab("parseToSettings")].join("\n")
    const cliParse = new Function(
        "stringToBuffer2",
        `${code}\nreturn parseToSettings`
    )((s: string) => Buffer.from(s, "utf8")) as (source: string, secret: boolean) => Record<string, Buffer | undefined>
    const cases = [
        "A=1\nB=true\nC=\"x\"\nD=hello\nE=\nF={\"a\":1}\nG=null\nH= 5 \nI = 7\n",
        "# comment\nX=1 # trailing\nY=a#b\nZ=ok\n",
        "==K=1\nK2=a=b\nnoeq\n=\n  S  =  spaced  \n",
        "P=0123\nQ=1e3\nR=-0\nT=[1,2\nU=\"unterminated\nV=\t\n",
        "DUP=1\nDUP=2\nDUP=\n",
        "W=\u00b0C\nCRLF=1\r\nEND=2\r\n",
    ]
    for (const text of cases) {
        const theirs = cliParse(text, false)
        const ours = parseEnv(text)
        assert.deepEqual(Object.keys(ours), Object.keys(theirs), `keys for ${JSON.stringify(text)}`)
        for (const k of Object.keys(theirs)) {
            const b = theirs[k]
            const expected = b === undefined ? undefined : JSON.parse(b.toString("utf8"))
            assert.deepEqual(ours[k], expected, `value of ${JSON.stringify(k)} in ${JSON.stringify(text)}`)
        }
    }
})
