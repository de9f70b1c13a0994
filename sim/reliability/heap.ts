/**
 * The heap measurements: the largest ballast the firmware survives from boot (ballastSearch), and
 * the heap probe (probeHeadroom: the ballast grown 1 KB at a time in a running device until it no
 * longer works), in a fresh device (freshHeadroom) or after the soak (soak.ts).
 */
import { Rig, requestReport } from "./rig.ts"

/** How far the heap probe goes (KB added) before it stops on its own. */
export const PROBE_MAX_KB = 48

/** How much less headroom after a soak than in a fresh device counts as a leak (1 KB steps, allocation noise). */
export const HEADROOM_TOLERANCE_KB = 2

/**
 * What the heap measurement asks of the device: 5 commands answered by reports back to back,
 * then, after a connection reset, the reconnect with its report and one more command answered.
 * Returns why it could not, or undefined when it did.
 */
async function works(rig: Rig, tag: string): Promise<string | undefined> {
    try {
        for (let i = 0; i < 5; i++) if (!(await requestReport(rig, `${tag}-${i}`, 10000))) return `command ${i + 1} of 5 got no report within 10 s${rig.panic ? ` (${rig.panic})` : ""}`
        rig.proxy.resetAll()
        // the report the device makes after it reconnected, then one more on request (a command
        // sent before the device has subscribed again is lost, as MQTT has it: up to 3 tries)
        await rig.reports(1, 60000, `the report after a reset (${tag})`)
        let ok = false
        for (let i = 0; i < 3 && !ok; i++) ok = await requestReport(rig, `${tag}-r${i}`, 5000)
        if (!ok) return "3 commands after the reconnect got no report within 5 s each"
        return rig.exited || rig.panic ? `the VM ${rig.panic ? `panicked (${rig.panic})` : "exited"}` : undefined
    } catch (e) {
        return (e as Error).message.split("\n")[0]
    }
}

/** Boots with BALLAST_KB=kb and says whether the device still subscribes, reports and `works`. */
async function survives(kb: number, log: boolean): Promise<boolean> {
    let rig: Rig | undefined
    try {
        rig = await Rig.start(`ballast-${kb}`, { net: "w5500", log, settings: { BALLAST_KB: kb } })
        await rig.ready(2)
        return (await works(rig, `b${kb}`)) === undefined
    } catch {
        return false
    } finally {
        await rig?.close()
    }
}

/** What `probeHeadroom` found. */
export interface Headroom {
    /** KB added to the ballast with which the device still worked */
    kb: number
    /** why the next step failed */
    why: string
}

/**
 * The heap left in a device that has been running: grows its ballast 1 KB at a time (the heap
 * probe, `commands/ballast`, src/simdev/ballast.ts) and after each step asks what `survives` asks.
 * Returns the KB added before the first step the device did not get through (it ends dead or
 * unable to work; close the rig afterwards).
 */
export async function probeHeadroom(rig: Rig, heldKb: number, maxKb = PROBE_MAX_KB): Promise<Headroom> {
    for (let added = 0; added < maxKb; added++) {
        const want = heldKb + added + 1
        const cmd = await rig.commander()
        await cmd.publishAsync(`devices/${rig.id}/commands/ballast`, "1", { qos: 1 })
        try {
            await rig.line(new RegExp(`ballast: holding ${want} KB`), 10000, `the ballast grown to ${want} KB`)
        } catch (e) {
            return { kb: added, why: (e as Error).message.split("\n")[0] }
        }
        const why = await works(rig, `h${want}`)
        if (why) return { kb: added, why: `holding ${want} KB: ${why}` }
    }
    return { kb: maxKb, why: `stopped at ${maxKb} KB` }
}

/**
 * The heap probe in a fresh device: boots holding `heldKb`, makes `reports` reports on request,
 * then `probeHeadroom`. The figure to compare with the same probe after a soak.
 */
export async function freshHeadroom(heldKb: number, reports: number, log = false): Promise<Headroom> {
    let rig: Rig | undefined
    try {
        rig = await Rig.start("headroom", { net: "w5500", log, settings: { REPORT_MS: 3600000, BALLAST_KB: heldKb } })
        await rig.ready()
        for (let i = 0; i < reports; i++) if (!(await requestReport(rig, `f${i}`, 10000))) throw new Error(`fresh device: report ${i} not made\n${rig.tail()}`)
        return await probeHeadroom(rig, heldKb)
    } finally {
        await rig?.close()
    }
}

/** The largest ballast (KB) the firmware survives while connecting and reporting. */
export async function ballastSearch(log = false, lo = 0, hi = 64): Promise<number> {
    // invariant: survives(lo), !survives(hi)
    while (hi - lo > 1) {
        const mid = (lo + hi) >> 1
        if (await survives(mid, log)) lo = mid
        else hi = mid
    }
    return lo
}
