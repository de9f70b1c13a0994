// Firmware entry point (the application arrives with the device application issue).
console.log("w55rp20 kit: no application yet")
