package provision_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// fixture is the service on a fresh SQLite engine with tenant "acme", with
// the facts it published.
type fixture struct {
	e     store.Store
	svc   *provision.Enrollments
	clk   *clocktest.Fake
	facts []event.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := enginetest.SQLite(t)
	enginetest.WithKeyring(t, e)
	f := &fixture{e: e, clk: clocktest.New(t0)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := event.NewLocal(log)
	bus.Subscribe(event.Subscription{Name: "test", Type: event.EnrollmentsChanged{}.Type(),
		Handle: func(_ context.Context, ev event.Event) error {
			f.facts = append(f.facts, ev)
			return nil
		}})
	f.svc = provision.NewEnrollments(e, bus, f.clk, log)
	if err := e.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "acme",
		CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

// published returns the facts published since the last call.
func (f *fixture) published() []event.Event {
	out := f.facts
	f.facts = nil
	return out
}

func wantFacts(t *testing.T, got []event.Event, want ...event.Event) {
	t.Helper()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
}

func changed(at time.Time) event.EnrollmentsChanged {
	return event.EnrollmentsChanged{TenantID: "acme", At: at}
}

var key64 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))

func TestValidRegistrationID(t *testing.T) {
	for _, id := range []string{"a", "dev-1.2_x:y"} {
		if err := provision.ValidRegistrationID(id); err != nil {
			t.Errorf("ValidRegistrationID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "a/b", "a@b", strings.Repeat("x", 129)} {
		if err := provision.ValidRegistrationID(id); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("ValidRegistrationID(%q) = %v, want ErrInvalid", id, err)
		}
	}
	if err := provision.ValidRegistrationID("a@b"); err.Error() != `registration id "a@b": character '@' not allowed (letters, digits and - . _ :)` {
		t.Errorf("message %q", err)
	}
}

func TestCheckInitialTwin(t *testing.T) {
	for _, raw := range []string{"", "null", "  "} {
		if got, err := provision.CheckInitialTwin(json.RawMessage(raw)); got != nil || err != nil {
			t.Errorf("CheckInitialTwin(%q) = %q, %v; want nil, nil", raw, got, err)
		}
	}
	got, err := provision.CheckInitialTwin(json.RawMessage(`{ "tags": {"a": 1}, "properties": {"desired": {"b": 2}} }`))
	if err != nil || string(got) != `{"tags":{"a":1},"properties":{"desired":{"b":2}}}` {
		t.Fatalf("CheckInitialTwin = %q, %v", got, err)
	}
	for _, raw := range []string{`[]`, `{"properties":{"reported":{}}}`, `{"tags":{"$x":1}}`} {
		if _, err := provision.CheckInitialTwin(json.RawMessage(raw)); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("CheckInitialTwin(%s) = %v, want ErrInvalid", raw, err)
		}
	}
}

