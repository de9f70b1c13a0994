/**
 * The running device, once booted (src/device.ts): the report loop on a drift-free schedule with
 * its backlog, the commands and their replies, the status and discovery messages after each
 * connect, and the renewal of expiring credentials, over one cloud profile and MQTT session.
 */
import * as ds from "@devicescript/core"
import { setStatusLight } from "@devicescript/runtime"
import { CloudProfile, ConnectParams, Message } from "../cloud/profile"
import { Config } from "../config"
import { applyCommand, Parsed } from "../model/commands"
import { Device } from "../model/properties"
import { MqttClient, MqttMessage } from "../mqtt"
import { unixNow } from "../net/clock"
import { NetStack } from "../net/stack"
import { Backlog } from "./backlog"
import { Schedule } from "./schedule"
import { Sensor } from "./sensors"
import { millis, sleep, suspend } from "../util/rt"

/** Logs one bring-up phase with its duration. */
export function phase(name: string, startMs: number, result: string) {
    console.log(`boot: ${name}: ${result} (${Math.round(millis() - startMs)} ms)`)
}

/** The running device: sensor, model, schedule, cloud profile and MQTT session. */
export class App {
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
        this.device = new Device(millis(), cfg.reportMs)
        this.sched = new Schedule(cfg.reportMs, millis())
    }

    private now() {
        return this.profile.needsTime ? unixNow() : millis()
    }

    private freshParams(): ConnectParams {
        this.params = this.profile.connectParams(this.now())
        this.issuedAt = this.now()
        return this.params
    }

    async start() {
        const self = this
        const p = this.freshParams()
        this.client = new MqttClient({
            net: this.net,
            host: p.host,
            port: p.port,
            tls: p.tls,
            clientId: p.clientId,
            keepAlive: p.keepAliveS,
            cleanSession: p.cleanSession,
            will: p.will,
            // LOG_LEVEL info/debug: the client logs connects, disconnects and retries
            log: this.cfg.logLevel === "info" || this.cfg.logLevel === "debug",
            // fresh parameters carry the client id, user name and password the client asks for
            credentials: () => self.freshParams(),
        })
        const t0 = millis()
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
        // the report loop (here: a method used once costs its descriptor and a prototype entry):
        // samples on a drift-free schedule, connected or not; the reports wait in the backlog while
        // the connection is down and are forwarded after it
        console.log(`boot: reporting every ${this.device.intervalMs()} ms`)
        const q = this.backlog
        for (;;) {
            const onGrid = this.sched.due(millis())
            if (this.reportNow || onGrid) {
                this.reportNow = false
                let r
                try {
                    r = await this.sensor.read()
                    this.device.measure(r.temperature, r.humidity)
                } catch (e) {
                    console.log(`sensor: read failed: ${(e as Error).message}; reporting the last values`)
                }
                // built now, so it carries the sample's own time however late it goes out
                const msg = this.profile.report(this.device.snapshot(millis()), unixNow())
                this.reports++
                if (this.cfg.logLevel === "debug") console.log(`report #${this.reports} to ${msg.topic}: ${msg.payload}`)
                q.push(msg)
                if (onGrid) this.sched.done(millis())
            }
            // hands queued reports, oldest first, to the client while connected, at most 4 waiting there at a time
            const c = this.client
            if (c.connected) {
                const n = q.takeLost()
                if (n) console.log(`report: ${n} samples dropped during the outage (backlog of ${q.limit} full, oldest first); ${q.dropped} in all`)
                while (q.items.length && c.connected && c.backlog() < 4) await this.send(q.items.shift(), "report", false)
            }
            // a "report now" that came in while the report above or the backlog was being queued:
            // go round again (no await between this check and the suspend, or a kick is missed)
            if (this.reportNow) continue
            this.wake = ds.Fiber.self()
            let wait = this.sched.waitMs(millis())
            // draining the backlog: a few at a time, so replies and the status are not held up behind it
            if (q.items.length) if (c.connected) if (wait > 100) wait = 100
            if (!(wait > 0)) wait = 1
            await suspend(wait)
            this.wake = undefined
        }
    }

    private async subscribe(filter: string, qos: number) {
        const t0 = millis()
        const self = this
        for (;;) {
            try {
                // each command: applied, answered, logged
                const granted = await this.client.subscribe(
                    filter,
                    async (m: MqttMessage) => {
                        const cmd: Parsed = self.profile.parseCommand(m.topic, m.payload)
                        if (!cmd) return
                        const out = applyCommand(self.device, cmd)
                        const r = out.reply
                        const reply = self.profile.reply(cmd, r)
                        if (reply) await self.send(reply, "reply", false)
                        // logged once the reply is on its way: the line costs ~1 ms of an RP2040's core
                        console.log(`command ${cmd.kind} id=${r.id}: ${r.code}${r.message ? " " + r.message : ""}`)
                        if (out.changed.indexOf("interval") >= 0) self.sched.retime(self.device.intervalMs(), millis())
                        // the board's LED (led.pin of the board file, owned by the runtime's status light)
                        if (out.changed.indexOf("led") >= 0) await setStatusLight(self.device.ledOn() ? 0xffffff : 0)
                        if (out.report) self.reportNow = true
                        self.kick()
                    },
                    { qos, timeoutMs: 60000 }
                )
                phase("subscribe", t0, `${filter} (QoS ${granted})`)
                return
            } catch (e) {
                console.log(`boot: subscribe ${filter} failed: ${(e as Error).message}; retrying`)
                await sleep(5000)
            }
        }
    }

    /** After every connect: retained online status and discovery messages, each built when the one before is delivered. */
    private async announce() {
        const st = this.profile.status(true)
        if (st) await this.send(st, "announce")
        for (let i = 0; ; i++) {
            const m = this.profile.discovery(i)
            if (!m) return
            await this.send(m, "announce")
        }
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
            await sleep(1000)
        }
    }
}
