/**
 * The dashboard of `npm start`: an HTTP server on 127.0.0.1 serving the page, a Server-Sent Events
 * stream of the device's state (console, bring-up, MQTT messages) and a POST endpoint for
 * commands, with an MQTT bridge to the broker the device uses.
 *
 *   GET  /              the page (app.js, app.css, favicon.svg beside it)
 *   GET  /api/events    text/event-stream: a "snapshot" event, then "state", "telemetry", "console", "mqtt", "reply"
 *   GET  /api/state     the snapshot as JSON
 *   POST /api/command   {"command":"set","params":{"led":true}} | {"command":"toggle"} | {"command":"report"}
 */
import http from "node:http"
import type net from "node:net"
import type { SettingValue } from "../envfile.ts"
import { buildAssets, type Asset } from "./assets.ts"
import { startBridge, type Bridge } from "./bridge.ts"
import type { CommandRequest, CommandResponse, ServerEvent, SessionInfo } from "./protocol.ts"
import { DashboardState } from "./state.ts"
import { brokerTarget, deviceTopics } from "./topics.ts"

/** Options of startDashboard. */
export interface DashboardOptions {
    /** port on 127.0.0.1; 0 = any free port */
    port: number
    /** the settings the device runs with (after the runner pointed them at its broker) */
    settings: Record<string, SettingValue>
    /** true when the broker is the runner's embedded one */
    embedded: boolean
}

/** A running dashboard. */
export interface Dashboard {
    /** http://127.0.0.1:PORT/ */
    readonly url: string
    readonly port: number
    readonly state: DashboardState
    /** Ends the event streams, the bridge and the server. */
    close(): Promise<void>
}

const HOST = "127.0.0.1"
/** Largest POST body accepted. */
const MAX_BODY = 8192
/** Comment lines on idle event streams, so proxies and the browser keep them open. */
const HEARTBEAT_MS = 15000

const SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

/** What the page can show about this session; the MQTT view needs the generic profile's topics. */
function sessionInfo(settings: Record<string, SettingValue>, embedded: boolean): { info: SessionInfo; target?: ReturnType<typeof brokerTarget> } {
    const cloud = typeof settings.CLOUD === "string" && settings.CLOUD ? settings.CLOUD : "generic"
    const deviceId = String(settings.DEVICE_ID ?? "")
    let target: ReturnType<typeof brokerTarget> | undefined
    let brokerUrl = ""
    let note: string | undefined
    try {
        target = brokerTarget(settings)
        brokerUrl = target.url
    } catch (e) {
        note = (e as Error).message.replace(/^dashboard: /, "")
    }
    const info: SessionInfo = { deviceId, cloud, brokerUrl, embedded }
    if (cloud !== "generic") note = `CLOUD=${cloud} uses the platform's own topics and credentials; the MQTT view follows the generic profile (CLOUD=generic). The console and bring-up are shown.`
    if (note) info.mqttNote = note
    else info.topics = deviceTopics(settings)
    return { info, target: note ? undefined : target }
}

function listen(server: http.Server, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
        const onError = (e: NodeJS.ErrnoException) =>
            reject(new Error(e.code === "EADDRINUSE" ? `dashboard: port ${port} on ${HOST} is in use` : `dashboard: cannot listen on ${HOST}:${port}: ${e.message}`))
        server.once("error", onError)
        server.listen(port, HOST, () => {
            server.off("error", onError)
            resolve((server.address() as net.AddressInfo).port)
        })
    })
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
    const text = JSON.stringify(body)
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...SECURITY_HEADERS })
    res.end(text)
}

function sendText(res: http.ServerResponse, status: number, text: string) {
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...SECURITY_HEADERS })
    res.end(text + "\n")
}

function readBody(req: http.IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let size = 0
        req.on("data", (c: Buffer) => {
            size += c.length
            if (size > MAX_BODY) {
                reject(new Error(`request body is over ${MAX_BODY} bytes`))
                req.destroy()
                return
            }
            chunks.push(c)
        })
        req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
        req.on("error", reject)
    })
}

