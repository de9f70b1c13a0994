/**
 * Temperature and humidity sources: a slow random walk in the simulator, an AHT20 or SHT30 over
 * I2C through `@devicescript/drivers` on a board, or fixed values when no sensor answers.
 */
import * as ds from "@devicescript/core"
import { startAHT20, startSHT30 } from "@devicescript/drivers"
import { SensorKind } from "../config"

/** One measurement and where it came from. */
export interface Reading {
    temperature: number
    humidity: number
    /** "sim", "fixed", "aht20" or "sht30" */
    source: string
}

/** A temperature/humidity source. `read()` may throw when the hardware fails. */
export interface Sensor {
    readonly source: string
    read(): Promise<Reading>
}

/** Temperature the simulated air drifts around, C. */
export const SIM_TEMP_MEAN = 22
/** Humidity the simulated air drifts around, %RH. */
export const SIM_HUM_MEAN = 45
/** Bounds of the simulated values. */
export const SIM_TEMP_MIN = 15
export const SIM_TEMP_MAX = 30
export const SIM_HUM_MIN = 25
export const SIM_HUM_MAX = 70

function clamp(v: number, lo: number, hi: number) {
    return v < lo ? lo : v > hi ? hi : v
}

/**
 * A plausible slow random walk: each read moves temperature by at most 0.1 C and humidity by at
 * most 0.3 %RH, pulled gently back towards the mean and kept within bounds.
 */
export class SimulatedSensor implements Sensor {
    readonly source = "sim"
    temperature: number
    humidity: number

    /** `random` returns numbers in [0, 1) (tests pass a seeded one). */
    constructor(private random: () => number = Math.random, temperature = SIM_TEMP_MEAN, humidity = SIM_HUM_MEAN) {
        this.temperature = temperature
        this.humidity = humidity
    }

    /** Advances the walk one step and returns the new values. */
    step(): Reading {
        const dt = (this.random() - 0.5) * 0.16 + (SIM_TEMP_MEAN - this.temperature) * 0.02
        const dh = (this.random() - 0.5) * 0.5 + (SIM_HUM_MEAN - this.humidity) * 0.02
        this.temperature = clamp(this.temperature + clamp(dt, -0.1, 0.1), SIM_TEMP_MIN, SIM_TEMP_MAX)
        this.humidity = clamp(this.humidity + clamp(dh, -0.3, 0.3), SIM_HUM_MIN, SIM_HUM_MAX)
        return { temperature: this.temperature, humidity: this.humidity, source: this.source }
    }

    async read(): Promise<Reading> {
        return this.step()
    }
}

/** Constant values, for boards without a sensor. */
export class FixedSensor implements Sensor {
    readonly source = "fixed"
    constructor(readonly temperature = 25, readonly humidity = 50) {}

    async read(): Promise<Reading> {
        return { temperature: this.temperature, humidity: this.humidity, source: this.source }
    }
}

/** An I2C sensor started through `@devicescript/drivers` (reads its Jacdac sensor servers). */
export class DriverSensor implements Sensor {
    constructor(readonly source: string, private t: ds.Temperature, private h: ds.Humidity) {}

    async read(): Promise<Reading> {
        const temperature = await this.t.reading.read()
        const humidity = await this.h.reading.read()
        if (typeof temperature !== "number" || typeof humidity !== "number" || isNaN(temperature) || isNaN(humidity))
            throw new Error(`sensor: ${this.source} returned no reading`)
        return { temperature, humidity, source: this.source }
    }
}

async function tryDriver(kind: "aht20" | "sht30", log: (msg: string) => void): Promise<Sensor> {
    try {
        const s = kind === "aht20" ? await startAHT20() : await startSHT30()
        return new DriverSensor(kind, s.temperature, s.humidity)
    } catch (e: any) {
        log(`sensor: ${kind.toUpperCase()} not found on I2C (${e && e.message !== undefined ? e.message : e})`)
        return undefined
    }
}

/**
 * Starts the sensor chosen by SENSOR and logs which source is active. "auto": the random walk in
 * the simulator; on a board an AHT20, else an SHT30, else fixed values. An explicit aht20/sht30
 * that does not answer falls back to fixed values (logged), so the device keeps reporting.
 */
export async function startSensor(kind: SensorKind, log: (msg: string) => void = m => console.log(m)): Promise<Sensor> {
    let s: Sensor
    if (kind === "sim") s = new SimulatedSensor()
    else if (kind === "fixed") s = new FixedSensor()
    else if (ds.isSimulator()) {
        if (kind !== "auto") log(`sensor: SENSOR=${kind} but the simulator has no I2C; simulating instead`)
        s = new SimulatedSensor()
    } else if (kind === "aht20" || kind === "sht30") s = await tryDriver(kind, log)
    else {
        s = await tryDriver("aht20", log)
        if (!s) s = await tryDriver("sht30", log)
    }
    if (!s) s = new FixedSensor()
    const what =
        s.source === "sim"
            ? "simulated random walk"
            : s.source === "fixed"
            ? "fixed values (no sensor)"
            : s.source.toUpperCase() + " over I2C"
    log(`sensor: ${what} active`)
    return s
}
