/**
 * A TCP fault proxy for tests: sits between a client (the DeviceScript VM) and a broker on the
 * loopback interface and can forward normally, black-hole the link (sockets stay open, bytes
 * vanish: a half-open link), refuse new connections, reset every connection, delay or fragment
 * the byte stream, and let a test observe every byte in both directions.
 */
import net from "node:net"

/** Direction of bytes: "up" = client -> broker, "down" = broker -> client. */
export type Dir = "up" | "down"

/** Observer of bytes received by the proxy; `forwarded` is false when the bytes were discarded. */
export type TapFn = (dir: Dir, chunk: Buffer, connId: number, forwarded: boolean) => void

/** Counters of a proxy since it started. */
export interface ProxyStats {
    /** client connections accepted (including refused ones) */
    accepted: number
    /** client connections refused (accepted then destroyed at once) */
    refused: number
    /** connections that still have at least one open socket */
    live: number
    /** bytes written to the broker */
    bytesUp: number
    /** bytes written to the client */
    bytesDown: number
    /** bytes from the client discarded by blackhole() */
    droppedUp: number
    /** bytes from the broker discarded by blackhole() */
    droppedDown: number
}

/** Options of FaultProxy.start. */
export interface FaultProxyOptions {
    /** broker address; must be a loopback address */
    targetHost: string
    targetPort: number
    /** port the proxy listens on (127.0.0.1); 0 or absent = ephemeral */
    port?: number
}

type Item = { chunk: Buffer; at: number } | { end: true; at: number }

/** One direction of one connection: an ordered queue of chunks (and the final FIN) to write. */
class Lane {
    queue: Item[] = []
    queuedBytes = 0
    running = false
    constructor(readonly dir: Dir, readonly src: net.Socket, readonly dst: net.Socket, readonly onLostEnd: () => void) {}
}

interface Conn {
    id: number
    client: net.Socket
    upstream: net.Socket
    up: Lane
    down: Lane
    /** a side closed while blackholed; the other side is reset when the link comes back */
    pendingReset: boolean
}

const HIGH_WATER = 1 << 20

