package sqlite

import (
	"github.com/warden-iot/warden/internal/database"
)

func isForeignKeyViolation(err error) bool { return database.SQLite.IsForeignKeyViolation(err) }

// ---- Devices ----

// ---- Users ----

// ---- Sessions ----

// ---- One-time tokens ----

// ---- API tokens ----
