/**
 * NTP server of the emulated LAN (RFC 5905 server mode, enough for RFC 4330 SNTP clients), Node
 * side and independent of the firmware's client. Replies are 48 bytes, stratum 2, with the
 * client's transmit timestamp echoed as the originate timestamp. Pure: `handle()` returns replies.
 */
import type { UdpDatagram } from "./chip.ts"

/** UDP port of NTP servers. */
export const NTP_PORT = 123
/** Seconds from 1900-01-01 (NTP era 0) to 1970-01-01. */
export const NTP_UNIX_OFFSET = 2208988800

/** How the server answers: normally, not at all, or with a kiss-o'-death packet. */
export type NtpMode = "normal" | "silent" | "kod"

/** What the server did (for tests). */
export interface NtpCounters {
    requests: number
    replies: number
    kod: number
    ignored: number
}

/** Writes an NTP timestamp (seconds since 1900, modulo 2^32, and a 32-bit fraction) for `ms` since 1970. */
export function writeNtpTime(b: Uint8Array, off: number, ms: number): void {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
    const secs = Math.floor(ms / 1000)
    const frac = Math.floor(((ms - secs * 1000) / 1000) * 2 ** 32)
    dv.setUint32(off, (secs + NTP_UNIX_OFFSET) % 2 ** 32)
    dv.setUint32(off + 4, frac >>> 0)
}

/** The emulated NTP server. Control it from tests through its public fields. */
export class NtpServer {
    mode: NtpMode = "normal"
    /** four ASCII characters sent as the reference id of a kiss-o'-death reply */
    kissCode = "RATE"
    /** the server's clock in ms since 1970 (replace it to test other dates, e.g. after 2036) */
    clock: () => number
    readonly counters: NtpCounters = { requests: 0, replies: 0, kod: 0, ignored: 0 }

    constructor(clock: () => number = Date.now) {
        this.clock = clock
    }

    /** Handles one datagram sent to port 123; returns the replies. */
    handle(d: UdpDatagram): UdpDatagram[] {
        const q = d.data
        if (q.length < 48 || (q[0] & 0x07) !== 3) {
            this.counters.ignored++
            return []
        }
        this.counters.requests++
        if (this.mode === "silent") return []
        const now = this.clock()
        const vn = (q[0] >> 3) & 0x07 || 4
        const r = new Uint8Array(48)
        const dv = new DataView(r.buffer)
        r.set(q.subarray(40, 48), 24) // originate = client's transmit timestamp
        if (this.mode === "kod") {
            this.counters.kod++
            r[0] = (3 << 6) | (vn << 3) | 4 // LI 3 (unsynchronised), server mode
            r[1] = 0 // stratum 0: kiss-o'-death
            r[2] = q[2]
            r.set(Buffer.from(this.kissCode.padEnd(4, " ").slice(0, 4), "ascii"), 12)
        } else {
            this.counters.replies++
            r[0] = (0 << 6) | (vn << 3) | 4
            r[1] = 2 // stratum 2
            r[2] = q[2] // poll: echo the client's
            r[3] = 0xec // precision 2^-20 s
            dv.setUint32(4, 0x00000080) // root delay ~2 ms
            dv.setUint32(8, 0x00000100) // root dispersion ~4 ms
            r.set([10, 0, 0, 1], 12) // reference id: the upstream server's address
            writeNtpTime(r, 16, now - 32_000) // reference: last set 32 s ago
            writeNtpTime(r, 32, now) // receive
        }
        if (this.mode !== "kod") writeNtpTime(r, 40, now) // transmit
        return [{ srcIp: d.dstIp, srcPort: NTP_PORT, dstIp: d.srcIp, dstPort: d.srcPort, data: r }]
    }
}
