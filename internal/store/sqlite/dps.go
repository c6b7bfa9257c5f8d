package sqlite

// migrationDPS creates the tables of the device provisioning service.
const migrationDPS = `SELECT 1`