function isLoopback(host: string): boolean {
    return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** A running TCP fault proxy (create it with FaultProxy.start). */
export class FaultProxy {
    private server: net.Server
    private conns = new Map<number, Conn>()
    private nextId = 1
    private mode: "pass" | "blackhole" = "pass"
    private refusing = false
    private delayMs = 0
    private splitN = 0
    private taps: TapFn[] = []
    private counters = { accepted: 0, refused: 0, bytesUp: 0, bytesDown: 0, droppedUp: 0, droppedDown: 0 }
    private closed = false
    /** the port the proxy listens on (127.0.0.1) */
    readonly port: number
    /** the proxy's host, for clients */
    readonly host = "127.0.0.1"

    private constructor(server: net.Server, port: number, private opts: FaultProxyOptions) {
        this.server = server
        this.port = port
        server.on("connection", s => this.onConnection(s))
    }

    /** Starts a proxy listening on 127.0.0.1 that forwards to targetHost:targetPort. */
    static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
        if (!isLoopback(opts.targetHost))
            throw new Error(`faultproxy: targetHost must be a loopback address, got "${opts.targetHost}"`)
        if (!Number.isInteger(opts.targetPort) || opts.targetPort < 1 || opts.targetPort > 65535)
            throw new Error(`faultproxy: targetPort must be 1..65535, got ${opts.targetPort}`)
        const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true })
        const port = await new Promise<number>((resolve, reject) => {
            server.once("error", e => reject(new Error(`faultproxy: cannot listen on 127.0.0.1:${opts.port ?? 0}: ${e.message}`)))
            server.listen(opts.port ?? 0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
        })
        return new FaultProxy(server, port, opts)
    }

    /** Normal forwarding; connections that lost a side while black-holed are reset now. */
    pass(): void {
        this.mode = "pass"
        for (const c of [...this.conns.values()]) if (c.pendingReset) this.resetConn(c)
    }

    /** Keeps sockets open but silently discards all bytes (and FINs) both ways, like a dead link. */
    blackhole(): void {
        this.mode = "blackhole"
    }

    /** When on, new connections are accepted then destroyed at once. */
    refuse(on: boolean): void {
        this.refusing = on
    }

    /** Sends a TCP RST on both sides of every live connection. */
    resetAll(): void {
        for (const c of [...this.conns.values()]) this.resetConn(c)
    }

    /** Delays every chunk received from now on by `ms` (order is kept). */
    setDelay(ms: number): void {
        if (!(ms >= 0)) throw new Error(`faultproxy: delay must be >= 0 ms, got ${ms}`)
        this.delayMs = ms
    }

    /** Forwards in writes of at most `n` bytes with a setImmediate between them; 0 = whole chunks. */
    setSplit(n: number): void {
        if (!(Number.isInteger(n) && n >= 0)) throw new Error(`faultproxy: split must be an integer >= 0, got ${n}`)
        this.splitN = n
    }

    /** Observes every chunk received from either side; returns a function that removes the tap. */
    tap(fn: TapFn): () => void {
        this.taps.push(fn)
        return () => {
            this.taps = this.taps.filter(f => f !== fn)
        }
    }

    /** Current counters. */
    stats(): ProxyStats {
        return { ...this.counters, live: this.conns.size }
    }

    /** Resolves when `pred(stats())` holds; rejects after `timeoutMs` naming `what`. */
    async waitFor(pred: (s: ProxyStats) => boolean, timeoutMs = 3000, what = "condition"): Promise<ProxyStats> {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            const s = this.stats()
            if (pred(s)) return s
            if (Date.now() > deadline)
                throw new Error(`faultproxy: timed out after ${timeoutMs} ms waiting for ${what}; stats ${JSON.stringify(s)}`)
            await new Promise(r => setTimeout(r, 10))
        }
    }

    /** Stops listening and destroys every connection. */
    async close(): Promise<void> {
        if (this.closed) return
        this.closed = true
        const done = new Promise<void>(r => this.server.close(() => r()))
        for (const c of [...this.conns.values()]) {
            c.client.destroy()
            c.upstream.destroy()
        }
        this.conns.clear()
        await done
    }

    private onConnection(client: net.Socket): void {
        const id = this.nextId++
        this.counters.accepted++
        client.on("error", () => {})
        if (this.refusing || this.closed) {
            this.counters.refused++
            client.destroy()
            return
        }
        const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort, allowHalfOpen: true })
        const lostEnd = () => {
            c.pendingReset = true
        }
        const c: Conn = {
            id, client, upstream,
            up: new Lane("up", client, upstream, lostEnd),
            down: new Lane("down", upstream, client, lostEnd),
            pendingReset: false,
        }
        this.conns.set(id, c)
        let connected = false
        upstream.once("connect", () => {
            connected = true
            upstream.setNoDelay(true)
            client.setNoDelay(true)
            this.wire(c, c.up)
            this.wire(c, c.down)
            client.resume()
        })
        upstream.on("error", () => {
            // the broker is unreachable: the client sees a reset, like a refused connection
            if (!connected) this.resetConn(c)
        })
        client.once("close", () => {
            if (!connected) upstream.destroy()
        })
        const onClose = () => {
            if (client.destroyed && upstream.destroyed) this.conns.delete(id)
        }
        client.on("close", onClose)
        upstream.on("close", onClose)
    }

    /** Connects one lane: data and FIN from src go through the queue to dst. */
    private wire(c: Conn, lane: Lane): void {
        const { src, dst, dir } = lane
        src.on("data", (chunk: Buffer) => {
            const forwarded = this.mode === "pass"
            for (const t of this.taps) {
                try {
                    t(dir, chunk, c.id, forwarded)
                } catch (e) {
                    console.error(`faultproxy: tap threw: ${(e as Error).message}`)
                }
            }
            if (!forwarded) {
                this.drop(dir, chunk.length)
                return
            }
            this.enqueue(lane, { chunk, at: this.releaseTime(lane) })
        })
        src.on("end", () => {
            if (this.mode === "blackhole") {
                c.pendingReset = true
                return
            }
            this.enqueue(lane, { end: true, at: this.releaseTime(lane) })
        })
        src.on("close", () => {
            if (dst.destroyed) return
            if (this.mode === "blackhole") {
                c.pendingReset = true
                return
            }
            // an abrupt close (error or destroy) without a FIN is passed on as a reset
            if (!src.readableEnded) dst.resetAndDestroy()
        })
        src.on("error", () => {})
        dst.on("drain", () => {
            if (lane.queuedBytes < HIGH_WATER && src.isPaused()) src.resume()
        })
    }

    private releaseTime(lane: Lane): number {
        const last = lane.queue.length ? lane.queue[lane.queue.length - 1].at : 0
        return Math.max(Date.now() + this.delayMs, last)
    }

    private drop(dir: Dir, n: number): void {
        if (dir === "up") this.counters.droppedUp += n
        else this.counters.droppedDown += n
    }

    private enqueue(lane: Lane, item: Item): void {
        lane.queue.push(item)
        if ("chunk" in item) {
            lane.queuedBytes += item.chunk.length
            if (lane.queuedBytes >= HIGH_WATER) lane.src.pause()
        }
        if (!lane.running) void this.run(lane)
    }

    /** Writes a lane's queue in order, honouring delay, split and blackhole at write time. */
    private async run(lane: Lane): Promise<void> {
        lane.running = true
        try {
            while (lane.queue.length) {
                const item = lane.queue[0]
                const wait = item.at - Date.now()
                if (wait > 0) await new Promise(r => setTimeout(r, wait))
                lane.queue.shift()
                if (lane.dst.destroyed) {
                    lane.queue = []
                    lane.queuedBytes = 0
                    break
                }
                if (!("chunk" in item)) {
                    if (this.mode === "pass") lane.dst.end()
                    else lane.onLostEnd()
                    continue
                }
                lane.queuedBytes -= item.chunk.length
                if (this.mode !== "pass") {
                    this.drop(lane.dir, item.chunk.length)
                    continue
                }
                let ok = true
                const n = this.splitN
                if (n > 0 && item.chunk.length > n) {
                    for (let i = 0; i < item.chunk.length; i += n) {
                        if (i > 0) await new Promise(r => setImmediate(r))
                        if (lane.dst.destroyed) break
                        if (this.mode !== "pass") {
                            this.drop(lane.dir, item.chunk.length - i)
                            break
                        }
                        const piece = item.chunk.subarray(i, Math.min(i + n, item.chunk.length))
                        ok = lane.dst.write(piece)
                        this.count(lane.dir, piece.length)
                    }
                } else {
                    ok = lane.dst.write(item.chunk)
                    this.count(lane.dir, item.chunk.length)
                }
                if (!ok) lane.src.pause()
            }
        } finally {
            lane.running = false
            if (lane.queuedBytes < HIGH_WATER && !lane.dst.writableNeedDrain && lane.src.isPaused() && !lane.src.destroyed)
                lane.src.resume()
        }
    }

    private count(dir: Dir, n: number): void {
        if (dir === "up") this.counters.bytesUp += n
        else this.counters.bytesDown += n
    }

    private resetConn(c: Conn): void {
        c.pendingReset = false
        if (!c.client.destroyed) c.client.resetAndDestroy()
        if (!c.upstream.destroyed) c.upstream.resetAndDestroy()
        this.conns.delete(c.id)
    }
}
