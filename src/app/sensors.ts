/**
 * Temperature and humidity sources of the simulator: a slow random walk, or fixed values. The
 * board's I2C sensors are in src/app/i2c-sensors.ts (an image links only its target's sensors).
 */
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
        this.temperature = Math.constrain(this.temperature + Math.constrain(dt, -0.1, 0.1), SIM_TEMP_MIN, SIM_TEMP_MAX)
        this.humidity = Math.constrain(this.humidity + Math.constrain(dh, -0.3, 0.3), SIM_HUM_MIN, SIM_HUM_MAX)
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

/**
 * Starts the sensor chosen by SENSOR in the simulator and logs which source is active: "sim" and
 * "auto" the random walk, "fixed" fixed values; aht20/sht30 (no I2C here) are simulated, logged.
 */
export async function startSimSensor(kind: SensorKind, log: (msg: string) => void): Promise<Sensor> {
    if (kind === "fixed") {
        log("sensor: fixed values (no sensor) active")
        return new FixedSensor()
    }
    if (kind === "aht20" || kind === "sht30") log(`sensor: SENSOR=${kind} but the simulator has no I2C; simulating instead`)
    log("sensor: simulated random walk active")
    return new SimulatedSensor()
}
