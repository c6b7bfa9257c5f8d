package postgres

import "time"

// SetHorizonWait shortens how long DeleteTenantKeys waits for older
// transactions, for tests.
func SetHorizonWait(s *Store, d time.Duration) { s.Keys().SetHorizonWait(d) }
