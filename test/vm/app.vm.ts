import * as ds from "@devicescript/core"
import { deleteSetting, writeSetting } from "@devicescript/settings"
import { COMMAND_NAMES, MAX_COMMAND_BYTES, Parsed, applyCommand, checkParams, parseCommand } from "../../src/model/commands"
import { MAX_JSON_DEPTH, jsonDepth, parseJson, toJson } from "../../src/util/json"
import { words } from "../../src/util/words"
import { Device, PROPERTIES, checkValue, findProperty, isNumeric } from "../../src/model/properties"
import { Schedule, nextDeadline } from "../../src/app/schedule"
import { BACKLOG_LIMIT, Backlog } from "../../src/app/backlog"
import { FixedSensor, SIM_HUM_MAX, SIM_HUM_MIN, SIM_TEMP_MAX, SIM_TEMP_MIN, SimulatedSensor, startSimSensor } from "../../src/app/sensors"
import { crc8, decodeReading, measure } from "../../src/app/i2c-sensors"
import { GenericProfile, HA_COMMAND_ID } from "../../src/cloud/generic"
import { CloudProfile, Message } from "../../src/cloud/profile"
import { Config, ConfigError, INTERVAL_MAX, INTERVAL_MIN, MAX_KEY_LENGTH, describeConfig, loadConfig } from "../../src/config"
import { loadSimSettings, runnerSetting } from "../../src/simdev/hostlink"
import { Mutex } from "../../src/util/mutex"
import { sleep } from "../../src/util/rt"
import { Signal } from "../../src/util/signal"
import { describe, test } from "./harness"
import { eq, has, lacks, ok } from "./asserts"

// ---- small assertion helpers (the runtime's expect has only toBe) ----


/** A settings reader over a plain object. */
function reader(values: any, seen?: string[]) {
    return async (key: string) => {
        if (seen) seen.push(key)
        return values[key]
    }
}

/** Loads a config expecting failure; returns the error message. */
async function configError(values: any): Promise<string> {
    try {
        await loadConfig(reader(values))
    } catch (e: any) {
        ok(e instanceof ConfigError, "expected a ConfigError, got " + e)
        return e.message
    }
    throw new Error("expected loadConfig to fail for " + toJson(values))
}

const BASE = { MQTT_HOST: "127.0.0.1" }
function withBase(extra: any): any {
    const o: any = {}
    for (const k of Object.keys(BASE)) o[k] = (BASE as any)[k]
    for (const k of Object.keys(extra)) o[k] = extra[k]
    return o
}

function testConfig(extra?: any): Config {
    const c: Config = {
        deviceId: "kit-01",
        cloud: "generic",
        mqttHost: "127.0.0.1",
        mqttPort: 1883,
        mqttTls: false,
        mqttUser: "",
        mqttPass: "",
        keepAliveS: 60,
        reportMs: 5000,
        topicPrefix: "devices",
        haDiscovery: true,
        haPrefix: "homeassistant",
        sensor: "sim",
        net: "host",
        logLevel: "info",
        netIp: "",
        netMask: "255.255.255.0",
        netGateway: "",
        netDns: [],
        ntpServers: ["pool.ntp.org"],
        dhcpWaitMs: 0,
        netMac: "",
    }
    if (extra) for (const k of Object.keys(extra)) (c as any)[k] = extra[k]
    return c
}

/** Every discovery message of `p`, asked for one at a time as the app does. */
function discoveryOf(p: CloudProfile): Message[] {
    const out: Message[] = []
    for (let i = 0; ; i++) {
        const m = p.discovery(i)
        if (!m) return out
        out.push(m)
    }
}

function buf(s: string) {
    return Buffer.from(s)
}

// ---- config ----

