/**
 * Delivery to the board, offline: `npm run bundle` (sim/bundle.ts) packs a bundle with a stand-in
 * runtime UF2 placed in DeviceScript's download cache, and the resulting UF2 is taken apart with
 * our own parsers (sim/uf2.ts, sim/bundle-image.ts): block format, family, numbering, target
 * addresses, the stand-in runtime kept as it was, the board configuration and the compiled program
 * at the CLI's addresses, the settings. Also: the secret warning (key names, never values) and
 * --no-local, the offline failure message, and `npm run flash` (sim/flash.ts) against fake drives.
 *
 * Everything runs in a temporary copy of the project (node_modules linked), so the repository's
 * own cache and settings are never touched; the copy is removed at the end.
 */
import { after, before, test } from "node:test"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import crypto from "node:crypto"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { DEVS_CLI, ROOT } from "../../sim/devs.ts"
import { encodeUf2, parseUf2, readUf2, rp2040Problems, uf2Ranges, RP2040_FAMILY_ID, UF2_FLAG_FAMILY_ID, UF2_MAGIC_END, UF2_MAGIC_START0, UF2_MAGIC_START1 } from "../../sim/uf2.ts"
import { DCFG_ADDR, decodeDcfg, decodeFstor, DEVS_IMAGE_MAGIC, FSTOR_ADDR, readBundle, UF2_ALIGN } from "../../sim/bundle-image.ts"
import { bundlePath, CACHE_DIR, explainFailure, parseBundleArgs, portsInUse, RUNTIME_FILE, RUNTIME_URL, scanSettings, secretWarning, sameImage } from "../../sim/bundle.ts"
import { bootselHelp, candidateDirs, findUf2Drives, flash, parseFlashArgs, readUf2Drive } from "../../sim/flash.ts"

const SECRET = "s3cr3t-" + crypto.randomBytes(8).toString("hex")
const LOCAL_ENV = `MQTT_HOST=192.168.1.10\nMQTT_USER=device\nMQTT_PASS="${SECRET}"\n`
/** Stand-in runtime: 42 pages of deterministic noise from 0x10000000 (ends off the 4 KB grid). */
const RUNTIME_BYTES = 42 * 256
const STANDIN_CFG_SIZE = 2048
const STANDIN_MARK = "STAND-IN PICO CONFIG"

let project = ""

/** Deterministic non-trivial bytes (xorshift32). */
function noise(n: number, seed: number): Buffer {
    const b = Buffer.alloc(n)
    let x = seed >>> 0 || 1
    for (let i = 0; i < n; i++) {
        x ^= x << 13
        x >>>= 0
        x ^= x >>> 17
        x ^= x << 5
        x >>>= 0
        b[i] = x & 0xff
    }
    return b
}

const runtimeCode = noise(RUNTIME_BYTES, 0x2040)

/** A stand-in for the stock runtime UF2: code from 0x10000000 and a stock-like config at 0x100dc000. */
function standInRuntime(): Buffer {
    const cfg = Buffer.alloc(STANDIN_CFG_SIZE, 0x5a)
    cfg.writeUInt32LE(0x47464344, 0) // "DCFG"
    cfg.writeUInt32LE(0xcab49b0a, 4)
    cfg.writeUInt32LE(STANDIN_CFG_SIZE, 8)
    for (let o = 100; o + STANDIN_MARK.length < STANDIN_CFG_SIZE; o += 200) cfg.write(STANDIN_MARK, o, "latin1")
    return encodeUf2([
        { addr: 0x10000000, data: runtimeCode },
        { addr: DCFG_ADDR, data: cfg },
    ])
}

function removeTree(dir: string) {
    const nm = path.join(dir, "node_modules")
    try {
        if (fs.lstatSync(nm).isSymbolicLink()) fs.unlinkSync(nm)
    } catch {}
    fs.rmSync(dir, { recursive: true, force: true })
}

/** Runs a Node TypeScript entry of this repository; resolves with exit code and all output. */
function run(args: string[], cwd = ROOT, timeoutMs = 50000): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
        // no steering-folder runtime here: these tests pack the stand-in runtime of the download cache
        const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", W55_RP2040_DIR: path.join(os.tmpdir(), "w55-no-runtime-here") } })
        let out = ""
        child.stdout.on("data", d => (out += d))
        child.stderr.on("data", d => (out += d))
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
        child.on("error", reject)
        child.on("close", code => {
            clearTimeout(timer)
            resolve({ code, out })
        })
    })
}

