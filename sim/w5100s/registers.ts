/**
 * W5100S register map (WIZnet W5100S datasheet; names as there), shared by the emulator and its
 * tests. One flat 16-bit address space: common registers 0x0000..0x00FF, socket n registers at
 * 0x0400 + 0x100 n (4 sockets), TX memory 0x4000..0x5FFF, RX memory 0x6000..0x7FFF (8 KB each).
 */

/** SPI OP-codes: the first byte of every frame (then address high, address low, data...). */
export const OP = { WRITE: 0xf0, READ: 0x0f } as const

/** Number of hardware sockets. */
export const SOCKETS = 4
/** VERR of a W5100S. */
export const VERSION = 0x51

/** Common register addresses. */
export const COMMON = {
    MR: 0x0000,
    GAR: 0x0001,
    SUBR: 0x0005,
    SHAR: 0x0009,
    SIPR: 0x000f,
    INTPTMR: 0x0013,
    /** CONFLICT 7, UNREACH 6, PPPoE 5; bits 3..0: socket 3..0 interrupt */
    IR: 0x0015,
    /** same layout as IR */
    IMR: 0x0016,
    /** retry time, 100 us units (2) */
    RTR: 0x0017,
    RCR: 0x0019,
    /** RX / TX memory size of the 4 sockets, 2 bits each (00 1 KB, 01 2 KB, 10 4 KB, 11 8 KB) */
    RMSR: 0x001a,
    TMSR: 0x001b,
    IR2: 0x0020,
    IMR2: 0x0021,
    UIPR: 0x002a,
    UPORTR: 0x002e,
    MR2: 0x0030,
    /** PHY status: LNK 0, SPD 1, DUP 2, CABOFF 7 */
    PHYSR: 0x003c,
    VERR: 0x0080,
} as const

/** Socket n's register block. */
export const sreg = (n: number) => 0x0400 + 0x100 * n
/** Socket register offsets: 0x00..0x2C as on the W5500; from 0x2F on they differ. */
export const SN = {
    MR: 0x00,
    CR: 0x01,
    IR: 0x02,
    SR: 0x03,
    PORT: 0x04,
    DIPR: 0x0c,
    DPORT: 0x10,
    RXBUF_SIZE: 0x1e,
    TXBUF_SIZE: 0x1f,
    TX_FSR: 0x20,
    TX_RD: 0x22,
    TX_WR: 0x24,
    RX_RSR: 0x26,
    RX_RD: 0x28,
    RX_WR: 0x2a,
    IMR: 0x2c,
    FRAGR: 0x2d,
    /** socket mode 2 (W5100S only) */
    MR2: 0x2f,
    /** keep-alive timer, 5 s units (W5500: 0x2F) */
    KPALVTR: 0x30,
    /** per-socket retry time (2) and count */
    RTR: 0x32,
    RCR: 0x34,
} as const

/** TX and RX memory. */
export const TX_BASE = 0x4000
export const RX_BASE = 0x6000
export const MEMORY = 0x2000

/** PHYSR bits. */
export const PHYSR = { LNK: 0x01, SPD: 0x02, DUP: 0x04, CABOFF: 0x80 } as const
