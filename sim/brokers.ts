/**
 * MQTT brokers for tests, on 127.0.0.1 only: an in-process aedes and a spawned Mosquitto, behind
 * one `Broker` shape that can be stopped (like a crash or a shutdown) and started again on the
 * same port with its persisted sessions, so tests can exercise reconnects and session resumption.
 */
import net from "node:net"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { Aedes, type AedesOptions, type AuthenticateError } from "aedes"

/** A broker a test can stop and start again on the same port. */
export interface Broker {
    readonly kind: "aedes" | "mosquitto"
    readonly host: "127.0.0.1"
    readonly port: number
    /** "mqtt://127.0.0.1:<port>" */
    readonly url: string
    /** true between start() (or creation) and stop() */
    readonly running: boolean
    /** Stops listening and drops every client; persisted state (sessions, queued QoS 1/2, retained) is kept. */
    stop(): Promise<void>
    /** Listens again on the same port with the kept state. */
    start(): Promise<void>
    /** Stops for good and frees everything. */
    close(): Promise<void>
}

/** Decides a CONNECT: returns a CONNACK return code (0 accept, 2 bad client id, 4 bad user name or password, 5 not authorised). */
export type AuthenticateFn = (clientId: string, username: string | undefined, password: Buffer | undefined) => number | Promise<number>

/** Options of startAedes. */
export interface AedesBrokerOptions {
    /** 0 or absent = ephemeral */
    port?: number
    authenticate?: AuthenticateFn
    /** more aedes options (keepaliveLimit, connectTimeout, ...); `authenticate` above wins */
    options?: AedesOptions
}

/** An in-process aedes broker. */
export interface AedesBroker extends Broker {
    readonly kind: "aedes"
    readonly aedes: Aedes
}

const HOST = "127.0.0.1" as const

function listen(server: net.Server, port: number, what: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const onError = (e: NodeJS.ErrnoException) => {
            reject(new Error(e.code === "EADDRINUSE" ? `${what}: port ${port} is in use` : `${what}: cannot listen on ${HOST}:${port}: ${e.message}`))
        }
        server.once("error", onError)
        server.listen(port, HOST, () => {
            server.off("error", onError)
            resolve((server.address() as net.AddressInfo).port)
        })
    })
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/**
 * Starts aedes on 127.0.0.1. stop() closes the listener and destroys every client socket (like a
 * crash: no DISCONNECT; aedes still publishes the Wills of the dropped clients) but keeps the
 * broker and its in-memory persistence; start() listens again on the same port.
 */
export async function startAedes(opts: AedesBrokerOptions = {}): Promise<AedesBroker> {
    const options: AedesOptions = { ...opts.options }
    const auth = opts.authenticate
    if (auth) {
        options.authenticate = (client, username, password, done) => {
            Promise.resolve()
                .then(() => auth(client.id, username ?? undefined, password ?? undefined))
                .then(rc => {
                    if (rc === 0) return done(null, true)
                    const code = Number.isInteger(rc) && rc >= 1 && rc <= 5 ? rc : 5
                    const err = new Error(`aedes: authenticate refused client ${JSON.stringify(client.id)} with CONNACK ${code}`)
                    done(Object.assign(err, { returnCode: code }) as AuthenticateError, false)
                }, (e: unknown) => {
                    const err = new Error(`aedes: authenticate threw for client ${JSON.stringify(client.id)}: ${(e as Error)?.message ?? e}`)
                    done(Object.assign(err, { returnCode: 3 }) as AuthenticateError, false)
                })
        }
    }
    const aedes = await Aedes.createBroker(options)
    const sockets = new Set<net.Socket>()
    let server: net.Server | undefined
    let port = opts.port ?? 0
    let closed = false

    const open = async () => {
        const s = net.createServer(sock => {
            sockets.add(sock)
            sock.on("close", () => sockets.delete(sock))
            sock.on("error", () => {})
            aedes.handle(sock)
        })
        port = await listen(s, port, "aedes")
        server = s
    }
    await open()

    const stop = async () => {
        const s = server
        if (!s) return
        server = undefined
        const done = new Promise<void>(r => s.close(() => r()))
        for (const sock of sockets) sock.destroy()
        await done
        // let aedes finish tearing the sessions down (subscriptions stay persisted)
        const deadline = Date.now() + 2000
        while (aedes.connectedClients > 0 && Date.now() < deadline) await sleep(5)
    }

    return {
        kind: "aedes",
        host: HOST,
        get port() { return port },
        get url() { return `mqtt://${HOST}:${port}` },
        get running() { return server !== undefined },
        aedes,
        stop,
        async start() {
            if (closed) throw new Error("aedes: start() after close()")
            if (!server) await open()
        },
        async close() {
            if (closed) return
            closed = true
            await stop()
            await new Promise<void>(r => aedes.close(() => r()))
        },
    }
}