describe("config", () => {
    test("defaults with only MQTT_HOST set", async () => {
        const c = await loadConfig(reader(BASE))
        eq(c.mqttHost, "127.0.0.1", "host")
        eq(c.mqttPort, 1883, "port")
        eq(c.mqttTls, false, "tls")
        eq(c.mqttUser, "", "user")
        eq(c.mqttPass, "", "pass")
        eq(c.keepAliveS, 60, "keepalive")
        eq(c.reportMs, 5000, "report")
        eq(c.topicPrefix, "devices", "prefix")
        eq(c.haDiscovery, true, "ha")
        eq(c.haPrefix, "homeassistant", "ha prefix")
        eq(c.cloud, "generic", "cloud")
        eq(c.sensor, "auto", "sensor")
        eq(c.net, "auto", "net")
        eq(c.logLevel, "info", "log")
        eq(c.deviceId, "w55-" + ds.deviceIdentifier("self"), "default device id")
    })

    test("every key name fits the runtime's 13-character limit", async () => {
        const seen: string[] = []
        await loadConfig(reader(BASE, seen))
        ok(seen.length >= 15, "reads at least 15 keys, read " + seen.length)
        for (const k of seen) ok(k.length <= MAX_KEY_LENGTH, `key ${k} is longer than ${MAX_KEY_LENGTH}`)
    })

    test("typed and text values both accepted", async () => {
        const a = await loadConfig(reader(withBase({ MQTT_PORT: 1884, MQTT_TLS: true, REPORT_MS: 2000, HA_DISCOVERY: false })))
        eq(a.mqttPort, 1884, "numeric port")
        eq(a.mqttTls, true, "boolean tls")
        eq(a.reportMs, 2000, "numeric report")
        eq(a.haDiscovery, false, "boolean ha")
        const b = await loadConfig(reader(withBase({ MQTT_PORT: " 1885 ", MQTT_TLS: "on", REPORT_MS: "3000", HA_DISCOVERY: "0" })))
        eq(b.mqttPort, 1885, "text port")
        eq(b.mqttTls, true, "text tls")
        eq(b.reportMs, 3000, "text report")
        eq(b.haDiscovery, false, "text ha")
        const c = await loadConfig(reader(withBase({ MQTT_TLS: 1, MQTT_USER: 1234, CLOUD: " Generic ", SENSOR: "SIM", LOG_LEVEL: "debug" })))
        eq(c.mqttTls, true, "1 as tls")
        eq(c.mqttUser, "1234", "numeric user taken as text")
        eq(c.cloud, "generic", "cloud case-insensitive")
        eq(c.sensor, "sim", "sensor case-insensitive")
        eq(c.logLevel, "debug", "log level")
    })

    test("TLS changes the default port", async () => {
        eq((await loadConfig(reader(withBase({ MQTT_TLS: true })))).mqttPort, 8883, "tls default port")
        eq((await loadConfig(reader(withBase({ MQTT_TLS: true, MQTT_PORT: 443 })))).mqttPort, 443, "explicit port wins")
    })

    test("empty and null values count as unset", async () => {
        const c = await loadConfig(reader(withBase({ MQTT_PORT: "", REPORT_MS: null, TOPIC_PREFIX: "  " })))
        eq(c.mqttPort, 1883, "port default")
        eq(c.reportMs, 5000, "report default")
        eq(c.topicPrefix, "devices", "prefix default")
    })

    test("MQTT_PORT errors name the key, value and expectation", async () => {
        eq(await configError(withBase({ MQTT_PORT: "abc" })), 'config: MQTT_PORT must be an integer 1..65535, got "abc"')
        eq(await configError(withBase({ MQTT_PORT: 70000 })), "config: MQTT_PORT must be an integer 1..65535, got 70000")
        eq(await configError(withBase({ MQTT_PORT: 0 })), "config: MQTT_PORT must be an integer 1..65535, got 0")
        eq(await configError(withBase({ MQTT_PORT: 1883.5 })), "config: MQTT_PORT must be an integer 1..65535, got 1883.5")
        eq(await configError(withBase({ MQTT_PORT: "18 83" })), 'config: MQTT_PORT must be an integer 1..65535, got "18 83"')
        eq(await configError(withBase({ MQTT_PORT: true })), "config: MQTT_PORT must be an integer 1..65535, got true")
    })

    test("REPORT_MS and MQTT_KEEPALV bounds", async () => {
        eq(await configError(withBase({ REPORT_MS: 500 })), `config: REPORT_MS must be an integer ${INTERVAL_MIN}..${INTERVAL_MAX}, got 500`)
        eq(await configError(withBase({ REPORT_MS: "fast" })), `config: REPORT_MS must be an integer ${INTERVAL_MIN}..${INTERVAL_MAX}, got "fast"`)
        eq(await configError(withBase({ MQTT_KEEPALV: 1 })), "config: MQTT_KEEPALV must be an integer 5..3600, got 1")
        eq((await loadConfig(reader(withBase({ MQTT_KEEPALV: 30 })))).keepAliveS, 30, "keepalive")
    })

    test("flag errors", async () => {
        eq(await configError(withBase({ MQTT_TLS: "maybe" })), 'config: MQTT_TLS must be true or false (also 1/0, "on"/"off", "yes"/"no"), got "maybe"')
        eq(await configError(withBase({ HA_DISCOVERY: 2 })), 'config: HA_DISCOVERY must be true or false (also 1/0, "on"/"off", "yes"/"no"), got 2')
    })

    test("choice errors list the options", async () => {
        eq(await configError(withBase({ CLOUD: "aws" })), 'config: CLOUD must be one of generic|alibaba|onenet|azure|thingspeak|huawei|tencent, got "aws"')
        eq(await configError(withBase({ SENSOR: "dht22" })), 'config: SENSOR must be one of auto|sim|fixed|aht20|sht30, got "dht22"')
        eq(await configError(withBase({ NET: "wifi" })), 'config: NET must be one of auto|host|w5500, got "wifi"')
        eq(await configError(withBase({ LOG_LEVEL: 3 })), "config: LOG_LEVEL must be one of error|warn|info|debug, got 3")
    })

    test("DEVICE_ID must be topic-safe", async () => {
        eq((await loadConfig(reader(withBase({ DEVICE_ID: "kit_01-a" })))).deviceId, "kit_01-a", "valid id")
        for (const bad of ["my/dev", "dev+1", "dev#", "a b"])
            eq(await configError(withBase({ DEVICE_ID: bad })), `config: DEVICE_ID must be 1..64 letters, digits, '_' or '-', got ${JSON.stringify(bad)}`)
    })

    test("TOPIC_PREFIX and HA_PREFIX must be plain topic levels", async () => {
        eq((await loadConfig(reader(withBase({ TOPIC_PREFIX: "home/devices" })))).topicPrefix, "home/devices", "two levels")
        for (const bad of ["a/#", "a/+/b", "a//b", "/a", "a/", "$SYS"]) {
            const m = await configError(withBase({ TOPIC_PREFIX: bad }))
            has(m, "config: TOPIC_PREFIX must be topic levels", bad)
            has(m, "got " + JSON.stringify(bad), bad)
        }
        has(await configError(withBase({ HA_PREFIX: "ha/#" })), 'config: HA_PREFIX must be topic levels of letters, digits')
    })

    test("MQTT_HOST is required for the generic profile and must be a bare host", async () => {
        eq(await configError({}), "config: MQTT_HOST must be set for CLOUD=generic (the broker's host name or IP address), got nothing")
        eq(await configError({ MQTT_HOST: "mqtt://x:1883" }), 'config: MQTT_HOST must be a host name or IP address (no scheme, no port), got "mqtt://x:1883"')
        eq((await loadConfig(reader({ MQTT_HOST: "broker.example.com" }))).mqttHost, "broker.example.com", "host name")
    })

    test("all problems are collected into one error", async () => {
        try {
            await loadConfig(reader({ MQTT_PORT: "abc", REPORT_MS: 10, CLOUD: "x" }))
        } catch (e: any) {
            ok(e instanceof ConfigError, "ConfigError")
            const err = e as ConfigError
            eq(err.problems.length, 4, "problem count: " + err.message)
            const lines = err.message.split("\n")
            eq(lines.length, 4, "one line per problem")
            for (const l of lines) has(l, "config: ")
            has(err.message, "CLOUD must be one of")
            has(err.message, "MQTT_PORT must be an integer")
            has(err.message, "REPORT_MS must be an integer")
            has(err.message, "MQTT_HOST must be set")
            return
        }
        throw new Error("expected failure")
    })

    test("secrets never appear in errors or descriptions", async () => {
        const m = await configError(withBase({ MQTT_PASS: { secret: "hunter2" } }))
        eq(m, "config: MQTT_PASS must be text, got (hidden)")
        lacks(m, "hunter2")
        const c = await loadConfig(reader(withBase({ MQTT_USER: "alice", MQTT_PASS: "hunter2" })))
        eq(c.mqttPass, "hunter2", "password kept")
        const d = describeConfig(c)
        lacks(d, "hunter2", "description")
        has(d, "pass=(set)")
        has(d, "user=alice")
        has(describeConfig(await loadConfig(reader(BASE))), "pass=(none)")
    })

    test("a failing settings store is reported, not thrown raw", async () => {
        let m = ""
        try {
            await loadConfig(async key => {
                if (key === "MQTT_PORT") throw new Error("flash read failed")
                return key === "MQTT_HOST" ? "x" : undefined
            })
        } catch (e: any) {
            m = e.message
        }
        has(m, "config: MQTT_PORT could not be read: flash read failed")
    })

    test("reads the real settings store by default", async () => {
        await writeSetting("MQTT_HOST", "10.0.0.5")
        await writeSetting("MQTT_PORT", 1999)
        await writeSetting("REPORT_MS", "7000")
        try {
            const c = await loadConfig()
            eq(c.mqttHost, "10.0.0.5", "host")
            eq(c.mqttPort, 1999, "port")
            eq(c.reportMs, 7000, "report")
            await writeSetting("MQTT_PORT", "abc")
            let msg = ""
            try {
                await loadConfig()
            } catch (e: any) {
                msg = e.message
            }
            eq(msg, 'config: MQTT_PORT must be an integer 1..65535, got "abc"', "store error")
        } finally {
            await deleteSetting("MQTT_HOST")
            await deleteSetting("MQTT_PORT")
            await deleteSetting("REPORT_MS")
        }
    })
})

