/**
 * The network stack interface: what the MQTT client and the application need from a network,
 * whatever carries it (the runtime's own socket, or the W5500 over SPI).
 */

/** One TCP (or TLS) byte stream. */
export interface Connection {
    /** Sends all bytes; throws when the connection is closed. */
    send(data: Buffer): Promise<void>
    /**
     * Waits for the next chunk of bytes: `undefined` when `timeoutMs` passes first,
     * `null` once the connection is closed (by the peer, an error, or `close()`).
     */
    recv(timeoutMs: number): Promise<Buffer | null | undefined>
    /** Closes the connection (graceful where the transport allows). Safe to call twice. */
    close(): Promise<void>
    /** Why the connection ended (`undefined` while it is open or after a clean close). */
    readonly error: string
}

/** Options for `NetStack.connect`. */
export interface ConnectOptions {
    host: string
    port: number
    tls?: boolean
    /** connect timeout, ms */
    timeoutMs?: number
}

/** A network: brings itself up and opens connections. */
export interface NetStack {
    /** short name for logs, e.g. "host" or "w5500" */
    readonly name: string
    /** whether `connect({ tls: true })` can work on this stack */
    readonly tls: boolean
    /** Opens a connection; throws an Error naming the host and the reason on failure. */
    connect(opts: ConnectOptions): Promise<Connection>
}
