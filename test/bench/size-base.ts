// Bytecode size probe: the baseline every program pays (runtime prelude), subtracted from the others.
console.log("x")
