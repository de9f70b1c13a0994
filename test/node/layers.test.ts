/**
 * The layers of the device code (docs/architecture.md, "The layers"): reads every relative import
 * of src/ (type-only ones included) and fails on an import that runs against the layer order and
 * on any import cycle, naming the files. Bottom up:
 *   util -> config -> hal -> net -> mqtt -> model -> cloud -> app -> simdev -> device -> images
 * A file may import its own layer and the ones below; files of one layer must not form a cycle.
 */
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { test } from "node:test"
import { fileURLToPath } from "node:url"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** Each layer and the files it holds (paths relative to src/, without ".ts"), bottom up. */
export const LAYERS: { name: string; holds: (rel: string) => boolean }[] = [
    { name: "util", holds: r => r.startsWith("util/") },
    { name: "config", holds: r => r === "config" },
    { name: "hal", holds: r => r.startsWith("hal/") },
    { name: "net", holds: r => r.startsWith("net/") },
    { name: "mqtt", holds: r => r.startsWith("mqtt/") },
    { name: "model", holds: r => r.startsWith("model/") },
    { name: "cloud", holds: r => r.startsWith("cloud/") },
    { name: "app", holds: r => r.startsWith("app/") },
    { name: "simdev", holds: r => r.startsWith("simdev/") },
    { name: "device", holds: r => r === "device" || r === "image" || r.startsWith("compose/") },
    { name: "images", holds: r => r.startsWith("images/") || r === "main" },
]

function layerOf(rel: string): number {
    return LAYERS.findIndex(l => l.holds(rel))
}

function sources(dir: string, base = dir): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap(e => {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) return sources(p, base)
        return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [path.relative(base, p).split(path.sep).join("/").replace(/\.ts$/, "")] : []
    })
}

/** The relative imports of one file's text (import/export ... from "./x", import "./x"), comments removed. */
export function relativeImports(text: string): string[] {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1")
    const out: string[] = []
    const re = /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\sfrom\s*)?["'](\.{1,2}\/[^"']+)["']/g
    for (let m; (m = re.exec(code)); ) out.push(m[1])
    return out
}

/** Every problem with the imports of the tree at `src` (files relative to it): layer breaks, unplaced files, cycles. */
export function layerProblems(src: string): string[] {
    const problems: string[] = []
    const files = sources(src)
    const edges = new Map<string, string[]>()
    for (const f of files) {
        const from = layerOf(f)
        if (from < 0) problems.push(`src/${f}.ts: in no layer (place it in LAYERS, test/node/layers.test.ts, and docs/architecture.md)`)
        const deps: string[] = []
        for (const spec of relativeImports(fs.readFileSync(path.join(src, f + ".ts"), "utf8"))) {
            let to = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec))
            if (!files.includes(to) && files.includes(to + "/index")) to += "/index"
            if (to.startsWith("..")) continue // outside src/ (packages are not relative)
            deps.push(to)
            const l = layerOf(to)
            if (from >= 0 && l > from) problems.push(`src/${f}.ts (${LAYERS[from].name}) imports src/${to}.ts (${LAYERS[l].name}), a layer above it`)
        }
        edges.set(f, deps)
    }
    // cycles: depth-first search, each cycle reported once by its smallest file
    const state = new Map<string, number>() // 1 on the stack, 2 done
    const stack: string[] = []
    const seen = new Set<string>()
    const visit = (f: string) => {
        state.set(f, 1)
        stack.push(f)
        for (const d of edges.get(f) ?? []) {
            if (state.get(d) === 1) {
                const cycle = stack.slice(stack.indexOf(d))
                const key = [...cycle].sort().join(" ")
                if (!seen.has(key)) {
                    seen.add(key)
                    problems.push(`import cycle: ${[...cycle, d].map(x => `src/${x}.ts`).join(" -> ")}`)
                }
            } else if (!state.has(d) && edges.has(d)) visit(d)
        }
        stack.pop()
        state.set(f, 2)
    }
    for (const f of files) if (!state.has(f)) visit(f)
    return problems
}

test("src/: no import runs against the layers, no import cycle", () => {
    const problems = layerProblems(path.join(ROOT, "src"))
    assert.deepEqual(problems, [], problems.join("\n"))
})

test("the checker sees imports in every form, and finds a back import and a cycle", () => {
    assert.deepEqual(
        relativeImports(
            'import * as ds from "@devicescript/core"\nimport type { A } from "./a"\nimport {\n  B,\n  C,\n} from "../b"\nexport { D } from "./d"\nimport "./e"\n// import { X } from "./x"\n/* import "./y" */\nconst s = "import { Z } from \'./z\'"\n'
        ),
        ["./a", "../b", "./d", "./e"]
    )
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"))
    try {
        const put = (f: string, text: string) => {
            fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
            fs.writeFileSync(path.join(dir, f), text)
        }
        put("util/a.ts", 'import { b } from "../net/b"\n')
        put("net/b.ts", 'import { c } from "./c"\n')
        put("net/c.ts", 'import type { b } from "./b"\n')
        put("stray.ts", "")
        assert.deepEqual(layerProblems(dir).sort(), [
            "import cycle: src/net/b.ts -> src/net/c.ts -> src/net/b.ts",
            "src/stray.ts: in no layer (place it in LAYERS, test/node/layers.test.ts, and docs/architecture.md)",
            "src/util/a.ts (util) imports src/net/b.ts (net), a layer above it",
        ])
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
})
