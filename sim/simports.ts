/**
 * The ports a simulated device is handed for one run. The VM reaches the runner over two TCP
 * servers on 127.0.0.1: the host link (its settings, sim/hostlink.ts) and the W5500 bridge
 * (sim/w5500/bridge.ts). Both listen on a port the OS picks, so any number of simulators run side
 * by side on one machine; `runVm` (sim/devs.ts) compiles those ports into the run's program
 * (src/simdev/ports.ts). A run uses the ports given to `runVm`, else the host link and bridge this
 * process opened last and has not closed yet, else the device's defaults.
 */

/** The device's defaults (src/simdev/ports.ts), used by a program run outside `runVm` (e.g. `devs run` by hand). */
export const DEFAULT_PORTS = { hostlink: 17766, bridge: 17767 } as const

export type PortKind = keyof typeof DEFAULT_PORTS
export type SimPorts = { [K in PortKind]: number }

const open: { [K in PortKind]: number[] } = { hostlink: [], bridge: [] }

/** Records an open server of `kind` on `port` until its `close()` runs; returns the same object. */
export function notePort<T extends { close(): Promise<void> }>(kind: PortKind, port: number, server: T): T {
    open[kind].push(port)
    const close = server.close.bind(server)
    server.close = async () => {
        const i = open[kind].lastIndexOf(port)
        if (i >= 0) open[kind].splice(i, 1)
        await close()
    }
    return server
}

/** The ports for a run: `given`, else the newest open server of each kind in this process, else the defaults. */
export function portsFor(given: Partial<SimPorts> = {}): SimPorts {
    const pick = (k: PortKind) => given[k] ?? open[k][open[k].length - 1] ?? DEFAULT_PORTS[k]
    return { hostlink: pick("hostlink"), bridge: pick("bridge") }
}