describe("network settings (W5500)", () => {
    test("defaults: DHCP, standard mask, no DNS override, pool.ntp.org", async () => {
        const c = await loadConfig(reader(BASE))
        eq(c.netIp, "", "NET_IP unset = DHCP")
        eq(c.netMask, "255.255.255.0", "mask")
        eq(c.netGateway, "", "gateway")
        eq(c.netDns.length, 0, "dns")
        eq(c.ntpServers.join(","), "pool.ntp.org", "ntp")
        eq(c.dhcpWaitMs, 0, "dhcp wait")
        eq(c.netMac, "", "mac")
        has(describeConfig(c), "ip=dhcp")
    })

    test("static address, lists, MAC and DHCP wait", async () => {
        const c = await loadConfig(
            reader(
                withBase({
                    NET_IP: "192.168.1.20",
                    NET_MASK: "255.255.0.0",
                    NET_GATEWAY: " 192.168.1.1 ",
                    NET_DNS: "1.1.1.1, 8.8.8.8",
                    NTP_SERVERS: "time.example.com,10.0.0.1",
                    DHCP_WAIT_MS: "15000",
                    NET_MAC: "02:12:34:56:78:9a",
                })
            )
        )
        eq(c.netIp, "192.168.1.20", "ip")
        eq(c.netMask, "255.255.0.0", "mask")
        eq(c.netGateway, "192.168.1.1", "gateway trimmed")
        eq(c.netDns.join("|"), "1.1.1.1|8.8.8.8", "dns list")
        eq(c.ntpServers.join("|"), "time.example.com|10.0.0.1", "ntp list")
        eq(c.dhcpWaitMs, 15000, "dhcp wait")
        eq(c.netMac, "02:12:34:56:78:9a", "mac")
        has(describeConfig(c), "ip=192.168.1.20")
        eq((await loadConfig(reader(withBase({ NTP_SERVERS: "None" })))).ntpServers.length, 0, "none = no SNTP")
        eq((await loadConfig(reader(withBase({ NET_MAC: "0A:BC:DE:F0:12:34" })))).netMac, "0A:BC:DE:F0:12:34", "upper-case MAC")
    })

    test("bad network values name the key, the value and what was expected", async () => {
        eq(await configError(withBase({ NET_IP: "192.168.1" })), 'config: NET_IP must be an IPv4 address like 192.168.1.20 (unset: DHCP), got "192.168.1"')
        has(await configError(withBase({ NET_IP: "192.168.1.256" })), "NET_IP must be an IPv4 address")
        has(await configError(withBase({ NET_IP: "a.b.c.d" })), 'got "a.b.c.d"')
        has(await configError(withBase({ NET_MASK: "255.255.255" })), "config: NET_MASK must be a subnet mask like 255.255.255.0")
        has(await configError(withBase({ NET_GATEWAY: "gw" })), 'config: NET_GATEWAY must be an IPv4 address like 192.168.1.20, got "gw"')
        eq(
            await configError(withBase({ NET_DNS: "1.1.1.1,,8.8.8.8" })),
            'config: NET_DNS must be IPv4 addresses separated by commas, like 1.1.1.1,8.8.8.8, got "1.1.1.1,,8.8.8.8"'
        )
        has(await configError(withBase({ NET_DNS: "dns.google" })), "NET_DNS must be IPv4 addresses")
        has(await configError(withBase({ NTP_SERVERS: "ntp://x" })), 'config: NTP_SERVERS must be host names or addresses separated by commas, or "none", got "ntp://x"')
        eq(await configError(withBase({ DHCP_WAIT_MS: 700000 })), "config: DHCP_WAIT_MS must be an integer 0..600000, got 700000")
        has(await configError(withBase({ DHCP_WAIT_MS: "-1" })), "DHCP_WAIT_MS must be an integer 0..600000")
        eq(
            await configError(withBase({ DHCP_WAIT_MS: 5000 })),
            "config: DHCP_WAIT_MS (5000) needs NET_IP, the static address to fall back to; got no NET_IP (without it the device uses DHCP only)"
        )
        eq((await loadConfig(reader(withBase({ DHCP_WAIT_MS: 5000, NET_IP: "192.168.1.20" })))).dhcpWaitMs, 5000, "DHCP_WAIT_MS with NET_IP")
        for (const bad of ["02:12:34:56:78", "02-12-34-56-78-9a", "02:12:34:56:78:9g", "01:12:34:56:78:9a", "2:12:34:56:78:9a"])
            eq(await configError(withBase({ NET_MAC: bad })), `config: NET_MAC must be a unicast MAC address like 02:12:34:56:78:9a, got ${JSON.stringify(bad)}`)
        // all at once
        const m = await configError(withBase({ NET_IP: "x", NET_MAC: "y", DHCP_WAIT_MS: "soon" }))
        eq(m.split("\n").length, 3, "three problems: " + m)
    })
})

describe("settings from the runner", () => {
    // test/node/app.test.ts serves what `npm start` would: .env.defaults plus the runner's overrides
    test("the committed .env.defaults, as npm start serves it, is a valid configuration", async () => {
        const n = await loadSimSettings()
        ok(n >= 10, "settings served by the host link: " + n)
        const c = await loadConfig(runnerSetting)
        eq(c.deviceId, "w55rp20-sim", "DEVICE_ID set by the runner")
        eq(c.mqttHost, "127.0.0.1", "host")
        eq(c.mqttPort, 1883, "broker port from the runner")
        eq(c.mqttTls, false, "tls")
        eq(c.keepAliveS, 60, "keepalive")
        eq(c.reportMs, 5000, "report")
        eq(c.cloud, "generic", "cloud")
        eq(c.topicPrefix, "devices", "prefix")
        eq(c.haDiscovery, true, "ha")
        eq(c.sensor, "auto", "sensor")
        eq(c.net, "auto", "net")
    })
})

// ---- JSON helpers ----

describe("json", () => {
    test("toJson escapes non-ASCII so it survives a round trip", () => {
        eq(toJson("\u00b0C"), '"\\u00b0C"', "degree sign")
        eq(toJson('a"b\\c\n'), '"a\\"b\\\\c\\n"', "plain ASCII: quotes, backslash, newline, in one piece")
        eq(toJson("x\u00e9y\"z"), '"x\\u00e9y\\"z"', "ASCII runs around a non-ASCII character")
        eq(JSON.parse(toJson({ u: "\u00b0C", q: 'a"b\\c\n' })).u, "\u00b0C", "round trip")
        eq(JSON.parse(toJson({ q: 'a"b\\c\n' })).q, 'a"b\\c\n', "quotes and escapes")
        eq(toJson("a\u0001\u001fb\t\u007f"), '"a\\u0001\\u001fb\\t\\u007f"', "control characters and DEL escaped")
        eq(JSON.parse(toJson({ c: "\u0001\r\u00e9\ud83d\ude00" })).c, "\u0001\r\u00e9\ud83d\ude00", "control, non-ASCII and astral round trip")
        eq(toJson({ a: 1, b: undefined, c: [true, null, "x"], d: NaN }), '{"a":1,"c":[true,null,"x"],"d":null}', "shapes")
        // the runtime's JSON.stringify serves plain ASCII data; the cases it gets wrong go the long way
        eq(toJson({ a: "undefined", b: [1, undefined], c: undefined }), '{"a":"undefined","b":[1,null]}', "undefined in an array")
        eq(toJson([undefined]), "[null]", "undefined alone in an array")
        eq(toJson({ t: "\\u00e9", u: "\u00e9" }), '{"t":"\\\\u00e9","u":"\\u00e9"}', "an escape's text beside the character")
        eq(toJson(["\u00e9", 1.5, -2, true, {}, [], "a\u0001"]), '["\\u00e9",1.5,-2,true,{},[],"a\\u0001"]', "mixed")
        eq(toJson({ a: { b: { c: "x\u007f" } } }), '{"a":{"b":{"c":"x\\u007f"}}}', "DEL deep down")
        eq(toJson({ n: Infinity, m: -Infinity, k: 0.25, z: 0 }), '{"n":null,"m":null,"k":0.25,"z":0}', "numbers")
        eq(toJson(undefined), "null", "undefined")
        eq(toJson("plain"), '"plain"', "a string")
        eq(toJson({ id: "c-1", code: 200, data: { led: true, interval: 5000 } }), '{"id":"c-1","code":200,"data":{"led":true,"interval":5000}}', "a reply")
    })

    test("words cuts as split does with a non-empty separator", () => {
        const cases: string[][] = [
            ["a b c", " "],
            ["", ","],
            [",a,,b,", ","],
            ["no separator", "|"],
            ["devices/x/commands/set", "/"],
            ["a::b::", "::"],
            ["\u00e9/\u00fc//", "/"],
        ]
        for (const c of cases) eq(JSON.stringify(words(c[0], c[1])), JSON.stringify(c[0].split(c[1])), `"${c[0]}" at "${c[1]}"`)
    })

    test("parseJson refuses deep nesting instead of crashing the VM", () => {
        let deep = ""
        for (let i = 0; i < 1000; i++) deep += "["
        eq(jsonDepth(deep), 1000, "depth")
        eq(jsonDepth('{"a":"[[[[[[[[[[[[[["}'), 1, "brackets inside strings ignored")
        let msg = ""
        try {
            parseJson(deep)
        } catch (e: any) {
            msg = e.message
        }
        eq(msg, `JSON nested more than ${MAX_JSON_DEPTH} levels deep`, "message")
        eq(jsonDepth(deep, 8), 9, "counting stops past the limit")
        let msg2 = ""
        try {
            parseJson("{bad")
        } catch (e: any) {
            msg2 = e.message
        }
        has(msg2, "invalid JSON")
    })
})

