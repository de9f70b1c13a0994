/**
 * The simulator host link: in the desktop simulator the firmware's settings come from the runner
 * (`sim/hostlink.ts`) instead of flash, and the wall-clock time from the desktop. Protocol:
 * connect to 127.0.0.1:`simPorts.hostlink` (src/simdev/ports.ts: the runner's port for this run), send one line `{"hello":1}`, read one line
 * `{"settings":{...},"time":<unix ms>}`, close.
 */
import * as ds from "@devicescript/core"
import { setUnixTime } from "../net/clock"
import { HostStack } from "../net/host"
import { simPorts } from "./ports"
import { sleep } from "../util/rt"
import { joinBytes } from "../util/bytes"

/** Largest setting (key plus JSON value) the settings store survives (simulator and board). */
export const MAX_SETTING_BYTES = 210

const MAX_LINE = 16384

/** The settings the runner handed over, by key (undefined: none, or not in the simulator). */
let fromRunner: { [key: string]: any }

/**
 * Reads a setting the runner handed over (kept in memory: nothing, secrets included, is written
 * to the simulated flash, and boot does not wait for flash writes); `undefined` when unset.
 */
export async function runnerSetting(key: string): Promise<any> {
    return fromRunner ? fromRunner[key] : undefined
}

/**
 * In the simulator, fetches the settings (and the time) from the runner. Returns the number of
 * settings, or -1 when not in the simulator or no runner answers (the settings store is used then).
 */
export async function loadSimSettings(): Promise<number> {
    if (!ds.isSimulator()) return -1
    let conn
    try {
        conn = await new HostStack().connect({ host: "127.0.0.1", port: simPorts.hostlink, timeoutMs: 2000 })
    } catch (e) {
        return -1
    }
    try {
        await conn.send(Buffer.from('{"hello":1}\n'))
        let acc = Buffer.alloc(0)
        for (;;) {
            const b = await conn.recv(3000)
            if (!b) break
            acc = joinBytes(acc, 0, b, 0)
            if (acc.indexOf(10) >= 0 || acc.length > MAX_LINE) break
        }
        const nl = acc.indexOf(10)
        if (nl < 0) throw new Error("hostlink: no settings line from the runner")
        const msg = JSON.parse(acc.slice(0, nl).toString())
        if (msg.time > 0) setUnixTime(msg.time, "host")
        const settings = msg.settings || {}
        const keys = Object.keys(settings)
        for (const key of keys) {
            const size = key.length + JSON.stringify(settings[key]).length
            // the board's settings store takes no more: refuse it here too, by name
            if (size > MAX_SETTING_BYTES) throw new Error(`hostlink: setting ${key} is ${size} bytes, at most ${MAX_SETTING_BYTES} fit`)
        }
        fromRunner = settings
        return keys.length
    } finally {
        await conn.close()
        // the simulator has one socket, and it takes a moment to be free for the next connection
        await sleep(100)
    }
}
