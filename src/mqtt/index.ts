/** The MQTT 3.1.1 client: public API. */
export { MqttClient, connackReason } from "./client"
export type { Credentials, MqttOptions, MqttMessage, MqttStats, MqttEvent, MessageHandler } from "./client"
export type { Will } from "./packet"
export { MqttError } from "./packet"
export { topicMatches, topicFilterError, topicNameError } from "./topic"
