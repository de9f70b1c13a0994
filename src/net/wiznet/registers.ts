/**
 * W5500 register map (datasheet v1.0.9, chapter 4), names as in the datasheet: common registers
 * (block 0), socket registers (block select 4n+1), socket TX buffer (4n+2) and RX buffer (4n+3).
 */

/** Number of hardware sockets. */
export const SOCKETS = 8
/** VERSIONR of a W5500. */
export const W5500_VERSION = 0x04

/** Block select of the common registers. */
export const BSB_COMMON = 0x00
// ---- common registers (block 0)
/** Mode */
export const MR = 0x0000
/** Gateway IP address (4) */
export const GAR = 0x0001
/** Subnet mask (4) */
export const SUBR = 0x0005
/** Source hardware (MAC) address (6) */
export const SHAR = 0x0009
/** Source IP address (4) */
export const SIPR = 0x000f
/** Interrupt low-level timer (2) */
export const INTLEVEL = 0x0013
/** Interrupt (write 1 to clear) */
export const IR = 0x0015
/** Interrupt mask */
export const IMR = 0x0016
/** Socket interrupt: bit n = socket n */
export const SIR = 0x0017
/** Socket interrupt mask */
export const SIMR = 0x0018
/** Retry time, 100 us units (2) */
export const RTR = 0x0019
/** Retry count */
export const RCR = 0x001b
/** Unreachable IP address (4) */
export const UIPR = 0x0028
/** Unreachable port (2) */
export const UPORTR = 0x002c
/** PHY configuration */
export const PHYCFGR = 0x002e
/** Chip version (0x04) */
export const VERSIONR = 0x0039

/** MR: software reset (self-clearing) */
export const MR_RST = 0x80
/** IR: IP conflict */
export const IR_CONFLICT = 0x80
/** IR: destination unreachable */
export const IR_UNREACH = 0x40
/** PHYCFGR: link up */
export const PHYCFGR_LNK = 0x01
/** PHYCFGR: 100 Mbps */
export const PHYCFGR_SPD = 0x02
/** PHYCFGR: full duplex */
export const PHYCFGR_DPX = 0x04
/** PHYCFGR: PHY reset, active low */
export const PHYCFGR_RST = 0x80

// ---- socket registers (block 4n+1)
/** Socket mode */
export const Sn_MR = 0x00
/** Socket command (self-clearing) */
export const Sn_CR = 0x01
/** Socket interrupt (write 1 to clear) */
export const Sn_IR = 0x02
/** Socket status */
export const Sn_SR = 0x03
/** Source port (2) */
export const Sn_PORT = 0x04
/** Destination hardware address (6) */
export const Sn_DHAR = 0x06
/** Destination IP address (4) */
export const Sn_DIPR = 0x0c
/** Destination port (2) */
export const Sn_DPORT = 0x10
/** Maximum segment size (2) */
export const Sn_MSSR = 0x12
/** RX buffer size in KB */
export const Sn_RXBUF_SIZE = 0x1e
/** TX buffer size in KB */
export const Sn_TXBUF_SIZE = 0x1f
/** TX free size (2) */
export const Sn_TX_FSR = 0x20
/** TX read pointer (2) */
export const Sn_TX_RD = 0x22
/** TX write pointer (2) */
export const Sn_TX_WR = 0x24
/** RX received size (2) */
export const Sn_RX_RSR = 0x26
/** RX read pointer (2) */
export const Sn_RX_RD = 0x28
/** RX write pointer (2) */
export const Sn_RX_WR = 0x2a
/** Socket interrupt mask */
export const Sn_IMR = 0x2c
/** Keep-alive timer, 5 s units */
export const Sn_KPALVTR = 0x2f

/** Sn_MR protocol: TCP */
export const Sn_MR_TCP = 0x01
/** Sn_MR protocol: UDP */
export const Sn_MR_UDP = 0x02
/** Sn_MR: no delayed ACK (TCP) */
export const Sn_MR_ND = 0x20

/** Sn_CR commands */
export const Sn_CR_OPEN = 0x01
export const Sn_CR_LISTEN = 0x02
export const Sn_CR_CONNECT = 0x04
export const Sn_CR_DISCON = 0x08
export const Sn_CR_CLOSE = 0x10
export const Sn_CR_SEND = 0x20
export const Sn_CR_SEND_KEEP = 0x22
export const Sn_CR_RECV = 0x40

/** Sn_IR bits */
export const Sn_IR_CON = 0x01
export const Sn_IR_DISCON = 0x02
export const Sn_IR_RECV = 0x04
export const Sn_IR_TIMEOUT = 0x08
export const Sn_IR_SEND_OK = 0x10

/** Sn_SR values */
export const SOCK_CLOSED = 0x00
export const SOCK_INIT = 0x13
export const SOCK_LISTEN = 0x14
export const SOCK_SYNSENT = 0x15
export const SOCK_SYNRECV = 0x16
export const SOCK_ESTABLISHED = 0x17
export const SOCK_FIN_WAIT = 0x18
export const SOCK_CLOSING = 0x1a
export const SOCK_TIME_WAIT = 0x1b
export const SOCK_CLOSE_WAIT = 0x1c
export const SOCK_LAST_ACK = 0x1d
export const SOCK_UDP = 0x22
export const SOCK_MACRAW = 0x42

/** Two hex digits. */
export function hex2(v: number) {
    const h = "0123456789abcdef"
    return h[(v >> 4) & 15] + h[v & 15]
}
