package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

const groupColumns = `id, tenant_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// scanGroup reads a group and opens its sealed initial twin.
func (s *Store) scanGroup(ctx context.Context, row interface{ Scan(...any) error }) (store.EnrollmentGroup, error) {
	var g store.EnrollmentGroup
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&g.ID, &g.TenantID, &g.Enabled, &g.PrimaryKey, &g.SecondaryKey, &g.InitialTwin, &created, &updated, &sealed); err != nil {
		return store.EnrollmentGroup{}, err
	}
	g.CreatedAt, g.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return g, store.OpenGroupRow(ctx, s.sealer, &g, sealed)
}

// GetEnrollmentGroup returns one group of a tenant.
func (s *Store) GetEnrollmentGroup(ctx context.Context, tenantID, id string) (store.EnrollmentGroup, error) {
	g, err := s.scanGroup(ctx, s.db.QueryRow(ctx, `SELECT `+groupColumns+` FROM enrollment_groups WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if database.NoRows(err) {
		return g, fmt.Errorf("enrollment group %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("get enrollment group %q: %w", id, err)
	}
	return g, nil
}

// ListEnrollmentGroups returns a tenant's groups in id order.
func (s *Store) ListEnrollmentGroups(ctx context.Context, tenantID string) ([]store.EnrollmentGroup, error) {
	rows, err := s.db.Query(ctx, `SELECT `+groupColumns+` FROM enrollment_groups WHERE tenant_id = ? ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list enrollment groups: %w", err)
	}
	defer rows.Close()
	out := []store.EnrollmentGroup{}
	for rows.Next() {
		g, err := s.scanGroup(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("list enrollment groups: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrollment groups: %w", err)
	}
	return out, nil
}

// updateSet is the SET clause shared by both enrollment kinds, and its
// arguments; sealedTwin is the sealed new initial twin if u sets one.
func (s *Store) updateSet(u store.EnrollmentUpdate, sealedTwin []byte) (string, []any) {
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
func (s *Store) UpdateEnrollmentGroup(ctx context.Context, tenantID, id string, u store.EnrollmentUpdate) (store.EnrollmentGroup, error) {
	var sealed []byte
	if u.SetInitialTwin {
		var err error
		if sealed, err = store.SealGroupTwin(ctx, s.sealer, tenantID, id, u.InitialTwin); err != nil {
			return store.EnrollmentGroup{}, fmt.Errorf("update enrollment group %q: %w", id, err)
		}
	}
	set, args := s.updateSet(u, sealed)
	g, err := s.scanGroup(ctx, s.db.Primary().QueryRow(ctx, `UPDATE enrollment_groups SET `+set+` WHERE tenant_id = ? AND id = ? RETURNING `+groupColumns,
		append(args, tenantID, id)...))
	if database.NoRows(err) {
		return g, fmt.Errorf("enrollment group %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("update enrollment group %q: %w", id, err)
	}
	return g, nil
}

// DeleteEnrollmentGroup removes a group.
func (s *Store) DeleteEnrollmentGroup(ctx context.Context, tenantID, id string) error {
	return s.deleteOne(ctx, "enrollment group", id, `DELETE FROM enrollment_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

func (s *Store) deleteOne(ctx context.Context, what, id, query string, args ...any) error {
	res, err := s.db.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, store.ErrNotFound)
	}
	return nil
}

const enrollmentColumns = `registration_id, tenant_id, device_id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at, sealed`

// scanEnrollment reads an enrollment and opens its sealed initial twin.
func (s *Store) scanEnrollment(ctx context.Context, row interface{ Scan(...any) error }) (store.Enrollment, error) {
	var e store.Enrollment
	var created, updated int64
	var sealed []byte
	if err := row.Scan(&e.RegistrationID, &e.TenantID, &e.DeviceID, &e.Enabled, &e.PrimaryKey, &e.SecondaryKey, &e.InitialTwin, &created, &updated, &sealed); err != nil {
		return store.Enrollment{}, err
	}
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return e, store.OpenEnrollmentRow(ctx, s.sealer, &e, sealed)
}

// CreateEnrollment adds an individual enrollment.
func (s *Store) CreateEnrollment(ctx context.Context, e store.Enrollment) error {
	sealed, err := store.SealEnrollmentTwin(ctx, s.sealer, e.TenantID, e.RegistrationID, e.InitialTwin)
	if err != nil {
		return fmt.Errorf("create enrollment %q: %w", e.RegistrationID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO enrollments (`+enrollmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
		e.RegistrationID, e.TenantID, e.DeviceID, e.Enabled, e.PrimaryKey, e.SecondaryKey,
		e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli(), sealed)
	if s.isUnique(err) {
		return fmt.Errorf("enrollment %q: %w", e.RegistrationID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create enrollment %q: %w", e.RegistrationID, err)
	}
	return nil
}

// GetEnrollment returns one individual enrollment of a tenant.
func (s *Store) GetEnrollment(ctx context.Context, tenantID, registrationID string) (store.Enrollment, error) {
	e, err := s.scanEnrollment(ctx, s.db.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments
		WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID))
	if database.NoRows(err) {
		return e, fmt.Errorf("enrollment %q: %w", registrationID, store.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("get enrollment %q: %w", registrationID, err)
	}
	return e, nil
}

// ListEnrollments returns a tenant's individual enrollments.
func (s *Store) ListEnrollments(ctx context.Context, tenantID string) ([]store.Enrollment, error) {
	rows, err := s.db.Query(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE tenant_id = ? ORDER BY registration_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	defer rows.Close()
	out := []store.Enrollment{}
	for rows.Next() {
		e, err := s.scanEnrollment(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("list enrollments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	return out, nil
}

// UpdateEnrollment changes an individual enrollment and returns it.
func (s *Store) UpdateEnrollment(ctx context.Context, tenantID, registrationID string, u store.EnrollmentUpdate) (store.Enrollment, error) {
	var sealed []byte
	if u.SetInitialTwin {
		var err error
		if sealed, err = store.SealEnrollmentTwin(ctx, s.sealer, tenantID, registrationID, u.InitialTwin); err != nil {
			return store.Enrollment{}, fmt.Errorf("update enrollment %q: %w", registrationID, err)
		}
	}
	set, args := s.updateSet(u, sealed)
	e, err := s.scanEnrollment(ctx, s.db.Primary().QueryRow(ctx, `UPDATE enrollments SET `+set+` WHERE tenant_id = ? AND registration_id = ?
		RETURNING `+enrollmentColumns, append(args, tenantID, registrationID)...))
	if database.NoRows(err) {
		return e, fmt.Errorf("enrollment %q: %w", registrationID, store.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("update enrollment %q: %w", registrationID, err)
	}
	return e, nil
}

// DeleteEnrollment removes an individual enrollment.
func (s *Store) DeleteEnrollment(ctx context.Context, tenantID, registrationID string) error {
	return s.deleteOne(ctx, "enrollment", registrationID, `DELETE FROM enrollments WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID)
}

// DeleteRegistration removes a registration record.
func (s *Store) DeleteRegistration(ctx context.Context, tenantID, registrationID string) error {
	return s.deleteOne(ctx, "registration", registrationID, `DELETE FROM registrations WHERE tenant_id = ? AND registration_id = ?`, tenantID, registrationID)
}