// ---- properties ----

describe("properties", () => {
    test("the model declares the required properties", () => {
        const t = findProperty("temperature")
        eq(t.type, "number", "temperature type")
        eq(t.unit, "C", "temperature unit")
        eq(t.writable, false, "temperature read-only")
        eq(findProperty("humidity").unit, "%RH", "humidity unit")
        eq(findProperty("led").type, "bool", "led type")
        eq(findProperty("led").writable, true, "led writable")
        const iv = findProperty("interval")
        eq(iv.writable, true, "interval writable")
        eq(iv.min, INTERVAL_MIN, "interval min")
        eq(iv.max, INTERVAL_MAX, "interval max")
        eq(findProperty("uptime").unit, "s", "uptime unit")
        eq(findProperty("nope"), undefined, "unknown")
        for (const p of PROPERTIES) ok(p.description.length > 0 && p.label.length > 0, p.name + " has a description and a label")
    })

    test("boolean values: accepted spellings and the error", () => {
        const led = findProperty("led")
        const yes: any[] = [true, 1, "on", "ON", "true", "1"]
        const no: any[] = [false, 0, "off", "false", "0"]
        for (const v of yes) eq(checkValue(led, v).value, true, "true for " + toJson(v))
        for (const v of no) eq(checkValue(led, v).value, false, "false for " + toJson(v))
        const e = checkValue(led, "maybe").error
        eq(e.code, 422, "code")
        eq(e.message, 'led must be a boolean (true/false, 1/0, "on"/"off"), got "maybe"', "message")
        eq(checkValue(led, 2).error.message, 'led must be a boolean (true/false, 1/0, "on"/"off"), got 2', "2")
        eq(checkValue(led, null).error.message, 'led must be a boolean (true/false, 1/0, "on"/"off"), got null', "null")
        eq(checkValue(led, {}).error.message, 'led must be a boolean (true/false, 1/0, "on"/"off"), got an object', "object")
    })

    test("integer values: type, range and numeric text", () => {
        const iv = findProperty("interval")
        eq(checkValue(iv, 2000).value, 2000, "number")
        eq(checkValue(iv, "2500").value, 2500, "text")
        eq(checkValue(iv, 500).error.message, "interval must be an integer 1000..3600000 ms, got 500 (out of range)", "low")
        eq(checkValue(iv, 1500.5).error.message, "interval must be an integer 1000..3600000 ms, got 1500.5", "fraction")
        eq(checkValue(iv, "abc").error.message, 'interval must be an integer 1000..3600000 ms, got "abc"', "text")
        eq(checkValue(iv, true).error.code, 422, "boolean")
        eq(checkValue(iv, [1]).error.message, "interval must be an integer 1000..3600000 ms, got an array", "array")
        // infinities and NaN are no value (JSON's 1e999 parses to Infinity), with a bound or without
        const up = findProperty("uptime")
        for (const v of [Infinity, -Infinity, NaN, "1e999", "-1e999"]) {
            eq(checkValue(iv, v).error.code, 422, "interval " + v)
            eq(checkValue(up, v).error.code, 422, "uptime (no upper bound) " + v)
        }
        eq(checkValue(up, 1e15).value, 1e15, "a large finite value without an upper bound")
        ok(isNumeric("-1.5e3") && isNumeric("42") && isNumeric(".5"), "numeric text")
        ok(!isNumeric("") && !isNumeric("1e") && !isNumeric("0x10") && !isNumeric("1 2") && !isNumeric("-"), "non-numeric text")
    })

    test("Device writes check existence, writability and value", () => {
        const d = new Device(0, 5000)
        eq(d.set("led", true), undefined, "led ok")
        eq(d.ledOn(), true, "led on")
        eq(d.set("interval", 10000), undefined, "interval ok")
        eq(d.intervalMs(), 10000, "interval")
        const ro = d.set("temperature", 20)
        eq(ro.code, 403, "read-only code")
        eq(ro.message, "temperature is read-only (writable: led, interval)", "read-only message")
        const un = d.set("colour", 1)
        eq(un.code, 404, "unknown code")
        eq(un.message, 'unknown property "colour" (known: temperature, humidity, led, interval, uptime)', "unknown message")
        eq(d.set("interval", 5).code, 422, "range")
        eq(d.intervalMs(), 10000, "unchanged after a bad write")
    })

    test("snapshot: every property, rounded, with uptime", () => {
        const d = new Device(1000, 5000)
        d.measure(21.34567, 45.6789)
        const s = d.snapshot(62500)
        eq(s["temperature"], 21.35, "temperature rounded")
        eq(s["humidity"], 45.68, "humidity rounded")
        eq(s["led"], false, "led")
        eq(s["interval"], 5000, "interval")
        eq(s["uptime"], 61, "uptime")
        eq(Object.keys(s).join(","), "temperature,humidity,led,interval,uptime", "order")
        eq(d.snapshot(0)["uptime"], 0, "no negative uptime")
    })
})

// ---- commands ----

function mustSet(p: Parsed) {
    if (p.kind !== "set") throw new Error("expected a set command, got " + toJson(p))
    return p
}
function mustError(p: Parsed, code: number, part?: string) {
    if (p.kind !== "error") throw new Error(`expected error ${code}, got ${toJson(p)}`)
    eq(p.code, code, "code of " + p.message)
    if (part) has(p.message, part, "message")
    return p
}

