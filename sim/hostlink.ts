/**
 * Node side of the simulator host link (see src/simdev/hostlink.ts): hands the simulated device its
 * settings, the way a flashed board reads them from its UF2.
 */
import net from "node:net"
import { notePort } from "./simports.ts"
/** Must match MAX_SETTING_BYTES in src/simdev/hostlink.ts: larger settings abort the simulator's settings store. */
export const MAX_SETTING_BYTES = 210

/** Throws an Error naming every setting too large for the simulator's settings store. */
export function checkSettings(s: Settings) {
    const bad = Object.entries(s)
        .map(([k, v]) => [k, k.length + Buffer.byteLength(JSON.stringify(v))] as const)
        .filter(([, n]) => n > MAX_SETTING_BYTES)
    if (bad.length)
        throw new Error(`hostlink: settings too large for the simulator (at most ${MAX_SETTING_BYTES} bytes each): ` +
            bad.map(([k, n]) => `${k} (${n} bytes)`).join(", "))
}

export type Settings = Record<string, string | number | boolean | object>

/** A running host link server. */
export interface HostLink {
    /** the port it listens on (127.0.0.1); `runVm` hands it to the device */
    readonly port: number
    /** replace the settings served to the next device that connects */
    setSettings(s: Settings): void
    /** number of devices that asked for settings so far */
    readonly served: number
    close(): Promise<void>
}

/**
 * Starts the host link on 127.0.0.1, by default on a free port the OS picks: a program started
 * with `runVm` while it is open gets that port (sim/simports.ts), so simulators do not share it.
 * With a fixed `port` in use it retries for up to `waitMs`, then rejects with a clear message.
 */
export async function startHostLink(settings: Settings, opts: { port?: number; waitMs?: number; time?: boolean } = {}): Promise<HostLink> {
    const port = opts.port ?? 0
    const deadline = Date.now() + (opts.waitMs ?? 0)
    for (;;) {
        try {
            const link = await listenHostLink(settings, port, opts.time ?? true)
            return notePort("hostlink", link.port, link)
        } catch (e) {
            if (!(e as Error).message.includes("in use") || Date.now() > deadline) throw e
            await new Promise(r => setTimeout(r, 200 + Math.random() * 300))
        }
    }
}

/** `time`: hand the device the desktop's time (false: the device finds it itself, e.g. by SNTP). */
function listenHostLink(settings: Settings, port: number, time: boolean): Promise<HostLink> {
    checkSettings(settings)
    let current = settings
    let served = 0
    const sockets = new Set<net.Socket>()
    const server = net.createServer(sock => {
        sockets.add(sock)
        sock.on("close", () => sockets.delete(sock))
        sock.on("error", () => {})
        let acc = ""
        sock.on("data", d => {
            acc += d.toString("utf8")
            if (acc.includes("\n")) {
                served++
                sock.end(JSON.stringify({ settings: current, time: time ? Date.now() : 0 }) + "\n")
            } else if (acc.length > 1024) sock.destroy()
        })
    })
    return new Promise((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) =>
            reject(new Error(e.code === "EADDRINUSE"
                ? `hostlink: port ${port} is in use (is another simulator running?)`
                : `hostlink: ${e.message}`)))
        server.listen(port, "127.0.0.1", () =>
            resolve({
                port: (server.address() as net.AddressInfo).port,
                setSettings(s) {
                    checkSettings(s)
                    current = s
                },
                get served() { return served },
                close: () => new Promise<void>(r => {
                    for (const s of sockets) s.destroy()
                    server.close(() => r())
                }),
            }))
    })
}
