/**
 * Settings the cloud platforms share (each platform's `create` reads only what it uses):
 * TOKEN_TTL, CLOUD_PROPS, and the checks of identity values.
 */
import { findProperty } from "../model/properties"
import { Settings, intSetting, isChars, setting } from "../config"
import { base64Decode } from "./encoding"
import { words } from "../util/words"

/** Shortest and longest TOKEN_TTL, seconds (10 s is for tests of token renewal). */
export const TOKEN_TTL_MIN = 10
export const TOKEN_TTL_MAX = 31536000
/** Default TOKEN_TTL, seconds. */
export const TOKEN_TTL_DEFAULT = 3600

/** What identity values may be made of (`ID_TEXT` describes `idValue`). */
export const ID_TEXT = "letters, digits, '_', '-', '.', '@' or ':'"
export const B64_TEXT = "base64 text (the key as the console shows it)"
export const HOST_TEXT = "a host name (no scheme, no port)"

/** An identity value: letters, digits, `_-.@:`, at most 128 characters (no `/`). */
export function idValue(s: string): string {
    if (isChars(s, "_-.@:", false, 128)) return s
    return undefined
}

/** A base64 key that decodes to at least one byte. */
export function base64Value(s: string): string {
    try {
        if (base64Decode(s).length > 0) return s
    } catch (e) {
        // not base64 text: not a key
    }
    return undefined
}

/** TOKEN_TTL: lifetime of minted tokens in seconds (OneNET, Azure, Tencent). */
export async function tokenTtl(s: Settings): Promise<number> {
    return await intSetting(s, "TOKEN_TTL", TOKEN_TTL_DEFAULT, TOKEN_TTL_MIN, TOKEN_TTL_MAX)
}

/**
 * Parses CLOUD_PROPS, `name:identifier` pairs separated by commas (`temperature:temp,uptime:-`);
 * returns the map, or throws an Error describing the first problem.
 */
export function parsePropNames(text: string): { [name: string]: string } {
    const names: { [name: string]: string } = {}
    const used: string[] = []
    for (const part of words(text, ",")) {
        const item = part.trim()
        if (!item.length) continue
        const colon = item.indexOf(":")
        const name = item.slice(0, colon).trim()
        const id = item.slice(colon + 1).trim()
        const c = id.charCodeAt(0)
        // (one test a case and plain assignments: fewer bytes than a ternary and && chains)
        let why = ""
        if (colon < 0) why = `${JSON.stringify(item)} is not name:identifier`
        else if (!findProperty(name)) why = `${JSON.stringify(name)} is not a property of the device`
        else if (names[name] !== undefined) why = `${name} is mapped twice`
        else if (id !== "-") {
            let bad = !isChars(id, "_", false, 50)
            if (c >= 0x30) if (c <= 0x39) bad = true
            if (bad) why = `${JSON.stringify(id)} is not an identifier (letters, digits, '_', at most 50)`
            else if (used.indexOf(id) >= 0) why = `identifier ${id} is used twice`
        }
        if (why) throw new Error(why)
        used.push(id)
        names[name] = id
    }
    return names
}

/** CLOUD_PROPS: platform identifiers that replace the profile's defaults (undefined when unset). */
export async function propNames(s: Settings): Promise<{ [name: string]: string }> {
    return await setting(s, "CLOUD_PROPS", undefined, "name:identifier pairs separated by commas", parsePropNames)
}
