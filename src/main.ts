/**
 * The firmware's composition root: config -> network -> time -> cloud -> MQTT -> tasks.
 * Each bring-up phase is logged once with its result and duration; failures are logged with the
 * reason and retried with backoff, never a silent hang.
 */
import * as ds from "@devicescript/core"
import { applyCommand, Parsed } from "./app/commands"
import { Device } from "./app/properties"
import { Schedule } from "./app/schedule"
import { Sensor, startSimSensor } from "./app/sensors"
import { startBoardSensor } from "./app/i2c-sensors"
import { CloudProfile, ConnectParams, Message } from "./cloud/profile"
import { createProfile } from "./cloud"
import { Config, ConfigError, describeConfig, loadConfig } from "./config"
import { MqttClient, MqttMessage } from "./mqtt"
import { timeKnown, timeSource, unixNow } from "./net/clock"
import { HostStack } from "./net/host"
import { NetStack } from "./net/stack"
import { loadSimSettings } from "./sim/hostlink"

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

/**
 * Chooses the network. Only the runtime's socket is built into this image: the W5500 stack
 * (src/net/wiznet) does not fit beside the application in one DeviceScript image (the VM caps the
 * bytecode of all functions at 64 KB), so NET=w5500 stops here with that reason.
 */
async function startNetwork(cfg: Config): Promise<NetStack> {
    if (cfg.net === "w5500" || (cfg.net === "auto" && !ds.isSimulator()))
        throw new Error(
            "NET=w5500: the W5500 stack is not built into this firmware image (with it the image exceeds the " +
                "DeviceScript VM's 64 KB bytecode limit); see the README's limits. Use NET=host in the simulator."
        )
    return new HostStack()
}

/** Waits until the wall-clock time is known (tokens and timestamps need it). */
async function waitForTime(profile: CloudProfile) {
    const t0 = ds.millis()
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

    private async send(m: Message, what: string): Promise<boolean> {
        try {
            await this.client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain })
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
        if (reply) this.sendQuietly.start(reply, "reply")
        if (out.changed.indexOf("interval") >= 0) this.sched.setInterval(this.device.intervalMs(), ds.millis())
        if (out.report) this.reportNow = true
        this.kick()
    }

    private async sendQuietly(m: Message, what: string) {
        await this.send(m, what)
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

    /** Reports on a drift-free schedule while connected; one report right after recovery. */
    private async reportLoop() {
        console.log(`boot: reporting every ${this.device.intervalMs()} ms`)
        for (;;) {
            const now = ds.millis()
            if (this.client.connected && (this.reportNow || this.sched.due(now))) {
                const onGrid = this.sched.due(now)
                this.reportNow = false
                await this.report()
                if (onGrid) this.sched.done(ds.millis())
            }
            this.wake = ds.Fiber.self()
            const wait = this.client.connected ? this.sched.waitMs(ds.millis()) : 1000
            await ds.suspend(wait > 0 ? wait : 1)
            this.wake = undefined
        }
    }

    private async report() {
        let r
        try {
            r = await this.sensor.read()
            this.device.measure(r.temperature, r.humidity)
        } catch (e) {
            console.log(`sensor: read failed: ${(e as Error).message}; reporting the last values`)
        }
        const msg = this.profile.report(this.device.snapshot(ds.millis()), unixNow())
        this.reports++
        if (this.cfg.logLevel === "debug") console.log(`report #${this.reports} to ${msg.topic}: ${msg.payload}`)
        this.sendQuietly.start(msg, "report")
    }
}

/** Boots the device and runs it; returns only when the configuration stops it. */
export async function runDevice() {
    const bootT = ds.millis()
    const fromHost = await loadSimSettings()
    if (fromHost >= 0) console.log(`boot: simulator: ${fromHost} settings from the host link`)
    let cfg: Config
    try {
        cfg = await loadConfig()
    } catch (e) {
        if (e instanceof ConfigError) {
            console.log((e as Error).message)
            return await halt("fix the settings above and restart")
        }
        throw e
    }
    let profile: CloudProfile
    try {
        profile = await createProfile(cfg)
    } catch (e) {
        const m = (e as Error).message
        console.log(e instanceof ConfigError ? m : `config: ${m}`)
        return await halt("fix the settings above and restart")
    }
    phase("config", bootT, describeConfig(cfg))

    let t0 = ds.millis()
    let net: NetStack
    for (let attempt = 0; !net; attempt++) {
        try {
            net = await startNetwork(cfg)
        } catch (e) {
            console.log(`boot: network failed: ${(e as Error).message}`)
            if (cfg.net !== "host") return await halt("no network")
            await ds.sleep(Math.min(30000, 1000 << attempt))
        }
    }
    phase("network", t0, net.name === "host" ? "runtime sockets" : net.name)

    if (profile.requiresTls && !net.tls) {
        console.log(
            `config: ${profile.name} accepts only TLS connections, and the ${net.name} network has no TLS ` +
                "(the W5500 on the stock runtime is plain TCP). Use the desktop simulator or a board whose runtime has TLS, " +
                "or choose a platform that allows plain MQTT."
        )
        return await halt("platform needs TLS")
    }

    await waitForTime(profile)
    const log = (m: string) => console.log(m)
    const sensor = await (ds.isSimulator() ? startSimSensor : startBoardSensor)(cfg.sensor, log)
    phase("ready", bootT, `${profile.name} profile, device ${cfg.deviceId}`)
    await new App(cfg, net, profile, sensor).start()
}

await runDevice()