func TestGroups(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	stamp := t0.Truncate(time.Millisecond)

	g, err := f.svc.CreateGroup(ctx, provision.NewGroup{ID: "line-1", TenantID: "acme", PrimaryKey: key64,
		InitialTwin: json.RawMessage(`{"tags": {"line": 1}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Enabled || len(g.PrimaryKey) != 64 || len(g.SecondaryKey) != 32 || string(g.InitialTwin) != `{"tags":{"line":1}}` ||
		!g.CreatedAt.Equal(stamp) || !g.UpdatedAt.Equal(stamp) {
		t.Fatalf("CreateGroup = %+v", g)
	}
	stored, err := f.e.GetEnrollmentGroup(ctx, "acme", "line-1")
	if err != nil || !bytes.Equal(stored.PrimaryKey, g.PrimaryKey) || !stored.Enabled {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	wantFacts(t, f.published(), changed(t0))

	// Refused: nothing stored, nothing published.
	for name, n := range map[string]provision.NewGroup{
		"bad id":   {ID: "a/b", TenantID: "acme"},
		"bad key":  {ID: "x", TenantID: "acme", PrimaryKey: "c2hvcnQ="},
		"bad twin": {ID: "x", TenantID: "acme", InitialTwin: json.RawMessage(`{"properties":{"reported":{}}}`)},
	} {
		if _, err := f.svc.CreateGroup(ctx, n); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("%s: CreateGroup = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.svc.CreateGroup(ctx, provision.NewGroup{ID: "a/b", TenantID: "acme"}); !strings.HasPrefix(err.Error(), "enrollment group id: ") {
		t.Errorf("message %q", err)
	}
	if _, err := f.svc.CreateGroup(ctx, provision.NewGroup{ID: "line-1", TenantID: "acme"}); !errors.Is(err, database.ErrConflict) {
		t.Errorf("CreateGroup of a taken id = %v, want ErrConflict", err)
	}
	wantFacts(t, f.published())

	// Update: disable, regenerate the secondary key, drop the twin.
	f.clk.Advance(time.Minute)
	off := false
	u, err := f.svc.UpdateGroup(ctx, "acme", "line-1", provision.Patch{Enabled: &off, RegenerateKey: "secondary",
		InitialTwin: json.RawMessage("null")})
	if err != nil || u.Enabled || !bytes.Equal(u.PrimaryKey, g.PrimaryKey) || bytes.Equal(u.SecondaryKey, g.SecondaryKey) ||
		u.InitialTwin != nil || !u.UpdatedAt.Equal(stamp.Add(time.Minute)) {
		t.Fatalf("UpdateGroup = %+v, %v", u, err)
	}
	wantFacts(t, f.published(), changed(t0.Add(time.Minute)))
	for name, p := range map[string]provision.Patch{
		"bad choice":          {RegenerateKey: "all"},
		"given and generated": {RegenerateKey: "both", PrimaryKey: key64},
		"bad key":             {SecondaryKey: "!"},
		"bad twin":            {InitialTwin: json.RawMessage(`[]`)},
	} {
		if _, err := f.svc.UpdateGroup(ctx, "acme", "line-1", p); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("%s: UpdateGroup = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.svc.UpdateGroup(ctx, "acme", "nope", provision.Patch{Enabled: &off}); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("UpdateGroup of no group = %v, want ErrNotFound", err)
	}
	wantFacts(t, f.published())

	// Delete.
	if err := f.svc.DeleteGroup(ctx, "acme", "line-1"); err != nil {
		t.Fatal(err)
	}
	wantFacts(t, f.published(), changed(t0.Add(time.Minute)))
	if err := f.svc.DeleteGroup(ctx, "acme", "line-1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeleteGroup again = %v, want ErrNotFound", err)
	}
	wantFacts(t, f.published())
}

func TestGroupLimit(t *testing.T) {
	f := newFixture(t)
	for i := range provision.MaxEnrollmentGroups {
		if _, err := f.svc.CreateGroup(t.Context(), provision.NewGroup{ID: "g" + strings.Repeat("x", i), TenantID: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	f.published()
	if _, err := f.svc.CreateGroup(t.Context(), provision.NewGroup{ID: "one-more", TenantID: "acme"}); !errors.Is(err, provision.ErrLimit) {
		t.Fatalf("CreateGroup over the limit = %v, want ErrLimit", err)
	}
	wantFacts(t, f.published())
}

func TestIndividual(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	on := true
	e, err := f.svc.Create(ctx, provision.NewIndividual{RegistrationID: "dev-1", TenantID: "acme", Enabled: &on})
	if err != nil || e.DeviceID != "dev-1" || !e.Enabled || len(e.PrimaryKey) != 32 || e.InitialTwin != nil {
		t.Fatalf("Create = %+v, %v", e, err)
	}
	if _, err := f.e.GetEnrollment(ctx, "acme", "dev-1"); err != nil {
		t.Fatal(err)
	}
	wantFacts(t, f.published(), changed(t0))

	off := false
	e, err = f.svc.Create(ctx, provision.NewIndividual{RegistrationID: "dev-2", DeviceID: "pump@2", TenantID: "acme", Enabled: &off})
	if err != nil || e.DeviceID != "pump@2" || e.Enabled {
		t.Fatalf("Create = %+v, %v", e, err)
	}
	wantFacts(t, f.published(), changed(t0))

	for name, n := range map[string]provision.NewIndividual{
		"@ in registration id": {RegistrationID: "a@b", TenantID: "acme"},
		"bad device id":        {RegistrationID: "x", DeviceID: "a/b", TenantID: "acme"},
		"bad key":              {RegistrationID: "x", TenantID: "acme", SecondaryKey: "x"},
	} {
		if _, err := f.svc.Create(ctx, n); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("%s: Create = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.svc.Create(ctx, provision.NewIndividual{RegistrationID: "dev-1", TenantID: "acme"}); !errors.Is(err, database.ErrConflict) {
		t.Errorf("Create of a taken id = %v, want ErrConflict", err)
	}
	wantFacts(t, f.published())

	f.clk.Advance(time.Second)
	u, err := f.svc.Update(ctx, "acme", "dev-2", provision.Patch{Enabled: &on, PrimaryKey: key64})
	if err != nil || !u.Enabled || len(u.PrimaryKey) != 64 {
		t.Fatalf("Update = %+v, %v", u, err)
	}
	wantFacts(t, f.published(), changed(t0.Add(time.Second)))
	if _, err := f.svc.Update(ctx, "acme", "dev-2", provision.Patch{RegenerateKey: "x"}); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("Update = %v, want ErrInvalid", err)
	}
	wantFacts(t, f.published())

	if err := f.svc.Delete(ctx, "acme", "dev-2"); err != nil {
		t.Fatal(err)
	}
	wantFacts(t, f.published(), changed(t0.Add(time.Second)))
	if err := f.svc.Delete(ctx, "acme", "dev-2"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("Delete again = %v, want ErrNotFound", err)
	}
	wantFacts(t, f.published())
}
