/**
 * Azure IoT Hub device credentials: a shared access signature (SAS) from the device's
 * symmetric key, as described in docs/platforms.md.
 */
import { hmac } from "@devicescript/crypto"
import { MqttCredentials, decodeKey, expiry, forbidChar, requireText } from "./credentials"
import { base64Encode, urlEncode } from "./encoding"

/** Setting names the Azure identity comes from (used in error messages). */
export const AZURE_SETTINGS = {
    hubHost: "AZURE_HOST",
    deviceId: "AZURE_DEVICE",
    deviceKey: "AZURE_KEY",
}

/** An IoT Hub device with a symmetric key. */
export interface AzureIdentity {
    /** the hub's host name, e.g. `myhub.azure-devices.net` */
    hubHost: string
    deviceId: string
    /** base64 primary or secondary key of the device */
    deviceKey: string
}

/** The MQTT API version the username announces. */
export const AZURE_API_VERSION = "2021-04-12"

/** Mints IoT Hub MQTT credentials whose SAS expires `lifetimeSec` after `nowMs` (Unix ms). */
export function signAzure(id: AzureIdentity, nowMs: number, lifetimeSec = 3600): MqttCredentials {
    const P = "azure"
    const S = AZURE_SETTINGS
    requireText(P, S.hubHost, id.hubHost, 253)
    requireText(P, S.deviceId, id.deviceId, 128)
    forbidChar(P, S.hubHost, id.hubHost, "/")
    const key = decodeKey(P, S.deviceKey, id.deviceKey)
    const se = expiry(P, nowMs, lifetimeSec)
    const sr = urlEncode(`${id.hubHost}/devices/${id.deviceId}`)
    const sig = base64Encode(hmac(key, "sha256", sr, "\n", `${se}`))
    return {
        clientId: id.deviceId,
        username: `${id.hubHost}/${id.deviceId}/?api-version=${AZURE_API_VERSION}`,
        password: `SharedAccessSignature sr=${sr}&sig=${urlEncode(sig)}&se=${se}`,
        expires: se,
    }
}
