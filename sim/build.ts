/**
 * `npm run build`: compiles the board image of the CLOUD the settings choose
 * (src/images/board-<CLOUD>.ts; .env.defaults, then .env.local) into .devicescript/bin, checking
 * that it fits the VM. `npm run build -- --sim` builds the simulator image instead.
 */
import { execFileSync } from "node:child_process"
import path from "node:path"
import { DEVS_CLI, ROOT } from "./devs.ts"
import { loadEnvFiles } from "./envfile.ts"
import { imageFor } from "./images.ts"

function main(argv: string[]): number {
    const target = argv.includes("--sim") ? "sim" : "board"
    let entry: string
    try {
        const env = loadEnvFiles([
            { file: path.join(ROOT, ".env.defaults"), required: false },
            { file: path.join(ROOT, ".env.local"), required: false },
        ])
        entry = imageFor(target, env.settings.CLOUD)
    } catch (e) {
        console.error(`build: ${(e as Error).message}`)
        return 2
    }
    console.log(`build: ${entry}`)
    try {
        execFileSync(process.execPath, [DEVS_CLI, "build", entry], { cwd: ROOT, stdio: "inherit" })
    } catch {
        return 1
    }
    return 0
}

process.exit(main(process.argv.slice(2)))
