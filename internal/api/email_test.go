package api_test

import (
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestLegacyEmailStillSignsIn: an address stored before addresses were
// normalised (lower case only, here a full-width "ａ" NFKC folds to "a")
// still signs in as typed, in any case.
func TestLegacyEmailStillSignsIn(t *testing.T) {
	srv, op := servertest.Start(t, server.Config{}, nil)
	ctx := t.Context()
	const legacy = "ａnna@example.com"
	if identity.EmailKey(legacy) == legacy {
		t.Fatal("the example is in normal form already")
	}
	hash, err := identity.HashPassword(alarmTestPassword, identity.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: "usr_legacy", TenantID: tenancy.RootTenantID, Email: legacy, FirstName: "A", LastName: "B",
		Role: identity.RoleOperatorService, Status: identity.UserActive, PasswordHash: hash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := srv.Store().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	_, s, err := op.Anonymous().Login(ctx, legacy, alarmTestPassword, "")
	if err != nil || s.User.ID != u.ID {
		t.Fatalf("sign in with the stored form: %+v, %v", s.User, err)
	}
	// In capitals, as it was found before.
	if _, s, err := op.Anonymous().Login(ctx, "  ＡNNA@EXAMPLE.com", alarmTestPassword, ""); err != nil || s.User.ID != u.ID {
		t.Fatalf("sign in with capitals: %+v, %v", s.User, err)
	}
}
