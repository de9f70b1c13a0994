/**
 * Compiled (not run) by test/node/boards.test.ts: importing the board modules makes the compiler
 * validate boards/*.board.json and generate their `pins` typings, which that test then inspects.
 * The user pins named here must exist; the WIZnet chip pins ("w5500.*", "wiz.*") must not be offered.
 */
import { pins as w55rp20 } from "@dsboard/w55rp20_evb_pico"
import { pins as w5500evb } from "@dsboard/w5500_evb_pico"
import { pins as w5100sevb } from "@dsboard/w5100s_evb_pico"

console.log(`${w55rp20.GP0} ${w55rp20.GP16} ${w55rp20.GP18} ${w55rp20.GP28} ${w5500evb.GP0} ${w5500evb.GP22}`)
// (the compiler's format takes at most 8 arguments: one line per few boards)
console.log(`${w5100sevb.GP0} ${w5100sevb.GP22}`)
