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

/** The runtime's socket events go to the current connection (never one that is done: ending it clears `current`). */
function onSocketEvent(event: SocketEvent, arg?: Buffer | string) {
    const c = current
    if (!c) return
    if (event === "data") c.chunks.push(arg as Buffer)
    else if (event === "open") c.open = true
    else if (event === "close" || event === "error") {
        c.done = true
        if (event === "error") c.error = arg + ""
        current = undefined
    } else return
    c.signal.notify()
}

// fields not private: onSocketEvent and HostStack.connect use them (the class is not exported)
class HostConnection implements Connection {
    chunks: Buffer[] = []
    /** woken by every event */
    signal = new Signal()
    // (both start undefined: only their truth is read)
    done: boolean
    open: boolean
    error: string

    constructor(readonly name: string) {}

    async send(data: Buffer) {
        for (let tries = 0; ; tries++) {
            // (a connection that is done is no longer `current`)
            if (current !== this)
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
            await this.signal.wait(left)
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
        let proto = "tcp"
        let port = opts.port
        if (opts.tls) {
            // the runtime takes TLS as a negative port
            proto = "tls"
            port = -port
        }
        const c = new HostConnection(`${proto}://${opts.host}:${opts.port}`)
        if (current) await current.close()
        rt._socketOnEvent = onSocketEvent
        current = c
        const r = rt._socketOpen(opts.host, port)
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
            await c.signal.wait(left)
        }
        return c
    }
}