describe("commands", () => {
    test("set led: parse, apply, reply", () => {
        const d = new Device(0, 5000)
        const c = mustSet(parseCommand("set", buf('{"id":"1","params":{"led":true}}')))
        eq(c.id, "1", "id")
        eq(c.params["led"], true, "param")
        const o = applyCommand(d, c)
        eq(o.reply.id, "1", "reply id")
        eq(o.reply.code, 200, "reply code")
        eq(o.reply.data["led"], true, "reply data")
        eq(o.reply.message, undefined, "no message")
        eq(o.changed.join(","), "led", "changed")
        eq(o.report, true, "report after a change")
        eq(d.ledOn(), true, "applied")
        const again = applyCommand(d, parseCommand("set", buf('{"id":"1b","params":{"led":"on"}}')))
        eq(again.reply.code, 200, "same value ok")
        eq(again.changed.length, 0, "nothing changed")
        eq(again.report, false, "no report without a change")
    })

    test("set led off, on and toggle by text", () => {
        const d = new Device(0, 5000)
        applyCommand(d, parseCommand("set", buf('{"id":"a","params":{"led":"on"}}')))
        eq(d.ledOn(), true, "on")
        applyCommand(d, parseCommand("set", buf('{"id":"b","params":{"led":"off"}}')))
        eq(d.ledOn(), false, "off")
        const t = applyCommand(d, parseCommand("set", buf('{"id":"c","params":{"led":"toggle"}}')))
        eq(d.ledOn(), true, "toggled")
        eq(t.reply.data["led"], true, "toggle reply data")
    })

    test("set interval and several properties at once", () => {
        const d = new Device(0, 5000)
        const o = applyCommand(d, parseCommand("set", buf('{"id":"2","params":{"interval":2000,"led":1}}')))
        eq(o.reply.code, 200, "code")
        eq(d.intervalMs(), 2000, "interval")
        eq(d.ledOn(), true, "led")
        eq(o.changed.join(","), "interval,led", "changed")
    })

    test("numeric ids are echoed as text; no id gives an empty one", () => {
        eq(mustSet(parseCommand("set", buf('{"id":7,"params":{"led":true}}'))).id, "7", "numeric id")
        eq(mustSet(parseCommand("set", buf('{"params":{"led":true}}'))).id, "", "no id")
    })

    test("toggle command", () => {
        const d = new Device(0, 5000)
        const p = parseCommand("toggle", buf(""))
        eq(p.kind, "toggle", "empty payload toggles led")
        applyCommand(d, p)
        eq(d.ledOn(), true, "toggled on")
        const o = applyCommand(d, parseCommand("toggle", buf('{"id":"t2"}')))
        eq(o.reply.id, "t2", "id")
        eq(o.reply.code, 200, "code")
        eq(d.ledOn(), false, "toggled off")
        applyCommand(d, parseCommand("toggle", buf('{"id":"t3","params":{"name":"led"}}')))
        eq(d.ledOn(), true, "named toggle")
        mustError(parseCommand("toggle", buf('{"id":"t4","params":{"name":"interval"}}')), 422, "toggle needs a boolean property")
        mustError(parseCommand("toggle", buf('{"id":"t5","params":{"name":"temperature"}}')), 403, "read-only")
        mustError(parseCommand("toggle", buf('{"id":"t6","params":{"name":"fan"}}')), 404, 'unknown property "fan"')
        mustError(parseCommand("toggle", buf('{"id":"t7","params":[1]}')), 400, "params must be an object")
    })

    test("report command", () => {
        const d = new Device(0, 5000)
        const p = parseCommand("report", buf('{"id":"r1"}'))
        eq(p.kind, "report", "kind")
        const o = applyCommand(d, p)
        eq(o.reply.id, "r1", "id")
        eq(o.reply.code, 200, "code")
        eq(o.report, true, "report now")
        eq(parseCommand("report", buf("")).kind, "report", "empty payload")
        eq(COMMAND_NAMES.join(","), "set,toggle,report", "command names")
    })

    test("400: bad JSON, wrong shapes, empty payloads", () => {
        mustError(parseCommand("set", buf('{"id":"1","params":{"led":tru}}')), 400, "payload is not valid JSON")
        mustError(parseCommand("set", buf("{")), 400, "not valid JSON")
        mustError(parseCommand("set", buf("[1,2]")), 400, "payload must be a JSON object")
        mustError(parseCommand("set", buf("5")), 400, "got a number")
        mustError(parseCommand("set", buf("null")), 400, "got null")
        mustError(parseCommand("set", buf('"led"')), 400, "got a string")
        mustError(parseCommand("set", buf("")), 400, "payload is empty")
        mustError(parseCommand("set", buf("   ")), 400, "payload is empty")
        mustError(parseCommand("set", buf('{"id":{"x":1},"params":{"led":true}}')), 400, "id must be a string or a number, got an object")
        mustError(parseCommand("set", buf('{"id":"1"}')), 400, "params must be an object of property values")
        mustError(parseCommand("set", buf('{"id":"1","params":[true]}')), 400, "got an array")
        mustError(parseCommand("set", buf('{"id":"1","params":"led"}')), 400, "got a string")
        // invalid UTF-8 inside a string: JSON.parse's error text would crash the VM if it got that far
        mustError(parseCommand("set", hex`7b226964223a2231222c22706172616d73223a7b226c6564223a22c328227d7d`), 400, "not valid UTF-8")
        const e = mustError(parseCommand("set", buf('{"id":"9","params":{}}')), 400, "params is empty; set at least one of: led, interval")
        eq(e.id, "9", "id kept on a later error")
    })

    test("400: deep nesting and binary garbage do not crash", async () => {
        let deep = ""
        for (let i = 0; i < 1000; i++) deep += "["
        for (let i = 0; i < 1000; i++) deep += "]"
        ok(deep.length <= MAX_COMMAND_BYTES, "fits the size cap")
        // building the payload took ~20K VM steps: start the parse on a fresh step budget, as a
        // command arriving from the network does
        await ds.sleep(0)
        mustError(parseCommand("set", buf(deep)), 400, `nested more than ${MAX_JSON_DEPTH} levels deep`)
        const junk = Buffer.alloc(300)
        for (let i = 0; i < junk.length; i++) junk[i] = (i * 97 + 13) & 0xff
        mustError(parseCommand("set", junk), 400)
        mustError(parseCommand("set", hex`7b22696422003a2231227d`), 400)
        const o = applyCommand(new Device(0, 5000), parseCommand("set", junk))
        eq(o.reply.code, 400, "error reply")
    })

    test("413: oversized payload is refused before parsing", () => {
        const big = Buffer.alloc(MAX_COMMAND_BYTES + 1)
        big.fillAt(0, big.length, 0x20)
        big[0] = 0x7b
        const e = mustError(parseCommand("set", big), 413, `payload is ${MAX_COMMAND_BYTES + 1} bytes, at most ${MAX_COMMAND_BYTES} allowed`)
        eq(e.id, "", "no id from an unparsed payload")
    })

    test("404: unknown command or property", () => {
        mustError(parseCommand("reboot", buf('{"id":"5"}')), 404, 'unknown command "reboot" (known: set, toggle, report)')
        eq(parseCommand("reboot", buf('{"id":"5"}')).id, "5", "id echoed")
        mustError(parseCommand("set", buf('{"id":"6","params":{"fan":true}}')), 404, 'unknown property "fan" (writable: led, interval)')
    })

    test("403: read-only property", () => {
        mustError(parseCommand("set", buf('{"id":"7","params":{"temperature":30}}')), 403, "temperature is read-only (writable: led, interval)")
        mustError(parseCommand("set", buf('{"id":"7","params":{"uptime":0}}')), 403, "uptime is read-only")
    })

    test("422: wrong type or out of range, and nothing is applied", () => {
        mustError(parseCommand("set", buf('{"id":"8","params":{"led":"maybe"}}')), 422, 'led must be a boolean (true/false, 1/0, "on"/"off"), got "maybe"')
        mustError(parseCommand("set", buf('{"id":"8","params":{"interval":"soon"}}')), 422, "interval must be an integer")
        mustError(parseCommand("set", buf('{"id":"8","params":{"interval":999}}')), 422, "out of range")
        mustError(parseCommand("set", buf('{"id":"8","params":{"interval":3600001}}')), 422, "out of range")
        const d = new Device(0, 5000)
        const o = applyCommand(d, parseCommand("set", buf('{"id":"8","params":{"led":true,"interval":5}}')))
        eq(o.reply.id, "8", "id")
        eq(o.reply.code, 422, "code")
        has(o.reply.message, "interval must be an integer")
        eq(d.ledOn(), false, "led not applied (all or nothing)")
        eq(o.changed.length, 0, "nothing changed")
    })

    test("several problems: first code, every message", () => {
        const e = mustError(parseCommand("set", buf('{"id":"m","params":{"fan":1,"led":"x"}}')), 404)
        has(e.message, 'unknown property "fan"')
        has(e.message, "led must be a boolean")
    })

    test("applyCommand validates commands from other parsers and never throws", () => {
        const d = new Device(0, 5000)
        const o = applyCommand(d, { kind: "set", id: "x", params: { interval: 7 } })
        eq(o.reply.code, 422, "re-validated")
        eq(applyCommand(d, undefined).reply.code, 400, "no command")
        mustError(parseCommand(undefined, undefined), 404, 'unknown command ""')
        mustError(parseCommand("set", undefined), 400, "payload is empty")
        eq(applyCommand(d, { kind: "error", id: "e", code: 413, message: "too big" }).reply.message, "too big", "error passes through")
        eq(checkParams("z", { led: "toggle" }).kind, "set", "toggle value accepted for booleans")
        mustError(checkParams("z", { interval: "toggle" }), 422)
    })
})

