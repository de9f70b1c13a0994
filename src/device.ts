/**
 * The composition root and boot sequence, whatever the image: config -> cloud platform -> network
 * -> time, the sensor's probe beside the network and the time, then the running device (`App`, src/app/app.ts: MQTT, reports, commands). An image (src/images/) says which platform, networks and sensors are built in (the
 * VM's 64 KB bytecode limit leaves room for one platform and one target's drivers). Each bring-up
 * phase is logged once with its result and duration; failures are logged with the reason and
 * retried with backoff, never a silent hang.
 */
import * as ds from "@devicescript/core"
import { App, phase } from "./app/app"
import { Sensor } from "./app/sensors"
import { CloudProfile } from "./cloud/profile"
import { Config, ConfigError, describeConfig, loadConfig } from "./config"
import { Image, NetStarter } from "./image"
import { timeKnown, timeSource, untilTimeKnown } from "./net/clock"
import { NetStack } from "./net/stack"
import { millis, sleep } from "./util/rt"
import { Signal } from "./util/signal"

/** Sleeps forever without reporting: the device cannot run with this configuration. */
async function halt(reason: string) {
    for (;;) {
        console.log(`boot: halted: ${reason}`)
        await sleep(60000)
    }
}

const log = (msg: string) => console.log(msg)

/** Boots the device the image describes and runs it; returns only when the configuration stops it. */
export async function runDevice(image: Image) {
    const bootT = millis()
    console.log(`boot: firmware image ${image.name}`)
    const read = image.settings ? await image.settings() : undefined
    let cfg: Config
    let profile: CloudProfile
    try {
        cfg = await loadConfig(read)
        if (cfg.cloud !== image.platform.kind)
            throw new ConfigError([
                `CLOUD=${cfg.cloud}, but this image (${image.name}) carries the ${image.platform.kind} platform only ` +
                    `(one platform fits in an image): npm start, npm run build and npm run bundle pick the image from CLOUD`,
            ])
        // the platform reads its own settings and may fill in the broker's host
        profile = await image.platform.create(cfg, log, read)
        phase("config", bootT, describeConfig(cfg))
    } catch (e) {
        const m = (e as Error).message
        console.log(e instanceof ConfigError ? m : `config: ${m}`)
        return await halt("fix the settings above and restart")
    }

    // the network NET asks for among those the image carries ("auto": the runtime's sockets when
    // the image has them and runs in the simulator or has no W5500 (Pico W), the W5500 otherwise)
    let kind: string = cfg.net
    if (kind === "auto") kind = image.host && (ds.isSimulator() || !image.w5500) ? "host" : "w5500"
    const start: NetStarter = kind === "host" ? image.host : image.w5500
    if (!start) {
        console.log(
            `config: NET=${cfg.net}: this image (${image.name}) has no ${kind} network` +
                (kind === "host" ? " (the runtime's sockets exist only in the simulator)" : " (its platform needs TLS, which the W5500 path lacks)")
        )
        return await halt("no network")
    }
    // the sensor's probe (an AHT20's takes one 80 ms measurement) runs while the network comes up
    let sensor: Sensor
    let sensorError: Error
    let probing = true
    const probed = new Signal()
    const probe = async () => {
        try {
            sensor = await image.sensors(cfg.sensor, log)
        } catch (e) {
            sensorError = e as Error
        }
        probing = false
        probed.notify()
    }
    probe.start()

    let t0 = millis()
    let stack: NetStack
    for (let attempt = 0; !stack; attempt++) {
        try {
            stack = await start(cfg, log)
        } catch (e) {
            const wait = Math.min(30000, 1000 << Math.min(attempt, 5))
            console.log(`boot: network failed: ${(e as Error).message}; retrying in ${wait} ms`)
            await sleep(wait)
        }
    }
    phase("network", t0, stack.name === "host" ? "runtime sockets" : stack.name)

    if ((profile.requiresTls || cfg.mqttTls) && !stack.tls) {
        console.log(
            `config: ${profile.requiresTls ? profile.name + " accepts only TLS connections" : "MQTT_TLS=true"}, and the ${stack.name} network has no TLS ` +
                "(the W5500 on the stock runtime is plain TCP). Use the desktop simulator with NET=host, " +
                "or choose a platform that allows plain MQTT."
        )
        return await halt("platform needs TLS")
    }

    // the wall-clock time (tokens and timestamps need it). A platform that does not need it still
    // gets timestamps if SNTP answers soon (the wait ends when the time is set: polling it every
    // 250 ms cost up to 250 ms of every boot). (In line: a function used once costs its descriptor.)
    t0 = millis()
    const sntp = stack.name === "w5500" && cfg.ntpServers.length > 0
    if ((!profile.needsTime && sntp && (await untilTimeKnown(5000))) || timeKnown()) phase("time", t0, `${timeSource()} clock`)
    else if (!profile.needsTime) phase("time", t0, "unknown; reports carry no timestamp until it is set")
    else {
        console.log(`boot: time: waiting for the clock: ${profile.name} credentials need the real time`)
        while (!(await untilTimeKnown(60000)));
        phase("time", t0, `${timeSource()} clock`)
    }
    while (probing) await probed.wait(1000)
    if (sensorError) throw sensorError
    phase("ready", bootT, `${profile.name} profile, device ${cfg.deviceId}`)
    await new App(cfg, stack, profile, sensor).start()
}
