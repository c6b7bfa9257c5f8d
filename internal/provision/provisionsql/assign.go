package provisionsql

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sealing"
)

// AssignRegistrations carries out a batch of assignments in one
// transaction. The payloads and initial twins are sealed before the
// transaction begins: a tenant's first sealing creates its key, which in
// SQLite goes through the one writer connection.
//
// The engines differ in how the transaction is made safe and fast:
//
//   - SQLite runs one write transaction at a time, so nothing needs
//     locking, and the cost of a statement is its parsing: a few multi-row
//     statements serve the whole batch (assignRounds).
//   - In PostgreSQL several nodes assign at once: the registration row and
//     the device row of each assignment are locked (SELECT … FOR UPDATE),
//     in registration id order, so that two nodes assigning the same
//     registration id run one after the other and two batches cannot
//     deadlock (assignLocked).
func (s *Store) AssignRegistrations(ctx context.Context, as []provision.Assignment) ([]provision.AssignResult, error) {
	sealed := make([][]byte, len(as))
	for i, a := range as {
		var err error
		if sealed[i], err = sealing.SealRegistration(ctx, s.sealer, a.Registration); err != nil {
			return nil, fmt.Errorf("assign registrations: %w", err)
		}
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("assign registrations: %w", err)
	}
	defer tx.Rollback()
	results := make([]provision.AssignResult, len(as))
	if s.db.Dialect == database.Postgres {
		err = assignLocked(ctx, tx, as, sealed, results)
	} else {
		err = assignRounds(ctx, tx, as, sealed, results)
	}
	if err != nil {
		return nil, fmt.Errorf("assign registrations: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("assign registrations: commit: %w", err)
	}
	return results, nil
}

// assignRounds assigns a batch with a few multi-row statements rather than
// several per assignment: the devices are inserted, those that existed are
// checked and re-keyed one by one, and the registrations are upserted. An
// id that comes twice in a batch is handled in a later round, after the
// first.
func assignRounds(ctx context.Context, tx database.Tx, as []provision.Assignment, sealed [][]byte, results []provision.AssignResult) error {
	for _, round := range rounds(as) {
		for part := range slices.Chunk(round, 100) {
			if err := assignRound(ctx, tx, as, sealed, part, results); err != nil {
				return err
			}
		}
	}
	return nil
}

// rounds splits a batch into rounds in which every registration and device
// id appears at most once; an assignment comes in a later round than every
// earlier one that shares an id with it.
func rounds(as []provision.Assignment) [][]int {
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

// values is the VALUES list of a multi-row insert: rows tuples of cols
// placeholders.
func values(rows, cols int) string {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

// assignRound assigns the batch entries idx, whose ids are distinct;
// sealed holds each entry's sealed payload and initial twin.
func assignRound(ctx context.Context, tx database.Tx, as []provision.Assignment, sealed [][]byte, idx []int, results []provision.AssignResult) error {
	// New devices.
	args := make([]any, 0, 6*len(idx))
	for _, i := range idx {
		a := as[i]
		args = append(args, a.Registration.DeviceID, a.Registration.TenantID, string(registry.DeviceEnabled),
			a.PrimaryKey, a.SecondaryKey, a.Registration.UpdatedAt.UnixMilli())
	}
	rows, err := tx.Query(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at) VALUES `+
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
			if check, err = tx.Prepare(ctx, `SELECT d.tenant_id, r.device_id, r.enrollment_kind, r.enrollment_id
				FROM devices d LEFT JOIN registrations r ON r.tenant_id = ? AND r.registration_id = ? WHERE d.id = ?`); err != nil {
				return err
			}
			defer check.Close()
			if rekey, err = tx.Prepare(ctx, `UPDATE devices SET primary_key = ?, secondary_key = ? WHERE id = ?`); err != nil {
				return err
			}
			defer rekey.Close()
		}
		var owner string
		var priorDevice, priorKind, priorEnrollment sql.NullString
		if err := check.QueryRowContext(ctx, r.TenantID, r.RegistrationID, r.DeviceID).Scan(&owner, &priorDevice, &priorKind, &priorEnrollment); err != nil {
			return fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		}
		prior := provision.Registration{DeviceID: priorDevice.String, EnrollmentKind: provision.EnrollmentKind(priorKind.String), EnrollmentID: priorEnrollment.String}
		if why := provision.AssignConflict(owner, priorDevice.Valid, prior, r); why != "" {
			results[i].Err = fmt.Errorf("device %q: %s: %w", r.DeviceID, why, database.ErrConflict)
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
			provision.RegistrationAssigned, provision.SubstatusInitialAssignment, r.OperationID, r.ETag, nil, nil,
			r.UpdatedAt.UnixMilli(), r.UpdatedAt.UnixMilli(), sealed[i])
	}
	args = append(args, provision.SubstatusDeviceDataReset)
	rows, err = tx.Query(ctx, `INSERT INTO registrations (`+registrationColumns+`) VALUES `+values(len(ok), 14)+`
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
		r.Status, r.Substatus = provision.RegistrationAssigned, o.substatus
		r.CreatedAt, r.UpdatedAt = time.UnixMilli(o.created).UTC(), time.UnixMilli(r.UpdatedAt.UnixMilli()).UTC()
		results[i].Registration = r
	}
	return nil
}

// assignLocked assigns a batch one assignment at a time, with the
// registration row and the device row of each locked (SELECT … FOR
// UPDATE), in registration id order. A device created by another node in
// between is a conflict for this assignment, as the rule says, not an error
// of the batch.
func assignLocked(ctx context.Context, tx database.Tx, as []provision.Assignment, sealed [][]byte, results []provision.AssignResult) error {
	// Locks are taken in registration id order, so that two batches
	// cannot deadlock on each other's registrations.
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := as[i].Registration, as[j].Registration
		return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.RegistrationID, b.RegistrationID))
	})
	for _, i := range order {
		a := as[i]
		r := a.Registration
		prior, _, err := scanRegistrationRaw(tx.QueryRow(ctx, `SELECT `+registrationColumns+` FROM registrations
			WHERE tenant_id = ? AND registration_id = ? FOR UPDATE`, r.TenantID, r.RegistrationID))
		hadPrior := err == nil
		if err != nil && !database.NoRows(err) {
			return fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		}
		var owner string
		err = tx.QueryRow(ctx, `SELECT tenant_id FROM devices WHERE id = ? FOR UPDATE`, r.DeviceID).Scan(&owner)
		switch {
		case database.NoRows(err):
			n, err := database.Affected(tx.Exec(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, r.DeviceID, r.TenantID, string(registry.DeviceEnabled),
				a.PrimaryKey, a.SecondaryKey, r.UpdatedAt.UnixMilli()))
			if err != nil {
				return fmt.Errorf("assign %q: create device: %w", r.RegistrationID, err)
			}
			if n == 0 {
				results[i].Err = fmt.Errorf("device %q: created elsewhere at the same time: %w", r.DeviceID, database.ErrConflict)
				continue
			}
		case err != nil:
			return fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		default:
			if why := provision.AssignConflict(owner, hadPrior, prior, r); why != "" {
				results[i].Err = fmt.Errorf("device %q: %s: %w", r.DeviceID, why, database.ErrConflict)
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE devices SET primary_key = ?, secondary_key = ? WHERE id = ?`,
				a.PrimaryKey, a.SecondaryKey, r.DeviceID); err != nil {
				return fmt.Errorf("assign %q: re-key device: %w", r.RegistrationID, err)
			}
		}
		r.Status, r.Substatus, r.CreatedAt = provision.RegistrationAssigned, provision.SubstatusInitialAssignment, r.UpdatedAt
		if hadPrior {
			r.Substatus, r.CreatedAt = provision.SubstatusDeviceDataReset, prior.CreatedAt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO registrations (`+registrationColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)
			ON CONFLICT (tenant_id, registration_id) DO UPDATE SET device_id = excluded.device_id,
				enrollment_kind = excluded.enrollment_kind, enrollment_id = excluded.enrollment_id, status = excluded.status,
				substatus = excluded.substatus, operation_id = excluded.operation_id, etag = excluded.etag,
				payload = NULL, initial_twin = NULL, sealed = excluded.sealed, updated_at = excluded.updated_at`,
			r.RegistrationID, r.TenantID, r.DeviceID, string(r.EnrollmentKind), r.EnrollmentID,
			r.Status, r.Substatus, r.OperationID, r.ETag, r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli(), sealed[i]); err != nil {
			return fmt.Errorf("assign %q: record registration: %w", r.RegistrationID, err)
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.Truncate(time.Millisecond), r.UpdatedAt.Truncate(time.Millisecond)
		results[i].Registration = r
	}
	return nil
}
