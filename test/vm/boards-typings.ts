/**
 * Compiled (not run) by test/node/boards.test.ts: importing the board modules makes the compiler
 * validate boards/*.board.json and generate their `pins` typings, which that test then inspects.
 * The user pins named here must exist; the W5500 pins ("w5500.*") must not be offered.
 */
import { pins as w55rp20 } from "@dsboard/w55rp20_evb_pico"
import { pins as w5500evb } from "@dsboard/w5500_evb_pico"

console.log(`${w55rp20.GP0} ${w55rp20.GP16} ${w55rp20.GP18} ${w55rp20.GP28} ${w5500evb.GP0} ${w5500evb.GP22}`)
