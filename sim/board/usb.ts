/**
 * The emulated board's USB host: enumerates the runtime's CDC interface (rp2040js's USBCDC),
 * NAKs the device's OUT polls while it has nothing to send (as a real host does; rp2040js answers
 * each poll at once with an empty packet, which keeps tinyusb re-arming in a tight loop), and
 * speaks the runtime's Jacdac bridge: it turns the console on (ENABLE_LOG) and reads the DMESG
 * text that flows between the bridge's frames as lines.
 */
import { USBCDC, type RP2040 } from "rp2040js"

/** Jacdac service class of the USB bridge and its commands. */
const BRIDGE_CLASS = 0x18f61a4a
const BRIDGE_ENABLE_PACKETS = 0x81
const BRIDGE_ENABLE_LOG = 0x83
/** Jacdac settings service (class and its SET command: key, NUL, value). */
const SETTINGS_CLASS = 0x1107dc4a
const SETTINGS_SET = 0x81
/** Frame delimiters of the bridge's byte stream: FE FC frame FE FD; FE F8 stands for FE. */
const MAGIC = 0xfe
const FRAME_START = 0xfc
const FRAME_END = 0xfd
const ESCAPED_MAGIC = 0xf8
/** Longest console line kept (longer ones are cut). */
const MAX_LINE = 4096

/** Jacdac CRC-16 (CCITT, init 0xFFFF) of a frame after its CRC field. */
export function jdCrc16(b: Uint8Array): number {
    let crc = 0xffff
    for (const d of b) {
        let x = ((crc >> 8) ^ d) & 0xff
        x ^= x >> 4
        crc = ((crc << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xffff
    }
    return crc
}

/** A Jacdac command frame to service `serviceClass` (index `serviceIndex`), escaped for the bridge. */
export function bridgeFrame(serviceClass: number, serviceIndex: number, cmd: number, payload: Uint8Array = new Uint8Array(0)): number[] {
    if (payload.length > 236) throw new Error(`jacdac payload of ${payload.length} bytes: at most 236`)
    const fsz = 4 + ((payload.length + 3) & ~3)
    const f = Buffer.alloc(12 + fsz)
    f[2] = fsz
    f[3] = 0x01 | 0x04 // command, device identifier is a service class
    f.writeUInt32LE(serviceClass >>> 0, 4)
    f[12] = payload.length
    f[13] = serviceIndex
    f.writeUInt16LE(cmd, 14)
    f.set(payload, 16)
    f.writeUInt16LE(jdCrc16(f.subarray(2)), 0)
    const out = [MAGIC, FRAME_START]
    for (const b of f) out.push(...(b === MAGIC ? [MAGIC, ESCAPED_MAGIC] : [b]))
    out.push(MAGIC, FRAME_END)
    return out
}

/**
 * Splits the bridge's byte stream into frames (counted, not decoded) and console text (lines).
 * Survives any byte sequence: an unknown escape is dropped, an overlong line is cut.
 */
export class BridgeDecoder {
    /** frames seen */
    frames = 0
    private magic = false
    private inFrame = false
    private line = ""
    /** @param onLine receives each console line, without its line end */
    constructor(private readonly onLine: (line: string) => void) {}
    /** Feeds bytes from the device. */
    push(buf: Uint8Array): void {
        for (let c of buf) {
            if (this.magic) {
                this.magic = false
                if (c === FRAME_START) {
                    this.inFrame = true
                    continue
                }
                if (c === FRAME_END) {
                    this.inFrame = false
                    this.frames++
                    continue
                }
                if (c !== ESCAPED_MAGIC) continue
                c = MAGIC
            } else if (c === MAGIC) {
                this.magic = true
                continue
            }
            if (this.inFrame) continue
            if (c === 10) {
                this.onLine(this.line.replace(/\r$/, ""))
                this.line = ""
            } else if (this.line.length < MAX_LINE) this.line += String.fromCharCode(c)
        }
    }
}

/** USB host side of the emulated board. */
export class UsbHost {
    /** true once the device's CDC interface is configured */
    connected = false
    readonly decoder: BridgeDecoder
    private readonly cdc: USBCDC
    private pendingRead: { ep: number; size: number } | null = null
    private readonly read: (ep: number, size: number) => void
    /** @param mcu the emulated RP2040 @param onLine console lines (DMESG; the program's own start with "> ") */
    constructor(mcu: RP2040, onLine: (line: string) => void) {
        this.decoder = new BridgeDecoder(onLine)
        this.cdc = new USBCDC(mcu.usbCtrl)
        this.cdc.onSerialData = b => this.decoder.push(b)
        this.cdc.onDeviceConnected = () => {
            this.connected = true
            this.send(BRIDGE_CLASS, 0, BRIDGE_ENABLE_LOG)
            this.send(BRIDGE_CLASS, 0, BRIDGE_ENABLE_PACKETS)
        }
        const usb = mcu.usbCtrl
        const read = usb.onEndpointRead!
        this.read = (ep, size) => read.call(usb, ep, size)
        usb.onEndpointRead = (ep, size) => {
            if (ep === this.outEndpoint && this.cdc.txFIFO.itemCount === 0) {
                this.pendingRead = { ep, size }
                return
            }
            this.read(ep, size)
        }
    }
    private get outEndpoint(): number {
        return (this.cdc as unknown as { outEndpoint: number }).outEndpoint
    }
    /** Sends a Jacdac command to the device over the bridge. */
    send(serviceClass: number, serviceIndex: number, cmd: number, payload?: Uint8Array): void {
        for (const b of bridgeFrame(serviceClass, serviceIndex, cmd, payload)) this.cdc.sendSerialByte(b)
        if (this.pendingRead) {
            const p = this.pendingRead
            this.pendingRead = null
            this.read(p.ep, p.size)
        }
    }
    /** Writes one setting into the device's settings store (as `devs` does): `value` is stored as JSON. */
    setSetting(key: string, value: unknown): void {
        if (!/^[A-Za-z0-9_]{1,13}$/.test(key)) throw new Error(`setting name must be 1..13 letters, digits or _, got ${JSON.stringify(key)}`)
        this.send(SETTINGS_CLASS, 0, SETTINGS_SET, Buffer.concat([Buffer.from(key + "\0"), Buffer.from(JSON.stringify(value))]))
    }
}
