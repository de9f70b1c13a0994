/**
 * The device, whatever the image: config -> cloud platform -> network -> time -> sensor -> MQTT
 * -> tasks. An image (src/images/) says which platform, networks and sensors are built in (the
 * VM's 64 KB bytecode limit leaves room for one platform and one target's drivers). Each bring-up
 * phase is logged once with its result and duration; failures are logged with the reason and
 * retried with backoff, never a silent hang.
 */
import * as ds from "@devicescript/core"
import { setStatusLight } from "@devicescript/runtime"
import { Backlog } from "./app/backlog"
import { applyCommand, Parsed } from "./app/commands"
import { Device } from "./app/properties"
import { Schedule } from "./app/schedule"
import { Sensor } from "./app/sensors"
import { CloudProfile, ConnectParams, Message } from "./cloud/profile"
import { Config, ConfigError, describeConfig, loadConfig } from "./config"
import { Image, NetStarter } from "./image"
import { MqttClient, MqttMessage } from "./mqtt"
import { timeKnown, timeSource, unixNow } from "./net/clock"
import { NetStack } from "./net/stack"

/** Logs one bring-up phase with its duration. */
function phase(name: string, startMs: number, result: string) {
    console.log(`boot: ${name}: ${result} (${Math.round(ds.millis() - startMs)} ms)`)
}

/** Sleeps forever without reporting: the device cannot run with this configuration. */
async function halt(reason: string) {
    for (;;) {
        console.log(`boot: halted: ${reason}`)
        await ds.sleep(60000)
    }
}

const log = (msg: string) => console.log(msg)

/**
 * The network NET asks for among those the image carries ("auto": the runtime's sockets when the
 * image has them and runs in the simulator or has no W5500 (Pico W), the W5500 otherwise).
 */
function chooseNetwork(image: Image, cfg: Config): { kind: string; start?: NetStarter } {
    let kind: string = cfg.net
    if (kind === "auto") kind = image.host && (ds.isSimulator() || !image.w5500) ? "host" : "w5500"
    return { kind, start: kind === "host" ? image.host : image.w5500 }
}

/** Waits until the wall-clock time is known (tokens and timestamps need it). */
async function waitForTime(profile: CloudProfile, sntp: boolean) {
    const t0 = ds.millis()
    // a platform that does not need the time still gets timestamps if SNTP answers soon
    if (!profile.needsTime && sntp) for (let i = 0; i < 20 && !timeKnown(); i++) await ds.sleep(250)
    if (timeKnown()) {
        phase("time", t0, `${timeSource()} clock`)
        return
    }
    if (!profile.needsTime) {
        phase("time", t0, "unknown; reports carry no timestamp until it is set")
        return
    }
    console.log(`boot: time: waiting for the clock: ${profile.name} credentials need the real time`)
    while (!timeKnown()) await ds.sleep(500)
    phase("time", t0, `${timeSource()} clock`)
}

/** The running device: sensor, model, schedule, cloud profile and MQTT session. */
class App {
    private device: Device
    private sched: Schedule
    private client: MqttClient
    private params: ConnectParams
    private issuedAt = 0
    private wake: ds.Fiber
    private reportNow = false
    private backlog = new Backlog()
    reports = 0

    constructor(private cfg: Config, private net: NetStack, private profile: CloudProfile, private sensor: Sensor) {
        this.device = new Device(ds.millis(), cfg.reportMs)
        this.sched = new Schedule(cfg.reportMs, ds.millis())
    }

    private now() {
        return this.profile.needsTime ? unixNow() : ds.millis()
    }

    private freshParams(): ConnectParams {
        this.params = this.profile.connectParams(this.now())
        this.issuedAt = this.now()
        return this.params
    }

    async start() {
        const self = this
        const p = this.freshParams()
        const will = p.will
        this.client = new MqttClient({
            net: this.net,
            host: p.host,
            port: p.port,
            tls: p.tls,
            clientId: p.clientId,
            keepAlive: p.keepAliveS,
            cleanSession: p.cleanSession,
            will: will ? { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain } : undefined,
            // LOG_LEVEL info/debug: the client logs connects, disconnects and retries
            log: this.cfg.logLevel === "info" || this.cfg.logLevel === "debug",
            credentials: () => {
                const f = self.freshParams()
                return { clientId: f.clientId, username: f.username, password: f.password }
            },
        })
        const t0 = ds.millis()
        let first = true
        this.client.on(ev => {
            if (ev.type === "connected") {
                if (first) phase("mqtt", t0, `connected to ${p.host}:${p.port}${p.tls ? " (TLS)" : ""}`)
                first = false
                self.announce.start()
                self.kick()
            }
        })
        this.client.start()
        for (const s of this.profile.subscriptions()) this.subscribe.start(s.filter, s.qos)
        this.renewLoop.start()
        await this.reportLoop()
    }

    private async subscribe(filter: string, qos: number) {
        const t0 = ds.millis()
        const self = this
        for (;;) {
            try {
                const granted = await this.client.subscribe(filter, async (m: MqttMessage) => await self.onMessage(m), { qos, timeoutMs: 60000 })
                phase("subscribe", t0, `${filter} (QoS ${granted})`)
                return
            } catch (e) {
                console.log(`boot: subscribe ${filter} failed: ${(e as Error).message}; retrying`)
                await ds.sleep(5000)
            }
        }
    }

