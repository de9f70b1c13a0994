/**
 * The fault scenarios (`npm run soak -- NAME`, their reduced form in npm test): each runs the
 * firmware on a rig (rig.ts), injects its fault and judges the run (nothing lost, the device alive,
 * and what the scenario adds).
 */
import { prng } from "../hostile-broker.ts"
import type { W5500Sim } from "../w5500/index.ts"
import type { UdpDatagram } from "../w5500/chip.ts"
import { judge, sleep, withRig, type ScenarioResult } from "./rig.ts"

/** Gaps between the connection attempts made in [from, to). */
function gapsBetween(attempts: number[], from: number, to: number): number[] {
    const a = attempts.filter(t => t >= from && t < to)
    return a.slice(1).map((t, i) => t - a[i])
}

type Runner = (quick: boolean, log: boolean) => Promise<ScenarioResult>

/** Broker killed (listener and every connection destroyed) and restarted N times during the QoS 1 stream. */
const brokerRestarts: Runner = (quick, log) =>
    withRig("broker-restart", { net: "host", log }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const recovery: number[] = []
        const gaps: number[] = []
        const times = quick ? 2 : 5
        for (let i = 0; i < times; i++) {
            await rig.broker.stop()
            const down = Date.now()
            await sleep(quick ? 2500 : 4000)
            const up = Date.now()
            gaps.push(...gapsBetween(rig.attempts, down, up))
            await rig.broker.start()
            const from = rig.arrivals.length
            recovery.push((await rig.reports(1, 60000, `reports after restart ${i + 1}`, from)) - up)
            await rig.reports(2, 20000, `steady after restart ${i + 1}`)
            // the client starts its backoff again from 1 s only after a session of 10 s (a broker
            // that accepts and drops at once must not be hammered): space the full run's restarts
            if (!quick) await sleep(10000)
        }
        await sleep(3000)
        const r = judge(await rig.tally(`broker killed and restarted ${times}x`, t0, recovery, gaps), rig)
        if (gaps.length >= 2 && !(gaps[gaps.length - 1] >= gaps[0])) r.problems.push(`reconnect gaps do not grow: ${gaps.join(", ")}`)
        return r
    })

