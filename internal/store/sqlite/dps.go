package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// IDScope returns the tenant's ID scope, creating it on first use.
func (s *Store) IDScope(ctx context.Context, tenantID string) (string, error) {
	var scope string
	err := s.r.QueryRowContext(ctx, `SELECT id_scope FROM id_scopes WHERE tenant_id = ?`, tenantID).Scan(&scope)
	if err == nil {
		return scope, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
	}
	for range 5 { // a random scope may be taken: try another
		scope, err := store.NewIDScope()
		if err != nil {
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
		// RETURNING gives the row whether it was inserted now or, on a
		// conflict on the tenant, by someone else before.
		var got string
		err = s.w.QueryRowContext(ctx, `INSERT INTO id_scopes (tenant_id, id_scope) VALUES (?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET id_scope = id_scope RETURNING id_scope`, tenantID, scope).Scan(&got)
		switch {
		case err == nil:
			return got, nil
		case isUniqueViolation(err):
			continue
		case strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
			return "", fmt.Errorf("tenant %q: %w", tenantID, store.ErrNotFound)
		default:
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
	}
	return "", fmt.Errorf("id scope of %q: no free scope found", tenantID)
}

// TenantByIDScope finds the tenant of an ID scope.
func (s *Store) TenantByIDScope(ctx context.Context, idScope string) (string, error) {
	var tenant string
	err := s.r.QueryRowContext(ctx, `SELECT tenant_id FROM id_scopes WHERE id_scope = ?`, idScope).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("id scope %q: %w", idScope, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("id scope %q: %w", idScope, err)
	}
	return tenant, nil
}

const groupColumns = `id, tenant_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// CreateEnrollmentGroup adds a group, unless the tenant has
// MaxEnrollmentGroups already.
func (s *Store) CreateEnrollmentGroup(ctx context.Context, g store.EnrollmentGroup) error {
	sealed, err := store.SealGroupTwin(ctx, s.sealer, g.TenantID, g.ID, g.InitialTwin)
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO enrollment_groups (`+groupColumns+`)
		SELECT ?, ?, ?, ?, ?, NULL, ?, ?, ? WHERE (SELECT count(*) FROM enrollment_groups WHERE tenant_id = ?) < ?`,
		g.ID, g.TenantID, g.Enabled, g.PrimaryKey, g.SecondaryKey, g.CreatedAt.UnixMilli(), g.UpdatedAt.UnixMilli(), sealed,
		g.TenantID, store.MaxEnrollmentGroups)
	if isUniqueViolation(err) {
		return fmt.Errorf("enrollment group %q: %w", g.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("enrollment group %q: a tenant may have %d groups: %w", g.ID, store.MaxEnrollmentGroups, store.ErrLimit)
	}
	return nil
}

const registrationColumns = `registration_id, tenant_id, device_id, enrollment_kind, enrollment_id, status, substatus,
	operation_id, etag, payload, initial_twin, created_at, updated_at, sealed`

// scanRegistration reads a registration record and opens its sealed
// payload and initial twin.
func (s *Store) scanRegistration(ctx context.Context, row interface{ Scan(...any) error }) (store.Registration, error) {
	var r store.Registration
	var kind string
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&r.RegistrationID, &r.TenantID, &r.DeviceID, &kind, &r.EnrollmentID, &r.Status, &r.Substatus,
		&r.OperationID, &r.ETag, &r.Payload, &r.InitialTwin, &created, &updated, &sealed); err != nil {
		return store.Registration{}, err
	}
	r.EnrollmentKind = store.EnrollmentKind(kind)
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return r, store.OpenRegistrationRow(ctx, s.sealer, &r, sealed)
}

