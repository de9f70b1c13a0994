// Bytecode size probe: the stock @devicescript/net MQTT client, used as size-ours.ts uses ours.
import { startMQTTClient } from "@devicescript/net"
const c = await startMQTTClient({ host: "127.0.0.1", port: 1883, proto: "tcp", clientId: "x" })
await c.publish("t", "x", 1)
await c.subscribe("t/#", async m => {})
await c.stop()