/** A dead link with open sockets (no FIN, no RST) while idle: keepalive must notice. */
const halfOpenIdle: Runner = (quick, log) =>
    withRig("half-open-idle", { net: "host", log, settings: { REPORT_MS: 60000, MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(1, 60000, "first report")
        const conns = rig.attempts.length
        rig.proxy.blackhole()
        const start = Date.now()
        // keepalive 5 s: the client sends PINGREQ after 5 s of silence and gives up some seconds later
        while (rig.attempts.length === conns && Date.now() - start < 40000) await sleep(50)
        const detectedMs = Date.now() - start
        rig.proxy.pass()
        const healed = Date.now()
        // idle (60 s reports): recovery is the next MQTT session the broker accepts
        const deadline = healed + 60000
        while (!rig.sessions.some(t => t >= healed) && Date.now() < deadline && !rig.exited) await sleep(20)
        const back = rig.sessions.find(t => t >= healed)
        const r = judge(await rig.tally("half-open link while idle", t0, back ? [back - healed] : [], []), rig)
        if (!back) r.problems.push("no new MQTT session within 60 s of the link healing")
        r.notes.push(`dead link noticed (new connection attempt) ${detectedMs} ms after it went silent, keepalive 5 s`)
        if (rig.attempts.length === conns) r.problems.push("the device never noticed the dead link")
        return r
    })

/** A dead link during a report stream: unacknowledged reports stay queued and are resent. */
const halfOpenPublish: Runner = (quick, log) =>
    withRig("half-open-publish", { net: "host", log, settings: { MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const deadMs = quick ? 8000 : 12000
        rig.proxy.blackhole()
        await sleep(deadMs)
        rig.proxy.pass()
        const healed = Date.now()
        const from = rig.arrivals.length
        const rec = (await rig.reports(1, 60000, "report after the link healed", from)) - healed
        await rig.reports(3, 20000, "steady after healing")
        const r = judge(await rig.tally("half-open link during a publish stream", t0, [rec], []), rig)
        const black = [...rig.made.values()].filter(at => at >= healed - deadMs && at < healed).length
        r.notes.push(`${black} reports made while the link was dead`)
        return r
    })

/** Connections reset while a packet is half-way through (writes split into small pieces). */
const resetMidPacket: Runner = (quick, log) =>
    withRig("reset-mid-packet", { net: "host", log }, async (rig, t0) => {
        await rig.reports(2, 60000, "first reports")
        const recovery: number[] = []
        const times = quick ? 2 : 5
        for (let i = 0; i < times; i++) {
            rig.proxy.setSplit(7)
            rig.proxy.setDelay(30)
            // reset while a report is on its way in 7-byte pieces
            const n = rig.made.size
            while (rig.made.size === n) await sleep(5)
            await sleep(40)
            rig.proxy.resetAll()
            const at = Date.now()
            rig.proxy.setSplit(0)
            rig.proxy.setDelay(0)
            const from = rig.arrivals.length
            recovery.push((await rig.reports(1, 60000, `reports after reset ${i + 1}`, from)) - at)
        }
        await rig.reports(2, 20000, "steady")
        return judge(await rig.tally(`connection reset mid-packet ${times}x`, t0, recovery, []), rig)
    })

/** A network partition: nothing passes for 10 s (both ways), then everything does again. */
const partition: Runner = (quick, log) =>
    withRig("partition", { net: "host", log, settings: { MQTT_KEEPALV: 5 } }, async (rig, t0) => {
        await rig.reports(3, 60000, "first reports")
        const secs = quick ? 6 : 10
        rig.proxy.blackhole()
        rig.proxy.refuse(true)
        const start = Date.now()
        await sleep(secs * 1000)
        const gaps = gapsBetween(rig.attempts, start, Date.now())
        rig.proxy.refuse(false)
        rig.proxy.pass()
        const healed = Date.now()
        const rec = (await rig.reports(1, 60000, "report after the partition", rig.arrivals.length)) - healed
        await rig.reports(2, 20000, "steady")
        return judge(await rig.tally(`${secs} s network partition`, t0, [rec], gaps), rig)
    })

/** The Ethernet cable pulled for 5 s on the emulated W5500 (PHY link down, then up). */
const linkFlap: Runner = (quick, log) =>
    withRig("link-flap", { net: "w5500", log }, async (rig, t0) => {
        await rig.reports(3, 90000, "first reports")
        const recovery: number[] = []
        const times = quick ? 1 : 3
        for (let i = 0; i < times; i++) {
            rig.lan!.chip.setLink(false)
            await sleep(5000)
            rig.lan!.chip.setLink(true)
            const up = Date.now()
            recovery.push((await rig.reports(1, 60000, `report after link up ${i + 1}`, rig.arrivals.length)) - up)
            await rig.reports(2, 20000, "steady")
        }
        const r = judge(await rig.tally(`W5500 PHY link down 5 s, up (${times}x)`, t0, recovery, []), rig)
        if (!rig.lines.some(l => /link down/i.test(l))) r.problems.push("the device did not log the link going down")
        return r
    })

/** The DHCP server disappears before the renewal of a 10 s lease, and comes back 20 s later. */
const dhcpGone: Runner = (quick, log) =>
    withRig("dhcp-gone", { net: "w5500", log, lan: { leaseSeconds: 10 } }, async (rig, t0) => {
        await rig.reports(3, 90000, "first reports")
        const dhcp = rig.lan!.lan.dhcp
        dhcp.silent = true
        const gone = Date.now()
        await sleep(quick ? 16000 : 22000)
        const lostLine = rig.lines.find(l => /lease (lost|expired)|lost.*lease/i.test(l))
        dhcp.silent = false
        const back = Date.now()
        const rec = (await rig.reports(1, 90000, "report after DHCP came back", rig.arrivals.length)) - back
        await rig.reports(2, 20000, "steady")
        const r = judge(await rig.tally("DHCP server gone at renewal (10 s lease), back after " + Math.round((back - gone) / 1000) + " s", t0, [rec], []), rig)
        r.notes.push(lostLine ? `the device logged: ${lostLine.replace(/^.*?w5500: /, "")}` : "no lease-lost line (the lease outlived the outage)")
        return r
    })

/** The DNS server stops answering at boot; the device retries until it answers again. */
const dnsGone: Runner = (quick, log) =>
    withRig("dns-gone", { net: "w5500", log }, async (rig, t0) => {
        rig.lan!.lan.dns.silent = true
        await rig.line(/resolve broker\.lan|no answer for broker\.lan/i, 90000, "a DNS failure for broker.lan")
        await sleep(quick ? 2000 : 10000)
        rig.lan!.lan.dns.silent = false
        const back = Date.now()
        const rec = (await rig.reports(1, 90000, "first report after DNS came back", 0)) - back
        await rig.reports(2, 20000, "steady")
        const r = judge(await rig.tally("DNS server silent at boot, back later", t0, [rec], []), rig)
        const l = rig.lines.find(x => /resolve broker\.lan|no answer for broker\.lan/i.test(x))
        if (l) r.notes.push(`logged: ${l}`)
        return r
    })

/** The NTP server is silent at boot: the generic platform reports anyway; the time arrives later. */
const ntpGone: Runner = (quick, log) =>
    withRig("ntp-gone", { net: "w5500", log }, async (rig, t0) => {
        rig.lan!.lan.ntp.mode = "silent"
        await rig.reports(2, 90000, "reports without the time")
        rig.lan!.lan.ntp.mode = "normal"
        const back = Date.now()
        const deadline = back + (quick ? 60000 : 120000)
        let setAt = 0
        while (!setAt && Date.now() < deadline && !rig.exited) {
            if (rig.lines.some(l => /time .*SNTP|SNTP.*time/i.test(l) && !/failed|no answer/i.test(l))) setAt = Date.now()
            await sleep(100)
        }
        const r = judge(await rig.tally("NTP server silent at boot", t0, [], []), rig)
        r.notes.push(setAt ? `time set by SNTP ${((setAt - back) / 1000).toFixed(1)} s after the server answered again` : "time not set within the wait (SNTP retry period longer than the scenario)")
        return r
    })

/** One mangled copy of a reply: truncated, bytes flipped, random bytes, or a length field lying. */
function mangle(data: Uint8Array, r: () => number): Uint8Array {
    const b = Buffer.from(data)
    const kind = Math.floor(r() * 4)
    if (kind === 0) return b.subarray(0, Math.floor(r() * b.length))
    if (kind === 1) {
        for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) b[Math.floor(r() * b.length)] ^= 1 + Math.floor(r() * 255)
        return b
    }
    if (kind === 2) return Buffer.from(Array.from({ length: Math.floor(r() * 600) }, () => Math.floor(r() * 256)))
    // a length or count field lying: bump one of the first 64 bytes (DNS counts, DHCP option lengths, NTP header)
    b[Math.floor(r() * Math.min(64, b.length))] = 0xff
    return b
}

/**
 * The LAN's DHCP, DNS and NTP servers answer with mangled replies (two mangled copies ahead of
 * each reply, and the reply itself mangled at a seeded 70 %) while the device
 * boots on a 10 s lease: its parsers see truncation, flipped bytes, random bytes and lying length
 * fields on the live path. It must not crash, and must get its lease, name and time from the good
 * replies and report. Then the mangling stops and the device keeps reporting across renewals.
 */
const lanGarbage: Runner = (quick, log) => {
    const r = prng(quick ? 7 : 11)
    let mangled = 0
    let on = true
    const prep = (lan: W5500Sim) => {
        for (const srv of [lan.lan.dhcp, lan.lan.dns, lan.lan.ntp] as { handle: (d: UdpDatagram, now: number) => UdpDatagram[] }[]) {
            const real = srv.handle.bind(srv)
            // while on: two mangled copies ahead of each reply, and the reply itself mangled at 70 %
            srv.handle = (d, now) =>
                real(d, now).flatMap(x => {
                    if (!on) return [x]
                    mangled += 2
                    const out = [{ ...x, data: mangle(x.data, r) }, { ...x, data: mangle(x.data, r) }]
                    // quick (npm test): the reply itself stays good, so boot is not slowed by retries
                    if (!quick && r() < 0.7) {
                        mangled++
                        out.push({ ...x, data: mangle(x.data, r) })
                    } else out.push(x)
                    return out
                })
        }
    }
    return withRig("lan-garbage", { net: "w5500", log, lan: { leaseSeconds: 10 }, prep }, async (rig, t0) => {
        await rig.reports(3, 120000, "reports despite the mangled replies")
        await sleep(quick ? 8000 : 20000)
        on = false
        const from = rig.arrivals.length
        await sleep(12000)
        const after = rig.arrivals.length - from
        const res = judge(await rig.tally(`DHCP, DNS and NTP replies mangled from boot (2 bad copies ahead of each reply${quick ? "" : ", the reply itself at 70 %"})`, t0, [], []), rig)
        res.notes.push(`${mangled} mangled replies sent to the device; ${after} reports in the 12 s after the mangling stopped`)
        if (after < 8) res.problems.push(`only ${after} reports in 12 s after the mangling stopped`)
        return res
    })
}

/** Every scenario, by name. */
export const SCENARIOS: Record<string, Runner> = {
    "broker-restart": brokerRestarts,
    "half-open-idle": halfOpenIdle,
    "half-open-publish": halfOpenPublish,
    "reset-mid-packet": resetMidPacket,
    partition,
    "link-flap": linkFlap,
    "dhcp-gone": dhcpGone,
    "dns-gone": dnsGone,
    "ntp-gone": ntpGone,
    "lan-garbage": lanGarbage,
}
