/**
 * `HostStack`: the runtime's own socket (the simulator, Pico W, ESP32). The runtime has exactly
 * one socket: opening a connection ends the previous one.
 */
import * as ds from "@devicescript/core"
import { Signal } from "../util/signal"
import { Connection, ConnectOptions, NetStack } from "./stack"
import { millis, sleep } from "../util/rt"

type SocketEvent = "open" | "close" | "data" | "error"
type DsSockets = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer): number
    _socketOnEvent(event: SocketEvent, arg?: Buffer | string): void
}
const rt = ds as DsSockets

let current: HostConnection

function onSocketEvent(event: SocketEvent, arg?: Buffer | string) {
    const c = current
    if (!c) return
    if (event === "data") c._push(arg as Buffer)
    else if (event === "open") c._opened()
    else if (event === "close") c._end(undefined)
    else if (event === "error") c._end(arg + "")
}

class HostConnection implements Connection {
    private chunks: Buffer[] = []
    private signal = new Signal()
    private done = false
    open = false
    error: string

    constructor(readonly name: string) {}

    _push(b: Buffer) {
        if (this.done) return
        this.chunks.push(b)
        this.signal.notify()
    }
    _opened() {
        this.open = true
        this.signal.notify()
    }
    _end(err: string) {
        if (this.done) return
        this.done = true
        if (err !== undefined) this.error = err
        if (current === this) current = undefined
        this.signal.notify()
    }
    /** Suspends until woken or `ms` passes; true when woken. */
    async _wait(ms: number) {
        return await this.signal.wait(ms)
    }

    async send(data: Buffer) {
        for (let tries = 0; ; tries++) {
            if (this.done || current !== this)
                throw new Error(`${this.name}: connection closed${this.error ? " (" + this.error + ")" : ""}`)
            const r = rt._socketWrite(data)
            if (r === 0) return
            // -1: the runtime is still sending the previous buffer; anything else is fatal
            if (r !== -1 || tries > 500) {
                await this.close()
                throw new Error(`${this.name}: send failed (${r})`)
            }
            await sleep(10)
        }
    }

    async recv(timeoutMs: number): Promise<Buffer | null | undefined> {
        const deadline = millis() + timeoutMs
        for (;;) {
            if (this.chunks.length) return this.chunks.shift()
            if (this.done) return null
            const left = deadline - millis()
            if (left <= 0) return undefined
            await this._wait(left)
        }
    }

    async close() {
        if (current === this) {
            current = undefined
            rt._socketClose()
        }
        this.done = true
        this.chunks = []
        this.signal.notify()
    }
}

/** The runtime's single socket as a `NetStack`. */
export class HostStack implements NetStack {
    readonly name = "host"
    readonly tls = true

    async connect(opts: ConnectOptions): Promise<Connection> {
        const proto = opts.tls ? "tls" : "tcp"
        const c = new HostConnection(`${proto}://${opts.host}:${opts.port}`)
        if (current) await current.close()
        rt._socketOnEvent = onSocketEvent
        current = c
        const r = rt._socketOpen(opts.host, opts.tls ? -opts.port : opts.port)
        if (r !== 0) {
            current = undefined
            throw new Error(`${c.name}: cannot open socket (${r})`)
        }
        const deadline = millis() + (opts.timeoutMs || 10000)
        while (!c.open) {
            const left = deadline - millis()
            // an error or a close event ends `current` (and events reach only `current`)
            const why = current !== c ? c.error || "closed" : left <= 0 ? "timed out" : undefined
            if (why) {
                await c.close()
                throw new Error(`${c.name}: connect failed: ${why}`)
            }
            await c._wait(left)
        }
        return c
    }
}
