/**
 * Simulator-only heap measurement. The runtime has no free-heap API, so the soak runner finds the
 * largest ballast the firmware survives: with the setting BALLAST_KB the device holds that many
 * KB of live buffers for its whole run, next to everything else it allocates. If it still boots,
 * connects and reports, at least that much heap was spare. With BALLAST_KB set (even 0), the
 * runner can also grow the ballast later, e.g. after a soak, by publishing a number of KB to
 * `.../commands/ballast` (`withHeapProbe`, in the generic simulator image only), to
 * measure the headroom left in a device that has been running. Not linked into board images.
 */
import { Parsed } from "../model/commands"
import { ReadSetting } from "../config"
import { Platform } from "../cloud/profile"

/** The end of the probe's command topic. */
const BALLAST_TOPIC = "/commands/ballast"

/** The ballast, kept alive for the device's whole run. */
const held: Buffer[] = []
/** KB in `held` */
let heldKb = 0
/** true when the runner asked for the heap probe (BALLAST_KB set) */
let probe = false

/** Adds `kb` KB to the ballast, in pieces of `piece` bytes. */
function hold(kb: number, piece: number) {
    for (let i = 0; i < (kb * 1024) / piece; i++) held.push(Buffer.alloc(piece))
    heldKb += kb
    console.log(`ballast: holding ${heldKb} KB of the heap`)
}

/**
 * Starts the heap probe when the runner set BALLAST_KB (even 0), holding that many KB from boot
 * (called by the simulator images' settings hook, src/simdev/settings.ts).
 */
export async function startBallast(read: ReadSetting) {
    const kb = await read("BALLAST_KB")
    probe = typeof kb === "number"
    if (probe && kb > 0) hold(kb, 1024)
}

/**
 * The runner's heap probe: a message to `.../commands/ballast` whose payload is a whole number of
 * KB (1..64) adds that much to the ballast, in 256-byte pieces (a heap that has been in use is
 * fragmented: the pieces measure free memory more than the largest free block), and logs the new
 * total; the device dies of OutOfMemory when there is not that much heap left. Handled only when
 * the runner set BALLAST_KB; any other message goes to the platform.
 */
function ballastCommand(topic: string, payload: Buffer): boolean {
    // at the end of the topic (indexOf from there: endsWith is library code, not native)
    if (!probe || topic.indexOf(BALLAST_TOPIC, topic.length - BALLAST_TOPIC.length) < 0) return false
    const text = payload.length <= 8 ? payload.toString() : ""
    const kb = parseInt(text)
    if (!(kb >= 1 && kb <= 64) || "" + kb !== text.trim()) console.log(`ballast: ignored: expected a whole number of KB from 1 to 64`)
    else hold(kb, 256)
    return true
}

/**
 * `platform` with the heap probe in front of its command parser: the probe's messages are taken
 * out before the platform sees them (board images do not carry this).
 */
export function withHeapProbe(platform: Platform): Platform {
    return {
        kind: platform.kind,
        create: async (cfg, log, read) => {
            const profile = await platform.create(cfg, log, read)
            // a method read off an object stays bound to it in DeviceScript
            const parse = profile.parseCommand
            profile.parseCommand = (topic: string, payload: Buffer): Parsed =>
                ballastCommand(topic, payload) ? undefined : parse(topic, payload)
            return profile
        },
    }
}