const bundleCmd = (...a: string[]) => run(["--import", "tsx", "sim/bundle.ts", "--project", project, ...a])

/** A loopback URL nothing answers on (a port that was free a moment ago). */
async function deadUrl(): Promise<string> {
    const s = net.createServer()
    await new Promise<void>(r => s.listen(0, "127.0.0.1", () => r()))
    const port = (s.address() as net.AddressInfo).port
    await new Promise(r => s.close(r))
    return `http://127.0.0.1:${port}/${RUNTIME_FILE}`
}

/** Waits for the devtools ports the CLI needs (another run on this machine may hold them). */
async function portsFree() {
    const until = Date.now() + 30000
    for (;;) {
        const busy = await portsInUse()
        if (!busy.length) return
        if (Date.now() > until) assert.fail(`ports ${busy.join(", ")} on 127.0.0.1 stayed in use: devs bundle needs them`)
        await new Promise(r => setTimeout(r, 500))
    }
}

function stageOf(out: string): string {
    const m = /building in a temporary copy of the project: (.+)$/m.exec(out)
    assert.ok(m, `no staging line in:\n${out}`)
    return m[1].trim()
}

before(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), "w55-bundle-test-"))
    for (const p of ["src", "boards", "devsconfig.json", "package.json", ".env.defaults"]) fs.cpSync(path.join(ROOT, p), path.join(project, p), { recursive: true })
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"), process.platform === "win32" ? "junction" : "dir")
    fs.writeFileSync(path.join(project, ".env.local"), LOCAL_ENV)
})

after(() => {
    if (project) removeTree(project)
})

