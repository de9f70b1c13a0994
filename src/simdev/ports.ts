/**
 * Where the simulated device finds its runner on 127.0.0.1: the host link (src/simdev/hostlink.ts)
 * and the W5500 emulator's bridge (src/simdev/bridge-spi.ts). The runner picks free ports for each
 * run and sets these before the program starts (sim/devs.ts compiles a small entry that assigns
 * them, then imports the image); the values below are only for a program run by hand.
 */
export const simPorts = { hostlink: 17766, bridge: 17767 }
