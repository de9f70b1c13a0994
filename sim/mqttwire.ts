/**
 * A streaming MQTT wire decoder for proxy taps (see sim/faultproxy.ts): turns the raw byte chunks
 * of each connection and direction into a log of decoded packets that tests can query, e.g. "a
 * PUBLISH with dup=1 and messageId 7 went up" or "how many PINGREQs went up". Decoding uses the
 * mqtt-packet package (MQTT 3.1.1 by default; a connection whose CONNECT says version 5 switches
 * to MQTT 5 for the rest of that connection).
 */
import mqttPacket from "mqtt-packet"
import type { Packet, PacketCmd, Parser } from "mqtt-packet"

/** Direction of bytes: "up" = client -> broker, "down" = broker -> client. */
export type Dir = "up" | "down"

/** One decoded packet. */
export interface WireEntry<P extends Packet = Packet> {
    dir: Dir
    connId: number
    /** Date.now() when the packet's last byte was fed */
    t: number
    /** false when the chunk that completed the packet was discarded by the proxy (blackhole) */
    forwarded: boolean
    packet: P
}

/** A stream that could not be decoded; later bytes of that stream are ignored. */
export interface WireError {
    dir: Dir
    connId: number
    t: number
    error: string
}

/** The packet type of a given command, e.g. PacketOf<"publish"> is IPublishPacket. */
export type PacketOf<C extends PacketCmd> = Extract<Packet, { cmd: C }>

interface Stream {
    parser: Parser
    broken: boolean
    forwarded: boolean
}

interface ParserInternals {
    settings?: { protocolVersion?: number }
}

/** Largest partial packet buffered per stream before the stream is declared broken. */
const MAX_BUFFERED = 1 << 20

/** A log of MQTT packets decoded from tapped byte streams, keyed by connection and direction. */
export class WireLog {
    /** every decoded packet, in the order it completed */
    readonly packets: WireEntry[] = []
    /** decode errors (one per broken stream) */
    readonly errors: WireError[] = []
    private streams = new Map<string, Stream>()
    private versions = new Map<number, number>()

    /**
     * Feeds one chunk of a stream; never throws. Bound, so it can be passed straight to
     * `proxy.tap(log.feed)`.
     */
    readonly feed = (dir: Dir, chunk: Buffer, connId = 0, forwarded = true): void => {
        const st = this.stream(dir, connId)
        if (st.broken) return
        st.forwarded = forwarded
        try {
            const buffered = st.parser.parse(chunk)
            if (buffered > MAX_BUFFERED && !st.broken)
                this.fail(st, dir, connId, `more than ${MAX_BUFFERED} bytes buffered without a complete packet`)
        } catch (e) {
            this.fail(st, dir, connId, (e as Error)?.message ?? String(e))
        }
    }

    /** Number of packets of command `cmd` in direction `dir` ("any" = both), optionally on one connection. */
    count(dir: Dir | "any", cmd: PacketCmd, connId?: number): number {
        return this.filter(dir, cmd, connId).length
    }

    /** Packets of command `cmd` in direction `dir` ("any" = both), optionally on one connection. */
    filter<C extends PacketCmd>(dir: Dir | "any", cmd: C, connId?: number): WireEntry<PacketOf<C>>[] {
        return this.packets.filter(
            (e): e is WireEntry<PacketOf<C>> =>
                (dir === "any" || e.dir === dir) && e.packet.cmd === cmd && (connId === undefined || e.connId === connId))
    }

    /** Resolves with the first logged packet (old or new) matching `pred`; rejects after `timeoutMs`. */
    async waitFor(pred: (e: WireEntry) => boolean, timeoutMs = 3000, what = "packet"): Promise<WireEntry> {
        const deadline = Date.now() + timeoutMs
        for (;;) {
            const hit = this.packets.find(pred)
            if (hit) return hit
            if (Date.now() > deadline)
                throw new Error(`mqttwire: timed out after ${timeoutMs} ms waiting for ${what}; log:\n${this.describe()}`)
            await new Promise(r => setTimeout(r, 10))
        }
    }

    /** Forgets all packets, errors and partial streams. */
    clear(): void {
        this.packets.length = 0
        this.errors.length = 0
        this.streams.clear()
        this.versions.clear()
    }

    /** One line per packet (and error), for assertion messages; the last `max` lines only. */
    describe(max = 50): string {
        const lines = this.packets.map(e => `${e.dir} #${e.connId} ${summarize(e.packet)}${e.forwarded ? "" : " (dropped)"}`)
        for (const e of this.errors) lines.push(`${e.dir} #${e.connId} ERROR ${e.error}`)
        return lines.slice(-max).join("\n")
    }

    private stream(dir: Dir, connId: number): Stream {
        const key = `${dir}:${connId}`
        let st = this.streams.get(key)
        if (!st) {
            const parser = mqttPacket.parser({ protocolVersion: this.versions.get(connId) ?? 4 })
            const s: Stream = { parser, broken: false, forwarded: true }
            parser.on("packet", (packet: Packet) => {
                if (s.broken) return
                this.packets.push({ dir, connId, t: Date.now(), forwarded: s.forwarded, packet })
                if (packet.cmd === "connect" && packet.protocolVersion) this.setVersion(connId, packet.protocolVersion)
            })
            parser.on("error", (e: unknown) => this.fail(s, dir, connId, (e as Error)?.message ?? String(e)))
            this.streams.set(key, s)
            st = s
        }
        return st
    }

    /** The CONNECT fixes the protocol version for both directions of its connection. */
    private setVersion(connId: number, v: number): void {
        this.versions.set(connId, v)
        for (const dir of ["up", "down"] as const) {
            const st = this.streams.get(`${dir}:${connId}`)
            const settings = (st?.parser as unknown as ParserInternals | undefined)?.settings
            if (settings) settings.protocolVersion = v
        }
    }

    private fail(st: Stream, dir: Dir, connId: number, error: string): void {
        if (st.broken) return
        st.broken = true
        this.errors.push({ dir, connId, t: Date.now(), error: `MQTT ${dir} stream of connection ${connId}: ${error}` })
    }
}

/** A short human-readable form of a packet. */
export function summarize(p: Packet): string {
    switch (p.cmd) {
        case "connect":
            return `connect id=${JSON.stringify(p.clientId)} clean=${p.clean} keepalive=${p.keepalive}` +
                (p.username !== undefined ? ` user=${JSON.stringify(p.username)}` : "")
        case "connack":
            return `connack rc=${p.returnCode ?? p.reasonCode} sp=${p.sessionPresent}`
        case "publish":
            return `publish ${JSON.stringify(p.topic)} qos=${p.qos} dup=${p.dup} retain=${p.retain}` +
                (p.messageId !== undefined ? ` mid=${p.messageId}` : "") + ` len=${p.payload?.length ?? 0}`
        case "subscribe":
            return `subscribe mid=${p.messageId} ${p.subscriptions.map(s => `${s.topic}@${s.qos}`).join(",")}`
        case "suback":
            return `suback mid=${p.messageId} ${JSON.stringify(p.granted)}`
        default:
            return p.messageId !== undefined ? `${p.cmd} mid=${p.messageId}` : p.cmd
    }
}