/** Path of an executable found in well-known places or on PATH, or undefined. */
function findExecutable(name: string, extra: string[]): string | undefined {
    const dirs = [...extra, ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean)]
    for (const d of dirs) {
        const p = path.join(d, name)
        try {
            fs.accessSync(p, fs.constants.X_OK)
            if (fs.statSync(p).isFile()) return p
        } catch {}
    }
    return undefined
}

/** Path of the mosquitto binary (/usr/sbin, /usr/local/sbin, then PATH), or undefined when it is not installed. */
export function mosquittoPath(): string | undefined {
    return findExecutable("mosquitto", ["/usr/sbin", "/usr/local/sbin"])
}

/** Options of startMosquitto. */
export interface MosquittoOptions {
    /** 0 or absent = a free port picked once and kept across restarts */
    port?: number
    /** user name -> password; when given, anonymous clients are refused */
    users?: Record<string, string>
    /** keep sessions, queued messages and retained messages across stop()/start() (saved on SIGTERM) */
    persistence?: boolean
    /** extra mosquitto.conf lines (e.g. "max_keepalive 10") */
    config?: string[]
    /** how long to wait for the broker to accept TCP; default 5000 ms */
    readyTimeoutMs?: number
}

/** A Mosquitto process. */
export interface MosquittoBroker extends Broker {
    readonly kind: "mosquitto"
    /** the temp dir holding mosquitto.conf, the log, passwords and the persistence db */
    readonly dir: string
    /** SIGKILL and wait: a crash (nothing saved since the last autosave) */
    crash(): Promise<void>
    /** last `n` lines of the broker log (and of its stderr) */
    logTail(n?: number): string
}

// --- child process hygiene: no orphan brokers, even if this process is killed ---

const liveChildren = new Set<ChildProcess>()
const liveDirs = new Set<string>()
let exitHookInstalled = false

function installExitHook(): void {
    if (exitHookInstalled) return
    exitHookInstalled = true
    process.on("exit", () => {
        for (const c of liveChildren) {
            try {
                c.kill("SIGKILL")
            } catch {}
        }
        for (const d of liveDirs) {
            try {
                fs.rmSync(d, { recursive: true, force: true })
            } catch {}
        }
    })
}

/** Kills `pid` when this process dies in any way (its stdin pipe closes); returns the watchdog. */
function watchdog(pid: number): ChildProcess {
    const wd = spawn("sh", ["-c", 'read x; kill -9 "$1" 2>/dev/null', "watchdog", String(pid)], {
        stdio: ["pipe", "ignore", "ignore"],
    })
    wd.on("error", () => {})
    wd.unref()
    ;(wd.stdin as unknown as net.Socket | null)?.unref()
    return wd
}

