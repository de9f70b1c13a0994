/**
 * W5500 register map (datasheet v1.0.9, chapter 4), shared by the emulator and its tests.
 * Names follow the datasheet one to one.
 */

/** Block select values (control byte bits 7..3). */
export const BSB = {
    COMMON: 0x00,
    /** socket n register block */
    sreg: (n: number) => 4 * n + 1,
    /** socket n TX buffer block */
    stx: (n: number) => 4 * n + 2,
    /** socket n RX buffer block */
    srx: (n: number) => 4 * n + 3,
} as const

/** Builds a control byte: BSB<<3 | RWB<<2 | OM. */
export function control(bsb: number, write: boolean, om = 0): number {
    return ((bsb & 0x1f) << 3) | (write ? 0x04 : 0) | (om & 0x03)
}

/** Common register offsets (block 0). */
export const COMMON = {
    MR: 0x0000,
    GAR: 0x0001,
    SUBR: 0x0005,
    SHAR: 0x0009,
    SIPR: 0x000f,
    INTLEVEL: 0x0013,
    IR: 0x0015,
    IMR: 0x0016,
    SIR: 0x0017,
    SIMR: 0x0018,
    RTR: 0x0019,
    RCR: 0x001b,
    PTIMER: 0x001c,
    PMAGIC: 0x001d,
    PHAR: 0x001e,
    PSID: 0x0024,
    PMRU: 0x0026,
    UIPR: 0x0028,
    UPORTR: 0x002c,
    PHYCFGR: 0x002e,
    VERSIONR: 0x0039,
} as const

/** Size of the common register block as modelled (addresses above read 0). */
export const COMMON_SIZE = 0x40

/** Socket register offsets (block 4n+1). */
export const SN = {
    MR: 0x00,
    CR: 0x01,
    IR: 0x02,
    SR: 0x03,
    PORT: 0x04,
    DHAR: 0x06,
    DIPR: 0x0c,
    DPORT: 0x10,
    MSSR: 0x12,
    TOS: 0x15,
    TTL: 0x16,
    RXBUF_SIZE: 0x1e,
    TXBUF_SIZE: 0x1f,
    TX_FSR: 0x20,
    TX_RD: 0x22,
    TX_WR: 0x24,
    RX_RSR: 0x26,
    RX_RD: 0x28,
    RX_WR: 0x2a,
    IMR: 0x2c,
    FRAG: 0x2d,
    KPALVTR: 0x2f,
} as const

/** Size of a socket register block as modelled (addresses above read 0). */
export const SN_SIZE = 0x30

/** MR bits. */
export const MR = { RST: 0x80, WOL: 0x20, PB: 0x10, PPPOE: 0x08, FARP: 0x02 } as const

/** IR bits (write 1 to clear). */
export const IR = { CONFLICT: 0x80, UNREACH: 0x40, PPPOE: 0x20, MP: 0x10 } as const

/** PHYCFGR bits. */
export const PHYCFGR = { RST: 0x80, OPMD: 0x40, OPMDC_MASK: 0x38, DPX: 0x04, SPD: 0x02, LNK: 0x01 } as const

/** Sn_MR protocol values (bits 3..0) and flags. */
export const SN_MR = {
    CLOSED: 0x00,
    TCP: 0x01,
    UDP: 0x02,
    MACRAW: 0x04,
    /** UDP: block broadcast */
    BCASTB: 0x40,
    /** TCP: no delayed ACK */
    ND: 0x20,
    MULTI: 0x80,
} as const

/** Sn_CR commands. */
export const CMD = {
    OPEN: 0x01,
    LISTEN: 0x02,
    CONNECT: 0x04,
    DISCON: 0x08,
    CLOSE: 0x10,
    SEND: 0x20,
    SEND_MAC: 0x21,
    SEND_KEEP: 0x22,
    RECV: 0x40,
} as const

/** Sn_IR bits (write 1 to clear). */
export const SN_IR = { SEND_OK: 0x10, TIMEOUT: 0x08, RECV: 0x04, DISCON: 0x02, CON: 0x01 } as const

/** Sn_SR values. */
export const SOCK = {
    CLOSED: 0x00,
    INIT: 0x13,
    LISTEN: 0x14,
    SYNSENT: 0x15,
    SYNRECV: 0x16,
    ESTABLISHED: 0x17,
    FIN_WAIT: 0x18,
    CLOSING: 0x1a,
    TIME_WAIT: 0x1b,
    CLOSE_WAIT: 0x1c,
    LAST_ACK: 0x1d,
    UDP: 0x22,
    MACRAW: 0x42,
} as const

/** Number of hardware sockets. */
export const SOCKETS = 8

/** Total TX (and RX) buffer memory in bytes. */
export const BUFFER_MEMORY = 16 * 1024

/** Value of VERSIONR. */
export const VERSION = 0x04

/** Reads the 16-bit big-endian register pair at `off`. */
export function get16(b: Uint8Array, off: number): number {
    return (b[off] << 8) | b[off + 1]
}

/** Writes `v` to the 16-bit big-endian register pair at `off`. */
export function set16(b: Uint8Array, off: number, v: number): void {
    b[off] = (v >> 8) & 0xff
    b[off + 1] = v & 0xff
}
