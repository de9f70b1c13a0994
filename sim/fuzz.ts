/**
 * `npm run fuzz`: the MQTT client (in the VM) against the hostile broker, 10,000 seeded cases by
 * default, in VM runs of `--batch` cases each, bounded by `--minutes`; loopback only. Prints a
 * table of cases per kind, crashes (must be 0), malformed packets counted and reconnects.
 * Options: --cases N --batch N --seed N --minutes N --mode device|test
 */
import { CASE_KINDS, runHostileVm, tallyCases, type CaseKind, type CaseTally } from "./hostile-broker.ts"

function arg(name: string, dflt: string): string {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt
}

const total = Number(arg("cases", "10000"))
const batch = Number(arg("batch", "500"))
const seed = Number(arg("seed", "1"))
const minutes = Number(arg("minutes", "30"))
const mode = arg("mode", "device") as "device" | "test"
const deadline = Date.now() + minutes * 60000

type Row = CaseTally & { crashes: number }
const rows = new Map<CaseKind, Row>()
for (const k of CASE_KINDS) rows.set(k, { cases: 0, clientClosedFirst: 0, reconnected: 0, bytes: 0, crashes: 0 })
let done = 0, crashes = 0, malformed = 0, reconnects = 0, received = 0, runs = 0
const crashList: string[] = []
const t0 = Date.now()

while (done < total && Date.now() < deadline) {
    const n = Math.min(batch, total - done)
    const r = await runHostileVm({ seed, cases: n, firstIndex: done, mode, timeoutMs: Math.max(60000, n * 1000) })
    runs++
    tallyCases(r.records, rows)
    const failed = r.panics.length > 0 || !r.stats || r.timedOut
    if (failed) {
        crashes++
        // the case on the connection where the VM went down (the last one served)
        const last = r.records.filter(Boolean).at(-1)
        if (last) rows.get(last.kind)!.crashes++
        crashList.push(`cases ${done}..${done + n - 1}: ${r.panics.join(" | ") || (r.timedOut ? "timeout" : "no summary")}` +
            (last ? ` (last case served: index ${last.index}, kind ${last.kind}, seed ${last.seed})` : ""))
    }
    if (r.stats) {
        malformed += r.stats.malformed
        reconnects += r.stats.reconnects
        received += r.stats.received
    }
    done += n
    console.log(`batch ${runs}: ${done}/${total} cases, ${Math.round((Date.now() - t0) / 1000)} s, ${failed ? "CRASH" : "ok"}`)
}

const pad = (s: string | number, w: number) => String(s).padStart(w)
console.log(`\nhostile broker fuzz: seed ${seed}, ${done} cases in ${runs} VM runs (${mode} mode), ${Math.round((Date.now() - t0) / 1000)} s`)
console.log(`${"kind".padEnd(22)}${pad("cases", 7)}${pad("client closed", 15)}${pad("reconnected", 13)}${pad("bytes", 11)}${pad("crashes", 9)}`)
for (const [k, r] of rows)
    console.log(`${k.padEnd(22)}${pad(r.cases, 7)}${pad(r.clientClosedFirst, 15)}${pad(r.reconnected, 13)}${pad(r.bytes, 11)}${pad(r.crashes, 9)}`)
console.log(`\ncrashes: ${crashes}   malformed counted: ${malformed}   reconnects: ${reconnects}   PUBLISH received: ${received}`)
for (const c of crashList) console.log(`  crash: ${c}`)
if (done < total) console.log(`stopped by the time bound (--minutes ${minutes}) after ${done} of ${total} cases`)
process.exitCode = crashes ? 1 : 0
