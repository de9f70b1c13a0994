/**
 * Settings files (`.env.defaults`, `.env.local`, `--env FILE`) read exactly the way the DeviceScript
 * CLI reads them when it deploys settings to a board, quirks included, so the simulator sees what a
 * flashed device would:
 * - any line containing `#` is dropped (a trailing comment drops the whole line, value included);
 * - `KEY=VALUE` splits at the first `=` after the key (leading `=` are skipped); spaces around `=`
 *   stay part of the key and the value;
 * - a value that parses as JSON takes that type (1883 -> number, true -> boolean, "x" -> string,
 *   {"a":1} -> object), except `null`, which stays the text "null"; anything else is text, as is;
 * - an empty value unsets the key (also over a lower layer).
 */
import fs from "node:fs"

/** A setting value as the device receives it. */
export type SettingValue = string | number | boolean | object

/** Parsed settings: `undefined` means "unset" (an empty value). */
export type EnvLayer = Record<string, SettingValue | undefined>

/** Longest setting name the device runtime can read. */
export const MAX_KEY_LENGTH = 13

/** Parses one settings file's text. */
export function parseEnv(text: string): EnvLayer {
    const out: EnvLayer = {}
    for (const line of text.split(/\r?\n/)) {
        if (line.includes("#")) continue
        // the CLI's unanchored /([^=]+)\s*=(.*)/: the key starts at the first character that is not '='
        let start = 0
        while (start < line.length && line[start] === "=") start++
        const eq = line.indexOf("=", start)
        if (start >= line.length || eq < 0) continue
        const key = line.slice(start, eq)
        const value = line.slice(eq + 1)
        delete out[key]
        out[key] = toValue(value)
    }
    return out
}

function toValue(s: string): SettingValue | undefined {
    if (!s.length) return undefined
    let v: unknown
    try {
        v = JSON.parse(s)
    } catch {
        return s
    }
    // JSON null falls back to the text; the CLI stores JSON.stringify(value), so -0 arrives as 0
    return v === null || v === undefined ? s : (JSON.parse(JSON.stringify(v)) as SettingValue)
}

/** Merges layers, later ones winning; keys left unset (undefined) are dropped. */
export function layerEnv(...layers: EnvLayer[]): Record<string, SettingValue> {
    const merged: EnvLayer = {}
    for (const l of layers) for (const [k, v] of Object.entries(l)) merged[k] = v
    const out: Record<string, SettingValue> = {}
    for (const [k, v] of Object.entries(merged)) if (v !== undefined) out[k] = v
    return out
}

/** One file's contribution. */
export interface EnvSource {
    file: string
    /** false when the file does not exist (an optional layer) */
    found: boolean
    keys: number
}

/** Settings read from files, in order, with warnings about keys the device will not see as meant. */
export interface LoadedEnv {
    settings: Record<string, SettingValue>
    sources: EnvSource[]
    warnings: string[]
}

/** Problems with key names: too long for the runtime, or with spaces (from `KEY = value`). */
export function keyWarnings(file: string, layer: EnvLayer): string[] {
    const w: string[] = []
    for (const k of Object.keys(layer)) {
        if (k !== k.trim())
            w.push(`${file}: setting ${JSON.stringify(k)} has spaces around its name (write KEY=value, no spaces around '='); the device will not find ${k.trim()}`)
        else if (k.length > MAX_KEY_LENGTH)
            w.push(`${file}: setting ${k} is longer than ${MAX_KEY_LENGTH} characters; the device cannot read it`)
    }
    return w
}

/**
 * Reads settings files in order (later files win). `required` files must exist; others are
 * skipped when missing. Throws an Error naming the file when a required one cannot be read.
 */
export function loadEnvFiles(files: { file: string; required: boolean }[]): LoadedEnv {
    const layers: EnvLayer[] = []
    const sources: EnvSource[] = []
    const warnings: string[] = []
    for (const { file, required } of files) {
        let text: string
        try {
            text = fs.readFileSync(file, "utf8")
        } catch (e) {
            const err = e as NodeJS.ErrnoException
            if (!required && err.code === "ENOENT") {
                sources.push({ file, found: false, keys: 0 })
                continue
            }
            throw new Error(`settings: cannot read ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`)
        }
        const layer = parseEnv(text)
        layers.push(layer)
        sources.push({ file, found: true, keys: Object.keys(layer).length })
        warnings.push(...keyWarnings(file, layer))
    }
    return { settings: layerEnv(...layers), sources, warnings }
}

/** True for setting names that hold secrets (passwords, keys, tokens): never print their values. */
export function isSecretKey(key: string): boolean {
    return /PASS|PWD|SECRET|KEY|TOKEN|PSK|SIG/i.test(key)
}

/** `KEY=value` lines for display, secrets replaced by "(set)". */
export function describeSettings(settings: Record<string, SettingValue>): string[] {
    return Object.keys(settings)
        .sort()
        .map(k => `${k}=${isSecretKey(k) ? "(set)" : JSON.stringify(settings[k])}`)
}
