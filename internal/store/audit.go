package store

import "github.com/warden-iot/warden/internal/audit"

// AuditEntry is one record of the audit trail (package audit).
type AuditEntry = audit.Entry

// AuditFilter selects audit entries (package audit).
type AuditFilter = audit.Filter

// AuditStore keeps the audit trail (package audit).
type AuditStore = audit.Store