test("UF2 and bundle parsers: round trip, and garbage gives errors that name the input", () => {
    const data = noise(600, 7)
    const uf2 = encodeUf2([{ addr: 0x10000080, data }])
    const blocks = parseUf2(uf2, "x.uf2")
    assert.equal(blocks.length, 3, "600 bytes from 0x80 span three pages")
    assert.deepEqual(rp2040Problems(blocks), [])
    assert.deepEqual(readUf2(blocks, 0x10000080, 600), data)
    assert.equal(readUf2(blocks, 0x10000000, 0x80)!.every(x => x === 0xff), true, "the rest of a page is erased flash")
    assert.equal(readUf2(blocks, 0x10000000, 0x400), undefined, "a range beyond the blocks is not covered")
    assert.deepEqual(uf2Ranges(blocks), [[0x10000000, 0x10000300]])

    assert.throws(() => parseUf2(Buffer.alloc(0), "e.uf2"), /e\.uf2: empty file/)
    assert.throws(() => parseUf2(uf2.subarray(0, 700), "t.uf2"), /t\.uf2: 700 bytes is not a whole number of 512-byte UF2 blocks/)
    const bad = Buffer.from(uf2)
    bad.writeUInt32LE(0x12345678, 512)
    assert.throws(() => parseUf2(bad, "m.uf2"), /m\.uf2: block 1 \(offset 512\) starts with 0x12345678/)
    const badEnd = Buffer.from(uf2)
    badEnd.writeUInt32LE(0, 1020)
    assert.throws(() => parseUf2(badEnd, "n.uf2"), /block 1 .* ends with 0x00000000/)
    const big = Buffer.from(uf2)
    big.writeUInt32LE(477, 16)
    assert.throws(() => parseUf2(big), /block 0 declares a 477-byte payload/)

    const wrong = Buffer.from(uf2)
    wrong.writeUInt32LE(0x12345678, 28) // family
    wrong.writeUInt32LE(5, 512 + 20) // block number
    wrong.writeUInt32LE(0x10000000, 1024 + 12) // same address as block 0
    wrong.writeUInt32LE(0x20000000, 12 + 0) // block 0 now outside the flash
    const p = rp2040Problems(parseUf2(wrong)).join("\n")
    assert.match(p, /block 0: family id 0x12345678, expected the RP2040's 0xe48bff56/)
    assert.match(p, /block 1: numbered 5/)
    assert.match(p, /block 0: address 0x20000000 is outside the flash/)

    assert.throws(() => decodeDcfg(Buffer.alloc(100)), /DCFG: no DCFG magic/)
    const cfg = Buffer.alloc(200)
    cfg.writeUInt32LE(0x47464344, 0)
    cfg.writeUInt32LE(0xcab49b0a, 4)
    cfg.writeUInt32LE(5000, 8)
    assert.throws(() => decodeDcfg(cfg), /declares 5000 bytes, only 200 available/)
    cfg.writeUInt32LE(200, 8)
    cfg.writeUInt16LE(60000, 12)
    assert.throws(() => decodeDcfg(cfg), /60000 entries do not fit in 200 bytes/)
    assert.throws(() => decodeFstor(Buffer.alloc(64, 0xff)), /no flash storage magic/)
    const fst = Buffer.alloc(64, 0xff)
    fst.writeUInt32LE(0x52545346, 0)
    fst.writeUInt32LE(0x6becea0a, 4)
    fst.write(":K\0", 24, "latin1")
    fst.writeUInt32LE(60, 40)
    fst.writeUInt32LE(10, 44)
    assert.throws(() => decodeFstor(fst), /entry :K at 60\+10 runs past the 64-byte storage/)
    assert.throws(() => readBundle(uf2, "r.uf2"), /r\.uf2: nothing at 0x100dc000, where the board configuration belongs/)
})

test("bundle: the program read back is the image compiled, but for trailing zero padding left as erased flash", () => {
    const img = Buffer.from([0x44, 0x65, 0x76, 0x53, 7, 0, 0, 0])
    assert.ok(sameImage(img, Buffer.from(img)))
    assert.ok(sameImage(img, Buffer.from([0x44, 0x65, 0x76, 0x53, 7, 0, 0xff, 0xff])), "trailing zeros read back as 0xFF")
    assert.ok(!sameImage(img, Buffer.from([0x44, 0x65, 0x76, 0x53, 0xff, 0, 0, 0])), "a changed byte before the padding")
    assert.ok(!sameImage(img, Buffer.from([0x44, 0x65, 0x76, 0x53, 7, 0xff, 0, 0xff])), "0xFF where a zero was written, followed by a written zero")
    assert.ok(!sameImage(img, img.subarray(0, 7)), "another length")
})

test("bundle: options and failure explanations", () => {
    const o = parseBundleArgs(["--board", "w5500_evb_pico", "--no-local"])
    assert.equal(o.board, "w5500_evb_pico")
    assert.equal(o.local, false)
    assert.equal(o.runtimeUrl, RUNTIME_URL)
    assert.throws(() => parseBundleArgs(["--bord", "x"]), /bundle: Unknown option '--bord'/)
    assert.throws(() => parseBundleArgs(["--board", "../x"]), /--board must be a board id/)
    // what the CLI printed here, offline, with an empty cache
    const offline = "deploy to ZX81\n  --> done, 87.6kb\nfetch https://github.com/microsoft/devicescript-pico/releases/latest/download/devicescript-rp2040-pico.uf2\nTypeError: fetch failed\n  [cause]: Error: getaddrinfo ENOTFOUND github.com"
    const m = explainFailure(1, offline, o)
    assert.match(m, /tried to download the runtime and failed/)
    assert.match(m, /\.devicescript\/cache\//)
    assert.ok(m.includes(path.join(o.project, CACHE_DIR, RUNTIME_FILE)), m)
    assert.match(explainFailure(100, "", o), /could not open its devtools ports 8081, 8082, 8083/)
    assert.match(explainFailure(1, "Error: jacdac packet length too large, 314 > 236 bytes", o), /a setting is too large for devs bundle/)
    assert.match(explainFailure(1, "src/main.ts:283:7 - error TS2322: Type 'string' is not assignable", o), /src\/images\/board-generic\.ts did not compile/)
})

test("bundle: settings scan names secret and oversized keys, never values; stops before compiling", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "w55-bundle-scan-"))
    try {
        fs.cpSync(path.join(ROOT, "boards"), path.join(dir, "boards"), { recursive: true })
        fs.writeFileSync(path.join(dir, ".env.defaults"), "CLOUD=generic\nAZURE_KEY=committed-oops\n")
        fs.writeFileSync(path.join(dir, ".env.local"), `ONENET_KEY=${SECRET}\nMQTT_PASS=\nCLOUD_PROPS="${"a".repeat(300)}"\n`)
        const scan = scanSettings(dir, true)
        assert.deepEqual(scan.secrets, [{ file: ".env.defaults", keys: ["AZURE_KEY"] }, { file: ".env.local", keys: ["ONENET_KEY"] }], "an empty MQTT_PASS is no secret")
        assert.deepEqual(scan.oversize, [".env.local: CLOUD_PROPS takes 314 bytes (name, NUL and JSON value), at most 236 fit"])
        const w = secretWarning(scan.secrets).join("\n")
        assert.match(w, /\.env\.defaults holds secrets: AZURE_KEY\.[^]*committed to git: move them to \.env\.local/)
        assert.match(w, /\.env\.local holds secrets: ONENET_KEY\.[^]*--no-local/)
        assert.ok(!w.includes(SECRET) && !w.includes("committed-oops"))
        assert.deepEqual(scanSettings(dir, false).secrets.map(s => s.file), [".env.defaults"], "--no-local: .env.local is not scanned for the UF2")
        assert.deepEqual(scanSettings(dir, false).localKeys, ["ONENET_KEY", "CLOUD_PROPS"])
        const r = await run(["--import", "tsx", "sim/bundle.ts", "--project", dir])
        assert.equal(r.code, 1, r.out)
        assert.match(r.out, /settings too large for devs bundle[^]*CLOUD_PROPS takes 314 bytes/)
        assert.doesNotMatch(r.out, /compiling/, "stops before compiling")
        assert.ok(!r.out.includes(SECRET))
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
})

