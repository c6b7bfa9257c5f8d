// Package provisionsql keeps the device provisioning service's state
// (provision.Store) in SQL, on SQLite or PostgreSQL: the statements are
// written once, and only assignment differs by dialect (see assign.go).
// Initial twins and registration payloads are sealed with their tenant's
// key (keyring.Sealer).
package provisionsql

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/sealing"
)

// Store is a provision.Store on a database.
type Store struct {
	db     database.DB
	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ provision.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// SetSealer sets what seals and opens initial twins and registration
// payloads. The engines call it from their own SetSealer.
func (s *Store) SetSealer(sl keyring.Sealer) { s.sealer = sl }

// IDScope returns the tenant's ID scope, creating it on first use.
func (s *Store) IDScope(ctx context.Context, tenantID string) (string, error) {
	var scope string
	err := s.db.QueryRow(ctx, `SELECT id_scope FROM id_scopes WHERE tenant_id = ?`, tenantID).Scan(&scope)
	if err == nil {
		return scope, nil
	}
	if !database.NoRows(err) {
		return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
	}
	for range 5 { // a random scope may be taken: try another
		scope, err := provision.NewIDScope()
		if err != nil {
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
		// The no-op update makes RETURNING give the row whether it was
		// inserted now or, on a conflict on the tenant, by someone else
		// (another node) before.
		var got string
		err = s.db.Primary().QueryRow(ctx, `INSERT INTO id_scopes (tenant_id, id_scope) VALUES (?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET id_scope = id_scopes.id_scope RETURNING id_scope`, tenantID, scope).Scan(&got)
		switch {
		case err == nil:
			return got, nil
		case s.db.Dialect.IsUniqueViolation(err):
			continue
		case s.db.Dialect.IsForeignKeyViolation(err):
			return "", fmt.Errorf("tenant %q: %w", tenantID, database.ErrNotFound)
		default:
			return "", fmt.Errorf("id scope of %q: %w", tenantID, err)
		}
	}
	return "", fmt.Errorf("id scope of %q: no free scope found", tenantID)
}

// TenantByIDScope finds the tenant of an ID scope. Scopes compare
// case-insensitively: SQLite's column is COLLATE NOCASE, PostgreSQL's is
// indexed by lower(id_scope).
func (s *Store) TenantByIDScope(ctx context.Context, idScope string) (string, error) {
	where := `id_scope = ?`
	if s.db.Dialect == database.Postgres {
		where = `lower(id_scope) = lower(?)`
	}
	var tenant string
	err := s.db.QueryRow(ctx, `SELECT tenant_id FROM id_scopes WHERE `+where, idScope).Scan(&tenant)
	if database.NoRows(err) {
		return "", fmt.Errorf("id scope %q: %w", idScope, database.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("id scope %q: %w", idScope, err)
	}
	return tenant, nil
}

const groupColumns = `id, tenant_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// CreateEnrollmentGroup adds a group, unless the tenant has
// MaxEnrollmentGroups already. (In PostgreSQL, two nodes adding groups at
// the same instant may both pass the count: the bound is approximate
// there.)
func (s *Store) CreateEnrollmentGroup(ctx context.Context, g provision.EnrollmentGroup) error {
	sealed, err := sealing.SealGroupTwin(ctx, s.sealer, g.TenantID, g.ID, g.InitialTwin)
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	p := s.db.Dialect.Param
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO enrollment_groups (`+groupColumns+`)
		SELECT `+p("text")+`, `+p("text")+`, `+p("boolean")+`, `+p("bytea")+`, `+p("bytea")+`, NULL, `+p("bigint")+`, `+p("bigint")+`, `+p("bytea")+`
		WHERE (SELECT count(*) FROM enrollment_groups WHERE tenant_id = ?) < ?`,
		g.ID, g.TenantID, g.Enabled, g.PrimaryKey, g.SecondaryKey, g.CreatedAt.UnixMilli(), g.UpdatedAt.UnixMilli(), sealed,
		g.TenantID, provision.MaxEnrollmentGroups))
	if s.db.Dialect.IsUniqueViolation(err) {
		return fmt.Errorf("enrollment group %q: %w", g.ID, database.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create enrollment group %q: %w", g.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("enrollment group %q: a tenant may have %d groups: %w", g.ID, provision.MaxEnrollmentGroups, provision.ErrLimit)
	}
	return nil
}

// scanGroup reads a group and opens its sealed initial twin.
func (s *Store) scanGroup(ctx context.Context, row database.Scanner) (provision.EnrollmentGroup, error) {
	var g provision.EnrollmentGroup
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&g.ID, &g.TenantID, &g.Enabled, &g.PrimaryKey, &g.SecondaryKey, &g.InitialTwin, &created, &updated, &sealed); err != nil {
		return provision.EnrollmentGroup{}, err
	}
	g.CreatedAt, g.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return g, sealing.OpenGroupRow(ctx, s.sealer, &g, sealed)
}

