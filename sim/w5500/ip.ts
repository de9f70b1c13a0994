/**
 * IPv4 address helpers for the emulated LAN: dotted strings, 4-byte arrays and 32-bit numbers.
 */

/** True when `s` is a dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
    const parts = s.split(".")
    return parts.length === 4 && parts.every(p => /^\d{1,3}$/.test(p) && Number(p) <= 255)
}

/** Dotted-quad string to an unsigned 32-bit number; throws on anything else. */
export function ipToU32(s: string): number {
    if (!isIPv4(s)) throw new Error(`ip: expected a dotted IPv4 address, got ${JSON.stringify(s)}`)
    return s.split(".").reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0)
}

/** Unsigned 32-bit number to a dotted-quad string. */
export function u32ToIp(n: number): string {
    return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".")
}

/** Four bytes (at `offset`) to a dotted-quad string. */
export function bytesToIp(b: Uint8Array, offset = 0): string {
    return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`
}

/** Dotted-quad string to four bytes. */
export function ipToBytes(s: string): Uint8Array {
    const n = ipToU32(s)
    return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

/** Netmask for a prefix length (0..32) as an unsigned 32-bit number. */
export function prefixMask(prefix: number): number {
    return prefix <= 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** True for 127.0.0.0/8. */
export function isLoopback(ip: string): boolean {
    return isIPv4(ip) && ip.startsWith("127.")
}
