/**
 * `words(s, sep)`: `s` cut at each occurrence of `sep`, exactly as `s.split(sep)` with a non-empty
 * separator, in a few VM steps a piece: the core library's `split` is a TypeScript loop that takes
 * about 25 VM steps a character (on the emulated board the string tables cut at module start cost
 * 16,000 steps, ~110 ms of core, at every boot; `npm run profile -- --boot`).
 */
export function words(s: string, sep: string): string[] {
    const out: string[] = []
    let from = 0
    for (;;) {
        const i = s.indexOf(sep, from)
        if (i < 0) break
        out.push(s.slice(from, i))
        from = i + sep.length
    }
    out.push(s.slice(from))
    return out
}
