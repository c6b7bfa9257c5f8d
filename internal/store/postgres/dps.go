package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/store"
)

// IDScope returns the tenant's ID scope, creating it on first use.
func (s *Store) IDScope(ctx context.Context, tenantID string) (string, error) {
	var scope string
	err := s.pool.QueryRow(ctx, `SELECT id_scope FROM id_scopes WHERE tenant_id = $1`, tenantID).Scan(&scope)
	if err == nil {
		return scope, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
	}
	for range 5 { // a random scope may be taken: try another
		scope, err := store.NewIDScope()
		if err != nil {
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
		// The no-op update makes RETURNING give the row another node
		// inserted first.
		var got string
		err = s.pool.QueryRow(ctx, `INSERT INTO id_scopes (tenant_id, id_scope) VALUES ($1, $2)
			ON CONFLICT (tenant_id) DO UPDATE SET id_scope = id_scopes.id_scope RETURNING id_scope`, tenantID, scope).Scan(&got)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return got, nil
		case isUniqueViolation(err):
			continue
		case errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation:
			return "", fmt.Errorf("tenant %q: %w", tenantID, store.ErrNotFound)
		default:
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
	}
	return "", fmt.Errorf("id scope of %q: no free scope found", tenantID)
}

// foreignKeyViolation is PostgreSQL's SQLSTATE for foreign_key_violation.
const foreignKeyViolation = "23503"

// TenantByIDScope finds the tenant of an ID scope.
func (s *Store) TenantByIDScope(ctx context.Context, idScope string) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM id_scopes WHERE lower(id_scope) = lower($1)`, idScope).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("id scope %q: %w", idScope, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("id scope %q: %w", idScope, err)
	}
	return tenant, nil
}

const groupColumns = `id, tenant_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// textBytes is a nullable TEXT column's bytes (nil: NULL).
func textBytes(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// CreateEnrollmentGroup adds a group, unless the tenant has
// MaxEnrollmentGroups already. (Two nodes adding groups at the same instant
// may both pass the count: the bound is approximate there.)
func (s *Store) CreateEnrollmentGroup(ctx context.Context, g store.EnrollmentGroup) error {
	sealed, err := store.SealGroupTwin(ctx, s.sealer, g.TenantID, g.ID, g.InitialTwin)
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO enrollment_groups (`+groupColumns+`)
		SELECT $1::text, $2::text, $3::boolean, $4::bytea, $5::bytea, NULL, $6::bigint, $7::bigint, $8::bytea
		WHERE (SELECT count(*) FROM enrollment_groups WHERE tenant_id = $2) < $9`,
		g.ID, g.TenantID, g.Enabled, g.PrimaryKey, g.SecondaryKey, g.CreatedAt.UnixMilli(), g.UpdatedAt.UnixMilli(), sealed,
		store.MaxEnrollmentGroups)
	if isUniqueViolation(err) {
		return fmt.Errorf("enrollment group %q: %w", g.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("enrollment group %q: a tenant may have %d groups: %w", g.ID, store.MaxEnrollmentGroups, store.ErrLimit)
	}
	return nil
}

const registrationColumns = `registration_id, tenant_id, device_id, enrollment_kind, enrollment_id, status, substatus,
	operation_id, etag, payload, initial_twin, created_at, updated_at, sealed`

// scanRegistrationRaw reads a registration record and its sealed part,
// unopened.
func scanRegistrationRaw(row pgx.Row) (store.Registration, []byte, error) {
	var r store.Registration
	var kind string
	var created, updated int64
	var payload, twin *string
	var sealed []byte
	if err := row.Scan(&r.RegistrationID, &r.TenantID, &r.DeviceID, &kind, &r.EnrollmentID, &r.Status, &r.Substatus,
		&r.OperationID, &r.ETag, &payload, &twin, &created, &updated, &sealed); err != nil {
		return store.Registration{}, nil, err
	}
	r.Payload, r.InitialTwin = textBytes(payload), textBytes(twin)
	r.EnrollmentKind = store.EnrollmentKind(kind)
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return r, sealed, nil
}

// scanRegistration reads a registration record and opens its sealed
// payload and initial twin.
func (s *Store) scanRegistration(ctx context.Context, row pgx.Row) (store.Registration, error) {
	r, sealed, err := scanRegistrationRaw(row)
	if err != nil {
		return r, err
	}
	return r, store.OpenRegistrationRow(ctx, s.sealer, &r, sealed)
}

// AssignRegistrations carries out a batch of assignments in one
// transaction. The registration row and the device row of each are locked
// (SELECT … FOR UPDATE), so that two nodes assigning the same registration
// id run one after the other; a device created by another node in between
// is a conflict for this assignment, as the rule says, not an error of the
// batch. The payloads and initial twins are sealed before the transaction
// begins.
func (s *Store) AssignRegistrations(ctx context.Context, as []store.Assignment) ([]store.AssignResult, error) {
	sealed := make([][]byte, len(as))
	for i, a := range as {
		var err error
		if sealed[i], err = store.SealRegistration(ctx, s.sealer, a.Registration); err != nil {
			return nil, fmt.Errorf("assign registrations: %w", err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("assign registrations: %w", err)
	}
	defer tx.Rollback(ctx)
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
	results := make([]store.AssignResult, len(as))
	for _, i := range order {
		a := as[i]
		r := a.Registration
		prior, _, err := scanRegistrationRaw(tx.QueryRow(ctx, `SELECT `+registrationColumns+` FROM registrations
			WHERE tenant_id = $1 AND registration_id = $2 FOR UPDATE`, r.TenantID, r.RegistrationID))
		hadPrior := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		}
		var owner string
		err = tx.QueryRow(ctx, `SELECT tenant_id FROM devices WHERE id = $1 FOR UPDATE`, r.DeviceID).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			tag, err := tx.Exec(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, r.DeviceID, r.TenantID, string(store.DeviceEnabled),
				a.PrimaryKey, a.SecondaryKey, r.UpdatedAt.UnixMilli())
			if err != nil {
				return nil, fmt.Errorf("assign %q: create device: %w", r.RegistrationID, err)
			}
			if tag.RowsAffected() == 0 {
				results[i].Err = fmt.Errorf("device %q: created elsewhere at the same time: %w", r.DeviceID, store.ErrConflict)
				continue
			}
		case err != nil:
			return nil, fmt.Errorf("assign %q: %w", r.RegistrationID, err)
		default:
			if why := store.AssignConflict(owner, hadPrior, prior, r); why != "" {
				results[i].Err = fmt.Errorf("device %q: %s: %w", r.DeviceID, why, store.ErrConflict)
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE devices SET primary_key = $1, secondary_key = $2 WHERE id = $3`,
				a.PrimaryKey, a.SecondaryKey, r.DeviceID); err != nil {
				return nil, fmt.Errorf("assign %q: re-key device: %w", r.RegistrationID, err)
			}
		}
		r.Status, r.Substatus, r.CreatedAt = store.RegistrationAssigned, store.SubstatusInitialAssignment, r.UpdatedAt
		if hadPrior {
			r.Substatus, r.CreatedAt = store.SubstatusDeviceDataReset, prior.CreatedAt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO registrations (`+registrationColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11, $12)
			ON CONFLICT (tenant_id, registration_id) DO UPDATE SET device_id = excluded.device_id,
				enrollment_kind = excluded.enrollment_kind, enrollment_id = excluded.enrollment_id, status = excluded.status,
				substatus = excluded.substatus, operation_id = excluded.operation_id, etag = excluded.etag,
				payload = NULL, initial_twin = NULL, sealed = excluded.sealed, updated_at = excluded.updated_at`,
			r.RegistrationID, r.TenantID, r.DeviceID, string(r.EnrollmentKind), r.EnrollmentID,
			r.Status, r.Substatus, r.OperationID, r.ETag, r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli(), sealed[i]); err != nil {
			return nil, fmt.Errorf("assign %q: record registration: %w", r.RegistrationID, err)
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.Truncate(time.Millisecond), r.UpdatedAt.Truncate(time.Millisecond)
		results[i].Registration = r
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("assign registrations: commit: %w", err)
	}
	return results, nil
}

// GetRegistration returns one registration record.
func (s *Store) GetRegistration(ctx context.Context, tenantID, registrationID string) (store.Registration, error) {
	r, err := s.scanRegistration(ctx, s.pool.QueryRow(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = $1 AND registration_id = $2`, tenantID, registrationID))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("registration %q: %w", registrationID, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get registration %q: %w", registrationID, err)
	}
	return r, nil
}

// ListRegistrations returns a page of a tenant's registrations.
func (s *Store) ListRegistrations(ctx context.Context, tenantID, after string, limit int) ([]store.Registration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = $1 AND registration_id > $2 ORDER BY registration_id LIMIT $3`, tenantID, after, limitArg(limit))
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
