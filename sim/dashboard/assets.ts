/**
 * The page's files, served from memory: index.html and the icon as they are on disk, and app.js /
 * app.css bundled by esbuild from sim/dashboard/page/app.ts (with uPlot from node_modules), once
 * at start-up. No CDN: everything the page loads comes from this server.
 */
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { build, stop } from "esbuild"

/** Folder of the page's sources. */
export const PAGE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "page")

/** One file the server answers with. */
export interface Asset {
    body: Buffer
    type: string
}

const TYPES: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
}

/** Builds the bundle and reads the static files; the map's keys are URL paths ("/", "/app.js", ...). */
export async function buildAssets(): Promise<Map<string, Asset>> {
    const out = new Map<string, Asset>()
    // esbuild's service process would outlive npm start by a moment: built once, then stopped
    const result = await build({
        entryPoints: [path.join(PAGE_DIR, "app.ts")],
        bundle: true,
        minify: true,
        sourcemap: "linked",
        format: "iife",
        target: ["es2020"],
        platform: "browser",
        outdir: path.join(PAGE_DIR, "dist"),
        write: false,
        logLevel: "silent",
        legalComments: "eof",
    }).finally(() => stop())
    for (const f of result.outputFiles) {
        const name = path.basename(f.path)
        out.set("/" + name, { body: Buffer.from(f.contents), type: TYPES[path.extname(name)] ?? "application/octet-stream" })
    }
    for (const need of ["/app.js", "/app.css"]) if (!out.has(need)) throw new Error(`dashboard: the page build produced no ${need.slice(1)}`)
    for (const file of ["index.html", "favicon.svg"]) {
        const body = fs.readFileSync(path.join(PAGE_DIR, file))
        out.set(file === "index.html" ? "/" : "/" + file, { body, type: TYPES[path.extname(file)] })
    }
    return out
}
