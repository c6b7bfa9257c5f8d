package postgres

import (
	"testing"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// A database of the schema before the identity migration migrates: tenants get
// their paths from the parent chain, and old rows read with empty new
// fields.
func TestMigrateIdentityFromPreviousSchema(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The schema as it was before the identity migration; Migrate then
	// applies it and every later one.
	v, err := database.MigrationVersion("identity")
	if err != nil {
		t.Fatal(err)
	}
	prev := v - 1
	if _, err := s.pool.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range database.Migrations()[:prev] {
		if _, err := s.pool.Exec(ctx, m.SQL(database.Postgres)); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO tenants (id, parent_id, name, created_at) VALUES ('root', NULL, 'Operator', 1)`,
		`INSERT INTO tenants (id, parent_id, name, created_at, retention_days) VALUES ('acme', 'root', 'ACME', 2, 30)`,
		`INSERT INTO tenants (id, parent_id, name, created_at) VALUES ('acme-north', 'acme', 'North', 3)`,
		`INSERT INTO tenants (id, parent_id, name, created_at) VALUES ('beta', 'root', 'Beta', 4)`,
		`INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at) VALUES ('d1', 'acme-north', 'enabled', '\x01', '\x02', 5)`,
		`INSERT INTO api_tokens (id, tenant_id, name, role, hash, created_at) VALUES ('tok', 'root', 'op', 'operator-admin', '\x0707', 6)`,
		`INSERT INTO audit_log (seq, at, tenant_id, actor_id, actor_name, action, target, outcome, status, ip, user_agent,
			browser, browser_version, os, prev_hash, hash) VALUES (1, 7, 'root', 'tok', 'op', 'device.create', 'd1', 'success', 201,
			'', '', '', '', '', '\x', '\x01')`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkMigratedIdentity(t, s)
}

// Reset drops every table, the identity and audit ones too, so that
// Migrate can start again.
func TestResetThenMigrate(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, identity.User{ID: "u", TenantID: tenancy.RootTenantID, Email: "u@example.com", Role: identity.RoleOperatorAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, audit.Entry{Action: "x"}, func(e *audit.Entry) error { e.Hash = []byte{1}; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after Reset: %v", err)
	}
	if _, err := s.GetUser(ctx, "u"); err == nil {
		t.Fatal("user survived Reset")
	}
	if root, err := s.GetTenant(ctx, tenancy.RootTenantID); err != nil || root.Path != "root" {
		t.Fatalf("root after Reset = %+v, %v", root, err)
	}
}

func checkMigratedIdentity(t *testing.T, s store.Store) {
	ctx := t.Context()
	for id, want := range map[string]string{"root": "root", "acme": "root/acme", "acme-north": "root/acme/acme-north", "beta": "root/beta"} {
		tn, err := s.GetTenant(ctx, id)
		if err != nil || tn.Path != want || tn.Address != (tenancy.Address{}) || tn.Contract != (tenancy.Contract{}) {
			t.Errorf("tenant %s = %+v, %v; want path %q", id, tn, err, want)
		}
	}
	under, err := s.TenantsUnder(ctx, "acme")
	if err != nil || len(under) != 2 || under[0].ID != "acme" || under[1].ID != "acme-north" || under[0].RetentionDays != 30 {
		t.Errorf("TenantsUnder(acme) = %+v, %v", under, err)
	}
	if err := s.CreateTenant(ctx, tenancy.Tenant{ID: "plant", ParentID: "acme-north", Name: "Plant"}); err != nil {
		t.Fatal(err)
	}
	if tn, _ := s.GetTenant(ctx, "plant"); tn.Path != "root/acme/acme-north/plant" {
		t.Errorf("new tenant below a migrated one: path %q", tn.Path)
	}
	d, err := s.GetDevice(ctx, "d1")
	if err != nil || d.Info != (registry.DeviceInfo{}) || d.TenantID != "acme-north" {
		t.Errorf("device = %+v, %v", d, err)
	}
	tok, err := s.GetAPIToken(ctx, "tok")
	if err != nil || tok.UserID != "" || len(tok.Scopes) != 0 || !tok.ExpiresAt.IsZero() || !tok.LastUsedAt.IsZero() || tok.Role != identity.RoleOperatorAdmin {
		t.Errorf("api token = %+v, %v", tok, err)
	}
	es, err := s.ListAudit(ctx, audit.Filter{})
	if err != nil || len(es) != 1 || es[0].OwnerTenantID != "" || es[0].Target != "d1" {
		t.Errorf("audit = %+v, %v", es, err)
	}
	if es, err := s.ListAudit(ctx, audit.Filter{OwnerTenantIDs: []string{""}}); err != nil || len(es) != 1 {
		t.Errorf("audit entries without owner = %d, %v", len(es), err)
	}
	if err := s.CreateSite(ctx, tenancy.Site{ID: "s", TenantID: "acme", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceInfo(ctx, "acme-north", "d1", registry.DeviceInfo{Model: "X"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, identity.User{ID: "u", TenantID: "acme", Email: "u@example.com", Role: identity.RoleCustomerAdmin, Status: identity.UserPending}); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
