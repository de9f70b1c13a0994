/**
 * `UdpSocket`: a W5500 socket in UDP mode, as the DHCP, DNS and SNTP clients use it: send a
 * datagram to an address, wait for the next one.
 */
import * as ds from "@devicescript/core"
import { parseIp } from "../ip"
import { Sn_IR_RECV, Sn_MR_UDP } from "./registers"
import { UdpDatagram, WizSocket } from "./socket"

/** A UDP socket bound to a local port. */
export class UdpSocket {
    private closed = false

    constructor(private readonly sock: WizSocket, readonly port: number, private readonly release: (s: WizSocket) => void) {}

    /** Opens `sock` in UDP mode on `port`. */
    static async open(sock: WizSocket, port: number, release: (s: WizSocket) => void): Promise<UdpSocket> {
        try {
            await sock.open(Sn_MR_UDP, port)
        } catch (e: any) {
            release(sock)
            throw new Error(`w5500: cannot open UDP port ${port}: ${e.message}`)
        }
        return new UdpSocket(sock, port, release)
    }

    /** Sends one datagram (at most the socket's TX buffer; keep it <= 1472 bytes: no fragmentation). */
    async send(to: string, port: number, data: Buffer, timeoutMs = 3000) {
        if (this.closed) throw new Error(`w5500: UDP port ${this.port} is closed`)
        try {
            await this.sock.sendTo(parseIp(to), port, data, ds.millis() + timeoutMs)
        } catch (e: any) {
            throw new Error(`w5500: UDP ${data.length} bytes to ${to}:${port}: ${e.message}`)
        }
    }

    /** True when a datagram may be waiting (no bus access). */
    pending() {
        return !this.closed && (this.sock.rxMore || (this.sock.irq & Sn_IR_RECV) !== 0)
    }

    /** The next datagram, waiting up to `timeoutMs`; undefined on timeout. */
    async recv(timeoutMs: number): Promise<UdpDatagram> {
        const deadline = ds.millis() + timeoutMs
        for (;;) {
            if (this.closed) return undefined
            if (this.pending()) {
                this.sock.irq &= ~Sn_IR_RECV
                const d = await this.sock.recvFrom()
                if (d) return d
            }
            const left = deadline - ds.millis()
            if (left <= 0) return undefined
            await this.sock.signal.wait(left)
        }
    }

    /** Closes the socket and gives it back. */
    async close() {
        if (this.closed) return
        this.closed = true
        try {
            await this.sock.close()
        } finally {
            this.release(this.sock)
        }
    }
}
