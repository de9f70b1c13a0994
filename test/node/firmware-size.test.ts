/**
 * Every firmware image must fit the DeviceScript VM: header, function descriptors and code of all
 * functions together below 64 KB (the image verifier refuses more, and the device would not
 * start). And each image carries only what its target and platform need: that is how they fit.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import path from "node:path"
import { ROOT } from "../../sim/devs.ts"
import { HEADROOM, imageEntries, measureImage, tightImages } from "../../sim/sizes.ts"
import { CLOUDS, W5100S_BOARD_CLOUDS, W5100S_LEFT_OUT, w5100sBoardEntry, w5100sBoardImage } from "../../sim/images.ts"

const images = imageEntries()
/** `board-w5100s-generic.ts` -> target board, chip w5100s, cloud generic; the W5500 images name no chip. */
function parts(entry: string) {
    const m = /(sim|board)-(?:(w5100s|picow)-)?(\w+)\.ts$/.exec(entry)
    return { chip: m?.[2] ?? "w5500", cloud: m?.[3] ?? "generic" }
}

test("there is a simulator image for every platform and a board image for every plain-MQTT platform", () => {
    for (const c of CLOUDS) {
        assert.ok(images.includes(`src/images/sim-${c}.ts`), `no simulator image for ${c}`)
        if (c !== "azure") assert.ok(images.includes(`src/images/board-${c}.ts`), `no board image for ${c}`)
    }
})

test("the W5100S-EVB-Pico has a board image for each plain-TCP platform that fits, each its platform's W5500 board image with the W5100S starter", () => {
    for (const c of CLOUDS) {
        const entry = w5100sBoardEntry(c)
        if (W5100S_BOARD_CLOUDS.includes(c)) {
            assert.ok(images.includes(entry), `no ${entry}: run npx tsx sim/images.ts --write-w5100s`)
            assert.equal(fs.readFileSync(path.join(ROOT, entry), "utf8"), w5100sBoardImage(c), `${entry} differs from src/images/board-${c}.ts with the W5100S starter: run npx tsx sim/images.ts --write-w5100s`)
        } else {
            assert.ok(!images.includes(entry), `${entry} exists but ${c} is not in W5100S_BOARD_CLOUDS (sim/images.ts)`)
            assert.ok(W5100S_LEFT_OUT[c], `CLOUD=${c}: neither a W5100S board image nor a reason why not (W5100S_LEFT_OUT in sim/images.ts)`)
        }
    }
    for (const e of images.filter(e => /\/board-w5100s-/.test(e))) assert.ok(W5100S_BOARD_CLOUDS.some(c => w5100sBoardEntry(c) === e), `${e} is not one of W5100S_BOARD_CLOUDS`)
    assert.throws(() => w5100sBoardImage("nope"), /W5100S board image for CLOUD=nope: cannot read its W5500 image src\/images\/board-nope\.ts \(ENOENT\)/)
})

test("npm run sizes names every image with less than 6 KB left (and only those)", () => {
    assert.equal(HEADROOM, 6144)
    assert.deepEqual(tightImages([{ entry: "a.ts", left: 6144 }, { entry: "b.ts", left: 6143 }, { entry: "c.ts", left: -8 }, { entry: "d.ts", left: 30000 }]), [
        "b.ts (6143 left)",
        "c.ts (-8 left)",
    ])
    assert.deepEqual(tightImages([{ entry: "a.ts", left: 7000 }]), [])
})

for (const entry of [...images, "src/main.ts"]) {
    test(`${entry} fits the VM's 64 KB function bytecode limit and links only its own parts`, () => {
        const m = measureImage(entry)
        console.log(`${entry}: ${m.functions} bytes of functions, ${m.left} left`)
        assert.ok(m.left > 0, `${entry} has ${m.functions} bytes of function bytecode, ${-m.left} too many for the VM`)
        const files = [...m.files.keys()]
        const has = (f: string) => files.some(x => x.endsWith(f))
        const board = entry.includes("/board-")
        const { chip, cloud } = parts(entry)
        // the W5100S driver only in W5100S images; the Pico W carries no WIZnet code at all
        assert.equal(has("src/net/wiznet/w5100s.ts"), chip === "w5100s", `${entry}: W5100S driver linked: ${has("src/net/wiznet/w5100s.ts")}`)
        if (chip === "picow") {
            for (const f of ["src/net/wiznet/stack.ts", "src/net/wiznet/chip.ts", "src/hal/w5500-bus.ts", "src/simdev/bridge-spi.ts", "src/hal/spi.ts"]) assert.ok(!has(f), `${entry} links ${f}`)
            assert.ok(has("src/net/host.ts"), `${entry} lacks the runtime's sockets`)
            assert.equal(has("src/simdev/hostlink.ts"), !board, `${entry}: host link linked: ${has("src/simdev/hostlink.ts")}`)
        } else if (board) {
            for (const f of ["src/simdev/bridge-spi.ts", "src/simdev/hostlink.ts", "src/net/host.ts"]) assert.ok(!has(f), `${entry} links ${f}`)
            for (const f of ["src/hal/w5500-bus.ts", "src/hal/wiring.ts", "src/net/wiznet/stack.ts", "src/app/i2c-sensors.ts"]) assert.ok(has(f), `${entry} lacks ${f}`)
        } else {
            for (const f of ["src/hal/w5500-bus.ts", "src/hal/wiring.ts", "src/app/i2c-sensors.ts"]) assert.ok(!has(f), `${entry} links ${f}`)
            assert.ok(has("src/net/host.ts"), `${entry} lacks the host network`)
            assert.equal(has("src/net/wiznet/stack.ts"), cloud !== "azure", `${entry}: W5500 stack linked: ${has("src/net/wiznet/stack.ts")}`)
        }
        for (const other of CLOUDS) if (other !== cloud) assert.ok(!has(`src/cloud/${other}.ts`), `${entry} links the ${other} platform`)
        assert.ok(has(`src/cloud/${cloud}.ts`), `${entry} lacks its platform`)
    })
}
