// Bytecode size probe: the same use of our client as size-stock.ts makes of the stock one.
import { MqttClient } from "../../src/mqtt"
import { HostStack } from "../../src/net/host"
const c = new MqttClient({ net: new HostStack(), host: "127.0.0.1", port: 1883, clientId: "x" })
c.start()
await c.publish("t", "x", { qos: 1 })
await c.subscribe("t/#", async m => {})
await c.unsubscribe("t/#")
await c.stop()
