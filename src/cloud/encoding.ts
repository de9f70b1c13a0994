/**
 * Text encodings the cloud credentials need: base64 (RFC 4648 section 4, and base64url from
 * section 5), lower-case hex, RFC 3986 percent-encoding, and OneNET's token escaping.
 * Decoders are strict and their errors give a position, never the offending text (it may be a secret).
 */

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
const HEX_UPPER = "0123456789ABCDEF"

/**
 * Encodes bytes as base64 with `=` padding, or as base64url without padding when `url` is true.
 */
export function base64Encode(data: Buffer, url?: boolean): string {
    const n = data.length
    // (plain assignments and ifs: fewer bytes than ternaries)
    let abc = B64
    if (url) abc = B64URL
    const out = Buffer.alloc(Math.ceil(n / 3) * 4)
    let o = 0
    for (let i = 0; i < n; i += 3) {
        // past the end counts as 0 bits
        let v = data[i] << 16
        if (i + 1 < n) v |= data[i + 1] << 8
        if (i + 2 < n) v |= data[i + 2]
        for (let sh = 18; sh >= 0; sh -= 6) out[o++] = abc.charCodeAt((v >> sh) & 63)
    }
    // a last group of 1 or 2 bytes needs 2 or 3 characters; the rest is "=" (0x3d) padding, none in base64url
    const rest = n % 3
    if (!rest) return out.toString()
    const used = o - 3 + rest
    if (url) return out.slice(0, used).toString()
    out.fillAt(used, o - used, 0x3d)
    return out.toString()
}

/**
 * Decodes standard padded base64 (no whitespace, no base64url). Throws an Error starting with
 * "base64:" on a length that is not a multiple of 4, a character outside the alphabet, or
 * misplaced padding. Non-zero bits left over before the padding are ignored, as most
 * platform decoders do.
 */
export function base64Decode(s: string): Buffer {
    const n = s.length
    if (n % 4) throw new Error(`base64: length ${n} is not a multiple of 4`)
    let pad = 0
    // (nested ifs and plain assignments: fewer bytes than && and a ternary)
    if (n)
        if (s.charCodeAt(n - 1) === 0x3d) {
            pad = 1
            if (s.charCodeAt(n - 2) === 0x3d) pad = 2
        }
    const out = Buffer.alloc((n / 4) * 3 - pad)
    const end = n - pad
    let v = 0
    let o = 0
    for (let k = 0; k < end; k++) {
        // a character's value is its place in the alphabet (a native search of 64 characters:
        // less bytecode than a lookup table built by code)
        const d = B64.indexOf(s.charAt(k))
        if (d < 0) throw new Error(`base64: invalid character at position ${k}`)
        v = (v << 6) | d
        if ((k & 3) === 3) {
            // (stores at o, o + 1, o + 2 and one step of 3: fewer bytes than o++ at each store)
            out[o] = v >> 16
            out[o + 1] = (v >> 8) & 0xff
            out[o + 2] = v & 0xff
            o += 3
            v = 0
        }
    }
    // the last group, short by the padding: 2 chars -> 1 byte, 3 chars -> 2 bytes
    if (pad === 2) out[o] = v >> 4
    else if (pad === 1) {
        out[o] = v >> 10
        out[o + 1] = (v >> 2) & 0xff
    }
    return out
}

/** Encodes bytes as lower-case hex. */
export function hexEncode(data: Buffer): string {
    return data.toString("hex")
}

/**
 * Decodes hex (either case). Throws an Error starting with "hex:" on an odd length or a
 * character that is not a hex digit.
 */
export function hexDecode(s: string): Buffer {
    const n = s.length
    if (n & 1) throw new Error(`hex: length ${n} is odd`)
    for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i) | 0x20 // folds A-F onto a-f
        if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)))
            throw new Error(`hex: invalid character at position ${i}`)
    }
    return Buffer.from(s, "hex")
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
    const l = c | 0x20 // folds A-Z onto a-z
    return (l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39) || "-._~".indexOf(String.fromCharCode(c)) >= 0
}

/** The characters OneNET's token format escapes: + space / ? % # & = */
function isOneNetPlain(c: number): boolean {
    return "+ /?%#&=".indexOf(String.fromCharCode(c)) < 0
}

/** Percent-encodes (upper-case %XX) every UTF-8 byte of `s` for which `keep` is false. */
function percentEncode(s: string, keep: (c: number) => boolean): string {
    const bytes = Buffer.from(s)
    const n = bytes.length
    let escaped = 0
    for (let i = 0; i < n; i++) if (!keep(bytes[i])) escaped++
    if (!escaped) return s
    const out = Buffer.alloc(n + 2 * escaped)
    let o = 0
    for (let i = 0; i < n; i++) {
        const c = bytes[i]
        // (stores at o, o + 1, o + 2 and one step of 3: fewer bytes than o++ at each store)
        if (keep(c)) out[o++] = c
        else {
            out[o] = 0x25
            out[o + 1] = HEX_UPPER.charCodeAt(c >> 4)
            out[o + 2] = HEX_UPPER.charCodeAt(c & 15)
            o += 3
        }
    }
    return out.toString()
}

/**
 * URL-encodes `s` (RFC 3986): unreserved characters stay, every other UTF-8 byte becomes %XX
 * with upper-case hex.
 */
export function urlEncode(s: string): string {
    return percentEncode(s, isUnreserved)
}

/**
 * Escapes `s` the way OneNET's token format does: only + space / ? % # & = become %XX,
 * everything else (including non-ASCII) is kept as it is.
 */
export function oneNetEncode(s: string): string {
    return percentEncode(s, isOneNetPlain)
}
