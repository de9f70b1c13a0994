/**
 * Every firmware image must fit the DeviceScript VM: header, function descriptors and code of all
 * functions together below 64 KB (the image verifier refuses more, and the device would not
 * start). And each image carries only what its target and platform need: that is how they fit.
 */
import { test } from "node:test"
import assert from "node:assert/strict"
import { imageEntries, measureImage } from "../../sim/sizes.ts"
import { CLOUDS } from "../../sim/images.ts"

const images = imageEntries()

test("there is a simulator image for every platform and a board image for every plain-MQTT platform", () => {
    for (const c of CLOUDS) {
        assert.ok(images.includes(`src/images/sim-${c}.ts`), `no simulator image for ${c}`)
        if (c !== "azure") assert.ok(images.includes(`src/images/board-${c}.ts`), `no board image for ${c}`)
    }
})

for (const entry of [...images, "src/main.ts"]) {
    test(`${entry} fits the VM's 64 KB function bytecode limit and links only its own parts`, () => {
        const m = measureImage(entry)
        console.log(`${entry}: ${m.functions} bytes of functions, ${m.left} left`)
        assert.ok(m.left > 0, `${entry} has ${m.functions} bytes of function bytecode, ${-m.left} too many for the VM`)
        const files = [...m.files.keys()]
        const has = (f: string) => files.some(x => x.endsWith(f))
        const board = entry.includes("/board-")
        const cloud = /(sim|board)-(\w+)\.ts$/.exec(entry)?.[2] ?? "generic"
        if (board) {
            for (const f of ["src/hal/bridge-spi.ts", "src/sim/hostlink.ts", "src/net/host.ts"]) assert.ok(!has(f), `${entry} links ${f}`)
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
