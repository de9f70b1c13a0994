/// <reference lib="dom" />
/**
 * A live time-series chart on uPlot: one quantity, drawn at most once per animation frame, sized
 * to its container, with a hover read-out.
 */
import uPlot from "uplot"
import "uplot/dist/uPlot.min.css"

/** How a chart looks. */
export interface ChartLook {
    label: string
    unit: string
    /** line colour (CSS) */
    color: string
    /** area fill colour at the top (CSS, with alpha) */
    fill: string
    decimals: number
    /** smallest span of the y axis */
    minSpan: number
}

const AXIS = { stroke: "#8b9ab3", font: "11px system-ui, sans-serif", grid: { stroke: "rgba(148,163,184,0.09)", width: 1 }, ticks: { stroke: "rgba(148,163,184,0.18)", width: 1, size: 4 } }

/** One chart. */
export class TimeChart {
    private u: uPlot | undefined
    private xs: number[] = []
    private ys: (number | null)[] = []
    private queued = false
    private readonly max: number

    /** `el` holds the chart; `readout` shows the hovered or latest point. */
    constructor(private el: HTMLElement, private readout: HTMLElement, private look: ChartLook, max = 3600) {
        this.max = max
        new ResizeObserver(() => this.resize()).observe(el)
    }

    /** Replaces all points (ms since the epoch). */
    reset(points: { t: number; y: number | null }[]): void {
        this.xs = points.map(p => p.t / 1000)
        this.ys = points.map(p => p.y)
        this.queue()
    }

    /** Adds one point. */
    push(t: number, y: number | null): void {
        this.xs.push(t / 1000)
        this.ys.push(y)
        if (this.xs.length > this.max) {
            this.xs.splice(0, this.xs.length - this.max)
            this.ys.splice(0, this.ys.length - this.max)
        }
        this.queue()
    }

    /** Number of points drawn. */
    get length(): number {
        return this.xs.length
    }

    private queue() {
        if (this.queued) return
        this.queued = true
        requestAnimationFrame(() => {
            this.queued = false
            this.draw()
        })
    }

    private draw() {
        this.el.dataset.points = String(this.xs.length)
        const empty = this.el.querySelector(".chart-empty")
        if (empty) empty.toggleAttribute("hidden", this.xs.length > 0)
        if (!this.xs.length) return
        if (!this.u) this.u = this.create()
        this.u.setData([this.xs, this.ys])
        this.showLatest()
    }

    private showLatest() {
        const n = this.ys.length
        if (!n) return this.setReadout("")
        this.setReadout(`${n} point${n === 1 ? "" : "s"}`)
    }

    private setReadout(text: string) {
        if (this.readout.textContent !== text) this.readout.textContent = text
    }

    private resize() {
        if (this.u) this.u.setSize({ width: Math.max(100, this.el.clientWidth), height: this.el.clientHeight })
    }

    private create(): uPlot {
        const look = this.look
        const fmt = (v: number) => v.toFixed(look.decimals)
        const self = this
        const opts: uPlot.Options = {
            width: Math.max(100, this.el.clientWidth),
            height: this.el.clientHeight,
            legend: { show: false },
            padding: [10, 8, 0, 0],
            cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 8, fill: look.color, stroke: "#0b1120", width: 2 } },
            scales: {
                x: { time: true },
                y: {
                    range: (_u, min, max) => {
                        if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1]
                        const span = Math.max(look.minSpan, max - min)
                        const mid = (min + max) / 2
                        return [mid - span * 0.65, mid + span * 0.65]
                    },
                },
            },
            axes: [
                { ...AXIS, size: 30, space: 80, values: (_u, splits) => splits.map(s => new Date(s * 1000).toLocaleTimeString([], { hour12: false })) },
                { ...AXIS, size: 46, values: (_u, vals) => vals.map(v => (v === null ? "" : fmt(v))) },
            ],
            series: [
                {},
                {
                    label: look.label,
                    stroke: look.color,
                    width: 2,
                    spanGaps: false,
                    // dots while the points are few and far apart
                    points: { show: (_u, _i, i0, i1) => i1 - i0 <= 40, size: 5, fill: look.color, stroke: look.color },
                    fill: (u: uPlot) => {
                        const top = u.bbox.top
                        const g = u.ctx.createLinearGradient(0, top, 0, top + u.bbox.height)
                        g.addColorStop(0, look.fill)
                        g.addColorStop(1, "rgba(0,0,0,0)")
                        return g
                    },
                },
            ],
            hooks: {
                setCursor: [
                    (u: uPlot) => {
                        const i = u.cursor.idx
                        if (i === null || i === undefined || self.ys[i] === null || self.ys[i] === undefined) return self.showLatest()
                        const time = new Date(self.xs[i] * 1000).toLocaleTimeString([], { hour12: false })
                        self.setReadout(`${time} · ${fmt(self.ys[i] as number)} ${look.unit}`)
                    },
                ],
            },
        }
        return new uPlot(opts, [this.xs, this.ys], this.el)
    }
}