test("bundle --board pico_w: refused, saying why (no Pico W runtime here, and none may be built from fetched sources)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "w55-bundle-picow-"))
    try {
        fs.cpSync(path.join(ROOT, "boards"), path.join(dir, "boards"), { recursive: true })
        fs.writeFileSync(path.join(dir, ".env.defaults"), "CLOUD=generic\n")
        const r = await run(["--import", "tsx", "sim/bundle.ts", "--board", "pico_w", "--project", dir])
        assert.equal(r.code, 1, r.out)
        assert.match(r.out, /--board pico_w: refused: the Raspberry Pi Pico W needs DeviceScript's Pico W runtime/)
        assert.match(r.out, /holds only the generic RP2040 runtime, devicescript-rp2040-generic\.uf2/)
        assert.match(r.out, /may not commit a runtime built from fetched sources, nor a recipe that builds one/)
        assert.match(r.out, /npm start -- --board pico_w/, "says where the Pico W image does run")
        assert.doesNotMatch(r.out, /compiling|wrote/, "nothing compiled or written")
        assert.ok(!fs.existsSync(bundlePath(dir, "pico_w")), "no bundle written")
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
})

test("bundle offline with no cached runtime: fails at once and says what to place where", async () => {
    const r = await bundleCmd("--runtime-url", await deadUrl())
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /the DeviceScript RP2040 runtime is not in the cache and cannot be downloaded \(offline\?\): fetch failed \(ECONNREFUSED\)/)
    assert.ok(r.out.includes(RUNTIME_URL), "names the upstream release file")
    assert.match(r.out, /caches it in \.devicescript\/cache\//)
    assert.ok(r.out.includes(path.join(project, CACHE_DIR, RUNTIME_FILE)), "names where to put the file by hand")
    assert.ok(!fs.existsSync(bundlePath(project, "w55rp20_evb_pico")), "no bundle written")
    assert.ok(!fs.existsSync(path.join(project, CACHE_DIR, RUNTIME_FILE)), "nothing placed in the cache")
})

test("bundle with a stand-in runtime in the cache: runtime, board configuration, program and settings at the CLI's addresses", async () => {
    const cache = path.join(project, CACHE_DIR)
    fs.mkdirSync(cache, { recursive: true })
    fs.writeFileSync(path.join(cache, RUNTIME_FILE), standInRuntime())
    await portsFree()
    // the same program built on its own, to compare with the one inside the bundle
    // (CLOUD is generic in these settings: the board image of the generic platform)
    const [r, built] = await Promise.all([bundleCmd("--verbose"), run([DEVS_CLI, "build", "src/images/board-generic.ts"], project)])
    assert.equal(built.code, 0, `devs build: ${built.out}`)
    assert.equal(r.code, 0, r.out)

    // the warning names the secret key, never its value
    assert.match(r.out, /bundle: WARNING: \.env\.local holds secrets: MQTT_PASS\./)
    assert.match(r.out, /stored in the UF2 as plain text/)
    assert.match(r.out, /npm run bundle -- --no-local/)
    assert.ok(!r.out.includes(SECRET), "the secret's value is never printed")
    assert.match(r.out, /runtime: \.devicescript\/cache\/devicescript-rp2040-pico\.uf2 \(cached/)
    // the CLI itself took the runtime from its download cache (no download)
    assert.match(r.out, /devs\| using cached \.devicescript\/cache\/devicescript-rp2040-pico\.uf2/)
    assert.match(r.out, /devs\| patching devicescript-rp2040-pico\.uf2 -> devicescript-rp2040-w55rp20_evb_pico\.uf2/)
    assert.doesNotMatch(r.out, /devs\| fetch https/)
    assert.match(r.out, /compiling src\/images\/board-generic\.ts \(the board image of CLOUD=generic\)/)
    assert.doesNotMatch(r.out, /NOTE: this firmware has no W5500 stack/)
    // the temporary copy is gone; the user's files are as they were
    assert.ok(!fs.existsSync(stageOf(r.out)), "temporary project copy removed")
    assert.equal(fs.readFileSync(path.join(project, ".env.local"), "utf8"), LOCAL_ENV)
    assert.ok(fs.lstatSync(path.join(project, "node_modules")).isSymbolicLink())
    assert.deepEqual(fs.readFileSync(path.join(cache, RUNTIME_FILE)), standInRuntime(), "cached runtime untouched")

    const file = bundlePath(project, "w55rp20_evb_pico")
    const raw = fs.readFileSync(file)
    const blocks = parseUf2(raw, file)
    // block format: magic numbers, flags, family, payload, numbering
    blocks.forEach((b, i) => {
        assert.equal(raw.readUInt32LE(i * 512), UF2_MAGIC_START0)
        assert.equal(raw.readUInt32LE(i * 512 + 4), UF2_MAGIC_START1)
        assert.equal(raw.readUInt32LE(i * 512 + 508), UF2_MAGIC_END)
        assert.equal(b.flags, UF2_FLAG_FAMILY_ID, `block ${i} flags`)
        assert.equal(b.familyId, RP2040_FAMILY_ID, `block ${i} family`)
        assert.equal(b.payloadSize, 256, `block ${i} payload`)
        assert.equal(b.blockNo, i, `block ${i} number`)
        assert.equal(b.numBlocks, blocks.length, `block ${i} count`)
        assert.equal(b.targetAddr % 256, 0, `block ${i} alignment`)
    })
    assert.deepEqual(rp2040Problems(blocks), [])

    // target addresses: the runtime as it was, its configuration area (padded by the CLI to 4 KB)
    // at 0x100dc000, the storage at 0x100e0000
    const ranges = uf2Ranges(blocks)
    assert.equal(ranges.length, 3, `ranges ${JSON.stringify(ranges.map(r => r.map(x => x.toString(16))))}`)
    assert.deepEqual(ranges[0], [0x10000000, 0x10000000 + RUNTIME_BYTES])
    assert.deepEqual(ranges[1], [DCFG_ADDR, DCFG_ADDR + UF2_ALIGN])
    assert.equal(ranges[2][0], FSTOR_ADDR)
    assert.deepEqual(readUf2(blocks, 0x10000000, RUNTIME_BYTES), runtimeCode, "the runtime is copied unchanged")
    assert.ok(readUf2(blocks, DCFG_ADDR + STANDIN_CFG_SIZE, UF2_ALIGN - STANDIN_CFG_SIZE)!.every(x => x === 0xff), "alignment padding is erased flash")

    // the board configuration replaced the runtime's own, entirely
    const cfgArea = readUf2(blocks, DCFG_ADDR, STANDIN_CFG_SIZE)!
    assert.ok(!cfgArea.includes(STANDIN_MARK), "nothing of the stand-in configuration is left")
    const board = JSON.parse(fs.readFileSync(path.join(ROOT, "boards/w55rp20_evb_pico.board.json"), "utf8"))
    const c = readBundle(raw, file)
    assert.equal(c.config.id, "w55rp20_evb_pico")
    assert.equal(c.config.devName, "W55RP20-EVB-Pico")
    assert.equal(c.config.archId, "rp2040")
    assert.equal(c.config.productId, Number(board.productId))
    assert.equal(c.config["w5500.bus"], "gpio")
    assert.equal(c.config["led.pin"], 19)
    assert.equal(c.config["led.type"], undefined, "no Pico LED on GPIO25 (the W5500 reset)")
    const pins = Object.entries(board.pins).filter(([k]) => !k.startsWith("#"))
    for (const [label, gpio] of pins) assert.equal(c.config[`pins.${label}`], gpio, `pins.${label}`)
    assert.equal(Object.keys(c.config).filter(k => k.startsWith("pins.")).length, pins.length, "no pin more or less than the board file's")
    assert.deepEqual([c.config["pins.w5500.cs"], c.config["pins.w5500.sck"], c.config["pins.w5500.miso"], c.config["pins.w5500.mosi"]], [20, 21, 22, 23])

    // the program: exactly the compiled image (but for zero padding past its last section, which may read back as erased flash), DeviceScript magic first, inside the storage
    const bytecode = fs.readFileSync(path.join(project, ".devicescript/bin/bytecode.devs"))
    assert.deepEqual(bytecode.subarray(0, 8), DEVS_IMAGE_MAGIC)
    assert.ok(sameImage(bytecode, c.program), `program in the UF2 (${c.program.length} bytes) is the compiled bytecode.devs (${bytecode.length} bytes)`)
    const prog = decodeFstor(c.storage).get("*prog")!
    const progAddr = FSTOR_ADDR + prog.offset
    assert.ok(progAddr >= FSTOR_ADDR && progAddr + prog.size <= ranges[2][1], "program within the storage range")
    assert.ok(sameImage(bytecode, readUf2(blocks, progAddr + prog.size - bytecode.length, bytecode.length) ?? Buffer.alloc(0)), "the program read straight from the blocks")

    // the settings, and the secret in plain text (what the warning is about)
    assert.equal(c.settings.CLOUD, '"generic"', ".env.defaults")
    assert.equal(c.settings.REPORT_MS, "5000")
    assert.equal(c.settings.MQTT_HOST, '"192.168.1.10"', ".env.local")
    assert.equal(c.settings.MQTT_PASS, JSON.stringify(SECRET), "the secret is in the UF2 as plain text")
})

test("bundle --no-local for the W5500-EVB-Pico, runtime older than 24 h and no network: no secret inside", async () => {
    const runtime = path.join(project, CACHE_DIR, RUNTIME_FILE)
    fs.mkdirSync(path.dirname(runtime), { recursive: true })
    fs.writeFileSync(runtime, standInRuntime())
    const old = new Date(Date.now() - 48 * 3600 * 1000)
    fs.utimesSync(runtime, old, old)
    await portsFree()
    const r = await bundleCmd("--no-local", "--board", "w5500_evb_pico", "--runtime-url", await deadUrl())
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /runtime: cached copy is 2 days old, refreshing/)
    assert.match(r.out, /cannot refresh it \(fetch failed \(ECONNREFUSED\)\); using the cached copy from/)
    assert.doesNotMatch(r.out, /WARNING/)
    assert.match(r.out, /--no-local: \.env\.local left out \(MQTT_HOST, MQTT_USER, MQTT_PASS\)/)
    assert.ok(!r.out.includes(SECRET))
    assert.ok(!fs.existsSync(stageOf(r.out)), "temporary project copy removed")
    assert.equal(fs.readFileSync(path.join(project, ".env.local"), "utf8"), LOCAL_ENV, ".env.local kept")
    assert.ok(Math.abs(fs.statSync(runtime).mtimeMs - old.getTime()) < 2, "the cached runtime is left as it was")

    const file = bundlePath(project, "w5500_evb_pico")
    const raw = fs.readFileSync(file)
    const c = readBundle(raw, file)
    assert.deepEqual(c.problems, [])
    assert.equal(c.config.id, "w5500_evb_pico")
    assert.equal(c.config.devName, "W5500-EVB-Pico")
    assert.equal(c.config["w5500.bus"], "spi0")
    assert.deepEqual([c.config["pins.w5500.miso"], c.config["pins.w5500.cs"], c.config["pins.w5500.sck"], c.config["pins.w5500.mosi"]], [16, 17, 18, 19])
    assert.equal(c.config["led.pin"], 25)
    assert.equal(c.config["led.type"], undefined, "a plain mono LED, no Pico W probing")
    assert.equal(c.config["led.isMono"], 1)
    assert.equal(c.settings.CLOUD, '"generic"')
    assert.equal(c.settings.MQTT_PASS, undefined)
    assert.equal(c.settings.MQTT_HOST, undefined)
    assert.ok(!raw.includes(SECRET) && !c.storage.includes(SECRET), "the secret is nowhere in the UF2")
    assert.ok(fs.existsSync(bundlePath(project, "w55rp20_evb_pico")), "the other board's bundle is still there")
})

test("flash: finds the RPI-RP2 drive by its INFO_UF2.TXT and copies the bundle; explains BOOTSEL without one", async () => {
    const file = bundlePath(project, "w55rp20_evb_pico")
    assert.ok(fs.existsSync(file), "needs the bundle of the test above")
    const drives = path.join(project, "drives")
    const rp = path.join(drives, "RPI-RP2")
    const other = path.join(drives, "RP2350")
    const plain = path.join(drives, "USBSTICK")
    for (const d of [rp, other, plain]) fs.mkdirSync(d, { recursive: true })
    fs.writeFileSync(path.join(rp, "INFO_UF2.TXT"), "UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2\r\n")
    fs.writeFileSync(path.join(other, "info_uf2.txt"), "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n")

    assert.deepEqual(readUf2Drive(rp), { path: rp, boardId: "RPI-RP2", model: "Raspberry Pi RP2" })
    assert.equal(readUf2Drive(plain), undefined)
    assert.deepEqual(findUf2Drives([other, plain, rp]).map(d => d.boardId), ["RPI-RP2", "RP2350"])
    assert.ok(candidateDirs("win32").includes("E:\\"))
    assert.equal(parseFlashArgs(["--board", "w5500_evb_pico"], false).file, bundlePath(ROOT, "w5500_evb_pico"))
    assert.equal(parseFlashArgs([], true).waitS, 60)
    assert.throws(() => parseFlashArgs(["--wait", "soon"], false), /--wait must be a whole number/)
    assert.throws(() => parseFlashArgs(["--bord", "x"], false), /flash: Unknown option '--bord'[^]*Usage: npm run flash/)
    assert.throws(() => parseFlashArgs(["--board", "../x"], false), /flash: --board must be a board id/)

    const logs: string[] = []
    const log = (s: string) => logs.push(s)
    const base = { help: false, board: "w55rp20_evb_pico", file, waitS: 0, project }
    assert.equal(await flash({ ...base, dirs: [other, plain, rp] }, log), 0, logs.join("\n"))
    assert.deepEqual(fs.readFileSync(path.join(rp, path.basename(file))), fs.readFileSync(file), "the bundle is on the drive")
    assert.doesNotMatch(logs.join("\n"), /NOTE: this firmware has no W5500 stack/)

    logs.length = 0
    assert.equal(await flash({ ...base, dirs: [other, plain] }, log), 1)
    const told = logs.join("\n")
    assert.match(told, /no RPI-RP2 drive found \(other UF2 drives: .*RP2350 RP2350\)/)
    assert.match(told, /hold the BOOTSEL button and plug the cable back in/)
    assert.match(told, /npx devs flash --board w55rp20_evb_pico --file \.devicescript\/bin\/bundle-devicescript-rp2040-w55rp20_evb_pico\.uf2/)
    assert.deepEqual(bootselHelp(file, "w55rp20_evb_pico", project).slice(-1), logs.slice(-1))

    logs.length = 0
    assert.equal(await flash({ ...base, drive: other }, log), 1)
    assert.match(logs.join("\n"), /UF2 drive for "RP2350", not an RP2040/)
    logs.length = 0
    assert.equal(await flash({ ...base, file: path.join(project, "none.uf2") }, log), 1)
    assert.match(logs.join("\n"), /none\.uf2 does not exist: run npm run bundle first/)
    const junk = path.join(project, "junk.uf2")
    fs.writeFileSync(junk, encodeUf2([{ addr: 0x10000000, data: noise(256, 3) }]))
    await assert.rejects(flash({ ...base, file: junk, drive: rp }, log), /junk\.uf2: nothing at 0x100dc000/)
})
