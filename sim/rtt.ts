/**
 * The benchmark's command round trip, broker -> device -> reply: the broker sends the device a
 * `commands/set` (QoS 1, the LED toggled each time, the generic platform's topics) at a random moment
 * 50..250 ms after the last reply, and each trip is timed at the emulated chip, from the moment the
 * command's bytes reach its socket to the moment the device issues the SEND of its reply (the last
 * SEND before the reply reaches the broker). So the figure is the device's own time (MQTT parse,
 * dispatch, the command, the reply's encode and write, the interrupt service), on the clock of the
 * rig: wall time over the emulated W5500 in the simulator, virtual time on the emulated board. The
 * LAN and broker hops on the host are left out (well under a millisecond on the loopback). Other
 * traffic can only lengthen a trip: another packet reaching the chip first (a report's PUBACK) moves
 * its start earlier, another SEND after the reply's (the command's PUBACK) moves its end later.
 */
import type { AedesBroker } from "./brokers.ts"
import type { W5500 } from "./w5500/chip.ts"

/** The clock of the rig and a way to let the device run. */
export interface RttRig {
    /** the rig's time, ms (wall or virtual) */
    now(): number
    /** lets the device run until `done()` holds or `ms` of the rig's time pass */
    runUntil(done: () => boolean, ms: number): Promise<void>
}

/** Round trips of `n` commands, ms, in the order measured. Throws when a reply does not come within 5 s. */
export async function commandRoundTrips(broker: AedesBroker, chip: W5500, base: string, n: number, rig: RttRig): Promise<number[]> {
    let waiting: string | undefined
    let rxAt = -1
    let txAt = -1
    let replied = false
    const onRx = () => {
        if (waiting && rxAt < 0) rxAt = rig.now()
    }
    const onTx = () => {
        if (waiting && rxAt >= 0 && !replied) txAt = rig.now()
    }
    const onPub = (p: { topic: string; payload: Buffer | string }, client: unknown) => {
        if (!client || !waiting || p.topic !== `${base}/replies`) return
        try {
            if ((JSON.parse(p.payload.toString()) as { id?: unknown }).id === waiting) replied = true
        } catch {
            // not a reply of ours
        }
    }
    chip.on("rx", onRx)
    chip.on("tx", onTx)
    broker.aedes.on("publish", onPub)
    const out: number[] = []
    try {
        for (let k = 0; k < n; k++) {
            await rig.runUntil(() => false, 50 + Math.random() * 200)
            waiting = `rtt-${k}`
            rxAt = txAt = -1
            replied = false
            const payload = Buffer.from(JSON.stringify({ id: waiting, params: { led: k % 2 === 0 } }))
            broker.aedes.publish({ cmd: "publish", topic: `${base}/commands/set`, payload, qos: 1, retain: false, dup: false }, () => {})
            await rig.runUntil(() => replied, 5000)
            if (!replied || rxAt < 0 || txAt < 0) throw new Error(`command round trip: no reply to ${waiting} on ${base}/replies within 5 s`)
            out.push(txAt - rxAt)
            waiting = undefined
        }
    } finally {
        chip.off("rx", onRx)
        chip.off("tx", onTx)
        broker.aedes.off("publish", onPub)
    }
    return out
}

/** The p-th percentile (0..100) of `xs`, nearest rank. */
export function percentile(xs: number[], p: number): number {
    const s = [...xs].sort((a, b) => a - b)
    if (!s.length) return NaN
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
