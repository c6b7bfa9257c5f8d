// Package hubsql is the hub.Store of both engines, SQLite and PostgreSQL, on
// a database.DB: twins, cloud-to-device messages, model ids and session
// subscriptions. Statements are written once with ? placeholders and branch
// on the dialect only where the engines differ.
//
// Twin documents and message payloads are sealed with their tenant's key
// (keyring.Sealer). The sealer is never called while a transaction is open:
// a keyring may need the database itself (to load or create a key), which
// on SQLite's single writer, or with a pool of PostgreSQL connections each
// held by such a transaction, would wait for ever.
package hubsql

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/keyring"
)

// Store keeps the hub state in the device_twins, c2d_messages and
// device_sessions tables and the devices' model_id column.
type Store struct {
	db     database.DB
	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ hub.Store = (*Store)(nil)

// New returns a Store on db. Call SetSealer before use.
func New(db database.DB) *Store { return &Store{db: db} }

// SetSealer sets what seals and opens twins and messages (sealing/seal.go).
// Until it is set, writing them fails with sealing.ErrNoSealer. The engines
// call it from their own SetSealer.
func (s *Store) SetSealer(sl keyring.Sealer) { s.sealer = sl }

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
// With lock, in a transaction, it locks the device row (lockDevice).
func (s *Store) checkDevice(ctx context.Context, q database.Querier, tenantID, deviceID string, lock bool) error {
	query := `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`
	if lock {
		query += s.lockDevice()
	}
	var one int
	err := q.QueryRow(ctx, query, tenantID, deviceID).Scan(&one)
	if database.NoRows(err) {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

// lockDevice, in a transaction, locks the device row a query reads until
// the transaction ends, so that changes of one device's hub state run one
// after the other: FOR NO KEY UPDATE in PostgreSQL (foreign-key checks of
// other tables still pass). SQLite needs none: its write transactions
// already run one after the other.
func (s *Store) lockDevice() string {
	if s.db.Dialect == database.Postgres {
		return ` FOR NO KEY UPDATE`
	}
	return ``
}

// SetDeviceModelID records the model id a device announced at connect.
func (s *Store) SetDeviceModelID(ctx context.Context, tenantID, deviceID, modelID string) error {
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE devices SET model_id = ? WHERE tenant_id = ? AND id = ?`,
		modelID, tenantID, deviceID))
	if err != nil {
		return fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	if n == 0 {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	return nil
}

// DeviceModelID returns the model id a device last announced ("" if none).
func (s *Store) DeviceModelID(ctx context.Context, tenantID, deviceID string) (string, error) {
	var id string
	err := s.db.QueryRow(ctx, `SELECT model_id FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&id)
	if database.NoRows(err) {
		return "", fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	return id, nil
}