// AssignRegistrations carries out a batch of assignments in one
// transaction, with a few multi-row statements for the whole batch rather
// than several per assignment (with an embedded SQLite the cost of a
// statement is its parsing): the devices are inserted, those that existed
// are checked and re-keyed one by one, and the registrations are upserted.
// An id that comes twice in a batch is handled in a later round, after the
// first. The payloads and initial twins are sealed before the transaction
// begins: a tenant's first sealing creates its key through the one writer
// connection.
func (s *Store) AssignRegistrations(ctx context.Context, as []store.Assignment) ([]store.AssignResult, error) {
	sealed := make([][]byte, len(as))
	for i, a := range as {
		var err error
		if sealed[i], err = store.SealRegistration(ctx, s.sealer, a.Registration); err != nil {
			return nil, fmt.Errorf("assign registrations: %w", err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("assign registrations: %w", err)
	}
	defer tx.Rollback()
	results := make([]store.AssignResult, len(as))
	for _, round := range assignRounds(as) {
		for part := range slices.Chunk(round, 100) {
			if err := assignRound(ctx, tx, as, sealed, part, results); err != nil {
				return nil, fmt.Errorf("assign registrations: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("assign registrations: %w", err)
	}
	return results, nil
}

// assignRounds splits a batch into rounds in which every registration and
// device id appears at most once; an assignment comes in a later round than
// every earlier one that shares an id with it.
func assignRounds(as []store.Assignment) [][]int {
	var rounds [][]int
	last := map[string]int{} // key → 1 + the last round that used it
	for i, a := range as {
		r := a.Registration
		keys := [2]string{"r\x00" + r.TenantID + "\x00" + r.RegistrationID, "d\x00" + r.DeviceID}
		round := max(last[keys[0]], last[keys[1]])
		if round == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[round] = append(rounds[round], i)
		last[keys[0]], last[keys[1]] = round+1, round+1
	}
	return rounds
}

// assignRound assigns the batch entries idx, whose ids are distinct;
// sealed holds each entry's sealed payload and initial twin.
func assignRound(ctx context.Context, tx *sql.Tx, as []store.Assignment, sealed [][]byte, idx []int, results []store.AssignResult) error {
	// New devices.
	args := make([]any, 0, 6*len(idx))
	for _, i := range idx {
		a := as[i]
		args = append(args, a.Registration.DeviceID, a.Registration.TenantID, string(store.DeviceEnabled),
			a.PrimaryKey, a.SecondaryKey, a.Registration.UpdatedAt.UnixMilli())
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at) VALUES `+
		values(len(idx), 6)+` ON CONFLICT (id) DO NOTHING RETURNING id`, args...)
	if err != nil {
		return fmt.Errorf("create devices: %w", err)
	}
	created := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("create devices: %w", err)
		}
		created[id] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("create devices: %w", err)
	}

	// Devices that existed: the rule says whether they may be taken.
	ok := make([]int, 0, len(idx))
	var check, rekey *sql.Stmt
	for _, i := range idx {
		a := as[i]
		r := a.Registration
		if created[r.DeviceID] {
			ok = append(ok, i)
			continue
		}
		if check == nil {
			if check, err = tx.PrepareContext(ctx, `SELECT d.tenant_id, r.device_id, r.enrollment_kind, r.enrollment_id
				FROM devices d LEFT JOIN registrations r ON r.tenant_id = ? AND r.registration_id = ? WHERE d.id = ?`); err != nil {
				return err
			}
			defer check.Close()
			if rekey, err = tx.PrepareContext(ctx, `UPDATE devices SET primary_key = ?, secondary_key = ? WHERE id = ?`); err != nil {
				return err
			}
			defer rekey.Close()
		}
		var owner string
		var priorDevice, priorKind, priorEnrollment sql.NullString
		if err := check.QueryRowContext(ctx, r.TenantID, r.RegistrationID, r.DeviceID).Scan(&owner, &priorDevice, &priorKind, &priorEnrollment); err != nil {
			return fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		}
		prior := store.Registration{DeviceID: priorDevice.String, EnrollmentKind: store.EnrollmentKind(priorKind.String), EnrollmentID: priorEnrollment.String}
		if why := store.AssignConflict(owner, priorDevice.Valid, prior, r); why != "" {
			results[i].Err = fmt.Errorf("device %q: %s: %w", r.DeviceID, why, store.ErrConflict)
			continue
		}
		if _, err := rekey.ExecContext(ctx, a.PrimaryKey, a.SecondaryKey, r.DeviceID); err != nil {
			return fmt.Errorf("assign %q: re-key device: %w", r.RegistrationID, err)
		}
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return nil
	}

	// The registration records: a new one is an initial assignment; one
	// that existed keeps its creation time and becomes a reset.
	args = args[:0]
	for _, i := range ok {
		r := as[i].Registration
		args = append(args, r.RegistrationID, r.TenantID, r.DeviceID, string(r.EnrollmentKind), r.EnrollmentID,
			store.RegistrationAssigned, store.SubstatusInitialAssignment, r.OperationID, r.ETag, nil, nil,
			r.UpdatedAt.UnixMilli(), r.UpdatedAt.UnixMilli(), sealed[i])
	}
	args = append(args, store.SubstatusDeviceDataReset)
	rows, err = tx.QueryContext(ctx, `INSERT INTO registrations (`+registrationColumns+`) VALUES `+values(len(ok), 14)+`
		ON CONFLICT (tenant_id, registration_id) DO UPDATE SET device_id = excluded.device_id,
			enrollment_kind = excluded.enrollment_kind, enrollment_id = excluded.enrollment_id, status = excluded.status,
			substatus = ?, operation_id = excluded.operation_id, etag = excluded.etag,
			payload = excluded.payload, initial_twin = excluded.initial_twin, sealed = excluded.sealed,
			updated_at = excluded.updated_at
		RETURNING tenant_id, registration_id, substatus, created_at`, args...)
	if err != nil {
		return fmt.Errorf("record registrations: %w", err)
	}
	type key struct{ tenant, id string }
	type outcome struct {
		substatus string
		created   int64
	}
	recorded := make(map[key]outcome, len(ok))
	for rows.Next() {
		var k key
		var o outcome
		if err := rows.Scan(&k.tenant, &k.id, &o.substatus, &o.created); err != nil {
			rows.Close()
			return fmt.Errorf("record registrations: %w", err)
		}
		recorded[k] = o
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("record registrations: %w", err)
	}
	for _, i := range ok {
		r := as[i].Registration
		o, found := recorded[key{r.TenantID, r.RegistrationID}]
		if !found {
			return fmt.Errorf("registration %q not recorded", r.RegistrationID)
		}
		r.Status, r.Substatus = store.RegistrationAssigned, o.substatus
		r.CreatedAt, r.UpdatedAt = time.UnixMilli(o.created).UTC(), time.UnixMilli(r.UpdatedAt.UnixMilli()).UTC()
		results[i].Registration = r
	}
	return nil
}

// GetRegistration returns one registration record.
func (s *Store) GetRegistration(ctx context.Context, tenantID, registrationID string) (store.Registration, error) {
	r, err := s.scanRegistration(ctx, s.r.QueryRowContext(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("registration %q: %w", registrationID, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get registration %q: %w", registrationID, err)
	}
	return r, nil
}

// ListRegistrations returns a page of a tenant's registrations.
func (s *Store) ListRegistrations(ctx context.Context, tenantID, after string, limit int) ([]store.Registration, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = ? AND registration_id > ? ORDER BY registration_id LIMIT ?`, tenantID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	defer rows.Close()
	out := []store.Registration{}
	for rows.Next() {
		r, err := s.scanRegistration(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("list registrations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	return out, nil
}
