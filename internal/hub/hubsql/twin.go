package hubsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/sealing"
)

// storedTwin is a twin as read, before its sealed documents are opened.
type storedTwin struct {
	tw      hub.Twin
	exists  bool   // a row is stored (otherwise tw is the empty twin)
	sealed  []byte // nil: not stored, or stored before sealing (documents in tw)
	version int64  // the stored row's version and time, for the compare-and-swap
	updated int64
}

// loadTwin reads a device's twin (the empty one if none is stored) in one
// statement, so from one snapshot, without opening it.
func (s *Store) loadTwin(ctx context.Context, q database.Querier, tenantID, deviceID string) (storedTwin, error) {
	var created int64
	var version, dv, rv, updated sql.NullInt64
	var tags, desired, dmeta, reported, rmeta sql.NullString
	var st storedTwin
	err := q.QueryRow(ctx, `SELECT d.created_at, t.version, t.tags, t.desired, t.desired_version, t.desired_meta,
			t.reported, t.reported_version, t.reported_meta, t.updated_at, t.sealed
		FROM devices d LEFT JOIN device_twins t ON t.device_id = d.id
		WHERE d.id = ? AND d.tenant_id = ?`, deviceID, tenantID).
		Scan(&created, &version, &tags, &desired, &dv, &dmeta, &reported, &rv, &rmeta, &updated, &st.sealed)
	if database.NoRows(err) {
		return storedTwin{}, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return storedTwin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	st.tw = hub.NewTwin(tenantID, deviceID, time.UnixMilli(created).UTC())
	if !version.Valid {
		return st, nil
	}
	st.exists, st.version, st.updated = true, version.Int64, updated.Int64
	tw := &st.tw
	tw.Version = version.Int64
	tw.Desired.Version, tw.Reported.Version = dv.Int64, rv.Int64
	tw.UpdatedAt = time.UnixMilli(updated.Int64).UTC()
	if st.sealed == nil {
		// Written before sealing: SealPlaintext has not reached it yet.
		tw.Tags = json.RawMessage(tags.String)
		tw.Desired.Doc, tw.Desired.Metadata = json.RawMessage(desired.String), json.RawMessage(dmeta.String)
		tw.Reported.Doc, tw.Reported.Metadata = json.RawMessage(reported.String), json.RawMessage(rmeta.String)
	}
	return st, nil
}

// openTwin reads a device's twin and opens it (no transaction is open).
func (s *Store) openTwin(ctx context.Context, q database.Querier, tenantID, deviceID string) (storedTwin, error) {
	st, err := s.loadTwin(ctx, q, tenantID, deviceID)
	if err != nil || st.sealed == nil {
		return st, err
	}
	if err := sealing.OpenTwin(ctx, s.sealer, &st.tw, st.sealed); err != nil {
		return storedTwin{}, err
	}
	return st, nil
}

// GetTwin returns a device's twin.
func (s *Store) GetTwin(ctx context.Context, tenantID, deviceID string) (hub.Twin, error) {
	st, err := s.openTwin(ctx, s.db, tenantID, deviceID)
	return st.tw, err
}

// maxTwinAttempts bounds how often changeTwin starts again because the twin
// changed under it. Each lost attempt is another change that won, so it is
// reached only if this many changes of one twin race at once.
const maxTwinAttempts = 100

// changeTwin runs a read-modify-write of a twin: it reads and opens the
// twin, lets change apply to it (change returns false if there is nothing
// to write), seals the result and stores it only if the stored twin is
// still the one read (a compare-and-swap in one statement); otherwise it
// starts again. So concurrent changes apply one after the other and none
// is lost, and the sealer is never called inside a transaction.
func (s *Store) changeTwin(ctx context.Context, tenantID, deviceID string, change func(tw *hub.Twin, exists bool) (bool, error)) (hub.Twin, error) {
	// Reads on the writer: SQLite's readers may not yet see the last
	// commit, which would only make the swap fail once more.
	db := s.db.Primary()
	for range maxTwinAttempts {
		st, err := s.openTwin(ctx, db, tenantID, deviceID)
		if err != nil {
			return hub.Twin{}, err
		}
		tw := st.tw
		write, err := change(&tw, st.exists)
		if err != nil || !write {
			return tw, err
		}
		sealed, err := sealing.SealTwin(ctx, s.sealer, tw)
		if err != nil {
			return hub.Twin{}, fmt.Errorf("save twin of %q: %w", deviceID, err)
		}
		swapped, err := s.swapTwin(ctx, st, tw, sealed)
		if err != nil {
			return hub.Twin{}, fmt.Errorf("save twin of %q: %w", deviceID, err)
		}
		if swapped {
			return tw, nil
		}
		if err := ctx.Err(); err != nil {
			return hub.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
		}
	}
	return hub.Twin{}, fmt.Errorf("twin of %q: changed by others %d times in a row: %w", deviceID, maxTwinAttempts, database.ErrConflict)
}

// swapTwin stores tw (its documents sealed) in place of the twin read as
// old, in one statement, if the stored twin is still old: the same row
// version and time, or still none for a device (of the same creation)
// that had none. It reports whether it stored it.
func (s *Store) swapTwin(ctx context.Context, old storedTwin, tw hub.Twin, sealed []byte) (bool, error) {
	var n int64
	var err error
	if old.exists {
		n, err = database.Affected(s.db.Exec(ctx, `UPDATE device_twins SET version = ?, tags = '', desired = '',
				desired_version = ?, desired_meta = '', reported = '', reported_version = ?, reported_meta = '',
				updated_at = ?, sealed = ?
			WHERE device_id = ? AND tenant_id = ? AND version = ? AND updated_at = ?`,
			tw.Version, tw.Desired.Version, tw.Reported.Version, tw.UpdatedAt.UnixMilli(), sealed,
			tw.DeviceID, tw.TenantID, old.version, old.updated))
	} else {
		// ON CONFLICT: another change stored the device's first twin
		// meanwhile. No row from the SELECT: the device was deleted
		// meanwhile (perhaps made again); the next read says which.
		n, err = database.Affected(s.db.Exec(ctx, `INSERT INTO device_twins (device_id, tenant_id, version, tags, desired,
				desired_version, desired_meta, reported, reported_version, reported_meta, updated_at, sealed)
			SELECT id, tenant_id, ?, '', '', ?, '', '', ?, '', ?, ? FROM devices
			WHERE id = ? AND tenant_id = ? AND created_at = ?
			ON CONFLICT (device_id) DO NOTHING`,
			tw.Version, tw.Desired.Version, tw.Reported.Version, tw.UpdatedAt.UnixMilli(), sealed,
			tw.DeviceID, tw.TenantID, tw.CreatedAt.UnixMilli()))
		if s.db.Dialect.IsForeignKeyViolation(err) {
			return false, nil // the device is being deleted: read again
		}
	}
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// UpdateTwin applies an operator's change of tags and desired properties.
func (s *Store) UpdateTwin(ctx context.Context, tenantID, deviceID string, u hub.TwinUpdate, at time.Time) (hub.Twin, error) {
	return s.changeTwin(ctx, tenantID, deviceID, func(tw *hub.Twin, _ bool) (bool, error) {
		return tw.ApplyUpdate(u, at)
	})
}

// UpdateReported applies a device's reported-properties patch.
func (s *Store) UpdateReported(ctx context.Context, tenantID, deviceID string, patch json.RawMessage, at time.Time) (hub.Twin, error) {
	return s.changeTwin(ctx, tenantID, deviceID, func(tw *hub.Twin, _ bool) (bool, error) {
		return true, tw.ApplyReported(patch, at)
	})
}

// SetInitialTwin gives a device without a stored twin its first one.
func (s *Store) SetInitialTwin(ctx context.Context, tenantID, deviceID string, tags, desired json.RawMessage, at time.Time) error {
	_, err := s.changeTwin(ctx, tenantID, deviceID, func(tw *hub.Twin, exists bool) (bool, error) {
		if exists {
			return false, nil
		}
		return true, tw.ApplyInitial(tags, desired, at)
	})
	return err
}
