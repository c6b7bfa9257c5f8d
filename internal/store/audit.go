package store

// AuditStore keeps the tamper-evident audit trail. (Issue 5.)
type AuditStore interface {
}