// GetEnrollmentGroup returns one group of a tenant.
func (s *Store) GetEnrollmentGroup(ctx context.Context, tenantID, id string) (provision.EnrollmentGroup, error) {
	g, err := s.scanGroup(ctx, s.db.QueryRow(ctx, `SELECT `+groupColumns+` FROM enrollment_groups WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if database.NoRows(err) {
		return g, fmt.Errorf("enrollment group %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("get enrollment group %q: %w", id, err)
	}
	return g, nil
}

// ListEnrollmentGroups returns a tenant's groups in id order.
func (s *Store) ListEnrollmentGroups(ctx context.Context, tenantID string) ([]provision.EnrollmentGroup, error) {
	rows, err := s.db.Query(ctx, `SELECT `+groupColumns+` FROM enrollment_groups WHERE tenant_id = ? ORDER BY id`, tenantID)
	out, err := database.Collect(rows, err, func(row database.Scanner) (provision.EnrollmentGroup, error) { return s.scanGroup(ctx, row) })
	if err != nil {
		return nil, fmt.Errorf("list enrollment groups: %w", err)
	}
	return out, nil
}

// updateSet is the SET clause shared by both enrollment kinds, and its
// arguments; sealedTwin is the sealed new initial twin if u sets one.
func (s *Store) updateSet(u provision.EnrollmentUpdate, sealedTwin []byte) (string, []any) {
	var enabled any
	if u.Enabled != nil {
		enabled = *u.Enabled
	}
	var primary, secondary any
	if u.PrimaryKey != nil {
		primary = u.PrimaryKey
	}
	if u.SecondaryKey != nil {
		secondary = u.SecondaryKey
	}
	p := s.db.Dialect.Param
	return `enabled = COALESCE(` + p("boolean") + `, enabled), primary_key = COALESCE(` + p("bytea") + `, primary_key),
		secondary_key = COALESCE(` + p("bytea") + `, secondary_key),
		sealed = CASE WHEN ` + p("boolean") + ` THEN ` + p("bytea") + ` ELSE sealed END,
		initial_twin = CASE WHEN ` + p("boolean") + ` THEN NULL ELSE initial_twin END, updated_at = ?`,
		[]any{enabled, primary, secondary, u.SetInitialTwin, sealedTwin, u.SetInitialTwin, u.UpdatedAt.UnixMilli()}
}

// UpdateEnrollmentGroup changes a group and returns it.
func (s *Store) UpdateEnrollmentGroup(ctx context.Context, tenantID, id string, u provision.EnrollmentUpdate) (provision.EnrollmentGroup, error) {
	var sealed []byte
	if u.SetInitialTwin {
		var err error
		if sealed, err = sealing.SealGroupTwin(ctx, s.sealer, tenantID, id, u.InitialTwin); err != nil {
			return provision.EnrollmentGroup{}, fmt.Errorf("update enrollment group %q: %w", id, err)
		}
	}
	set, args := s.updateSet(u, sealed)
	g, err := s.scanGroup(ctx, s.db.Primary().QueryRow(ctx, `UPDATE enrollment_groups SET `+set+` WHERE tenant_id = ? AND id = ? RETURNING `+groupColumns,
		append(args, tenantID, id)...))
	if database.NoRows(err) {
		return g, fmt.Errorf("enrollment group %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("update enrollment group %q: %w", id, err)
	}
	return g, nil
}

// DeleteEnrollmentGroup removes a group.
func (s *Store) DeleteEnrollmentGroup(ctx context.Context, tenantID, id string) error {
	return database.DeleteOne(ctx, s.db, "enrollment group", id, `DELETE FROM enrollment_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

const enrollmentColumns = `registration_id, tenant_id, device_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// scanEnrollment reads an enrollment and opens its sealed initial twin.
func (s *Store) scanEnrollment(ctx context.Context, row database.Scanner) (provision.Enrollment, error) {
	var e provision.Enrollment
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&e.RegistrationID, &e.TenantID, &e.DeviceID, &e.Enabled, &e.PrimaryKey, &e.SecondaryKey, &e.InitialTwin, &created, &updated, &sealed); err != nil {
		return provision.Enrollment{}, err
	}
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return e, sealing.OpenEnrollmentRow(ctx, s.sealer, &e, sealed)
}

// CreateEnrollment adds an individual enrollment.
func (s *Store) CreateEnrollment(ctx context.Context, e provision.Enrollment) error {
	sealed, err := sealing.SealEnrollmentTwin(ctx, s.sealer, e.TenantID, e.RegistrationID, e.InitialTwin)
	if err != nil {
		return fmt.Errorf("create enrollment %q: %w", e.RegistrationID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO enrollments (`+enrollmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
		e.RegistrationID, e.TenantID, e.DeviceID, e.Enabled, e.PrimaryKey, e.SecondaryKey,
		e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli(), sealed)
	if s.db.Dialect.IsUniqueViolation(err) {
		return fmt.Errorf("enrollment %q: %w", e.RegistrationID, database.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create enrollment %q: %w", e.RegistrationID, err)
	}
	return nil
}

// GetEnrollment returns one individual enrollment of a tenant.
func (s *Store) GetEnrollment(ctx context.Context, tenantID, registrationID string) (provision.Enrollment, error) {
	e, err := s.scanEnrollment(ctx, s.db.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments
		WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID))
	if database.NoRows(err) {
		return e, fmt.Errorf("enrollment %q: %w", registrationID, database.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("get enrollment %q: %w", registrationID, err)
	}
	return e, nil
}

// ListEnrollments returns a tenant's individual enrollments in
// registration id order.
func (s *Store) ListEnrollments(ctx context.Context, tenantID string) ([]provision.Enrollment, error) {
	rows, err := s.db.Query(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE tenant_id = ? ORDER BY registration_id`, tenantID)
	out, err := database.Collect(rows, err, func(row database.Scanner) (provision.Enrollment, error) { return s.scanEnrollment(ctx, row) })
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	return out, nil
}

// UpdateEnrollment changes an individual enrollment and returns it.
func (s *Store) UpdateEnrollment(ctx context.Context, tenantID, registrationID string, u provision.EnrollmentUpdate) (provision.Enrollment, error) {
	var sealed []byte
	if u.SetInitialTwin {
		var err error
		if sealed, err = sealing.SealEnrollmentTwin(ctx, s.sealer, tenantID, registrationID, u.InitialTwin); err != nil {
			return provision.Enrollment{}, fmt.Errorf("update enrollment %q: %w", registrationID, err)
		}
	}
	set, args := s.updateSet(u, sealed)
	e, err := s.scanEnrollment(ctx, s.db.Primary().QueryRow(ctx, `UPDATE enrollments SET `+set+` WHERE tenant_id = ? AND registration_id = ?
		RETURNING `+enrollmentColumns, append(args, tenantID, registrationID)...))
	if database.NoRows(err) {
		return e, fmt.Errorf("enrollment %q: %w", registrationID, database.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("update enrollment %q: %w", registrationID, err)
	}
	return e, nil
}

// DeleteEnrollment removes an individual enrollment.
func (s *Store) DeleteEnrollment(ctx context.Context, tenantID, registrationID string) error {
	return database.DeleteOne(ctx, s.db, "enrollment", registrationID, `DELETE FROM enrollments WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID)
}

const registrationColumns = `registration_id, tenant_id, device_id, enrollment_kind, enrollment_id, status, substatus,
	operation_id, etag, payload, initial_twin, created_at, updated_at, sealed`

// scanRegistrationRaw reads a registration record and its sealed part,
// unopened. (payload and initial_twin are TEXT in PostgreSQL, BLOB in
// SQLite: database/sql gives either as bytes, NULL as nil.)
func scanRegistrationRaw(row database.Scanner) (provision.Registration, []byte, error) {
	var r provision.Registration
	var kind string
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&r.RegistrationID, &r.TenantID, &r.DeviceID, &kind, &r.EnrollmentID, &r.Status, &r.Substatus,
		&r.OperationID, &r.ETag, &r.Payload, &r.InitialTwin, &created, &updated, &sealed); err != nil {
		return provision.Registration{}, nil, err
	}
	r.EnrollmentKind = provision.EnrollmentKind(kind)
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return r, sealed, nil
}

// scanRegistration reads a registration record and opens its sealed
// payload and initial twin.
func (s *Store) scanRegistration(ctx context.Context, row database.Scanner) (provision.Registration, error) {
	r, sealed, err := scanRegistrationRaw(row)
	if err != nil {
		return r, err
	}
	return r, sealing.OpenRegistrationRow(ctx, s.sealer, &r, sealed)
}

// GetRegistration returns one registration record.
func (s *Store) GetRegistration(ctx context.Context, tenantID, registrationID string) (provision.Registration, error) {
	r, err := s.scanRegistration(ctx, s.db.QueryRow(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID))
	if database.NoRows(err) {
		return r, fmt.Errorf("registration %q: %w", registrationID, database.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get registration %q: %w", registrationID, err)
	}
	return r, nil
}

// ListRegistrations returns a page of a tenant's registrations.
func (s *Store) ListRegistrations(ctx context.Context, tenantID, after string, limit int) ([]provision.Registration, error) {
	rows, err := s.db.Query(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE tenant_id = ? AND registration_id > ? ORDER BY registration_id LIMIT ?`, tenantID, after, s.db.Dialect.Limit(limit))
	out, err := database.Collect(rows, err, func(row database.Scanner) (provision.Registration, error) { return s.scanRegistration(ctx, row) })
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	return out, nil
}

// DeleteRegistration removes a registration record.
func (s *Store) DeleteRegistration(ctx context.Context, tenantID, registrationID string) error {
	return database.DeleteOne(ctx, s.db, "registration", registrationID, `DELETE FROM registrations WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID)
}