// ---- generic profile ----

describe("generic profile", () => {
    test("topics, status and the will", () => {
        const g = new GenericProfile(testConfig())
        eq(g.telemetryTopic, "devices/kit-01/telemetry", "telemetry")
        eq(g.statusTopic, "devices/kit-01/status", "status")
        eq(g.replyTopic, "devices/kit-01/replies", "replies")
        const on = g.status(true)
        eq(on.payload, "online", "online")
        eq(on.retain, true, "online retained")
        eq(on.qos, 1, "online qos")
        const cp = g.connectParams(0)
        eq(cp.will.topic, "devices/kit-01/status", "will topic")
        eq(cp.will.payload, "offline", "will payload")
        eq(cp.will.retain, true, "will retained")
        eq(cp.clientId, "kit-01", "client id")
        eq(cp.host, "127.0.0.1", "host")
        eq(cp.port, 1883, "port")
        eq(cp.tls, false, "tls")
        eq(cp.username, undefined, "no user")
        eq(cp.password, undefined, "no password")
        eq(cp.expiresAtMs, 0, "no expiry")
        eq(cp.keepAliveS, 60, "keepalive")
        eq(g.requiresTls, false, "no TLS needed")
        const subs = g.subscriptions()
        eq(subs.length, 1, "one subscription")
        eq(subs[0].filter, "devices/kit-01/commands/+", "command filter")
        const cp2 = new GenericProfile(testConfig({ mqttUser: "u", mqttPass: "p", topicPrefix: "home/dev" })).connectParams(0)
        eq(cp2.username, "u", "user")
        eq(cp2.password, "p", "password")
        eq(new GenericProfile(testConfig({ topicPrefix: "home/dev" })).statusTopic, "home/dev/kit-01/status", "custom prefix")
    })

    test("report: JSON with a timestamp and every property", () => {
        const g = new GenericProfile(testConfig())
        const d = new Device(0, 5000)
        d.measure(21.5, 40.25)
        const m = g.report(d.snapshot(12000), 1700000000123)
        eq(m.topic, "devices/kit-01/telemetry", "topic")
        eq(m.retain, false, "not retained")
        const j = JSON.parse(m.payload)
        eq(j.ts, 1700000000123, "ts")
        eq(j.temperature, 21.5, "temperature")
        eq(j.humidity, 40.25, "humidity")
        eq(j.led, false, "led")
        eq(j.interval, 5000, "interval")
        eq(j.uptime, 12, "uptime")
        eq(JSON.parse(g.report(d.snapshot(0), 0).payload).ts, undefined, "no ts while the time is unknown")
    })

    test("commands by topic, and replies", () => {
        const g = new GenericProfile(testConfig())
        eq(g.parseCommand("devices/kit-01/telemetry", buf("{}")), undefined, "not a command topic")
        eq(g.parseCommand("devices/other/commands/set", buf("{}")), undefined, "another device")
        eq(mustSet(g.parseCommand("devices/kit-01/commands/set", buf('{"id":"1","params":{"led":true}}'))).params["led"], true, "set")
        eq(g.parseCommand("devices/kit-01/commands/toggle", buf("")).kind, "toggle", "toggle")
        eq(g.parseCommand("devices/kit-01/commands/report", buf('{"id":"2"}')).kind, "report", "report")
        mustError(g.parseCommand("devices/kit-01/commands/", buf("{}")), 404, "no command name")
        mustError(g.parseCommand("devices/kit-01/commands/set/x", buf("{}")), 404, 'unknown command "set/x"')
        const d = new Device(0, 5000)
        const cmd = g.parseCommand("devices/kit-01/commands/set", buf('{"id":"42","params":{"led":"maybe"}}'))
        const r = g.reply(cmd, applyCommand(d, cmd).reply)
        eq(r.topic, "devices/kit-01/replies", "reply topic")
        eq(r.retain, false, "reply not retained")
        const j = JSON.parse(r.payload)
        eq(j.id, "42", "reply id")
        eq(j.code, 422, "reply code")
        has(j.message, "led must be a boolean")
        const cmd2 = g.parseCommand("devices/kit-01/commands/set", buf('{"id":"43","params":{"led":true}}'))
        const j2 = JSON.parse(g.reply(cmd2, applyCommand(d, cmd2).reply).payload)
        eq(j2.code, 200, "ok code")
        eq(j2.data.led, true, "ok data")
        eq(j2.message, undefined, "no message on success")
    })

    test("Home Assistant discovery: retained configs with the required fields", () => {
        const g = new GenericProfile(testConfig())
        const msgs = discoveryOf(g)
        eq(msgs.length, PROPERTIES.length + 1, "one per property plus the report button")
        eq(g.discovery(PROPERTIES.length + 5), undefined, "nothing past the end")
        const ids: string[] = []
        const byTopic: any = {}
        for (const m of msgs) {
            ok(m.topic.startsWith("homeassistant/"), "prefix of " + m.topic)
            ok(m.topic.endsWith("/config"), "suffix of " + m.topic)
            eq(m.topic.split("/").length, 5, "component/node/object levels in " + m.topic)
            eq(m.retain, true, "retained " + m.topic)
            const j = JSON.parse(m.payload)
            byTopic[m.topic] = j
            ok(typeof j.unique_id === "string" && j.unique_id.length > 0, "unique_id in " + m.topic)
            ok(ids.indexOf(j.unique_id) < 0, "unique_id is unique: " + j.unique_id)
            ids.push(j.unique_id)
            ok(typeof j.name === "string", "name in " + m.topic)
            ok(Array.isArray(j.device.identifiers) && j.device.identifiers[0] === "kit-01", "device.identifiers in " + m.topic)
            eq(j.device.name, "W55RP20 kit-01", "device.name")
            eq(j.device.manufacturer, "WIZnet", "device.manufacturer")
            eq(j.device.model, "W55RP20", "device.model")
            eq(j.availability_topic, "devices/kit-01/status", "availability_topic")
            eq(j.payload_available, "online", "payload_available")
            eq(j.payload_not_available, "offline", "payload_not_available")
        }
        const temp = byTopic["homeassistant/sensor/kit-01/temperature/config"]
        ok(!!temp, "temperature sensor")
        eq(temp.name, "Temperature", "entity name")
        eq(temp.state_topic, "devices/kit-01/telemetry", "state_topic")
        eq(temp.value_template, "{{ value_json.temperature }}", "value_template")
        eq(temp.device_class, "temperature", "device_class")
        eq(temp.unit_of_measurement, "\u00b0C", "unit survives JSON")
        eq(temp.state_class, "measurement", "state_class")
        const hum = byTopic["homeassistant/sensor/kit-01/humidity/config"]
        eq(hum.device_class, "humidity", "humidity class")
        eq(hum.unit_of_measurement, "%", "humidity unit")
        const up = byTopic["homeassistant/sensor/kit-01/uptime/config"]
        eq(up.device_class, "duration", "uptime class")
        eq(up.unit_of_measurement, "s", "uptime unit")
        const sw = byTopic["homeassistant/switch/kit-01/led/config"]
        ok(!!sw, "led switch")
        eq(sw.name, "LED", "switch name")
        eq(sw.command_topic, "devices/kit-01/commands/set", "switch command_topic")
        eq(sw.state_topic, "devices/kit-01/telemetry", "switch state_topic")
        eq(sw.state_on, "ON", "state_on")
        eq(sw.state_off, "OFF", "state_off")
        has(sw.value_template, "value_json.led")
        // what HA sends must be a command our own parser accepts
        const onCmd = mustSet(g.parseCommand(sw.command_topic, buf(sw.payload_on)))
        eq(onCmd.params["led"], true, "payload_on turns the led on")
        eq(onCmd.id, HA_COMMAND_ID, "HA command id")
        eq(mustSet(g.parseCommand(sw.command_topic, buf(sw.payload_off))).params["led"], false, "payload_off")
        const num = byTopic["homeassistant/number/kit-01/interval/config"]
        ok(!!num, "interval number")
        eq(num.min, INTERVAL_MIN, "number min")
        eq(num.max, INTERVAL_MAX, "number max")
        has(num.command_template, "{{ value | int }}")
        const btn = byTopic["homeassistant/button/kit-01/report/config"]
        eq(g.parseCommand(btn.command_topic, buf(btn.payload_press)).kind, "report", "button press is a report command")
    })

    test("discovery honours HA_DISCOVERY and HA_PREFIX", () => {
        eq(new GenericProfile(testConfig({ haDiscovery: false })).discovery(0), undefined, "off")
        const msgs = discoveryOf(new GenericProfile(testConfig({ haPrefix: "ha" })))
        for (const m of msgs) ok(m.topic.startsWith("ha/"), "custom prefix " + m.topic)
    })
})

