/**
 * IPv4 addresses ("a.b.c.d" <-> 4 bytes) and network byte order (big-endian) helpers shared by
 * the DHCP, DNS and SNTP code. DeviceScript's `getAt` formats are little-endian only, so the
 * 16/32-bit big-endian accessors live here.
 */

/** The limited broadcast address (needs no ARP on the W5500). */
export const BROADCAST = "255.255.255.255"

/** A UDP datagram a protocol state machine asks its caller to send. */
export interface Datagram {
    data: Buffer
    /** destination IPv4 address "a.b.c.d" (`BROADCAST` for a broadcast) */
    to: string
    /** destination UDP port */
    port: number
}

/**
 * What a protocol machine (DHCP, DNS, SNTP) asks of its caller: call again at `wakeAt`, report
 * `event` when given, and first send `data` to `to`:`port` when given.
 */
export function action<A>(wakeAt: number, event?: string, data?: Buffer, to?: string, port?: number): A {
    const a: any = { wakeAt }
    if (event) a.event = event
    if (data) a.send = { data, to, port }
    return a
}

/** Parses "a.b.c.d" (each part 0..255, no leading zeros) into 4 bytes; undefined when it is not one. */
export function tryParseIp(s: string): Buffer {
    if (typeof s !== "string") return undefined
    const out = Buffer.alloc(4)
    let part = 0
    // read leniently (bytes wrap), then accept only what formats back to the same text: that
    // refuses other characters, parts past 255, leading zeros, empty and missing parts
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i)
        if (c !== 46) out[part] = out[part] * 10 + c - 48
        // (a fifth part: not an address)
        else if (++part > 3) break
    }
    if (formatIp(out) === s) return out
    return undefined
}

/** Parses "a.b.c.d" into 4 bytes; throws an Error naming the input when it is not an IPv4 address. */
export function parseIp(s: string): Buffer {
    const b = tryParseIp(s)
    if (!b) throw new Error(`ip: "${s}" is not an IPv4 address (expected a.b.c.d, each part 0..255)`)
    return b
}

/** True when `s` is a dotted-quad IPv4 address. */
export function isIp(s: string) {
    return tryParseIp(s) !== undefined
}

/** Formats the 4 bytes at `off` of `b` as "a.b.c.d"; throws when they are not all there. */
export function formatIp(b: Buffer, off = 0): string {
    if (off < 0 || off + 4 > b.length)
        throw new Error(`ip: need 4 bytes at offset ${off} of a ${b.length}-byte buffer`)
    return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
}

/** Reads an unsigned big-endian 16-bit number (undefined bytes read as 0: check lengths first). */
export function getU16(b: Buffer, off: number) {
    return ((b[off] << 8) | b[off + 1]) & 0xffff
}

/** Reads an unsigned big-endian 32-bit number (0..2^32-1; check lengths first). */
export function getU32(b: Buffer, off: number) {
    return b[off] * 0x1000000 + (((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) & 0xffffff)
}

/** Writes `v` as a big-endian 16-bit number (modulo 2^16). */
export function setU16(b: Buffer, off: number, v: number) {
    b[off] = (v >> 8) & 0xff
    b[off + 1] = v & 0xff
}

/** Writes `v` as a big-endian 32-bit number (modulo 2^32). */
export function setU32(b: Buffer, off: number, v: number) {
    b[off] = (v >>> 24) & 0xff
    b[off + 1] = (v >>> 16) & 0xff
    b[off + 2] = (v >>> 8) & 0xff
    b[off + 3] = v & 0xff
}
