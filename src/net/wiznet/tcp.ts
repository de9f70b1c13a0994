/**
 * `TcpConnection`: a `Connection` (src/net/stack.ts) over a W5500 socket in TCP mode. Received
 * bytes are read when the chip raises RECV (or more is known to wait); a peer FIN ends the
 * stream after the data that came before it; a reset or timeout ends it with an error.
 */
import { Connection } from "../stack"
import { SOCK_CLOSE_WAIT, SOCK_CLOSED, SOCK_ESTABLISHED, Sn_CR_DISCON, Sn_IR_DISCON, Sn_IR_RECV, Sn_IR_TIMEOUT } from "./registers"
import { WizSocket } from "./socket"
import { millis, sleep } from "../../util/rt"

/** One TCP connection on a hardware socket (opened and connected by `WiznetStack.connect`). */
export class TcpConnection implements Connection {
    error: string
    /** ended: closed here, by the peer, or by an error */
    done = false
    /** the socket's generation while it is ours */
    private gen: number

    constructor(private readonly sock: WizSocket, readonly name: string) {
        this.gen = sock.gen
    }

    async send(data: Buffer) {
        let off = 0
        while (off < data.length) {
            if (this.done) throw new Error(`${this.name}: connection closed${this.error ? " (" + this.error + ")" : ""}`)
            try {
                if (this.sock.irq & Sn_IR_TIMEOUT) throw new Error("timed out (Sn_IR TIMEOUT)")
                // give up when the chip makes no progress for 30 s
                off += await this.sock.send(data, off, data.length - off, millis() + 30000)
            } catch (e: any) {
                throw new Error(`${this.name}: ${await this.abort(`send failed: ${e.message}`)}`)
            }
        }
    }

    async recv(timeoutMs: number): Promise<Buffer | null | undefined> {
        const deadline = millis() + timeoutMs
        const sock = this.sock
        for (;;) {
            if (this.done) return null
            const irq = sock.irq
            if (sock.rxMore || irq & (Sn_IR_RECV | Sn_IR_DISCON | Sn_IR_TIMEOUT)) {
                sock.irq &= ~Sn_IR_RECV
                try {
                    // chunks of at most 2 KB (bounded memory; the MQTT reader takes any chunking)
                    const b = await sock.recv(2048)
                    if (b) return b
                    if (irq & (Sn_IR_DISCON | Sn_IR_TIMEOUT)) {
                        // the peer closed or reset, or the chip gave up, and nothing is left to hand out
                        if (irq & Sn_IR_TIMEOUT) await this.abort("timed out (Sn_IR TIMEOUT)")
                        else if ((await sock.status()) !== SOCK_CLOSE_WAIT) await this.abort("connection reset by the peer")
                        else await this.close() // the peer's FIN: answer with ours
                        return null
                    }
                } catch (e: any) {
                    await this.abort(`receive failed: ${e.message}`)
                    return null
                }
            }
            const left = deadline - millis()
            if (left <= 0) return undefined
            await sock.signal.wait(left)
        }
    }

    /** Graceful end: DISCON (our FIN), wait a little (1 s) for the socket to close, then CLOSE whatever happened. */
    async close() {
        if (this.done) return
        this.done = true
        const sock = this.sock
        try {
            const sr = await sock.status()
            if (sr === SOCK_ESTABLISHED || sr === SOCK_CLOSE_WAIT) {
                sock.irq &= ~Sn_IR_DISCON
                await sock.cmd(Sn_CR_DISCON)
                const deadline = millis() + 1000
                // FIN_WAIT until the peer's FIN (DISCON) or a timeout; LAST_ACK until the peer
                // acknowledges our FIN (no interrupt for that: watch Sn_SR)
                if (sr === SOCK_ESTABLISHED) await sock.waitIrq(Sn_IR_DISCON | Sn_IR_TIMEOUT, deadline)
                else while (millis() < deadline && (await sock.status()) !== SOCK_CLOSED) await sleep(10)
            }
        } catch (e) {
            // closing anyway
        }
        await this.abort(undefined)
    }

    /**
     * Ends the connection at once (CLOSE, no FIN): after errors, or when the address is lost;
     * `why` becomes `error` (unless an error came first). Returns the error.
     */
    async abort(why: string): Promise<string> {
        this.done = true
        if (this.error === undefined) this.error = why
        const s = this.sock
        // the socket is given back by its CLOSE; not when it was reused already
        if (s.gen === this.gen) {
            this.gen = -1
            try {
                await s.close()
            } catch (e) {
                // freed anyway; the next OPEN resets it
            }
        }
        return this.error
    }
}