// ---- schedule ----

describe("schedule", () => {
    test("late reports do not drift the grid", () => {
        const s = new Schedule(1000, 500)
        let seed = 7
        for (let k = 0; k < 200; k++) {
            eq(s.next, 500 + k * 1000, "deadline " + k)
            seed = (seed * 75 + 74) % 65537
            const late = seed % 400 // up to 0.4 s late
            ok(s.due(s.next + late), "due")
            s.done(s.next + late)
        }
        eq(s.skipped, 0, "nothing skipped")
    })

    test("waitMs and due", () => {
        const s = new Schedule(5000, 1000)
        eq(s.waitMs(0), 1000, "wait to the first")
        eq(s.due(999), false, "not yet")
        eq(s.due(1000), true, "on time")
        eq(s.done(1003), 6000, "next on the grid")
        eq(s.waitMs(5500), 500, "wait")
        eq(s.waitMs(7000), 0, "overdue waits 0")
    })

    test("after an outage: one report on recovery, then back on the grid", () => {
        const s = new Schedule(1000, 0)
        s.done(0)
        s.done(1000)
        s.done(2000)
        eq(s.next, 3000, "before the outage")
        // offline from 2500 to 7350: no reports were attempted
        ok(s.due(7350), "due on recovery")
        const n = s.done(7350)
        eq(n, 8000, "next slot on the original grid")
        eq(s.skipped, 4, "skipped 4000..7000")
        eq(s.due(7351), false, "no burst of stale reports")
        ok(n - 7350 <= 1000, "gap after recovery within one interval")
        s.done(8000)
        eq(s.next, 9000, "grid continues")
        eq(nextDeadline(3000, 1000, 4000), 5000, "exactly on the next slot skips it")
    })

    test("interval changes", () => {
        const s = new Schedule(5000, 0)
        s.done(0)
        eq(s.retime(2000, 1000), 2000, "shorter: from the last deadline")
        s.done(2000)
        eq(s.next, 4000, "new grid")
        eq(s.retime(10000, 4500), 12000, "longer: pushes the next out")
        eq(s.retime(1000, 15000), 15000, "shorter and already past: due now")
        ok(s.due(15000), "due")
        eq(s.done(15000), 16000, "grid from now")
        const fresh = new Schedule(5000, 0)
        eq(fresh.retime(3000, 100), 3100, "before any report")
    })
})

// ---- sensors ----

/** A writable copy of `h` (hex literals live in flash and are read-only). */
function mut(h: Buffer): Buffer {
    const b = Buffer.alloc(h.length)
    b.blitAt(0, h, 0, h.length)
    return b
}

describe("I2C sensor conversions (AHT20, SHT30)", () => {
    test("CRC-8 (poly 0x31, init 0xFF) datasheet vectors", () => {
        eq(crc8(hex`BEEF`, 0, 2), 0x92, "Sensirion example 0xBEEF")
        eq(crc8(hex`0000`, 0, 2), 0x81, "0x0000")
        eq(crc8(hex`00BEEF`, 1, 2), 0x92, "offset")
        eq(crc8(hex``, 0, 0), 0xff, "no bytes: the initial value")
    })

    test("SHT30: raw words to C and %RH", () => {
        // T = -45 + 175 * raw / 65535; RH = 100 * raw / 65535
        const b = mut(hex`6666 00 8000 00`)
        b[2] = crc8(b, 0, 2)
        b[5] = crc8(b, 3, 2)
        const v = decodeReading("sht30", b)
        ok(Math.abs(v[0] - (-45 + (175 * 0x6666) / 65535)) < 1e-9, "temperature " + v[0])
        ok(Math.abs(v[0] - 25) < 0.01, "about 25 C: " + v[0])
        ok(Math.abs(v[1] - 50.0008) < 0.001, "about 50 %RH: " + v[1])
        const ends = mut(hex`0000 81 FFFF AC`)
        eq(crc8(ends, 3, 2), 0xac, "CRC of 0xFFFF")
        const e = decodeReading("sht30", ends)
        eq(e[0], -45, "lowest temperature")
        eq(e[1], 100, "highest humidity")
    })

    test("AHT20: 20-bit humidity and temperature, with and without the CRC byte", () => {
        // status 0x1C (calibrated, idle), humidity 0x80000 (50 %), temperature 0x60000 (25 C)
        const b = mut(hex`1C 80 00 06 00 00 00`)
        b[6] = crc8(b, 0, 6)
        const v = decodeReading("aht20", b)
        eq(v[1], 50, "humidity")
        eq(v[0], 25, "temperature")
        const six = decodeReading("aht20", b.slice(0, 6))
        eq(six[0], 25, "6-byte read (no CRC)")
        const lo = decodeReading("aht20", hex`1C 00 00 00 00 00`)
        eq(lo[0], -50, "lowest temperature")
        eq(lo[1], 0, "driest")
    })

    test("malformed reads: an Error naming the chip and the problem", () => {
        const errOf = (chip: string, b: Buffer) => {
            try {
                decodeReading(chip, b)
            } catch (e: any) {
                return e.message as string
            }
            return "no error"
        }
        const good = mut(hex`1C 80 00 06 00 00 00`)
        good[6] = crc8(good, 0, 6)
        const badCrc = mut(good)
        badCrc[6] ^= 0x01
        has(errOf("aht20", badCrc), "aht20: CRC mismatch")
        const busy = mut(hex`9C 80 00 06 00 00 00`)
        busy[6] = crc8(busy, 0, 6)
        has(errOf("aht20", busy), "aht20: busy")
        has(errOf("aht20", hex`1C 80 00`), "aht20: short read (3 bytes, 6 expected)")
        has(errOf("sht30", hex`6666 00 8000 00`), "sht30: CRC mismatch")
        has(errOf("sht30", hex``), "sht30: short read (0 bytes")
        const sht = mut(hex`6666 00 8000 00`)
        sht[2] = crc8(sht, 0, 2)
        sht[5] = crc8(sht, 3, 2) ^ 0x80
        has(errOf("sht30", sht), "sht30: CRC mismatch")
    })

    test("AHT20 busy: read again (datasheet) until ready, given up after 6 reads", async () => {
        const ready = mut(hex`1C 80 00 06 00 00 00`)
        ready[6] = crc8(ready, 0, 6)
        const busy = mut(hex`9C 80 00 06 00 00 00`)
        busy[6] = crc8(busy, 0, 6)
        let reads = 0
        let busyReads = 2
        const xfer = async (addr: number, w: Buffer, n?: number) => {
            eq(addr, 0x38, "AHT20 address")
            if (!n) return hex``
            reads++
            return reads > busyReads ? ready : busy
        }
        const r = await measure("aht20", xfer)
        eq(reads, 3, "two busy reads, then the measurement")
        eq(r.humidity, 50, "humidity of the ready read")
        reads = 0
        busyReads = 100
        let msg = ""
        try {
            await measure("aht20", xfer)
        } catch (e: any) {
            msg = e.message
        }
        has(msg, "aht20: busy", "still busy after the retries")
        eq(reads, 6, "reads before giving up")
    })

    test("a failed read keeps the last values in the device model", async () => {
        // what the app does with a sensor error: it reports the values it had
        const d = new Device(0, 5000)
        d.measure(21.5, 40)
        let failed = false
        try {
            const v = decodeReading("aht20", hex`9C 80 00 06 00 00`)
            d.measure(v[0], v[1])
        } catch (e: any) {
            failed = true
        }
        ok(failed, "busy read refused")
        eq(d.snapshot(0)["temperature"], 21.5, "last temperature kept")
        eq(d.snapshot(0)["humidity"], 40, "last humidity kept")
    })
})