/** Picks a free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
    const s = net.createServer()
    const port = await listen(s, 0, "freePort")
    await new Promise<void>(r => s.close(() => r()))
    return port
}

function canConnect(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const s = net.connect({ host: HOST, port })
        const done = (ok: boolean) => {
            s.destroy()
            resolve(ok)
        }
        s.setTimeout(500, () => done(false))
        s.once("connect", () => done(true))
        s.once("error", () => done(false))
    })
}

function tailOf(file: string, n: number): string {
    try {
        return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n")
    } catch {
        return ""
    }
}

/**
 * Spawns Mosquitto on 127.0.0.1 with a generated config in a temp dir and resolves once it accepts
 * TCP. stop() = SIGTERM and wait (a restartable shutdown; with `persistence` the state is saved),
 * start() = spawn again with the same config and port, close() = stop and delete the temp dir.
 */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
    const bin = mosquittoPath()
    if (!bin) throw new Error("mosquitto: binary not found in /usr/sbin, /usr/local/sbin or PATH (apt-get install mosquitto)")
    installExitHook()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mosq-"))
    liveDirs.add(dir)
    const confFile = path.join(dir, "mosquitto.conf")
    const logFile = path.join(dir, "mosquitto.log")
    const errFile = path.join(dir, "stderr.log")
    const readyTimeoutMs = opts.readyTimeoutMs ?? 5000

    try {
        const users = opts.users ? Object.entries(opts.users) : undefined
        const passwdFile = path.join(dir, "passwd")
        if (users) {
            if (users.length === 0) throw new Error("mosquitto: `users` is empty; give at least one user or leave it out")
            const tool = findExecutable("mosquitto_passwd", ["/usr/bin", "/usr/local/bin", "/usr/sbin"])
            if (!tool) throw new Error("mosquitto: mosquitto_passwd not found (needed for `users`)")
            fs.writeFileSync(passwdFile, "", { mode: 0o600 })
            for (const [user, pass] of users) {
                if (!user || user.includes(":")) throw new Error(`mosquitto: bad user name ${JSON.stringify(user)} (empty or contains ':')`)
                const r = spawnSync(tool, ["-b", passwdFile, user, pass], { encoding: "utf8", timeout: 10000 })
                // the password is never echoed into the error
                if (r.status !== 0) throw new Error(`mosquitto: mosquitto_passwd failed for user ${JSON.stringify(user)}: exit ${r.status} ${(r.stderr ?? "").trim()}`)
            }
        }
        const writeConfig = (port: number) => {
            const lines = [
                `listener ${port} ${HOST}`,
                `allow_anonymous ${users ? "false" : "true"}`,
                ...(users ? [`password_file ${passwdFile}`] : []),
                ...(opts.persistence ? ["persistence true", `persistence_location ${dir}${path.sep}`, "persistence_file mosquitto.db"] : ["persistence false"]),
                `log_dest file ${logFile}`,
                "log_type all",
                "connection_messages true",
                "log_timestamp_format %H:%M:%S",
                ...(process.getuid?.() === 0 ? [`user ${os.userInfo().username}`] : []),
                ...(opts.config ?? []),
            ]
            fs.writeFileSync(confFile, lines.join("\n") + "\n")
        }

        let child: ChildProcess | undefined
        let dog: ChildProcess | undefined
        let exited: Promise<void> = Promise.resolve()
        let closed = false

        const logTail = (n = 20) => {
            const parts = [tailOf(logFile, n), tailOf(errFile, n)].filter(Boolean)
            return parts.join("\n--- stderr ---\n") || "(empty log)"
        }

        const spawnOnce = async (port: number): Promise<void> => {
            const errFd = fs.openSync(errFile, "a")
            let proc: ChildProcess
            try {
                proc = spawn(bin, ["-c", confFile], { stdio: ["ignore", errFd, errFd] })
            } finally {
                fs.closeSync(errFd)
            }
            let exitInfo: string | undefined
            let spawnError: Error | undefined
            proc.on("error", e => {
                spawnError = e
            })
            exited = new Promise<void>(resolve => {
                proc.once("exit", (code, signal) => {
                    exitInfo = signal ? `signal ${signal}` : `code ${code}`
                    liveChildren.delete(proc)
                    if (dog && !dog.killed) dog.kill("SIGKILL")
                    resolve()
                })
                proc.once("error", () => {
                    exitInfo ??= "spawn error"
                    liveChildren.delete(proc)
                    resolve()
                })
            })
            liveChildren.add(proc)
            dog = proc.pid !== undefined ? watchdog(proc.pid) : undefined
            const deadline = Date.now() + readyTimeoutMs
            for (;;) {
                if (spawnError) throw new Error(`mosquitto: cannot run ${bin}: ${spawnError.message}`)
                if (exitInfo) throw new Error(`mosquitto: exited (${exitInfo}) before accepting connections on ${HOST}:${port}; log:\n${logTail()}`)
                if (await canConnect(port)) {
                    await sleep(20)
                    if (!exitInfo) break
                    continue
                }
                if (Date.now() > deadline) {
                    proc.kill("SIGKILL")
                    await exited
                    throw new Error(`mosquitto: not accepting connections on ${HOST}:${port} after ${readyTimeoutMs} ms; log:\n${logTail()}`)
                }
                await sleep(50)
            }
            proc.unref()
            child = proc
        }

        let port = opts.port ?? 0
        if (port === 0) {
            // the free port may be taken between picking and binding: try a few
            for (let attempt = 1; ; attempt++) {
                port = await freePort()
                writeConfig(port)
                try {
                    await spawnOnce(port)
                    break
                } catch (e) {
                    if (attempt >= 3 || !/in use/i.test(logTail())) throw e
                }
            }
        } else {
            writeConfig(port)
            await spawnOnce(port)
        }

        const stopWith = async (signal: NodeJS.Signals) => {
            const proc = child
            if (!proc) return
            child = undefined
            proc.ref()
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
            const timer = setTimeout(() => proc.kill("SIGKILL"), 5000)
            await exited
            clearTimeout(timer)
        }

        return {
            kind: "mosquitto",
            host: HOST,
            port,
            url: `mqtt://${HOST}:${port}`,
            dir,
            get running() { return child !== undefined },
            logTail,
            stop: () => stopWith("SIGTERM"),
            crash: () => stopWith("SIGKILL"),
            async start() {
                if (closed) throw new Error("mosquitto: start() after close()")
                if (!child) await spawnOnce(port)
            },
            async close() {
                if (closed) return
                closed = true
                await stopWith("SIGTERM")
                fs.rmSync(dir, { recursive: true, force: true })
                liveDirs.delete(dir)
            },
        }
    } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true })
        liveDirs.delete(dir)
        throw e
    }
}
