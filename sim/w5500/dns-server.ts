/**
 * DNS server of the emulated LAN, Node side, built on the dns-packet npm package (independent of
 * the firmware's resolver). Answers A queries from a name map: a value that is an IPv4 address
 * gives an A record, any other value is a CNAME to that name (followed up to 8 steps).
 * Unknown names get NXDOMAIN. Names in replies are compressed as real servers write them
 * (`compress`; false writes them in full). Pure: `handle()` returns the replies.
 */
import dnsPacket from "dns-packet"
import type { UdpDatagram } from "./chip.ts"
import { isIPv4 } from "./ip.ts"

/** UDP port of DNS servers. */
export const DNS_PORT = 53
const MAX_CHAIN = 8
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const

/** What the server did (for tests). */
export interface DnsCounters {
    queries: number
    answered: number
    nxdomain: number
    /** undecodable datagrams and responses sent to us */
    ignored: number
}

/**
 * Rewrites an uncompressed message (as dns-packet writes it) the way BIND, dnsmasq and Unbound
 * send theirs (RFC 1035 4.1.4): every name, and the name in CNAME data, ends in a pointer to the
 * longest suffix already written (an answer for the question's name is `C0 0C`).
 */
export function compressNames(b: Uint8Array): Uint8Array {
    const out: number[] = [...b.subarray(0, 12)]
    const seen = new Map<string, number>()
    let i = 12
    const name = () => {
        const labels: Uint8Array[] = []
        while (b[i] !== 0) {
            labels.push(b.subarray(i + 1, i + 1 + b[i]))
            i += 1 + b[i]
        }
        i++
        for (let k = 0; k < labels.length; k++) {
            const key = labels.slice(k).map(l => Buffer.from(l).toString("latin1").toLowerCase()).join(".")
            const at = seen.get(key)
            if (at !== undefined) return out.push(0xc0 | (at >> 8), at & 0xff)
            if (out.length < 0x3fff) seen.set(key, out.length)
            out.push(labels[k].length, ...labels[k])
        }
        out.push(0)
    }
    const count = (at: number) => (b[at] << 8) | b[at + 1]
    for (let q = count(4); q > 0; q--) {
        name()
        out.push(...b.subarray(i, i + 4))
        i += 4
    }
    for (let r = count(6) + count(8) + count(10); r > 0; r--) {
        name()
        const type = count(i)
        const len = count(i + 8)
        out.push(...b.subarray(i, i + 8))
        i += 10
        if (type !== 5) {
            out.push(len >> 8, len & 0xff, ...b.subarray(i, i + len))
            i += len
            continue
        }
        const lenAt = out.length
        out.push(0, 0)
        name()
        const n = out.length - lenAt - 2
        out[lenAt] = n >> 8
        out[lenAt + 1] = n & 0xff
    }
    return Uint8Array.from(out)
}

function norm(name: string): string {
    return name.toLowerCase().replace(/\.$/, "")
}

/** The emulated DNS server. Control it from tests through its public fields. */
export class DnsServer {
    /** when true the server ignores every query (an unreachable resolver) */
    silent = false
    /** when set, every query is answered with this error code instead */
    failWith: "SERVFAIL" | "REFUSED" | null = null
    /** write names compressed, as real servers do (default); false: every name in full */
    compress = true
    /** TTL of the records it returns, seconds */
    ttl = 60
    readonly counters: DnsCounters = { queries: 0, answered: 0, nxdomain: 0, ignored: 0 }
    private readonly records = new Map<string, string>()

    constructor(records: Record<string, string> = {}) {
        for (const [k, v] of Object.entries(records)) this.set(k, v)
    }

    /** Adds or replaces a record: `value` is an IPv4 address (A) or a name (CNAME). */
    set(name: string, value: string): void {
        this.records.set(norm(name), isIPv4(value) ? value : norm(value))
    }

    /** Removes a name. */
    delete(name: string): void {
        this.records.delete(norm(name))
    }

    /** Every IPv4 address the map can yield. */
    addresses(): string[] {
        return [...this.records.values()].filter(isIPv4)
    }

    /** Resolves a name through the map: the CNAME/A chain, empty when unknown. */
    resolve(name: string): { name: string; type: "A" | "CNAME"; value: string }[] {
        const chain: { name: string; type: "A" | "CNAME"; value: string }[] = []
        let cur = norm(name)
        for (let i = 0; i < MAX_CHAIN; i++) {
            const v = this.records.get(cur)
            if (v === undefined) break
            if (isIPv4(v)) {
                chain.push({ name: cur, type: "A", value: v })
                break
            }
            chain.push({ name: cur, type: "CNAME", value: v })
            cur = v
        }
        return chain
    }

    /** Handles one datagram sent to port 53; returns the replies. */
    handle(d: UdpDatagram): UdpDatagram[] {
        if (this.silent) return []
        let q: dnsPacket.DecodedPacket
        try {
            q = dnsPacket.decode(Buffer.from(d.data))
        } catch {
            this.counters.ignored++
            return []
        }
        if (q.type !== "query" || !q.questions || q.questions.length === 0) {
            this.counters.ignored++
            return []
        }
        this.counters.queries++
        const answers: dnsPacket.Answer[] = []
        let rcode: number = RCODE.NOERROR
        if (this.failWith) rcode = RCODE[this.failWith]
        else {
            for (const question of q.questions) {
                const chain = this.resolve(question.name)
                if (chain.length === 0) {
                    rcode = RCODE.NXDOMAIN
                    continue
                }
                for (const r of chain) {
                    if (r.type === "CNAME" && (question.type === "A" || question.type === "CNAME")) {
                        answers.push({ name: r.name, type: "CNAME", class: "IN", ttl: this.ttl, data: r.value })
                        if (question.type === "CNAME") break
                    } else if (r.type === "A" && question.type === "A") {
                        answers.push({ name: r.name, type: "A", class: "IN", ttl: this.ttl, data: r.value })
                    }
                }
            }
        }
        if (rcode === RCODE.NXDOMAIN) this.counters.nxdomain++
        else if (rcode === RCODE.NOERROR) this.counters.answered++
        const rd = q.flag_rd ? dnsPacket.RECURSION_DESIRED : 0
        const data = dnsPacket.encode({
            type: "response",
            id: q.id,
            flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | dnsPacket.RECURSION_AVAILABLE | rcode,
            questions: q.questions,
            answers: rcode === RCODE.NOERROR ? answers : [],
        })
        return [{ srcIp: d.dstIp, srcPort: DNS_PORT, dstIp: d.srcIp, dstPort: d.srcPort, data: this.compress ? compressNames(data) : new Uint8Array(data) }]
    }
}
