/**
 * The simulator host link: in the desktop simulator the firmware's settings come from the runner
 * (`sim/hostlink.ts`) instead of flash, and the wall-clock time from the desktop. Protocol:
 * connect to 127.0.0.1:HOSTLINK_PORT, send one line `{"hello":1}`, read one line
 * `{"settings":{...},"time":<unix ms>}`, close.
 */
import * as ds from "@devicescript/core"
import { writeSetting } from "@devicescript/settings"
import { setUnixTime } from "../net/clock"
import { HostStack } from "../net/host"

/** Largest setting (key plus JSON value) the simulator's settings store survives. */
export const MAX_SETTING_BYTES = 210

/** TCP port of the runner's host link on 127.0.0.1. */
export const HOSTLINK_PORT = 17766
const MAX_LINE = 16384

/**
 * In the simulator, fetches settings from the runner and writes them to the settings store.
 * Returns the number of settings written, or -1 when not in the simulator or no runner answers.
 */
export async function loadSimSettings(): Promise<number> {
    if (!ds.isSimulator()) return -1
    let conn
    try {
        conn = await new HostStack().connect({ host: "127.0.0.1", port: HOSTLINK_PORT, timeoutMs: 2000 })
    } catch (e) {
        return -1
    }
    try {
        await conn.send(Buffer.from('{"hello":1}\n'))
        let acc = Buffer.alloc(0)
        for (;;) {
            const b = await conn.recv(3000)
            if (!b) break
            acc = acc.concat(b)
            if (acc.indexOf(10) >= 0 || acc.length > MAX_LINE) break
        }
        const nl = acc.indexOf(10)
        if (nl < 0) throw new Error("hostlink: no settings line from the runner")
        const msg = JSON.parse(acc.slice(0, nl).toString())
        // the time first: writing the settings takes a while (about a second in the simulator)
        if (msg.time > 0) setUnixTime(msg.time, "host")
        const settings = msg.settings || {}
        let n = 0
        for (const key of Object.keys(settings)) {
            const size = key.length + JSON.stringify(settings[key]).length
            // a larger value aborts the VM inside the settings store: refuse it by name instead
            if (size > MAX_SETTING_BYTES) throw new Error(`hostlink: setting ${key} is ${size} bytes, at most ${MAX_SETTING_BYTES} fit`)
            await writeSetting(key, settings[key])
            n++
        }
        return n
    } finally {
        await conn.close()
    }
}