describe("sensors", () => {
    test("the simulated walk is slow, bounded and moving", async () => {
        let seed = 12345
        const rnd = () => {
            seed = (seed * 75 + 74) % 65537
            return seed / 65537
        }
        const s = new SimulatedSensor(rnd)
        let prevT = s.temperature
        let prevH = s.humidity
        let minT = 100
        let maxT = -100
        for (let i = 0; i < 500; i++) {
            if (i % 50 === 0) await ds.sleep(0)
            const r = await s.read()
            eq(r.source, "sim", "source")
            ok(Math.abs(r.temperature - prevT) <= 0.1 + 1e-9, "temperature step " + (r.temperature - prevT))
            ok(Math.abs(r.humidity - prevH) <= 0.3 + 1e-9, "humidity step " + (r.humidity - prevH))
            ok(r.temperature >= SIM_TEMP_MIN && r.temperature <= SIM_TEMP_MAX, "temperature bounds")
            ok(r.humidity >= SIM_HUM_MIN && r.humidity <= SIM_HUM_MAX, "humidity bounds")
            if (r.temperature < minT) minT = r.temperature
            if (r.temperature > maxT) maxT = r.temperature
            prevT = r.temperature
            prevH = r.humidity
        }
        ok(maxT - minT > 0.2, "the temperature moves")
        // an adversarial random source stays bounded
        const hi = new SimulatedSensor(() => 0.999999)
        for (let i = 0; i < 2000; i++) {
            if (i % 200 === 0) await ds.sleep(0)
            hi.step()
        }
        ok(hi.temperature <= SIM_TEMP_MAX && hi.humidity <= SIM_HUM_MAX, "bounded above")
    })

    test("fixed values", async () => {
        const r = await new FixedSensor(24, 55).read()
        eq(r.temperature, 24, "temperature")
        eq(r.humidity, 55, "humidity")
        eq(r.source, "fixed", "source")
    })

    test("auto in the simulator picks the walk and says so", async () => {
        const lines: string[] = []
        const s = await startSimSensor("auto", m => lines.push(m))
        eq(s.source, "sim", "source")
        eq(lines.join("|"), "sensor: simulated random walk active", "log")
        const lines2: string[] = []
        const s2 = await startSimSensor("aht20", m => lines2.push(m))
        eq(s2.source, "sim", "no I2C in the simulator")
        has(lines2.join("|"), "SENSOR=aht20 but the simulator has no I2C")
        eq((await startSimSensor("fixed", m => {})).source, "fixed", "fixed")
    })
})

describe("backlog (store and forward)", () => {
    const msg = (i: number) => ({ topic: "t", payload: "" + i, qos: 1, retain: false })
    test("keeps the order and holds up to its bound without a drop", () => {
        const b = new Backlog()
        for (let i = 0; i < BACKLOG_LIMIT; i++) b.push(msg(i))
        eq(b.items.length, BACKLOG_LIMIT)
        eq(b.dropped, 0)
        eq(b.items[0].payload, "0")
        eq(b.items[BACKLOG_LIMIT - 1].payload, "" + (BACKLOG_LIMIT - 1))
    })
    test("an outage longer than the bound drops the oldest, counts them, keeps the newest", () => {
        const b = new Backlog(10)
        for (let i = 0; i < 25; i++) b.push(msg(i))
        eq(b.items.length, 10)
        eq(b.dropped, 15)
        eq(b.items[0].payload, "15")
        eq(b.items[9].payload, "24")
        // one log line per outage: the count is taken once
        eq(b.takeLost(), 15)
        eq(b.takeLost(), 0)
        b.push(msg(25))
        eq(b.takeLost(), 1)
        eq(b.dropped, 16)
    })
})

describe("signal and mutex (fibers)", () => {
    test("a signal wakes its waiters, times out without a notify, and forgets a waiter that timed out", async () => {
        const s = new Signal()
        s.notify() // nobody waits: nothing happens, nothing is kept for a later wait
        eq(await s.wait(20), false, "no notify: the timeout")
        const got: boolean[] = []
        const waiter = async () => {
            got.push(await s.wait(5000))
        }
        waiter.start()
        waiter.start()
        await sleep(10)
        s.notify()
        await sleep(10)
        eq(got.join(","), "true,true", "both waiters woken")
        // a waiter that timed out is not woken (nor resumed twice) by a later notify
        eq(await s.wait(10), false, "timed out")
        s.notify()
        const late = async () => {
            got.push(await s.wait(30))
        }
        late.start()
        await sleep(60)
        eq(got.join(","), "true,true,false", "a notify before the wait does not count")
    })

    test("a mutex lets one fiber in at a time, in turn, and is free after the last unlock", async () => {
        const m = new Mutex()
        let inside = 0
        let most = 0
        const order: number[] = []
        const worker = async (id: number) => {
            await m.lock()
            try {
                inside++
                most = Math.max(most, inside)
                order.push(id)
                await sleep(15)
            } finally {
                inside--
                m.unlock()
            }
        }
        for (let i = 0; i < 3; i++) worker.start(i)
        // until the last one has left (no fixed sleep: a slow VM takes longer)
        for (let i = 0; i < 100 && (order.length < 3 || inside || m.isLocked()); i++) await sleep(10)
        eq(order.length, 3, "all three ran")
        eq(most, 1, "never two inside")
        eq(m.isLocked(), false, "free at the end")
        // uncontended: taken at once
        await m.lock()
        eq(m.isLocked(), true, "taken")
        m.unlock()
        eq(m.isLocked(), false, "free")
    })
})
