/**
 * UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * The runtime turns invalid bytes into a string that panics the VM as soon as it is concatenated
 * or formatted (JSON.parse's error message quotes the bad character), so bytes from the network
 * are checked before they become text.
 */

/**
 * Index of the first byte in `b[start..end)` that is not part of a valid UTF-8 sequence, or -1
 * when all is valid.
 */
export function utf8ErrorAt(b: Buffer, start = 0, end = -1): number {
    const n = end < 0 ? b.length : end
    let i = start
    while (i < n) {
        // eight ASCII bytes at a time: two native reads instead of eight turns of the loop below
        // (a command's topic and payload cost ~1,300 VM steps, ~3 ms of an RP2040's core, byte by byte)
        if (i + 8 <= n && !((b.getAt(i, "u32") | b.getAt(i + 4, "u32")) & 0x80808080)) {
            i += 8
            continue
        }
        const c = b[i]
        if (c < 0x80) {
            i++
            continue
        }
        let need = 0
        let lo = 0x80
        let hi = 0xbf
        if (c >= 0xc2 && c <= 0xdf) need = 1
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2
            if (c === 0xe0) lo = 0xa0 // overlong
            if (c === 0xed) hi = 0x9f // surrogates
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3
            if (c === 0xf0) lo = 0x90 // overlong
            if (c === 0xf4) hi = 0x8f // above U+10FFFF
        } else return i
        // truncated sequence
        if (i + need >= n) return i
        const c1 = b[i + 1]
        if (c1 < lo || c1 > hi) return i
        for (let k = 2; k <= need; k++) {
            const ck = b[i + k]
            if (ck < 0x80 || ck > 0xbf) return i
        }
        i += need + 1
    }
    return -1
}