    /** After every connect: retained online status and discovery messages. */
    private async announce() {
        const msgs: Message[] = []
        const st = this.profile.status(true)
        if (st) msgs.push(st)
        if (this.cfg.haDiscovery) for (const m of this.profile.discovery()) msgs.push(m)
        for (const m of msgs) await this.send(m, "announce")
    }

    /** Publishes `m`; `wait`: until delivered (PUBACK), otherwise until queued in the outbox. */
    private async send(m: Message, what: string, wait = true): Promise<boolean> {
        try {
            await this.client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, wait })
            return true
        } catch (e) {
            console.log(`${what}: not sent: ${(e as Error).message}`)
            return false
        }
    }

    private async onMessage(m: MqttMessage) {
        const cmd: Parsed = this.profile.parseCommand(m.topic, m.payload)
        if (!cmd) return
        const out = applyCommand(this.device, cmd)
        const r = out.reply
        console.log(`command ${cmd.kind} id=${r.id}: ${r.code}${r.message ? " " + r.message : ""}`)
        const reply = this.profile.reply(cmd, r)
        if (reply) await this.send(reply, "reply", false)
        if (out.changed.indexOf("interval") >= 0) this.sched.retime(this.device.intervalMs(), ds.millis())
        // the board's LED (led.pin of the board file, owned by the runtime's status light)
        if (out.changed.indexOf("led") >= 0) await setStatusLight(this.device.ledOn() ? 0xffffff : 0)
        if (out.report) this.reportNow = true
        this.kick()
    }

    private kick() {
        const w = this.wake
        if (w && w.suspended) w.resume(true)
    }

    /** Renews expiring credentials (tokens) at 80% of their lifetime. */
    private async renewLoop() {
        for (;;) {
            const exp = this.params.expiresAtMs
            if (exp > 0) {
                const renewAt = this.issuedAt + (exp - this.issuedAt) * 0.8
                if (this.now() >= renewAt && this.client.connected) {
                    console.log("mqtt: credentials expire soon: reconnecting with fresh ones")
                    await this.client.reconnect()
                }
            }
            await ds.sleep(1000)
        }
    }

    /**
     * Samples on a drift-free schedule, connected or not; the reports wait in the backlog while
     * the connection is down and are forwarded after it.
     */
    private async reportLoop() {
        console.log(`boot: reporting every ${this.device.intervalMs()} ms`)
        const q = this.backlog
        for (;;) {
            const now = ds.millis()
            if (this.reportNow || this.sched.due(now)) {
                const onGrid = this.sched.due(now)
                this.reportNow = false
                await this.report()
                if (onGrid) this.sched.done(ds.millis())
            }
            await this.forward()
            // a "report now" that came in while the report above or the backlog was being queued:
            // go round again (no await between this check and the suspend, or a kick is missed)
            if (this.reportNow) continue
            this.wake = ds.Fiber.self()
            let wait = this.sched.waitMs(ds.millis())
            // draining the backlog: a few at a time, so replies and the status are not held up behind it
            if (q.items.length && this.client.connected && wait > 100) wait = 100
            await ds.suspend(wait > 0 ? wait : 1)
            this.wake = undefined
        }
    }

    /** Hands queued reports, oldest first, to the client while connected, at most 4 waiting there at a time. */
    private async forward() {
        const c = this.client
        const q = this.backlog
        if (!c.connected) return
        const n = q.takeLost()
        if (n) console.log(`report: ${n} samples dropped during the outage (backlog of ${q.limit} full, oldest first); ${q.dropped} in all`)
        while (q.items.length && c.connected && c.backlog() < 4) await this.send(q.items.shift(), "report", false)
    }

    private async report() {
        let r
        try {
            r = await this.sensor.read()
            this.device.measure(r.temperature, r.humidity)
        } catch (e) {
            console.log(`sensor: read failed: ${(e as Error).message}; reporting the last values`)
        }
        // built now, so it carries the sample's own time however late it goes out
        const msg = this.profile.report(this.device.snapshot(ds.millis()), unixNow())
        this.reports++
        if (this.cfg.logLevel === "debug") console.log(`report #${this.reports} to ${msg.topic}: ${msg.payload}`)
        this.backlog.push(msg)
    }
}

/** Boots the device the image describes and runs it; returns only when the configuration stops it. */
export async function runDevice(image: Image) {
    const bootT = ds.millis()
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

    const net = chooseNetwork(image, cfg)
    if (!net.start) {
        console.log(
            `config: NET=${cfg.net}: this image (${image.name}) has no ${net.kind} network` +
                (net.kind === "host" ? " (the runtime's sockets exist only in the simulator)" : " (its platform needs TLS, which the W5500 path lacks)")
        )
        return await halt("no network")
    }
    let t0 = ds.millis()
    let stack: NetStack
    for (let attempt = 0; !stack; attempt++) {
        try {
            stack = await net.start(cfg, log)
        } catch (e) {
            const wait = Math.min(30000, 1000 << Math.min(attempt, 5))
            console.log(`boot: network failed: ${(e as Error).message}; retrying in ${wait} ms`)
            await ds.sleep(wait)
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

    await waitForTime(profile, stack.name === "w5500" && cfg.ntpServers.length > 0)
    const sensor = await image.sensors(cfg.sensor, log)
    phase("ready", bootT, `${profile.name} profile, device ${cfg.deviceId}`)
    await new App(cfg, stack, profile, sensor).start()
}
