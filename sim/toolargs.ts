/**
 * The command line the image tools share (`npm run bundle`, sim/bundle.ts; `npm run flash`,
 * sim/flash.ts): strict options with -h/--help, -b/--board ID and --project DIR, a bad option
 * answered with the tool's usage, and the entry point that prints the help or the error.
 */
import path from "node:path"
import { parseArgs, type ParseArgsConfig } from "node:util"
import { ROOT } from "./devs.ts"

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>

/** The options every tool has. */
const COMMON = {
    help: { type: "boolean", short: "h" },
    board: { type: "string", short: "b" },
    project: { type: "string" },
} as const satisfies OptionSpecs

/** The parsed values of options `T` (none is multiple). */
export type OptionValues<T extends OptionSpecs> = { [K in keyof T]?: T[K] extends { type: "boolean" } ? boolean : string }

/** What every tool's command line gives, beside its own option values. */
export interface ToolArgs<V> {
    help: boolean
    /** --board, checked to be a board id */
    board: string
    /** --project resolved (default: this repository) */
    project: string
    /** all option values as parsed (the tool's own ones among them) */
    values: V
}

/**
 * Parses `argv` for tool `tool` with the common options and `own`; a bad option or a --board that
 * is no board id throws `fail(message)`, the message naming the tool and the option.
 */
export function parseToolArgs<T extends OptionSpecs>(
    tool: string,
    usage: string,
    argv: string[],
    own: T,
    defaultBoard: string,
    fail: (message: string) => Error = m => new Error(m)
) {
    let values: OptionValues<typeof COMMON & T>
    try {
        values = parseArgs({ args: argv, options: { ...COMMON, ...own }, strict: true, allowPositionals: false }).values as OptionValues<typeof COMMON & T>
    } catch (e) {
        throw fail(`${tool}: ${(e as Error).message}\n\n${usage}`)
    }
    const v = values as OptionValues<typeof COMMON>
    const board = v.board ?? defaultBoard
    if (!/^[a-z0-9_]+$/.test(board)) throw fail(`${tool}: --board must be a board id such as ${defaultBoard} (letters, digits, _), got ${JSON.stringify(board)}`)
    const out: ToolArgs<OptionValues<typeof COMMON & T>> = { help: !!v.help, board, project: path.resolve(v.project ?? ROOT), values }
    return out
}

/**
 * A tool's entry point: parses, prints `usage` for --help, else runs; resolves to the exit code.
 * An error is printed as `describe` says (default: its message).
 */
export async function toolMain<O extends { help: boolean }>(
    argv: string[],
    usage: string,
    parse: (argv: string[]) => O,
    run: (o: O) => Promise<number>,
    describe: (e: unknown) => string = e => (e as Error).message
): Promise<number> {
    try {
        const o = parse(argv)
        if (o.help) {
            console.log(usage)
            return 0
        }
        return await run(o)
    } catch (e) {
        console.error(describe(e))
        return 1
    }
}
