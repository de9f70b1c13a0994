/**
 * DNS server of the emulated LAN, Node side, built on the dns-packet npm package (independent of
 * the firmware's resolver). Answers A queries from a name map: a value that is an IPv4 address
 * gives an A record, any other value is a CNAME to that name (followed up to 8 steps).
 * Unknown names get NXDOMAIN. Pure: `handle()` returns the replies.
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

function norm(name: string): string {
    return name.toLowerCase().replace(/\.$/, "")
}

/** The emulated DNS server. Control it from tests through its public fields. */
export class DnsServer {
    /** when true the server ignores every query (an unreachable resolver) */
    silent = false
    /** when set, every query is answered with this error code instead */
    failWith: "SERVFAIL" | "REFUSED" | null = null
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
        return [{ srcIp: d.dstIp, srcPort: DNS_PORT, dstIp: d.srcIp, dstPort: d.srcPort, data: new Uint8Array(data) }]
    }
}
