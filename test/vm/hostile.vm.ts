/**
 * The MQTT client against the hostile broker (sim/hostile-broker.ts): connects with a short
 * backoff, subscribes, and keeps reconnecting through malformed and mutated packets until it
 * has made H_ATTEMPTS connection attempts; then prints its counters in one `##HOSTILE` line and
 * ends the run. Driven by test/node/hostile.test.ts and sim/fuzz.ts.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "./settings"
import { MqttClient, MqttMessage } from "../../src/mqtt"
import { HostStack } from "../../src/net/host"
import { loadSimSettings } from "../../src/simdev/hostlink"

await loadSimSettings()
const PORT: number = await readSetting("H_PORT", 0)
const ATTEMPTS: number = await readSetting("H_ATTEMPTS", 10)
const LOG: boolean = await readSetting("H_LOG", false)

const client = new MqttClient({
    net: new HostStack(),
    host: "127.0.0.1",
    port: PORT,
    clientId: "vm-hostile",
    backoff: { min: 20, max: 100 },
    keepAlive: 30,
    connectTimeoutMs: 3000,
    log: LOG,
})
let delivered = 0
let payloadBytes = 0

async function subscribeForever() {
    // the broker may never answer, or refuse: ask again until the run ends
    for (;;) {
        try {
            await client.subscribe(
                "hostile/#",
                (m: MqttMessage) => {
                    delivered++
                    payloadBytes += m.payload.length
                },
                { qos: 2, timeoutMs: 5000 }
            )
            return
        } catch (e) {
            await ds.sleep(50)
        }
    }
}

console.log(`##HOSTILE-START port=${PORT} attempts=${ATTEMPTS}`)
client.start()
subscribeForever.start()
while (client.stats().connectAttempts < ATTEMPTS) await ds.sleep(20)
// the last attempt is under way: let it finish, so its CONNACK is counted (or its failure is)
const last = ds.millis() + 3000
while (client.stats().reconnects < ATTEMPTS - 1 && ds.millis() < last) await ds.sleep(20)
const s = client.stats()
console.log(
    `##HOSTILE attempts=${s.connectAttempts} malformed=${s.malformed} received=${s.received} reconnects=${s.reconnects} delivered=${delivered} dropped=${s.dropped} bytes=${payloadBytes}`
)
ds.restart()
