/**
 * `joinBytes`: two byte ranges in one new buffer. Not `Buffer.concat` or `buf.concat`: the core
 * library's are TypeScript (~200 bytes of bytecode, the static one with rest arguments), linked
 * into an image wherever a `concat` is called.
 */

/** `a` from `aFrom` to its end, then `b` from `bFrom` to its end, in a new buffer. */
export function joinBytes(a: Buffer, aFrom: number, b: Buffer, bFrom: number): Buffer {
    const na = a.length - aFrom
    const nb = b.length - bFrom
    const r = Buffer.alloc(na + nb)
    r.blitAt(0, a, aFrom, na)
    r.blitAt(na, b, bFrom, nb)
    return r
}
