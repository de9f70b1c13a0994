/**
 * `TcpConnection`: a `Connection` (src/net/stack.ts) over a W5500 socket in TCP mode. Received
 * bytes are read when the chip raises RECV (or more is known to wait); a peer FIN ends the
 * stream after the data that came before it; a reset or timeout ends it with an error.
 */
import * as ds from "@devicescript/core"
import { Connection } from "../stack"
import { SOCK_CLOSE_WAIT, SOCK_CLOSED, SOCK_ESTABLISHED, Sn_IR_DISCON, Sn_IR_RECV, Sn_IR_TIMEOUT } from "./registers"
import { WizSocket } from "./socket"

/** largest chunk one `recv` returns (bounded memory; the MQTT reader takes any chunking) */
const MAX_CHUNK = 2048
/** how long `close()` waits for the peer's FIN after ours */
const CLOSE_WAIT_MS = 1000
/** `send()` gives up when the chip makes no progress for this long */
const SEND_TIMEOUT_MS = 30000

/** One TCP connection on a hardware socket. */
export class TcpConnection implements Connection {
    error: string
    private done = false
    private released = false

    constructor(private readonly sock: WizSocket, readonly name: string, private readonly release: (s: WizSocket) => void) {}

    /** True once the connection ended (closed here, by the peer, or by an error). */
    ended() {
        return this.done
    }

    private fail(why: string): Error {
        if (this.error === undefined) this.error = why
        return new Error(`${this.name}: ${why}`)
    }

    async send(data: Buffer) {
        let off = 0
        while (off < data.length) {
            if (this.done) throw new Error(`${this.name}: connection closed${this.error ? " (" + this.error + ")" : ""}`)
            if (this.sock.irq & Sn_IR_TIMEOUT) {
                const e = this.fail("timed out (Sn_IR TIMEOUT)")
                await this.end()
                throw e
            }
            try {
                off += await this.sock.send(data, off, data.length - off, ds.millis() + SEND_TIMEOUT_MS)
            } catch (e: any) {
                const err = this.fail(`send failed: ${e.message}`)
                await this.end()
                throw err
            }
        }
    }

    async recv(timeoutMs: number): Promise<Buffer | null | undefined> {
        const deadline = ds.millis() + timeoutMs
        const sock = this.sock
        for (;;) {
            if (this.done) return null
            if (sock.rxMore || sock.irq & Sn_IR_RECV) {
                sock.irq &= ~Sn_IR_RECV
                try {
                    const b = await sock.recv(MAX_CHUNK)
                    if (b) return b
                } catch (e: any) {
                    this.fail(`receive failed: ${e.message}`)
                    await this.end()
                    return null
                }
            }
            if (sock.irq & (Sn_IR_DISCON | Sn_IR_TIMEOUT)) {
                // the peer closed or reset, or the chip gave up: first hand out what is still there
                let clean = false
                try {
                    const b = await sock.recv(MAX_CHUNK)
                    if (b) return b
                    if (sock.irq & Sn_IR_TIMEOUT) this.fail("timed out (Sn_IR TIMEOUT)")
                    else if ((await sock.status()) !== SOCK_CLOSE_WAIT) this.fail("connection reset by the peer")
                    else clean = true
                } catch (e: any) {
                    this.fail(`receive failed: ${e.message}`)
                }
                this.done = true
                // the peer's FIN: answer with ours
                if (clean) await this.finish()
                else await this.end()
                return null
            }
            const left = deadline - ds.millis()
            if (left <= 0) return undefined
            await sock.signal.wait(left)
        }
    }

    async close() {
        if (this.done) return
        this.done = true
        await this.finish()
    }

    /** Graceful end: DISCON (our FIN), wait a little for the socket to close, then CLOSE whatever happened. */
    private async finish() {
        const sock = this.sock
        try {
            const sr = await sock.status()
            if (sr === SOCK_ESTABLISHED) {
                // FIN_WAIT until the peer's FIN (DISCON) or a timeout
                sock.irq &= ~Sn_IR_DISCON
                await sock.disconnect()
                await sock.waitIrq(Sn_IR_DISCON | Sn_IR_TIMEOUT, ds.millis() + CLOSE_WAIT_MS)
            } else if (sr === SOCK_CLOSE_WAIT) {
                // LAST_ACK until the peer acknowledges our FIN: no interrupt for that, watch Sn_SR
                await sock.disconnect()
                const deadline = ds.millis() + CLOSE_WAIT_MS
                while (ds.millis() < deadline && (await sock.status()) !== SOCK_CLOSED) await ds.sleep(10)
            }
        } catch (e) {
            // closing anyway
        }
        await this.end()
    }

    /** Ends the connection at once (CLOSE, no FIN): after errors, or when the address is lost. */
    async abort(why: string) {
        this.fail(why)
        await this.end()
    }

    private async end() {
        this.done = true
        if (this.released) return
        this.released = true
        const s = this.sock
        try {
            await s.close()
        } catch (e) {
            // the socket is given back anyway; the next OPEN resets it
        } finally {
            this.release(s)
        }
    }
}
