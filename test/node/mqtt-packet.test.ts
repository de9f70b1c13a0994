import { vmSuite } from "./lib/vm.ts"

vmSuite("test/vm/mqtt-packet.vm.ts")