/** Starts the server (and the bridge when the device uses the generic profile). */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
    const assets: Map<string, Asset> = await buildAssets()
    const { info, target } = sessionInfo(opts.settings, opts.embedded)
    const state = new DashboardState(info)
    const streams = new Set<http.ServerResponse>()
    let port = opts.port

    const allowedHosts = () => new Set([`${HOST}:${port}`, `localhost:${port}`, `[::1]:${port}`])

    const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
        // only this machine's names: a page elsewhere cannot reach the API through DNS rebinding
        if (!allowedHosts().has(String(req.headers.host ?? ""))) return sendText(res, 421, `dashboard: unexpected Host ${JSON.stringify(req.headers.host ?? "")}; open http://${HOST}:${port}/`)
        const url = new URL(req.url ?? "/", `http://${HOST}:${port}`)
        if (req.method === "GET" && url.pathname === "/api/events") return openStream(req, res)
        if (req.method === "GET" && url.pathname === "/api/state") return sendJson(res, 200, state.snapshot())
        if (url.pathname === "/api/command") {
            if (req.method !== "POST") return sendJson(res, 405, { ok: false, error: "use POST" } satisfies CommandResponse)
            return command(req, res)
        }
        if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, `dashboard: ${req.method} is not supported here`)
        const a = assets.get(url.pathname === "/index.html" ? "/" : url.pathname)
        if (!a) return sendText(res, 404, `dashboard: no such page ${url.pathname}`)
        res.writeHead(200, { "Content-Type": a.type, "Content-Length": a.body.length, "Cache-Control": "no-cache", ...SECURITY_HEADERS })
        res.end(req.method === "HEAD" ? undefined : a.body)
    }

    const openStream = (req: http.IncomingMessage, res: http.ServerResponse) => {
        res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", Connection: "keep-alive", "X-Accel-Buffering": "no", ...SECURITY_HEADERS })
        res.socket?.setNoDelay(true)
        const send = (e: ServerEvent) => res.write(`data: ${JSON.stringify(e)}\n\n`)
        res.write("retry: 2000\n\n")
        send({ type: "snapshot", ...state.snapshot() })
        const stop = state.subscribe(send)
        const beat = setInterval(() => res.write(": ping\n\n"), HEARTBEAT_MS)
        streams.add(res)
        const end = () => {
            stop()
            clearInterval(beat)
            streams.delete(res)
        }
        req.on("close", end)
        res.on("error", end)
    }

    const command = async (req: http.IncomingMessage, res: http.ServerResponse) => {
        // JSON only (a cross-site form cannot send it without a preflight we never grant), from our own origin
        if (!/^application\/json\b/.test(String(req.headers["content-type"] ?? "")))
            return sendJson(res, 415, { ok: false, error: "send the command as application/json" } satisfies CommandResponse)
        const origin = req.headers.origin
        if (origin !== undefined && !allowedHosts().has(origin.replace(/^http:\/\//, "")))
            return sendJson(res, 403, { ok: false, error: `commands are accepted from this dashboard only, not from ${origin}` } satisfies CommandResponse)
        let body: unknown
        try {
            body = JSON.parse(await readBody(req))
        } catch (e) {
            return sendJson(res, 400, { ok: false, error: `the body is not JSON: ${(e as Error).message}` } satisfies CommandResponse)
        }
        if (!body || typeof body !== "object" || Array.isArray(body))
            return sendJson(res, 400, { ok: false, error: 'expected an object like {"command":"set","params":{"led":true}}' } satisfies CommandResponse)
        try {
            const entry = await state.sendCommand(body as CommandRequest)
            sendJson(res, 200, { ok: true, id: entry.id, seq: entry.seq } satisfies CommandResponse)
        } catch (e) {
            // a command the device cannot get now is an answer, not an HTTP failure (the page shows it)
            sendJson(res, 200, { ok: false, error: (e as Error).message } satisfies CommandResponse)
        }
    }

    const server = http.createServer((req, res) => {
        handle(req, res).catch(e => {
            if (!res.headersSent) sendText(res, 500, `dashboard: ${(e as Error).message}`)
            else res.destroy()
        })
    })
    server.keepAliveTimeout = 5000
    port = await listen(server, opts.port)

    let bridge: Bridge | undefined
    if (target) bridge = startBridge(state, target)
    else state.infoLine("dashboard", info.mqttNote ?? "MQTT view off", "warn")

    let closed = false
    return {
        url: `http://${HOST}:${port}/`,
        port,
        state,
        async close() {
            if (closed) return
            closed = true
            for (const r of streams) r.end()
            streams.clear()
            await bridge?.close()
            state.close()
            const done = new Promise<void>(r => server.close(() => r()))
            server.closeAllConnections()
            await done
        },
    }
}
