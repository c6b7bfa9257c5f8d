package bench

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tenancy"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store"
)

// syncBuffer is a bytes.Buffer safe for the progress goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var madeRE = regexp.MustCompile(`made the throw-away tenant (\S+)`)

// throwAwayTenant is the tenant the progress says was made and deleted.
func throwAwayTenant(t *testing.T, progress string) string {
	t.Helper()
	m := madeRE.FindStringSubmatch(progress)
	if m == nil {
		t.Fatalf("no throw-away tenant in the progress:\n%s", progress)
	}
	if !strings.Contains(progress, "deleted the throw-away tenant "+m[1]+" with everything in it") {
		t.Errorf("the progress does not say the tenant was deleted:\n%s", progress)
	}
	return m[1]
}

// assertGone checks through the store that nothing of the tenants is
// left: the tenant (unless keep), devices, rules, alarms, webhooks,
// accounts, enrollment groups and registrations.
func assertGone(t *testing.T, st store.Store, keep bool, tenants ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range tenants {
		if _, err := st.GetTenant(ctx, id); !keep && !errors.Is(err, database.ErrNotFound) {
			t.Errorf("tenant %s still exists (%v)", id, err)
		}
		devs, err := st.ListDevices(ctx, id)
		if err != nil || len(devs) > 0 {
			t.Errorf("tenant %s: %d devices left (%v)", id, len(devs), err)
		}
		rules, err := st.ListAlarmRules(ctx, []string{id})
		if err != nil || len(rules) > 0 {
			t.Errorf("tenant %s: %d rules left (%v)", id, len(rules), err)
		}
		alarms, err := st.ListAlarms(ctx, alarm.Filter{TenantIDs: []string{id}})
		if err != nil || len(alarms) > 0 {
			t.Errorf("tenant %s: %d alarms left (%v)", id, len(alarms), err)
		}
		hooks, err := st.ListWebhooks(ctx, []string{id})
		if err != nil || len(hooks) > 0 {
			t.Errorf("tenant %s: %d webhooks left (%v)", id, len(hooks), err)
		}
		groups, err := st.ListEnrollmentGroups(ctx, id)
		if err != nil || len(groups) > 0 {
			t.Errorf("tenant %s: %d enrollment groups left (%v)", id, len(groups), err)
		}
		regs, err := st.ListRegistrations(ctx, id, "", 10)
		if err != nil || len(regs) > 0 {
			t.Errorf("tenant %s: %d registrations left (%v)", id, len(regs), err)
		}
		if !keep {
			users, err := st.ListUsers(ctx, []string{id})
			if err != nil || len(users) > 0 {
				t.Errorf("tenant %s: %d accounts left (%v)", id, len(users), err)
			}
		}
	}
	all, err := st.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range all {
		if strings.HasPrefix(tn.ID, "bench-") {
			t.Errorf("tenant %s left behind", tn.ID)
		}
	}
}

func TestIngestThrowAwayTenantLeavesNothing(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var progress syncBuffer
	if _, err := Ingest(t.Context(), IngestOptions{Client: c, RootCAs: roots, Devices: 5, Duration: 300 * time.Millisecond,
		Warmup: -1, Progress: &progress}, &out); err != nil {
		t.Fatalf("Ingest: %v\n%s", err, progress.String())
	}
	id := throwAwayTenant(t, progress.String())
	assertGone(t, srv.Store(), false, id)
	assertGone(t, srv.Store(), true, tenancy.RootTenantID)
	if !strings.Contains(out.String(), "devices_connected_ratio: 1.000 ratio") {
		t.Errorf("no devices_connected_ratio line:\n%s", out.String())
	}
}

func TestCancelledBenchmarkLeavesNothing(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var progress syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Ingest(ctx, IngestOptions{Client: c, RootCAs: roots, Devices: 5, Duration: time.Minute, Progress: &progress}, &bytes.Buffer{})
		done <- err
	}()
	// Cancelled while the devices publish.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(progress.String(), "in flight") {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not start:\n%s", progress.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Ingest = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Ingest did not return after the cancellation")
	}
	id := throwAwayTenant(t, progress.String())
	assertGone(t, srv.Store(), false, id)
	assertGone(t, srv.Store(), true, tenancy.RootTenantID)
}

func TestAlarmLatencyWarnsOfShortfallAndLeavesNothing(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var progress syncBuffer
	err = AlarmLatency(t.Context(), AlarmLatencyOptions{Client: c, RootCAs: roots, Devices: 2, Probes: 3,
		Rate: 1e7, Progress: &progress}, &out)
	if err != nil {
		t.Fatalf("AlarmLatency: %v\n%s", err, progress.String())
	}
	t.Logf("\n%s\n%s", out.String(), progress.String())
	f := figures(t, out.String())
	if r, ok := f["rate_reached_ratio"]; !ok || r >= 0.5 || f["alarm_probes"] != 3 {
		t.Errorf("figures %v", f)
	}
	if !regexp.MustCompile(`(?m)^warning: background load: asked 10000000 msg/s, reached [\d.]+ msg/s`).MatchString(progress.String()) {
		t.Errorf("no shortfall warning:\n%s", progress.String())
	}
	id := throwAwayTenant(t, progress.String())
	assertGone(t, srv.Store(), false, id)
	assertGone(t, srv.Store(), true, tenancy.RootTenantID)
}

func TestDPSAndHubLeaveNothing(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var progress syncBuffer
	err = InTenant(t.Context(), TenantOptions{Caller: c, Progress: &progress}, func(tn *Tenant) error {
		if _, err := DPS(t.Context(), DPSOptions{Client: c, Tenant: tn, RootCAs: roots, Clients: 2,
			Duration: 500 * time.Millisecond, Warmup: -1, Progress: &progress}, &out); err != nil {
			return err
		}
		return Hub(t.Context(), HubOptions{Tenant: tn, RootCAs: roots, Devices: 2, Calls: 10, Parallel: 2, Progress: &progress}, &out)
	})
	if err != nil {
		t.Fatalf("DPS and Hub: %v\n%s", err, progress.String())
	}
	f := figures(t, out.String())
	if f["dps_registrations"] <= 0 || f["method_calls"] != 10 {
		t.Errorf("figures %v", f)
	}
	id := throwAwayTenant(t, progress.String())
	assertGone(t, srv.Store(), false, id)
	assertGone(t, srv.Store(), true, tenancy.RootTenantID)
}

// In an existing tenant the benchmark deletes what it made, one by one.
func TestExistingTenantCleanUp(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var progress syncBuffer
	err = InTenant(t.Context(), TenantOptions{Caller: c, Tenant: tenancy.RootTenantID, Progress: &progress}, func(tn *Tenant) error {
		if _, err := Ingest(t.Context(), IngestOptions{Client: c, Tenant: tn, RootCAs: roots, Devices: 3,
			Duration: 200 * time.Millisecond, Warmup: -1, Progress: &progress}, &out); err != nil {
			return err
		}
		if _, err := DPS(t.Context(), DPSOptions{Client: c, Tenant: tn, RootCAs: roots, Clients: 2,
			Duration: 300 * time.Millisecond, Warmup: -1, Progress: &progress}, &out); err != nil {
			return err
		}
		return AlarmLatency(t.Context(), AlarmLatencyOptions{Tenant: tn, RootCAs: roots, Devices: 2, Probes: 2,
			Rate: 20, Progress: &progress}, &out)
	})
	if err != nil {
		t.Fatalf("benchmarks in root: %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "the benchmark made in root") {
		t.Errorf("the progress does not say what was deleted:\n%s", progress.String())
	}
	assertGone(t, srv.Store(), true, tenancy.RootTenantID)
}

// A tenant with other devices is refused without --allow-existing-devices,
// and the keys of a customer's devices stay hidden from the operator even
// with it.
func TestExistingTenantGuards(t *testing.T) {
	srv, c := startServer(t)
	ctx := t.Context()
	if _, err := c.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("ACME")}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "/api/v1/devices", nil, map[string]string{"id": "pump-1", "tenantId": "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := OpenTenant(ctx, TenantOptions{Caller: c, Tenant: "acme"})
	if err == nil || !strings.Contains(err.Error(), "--allow-existing-devices") || !strings.Contains(err.Error(), "pump-1") {
		t.Fatalf("OpenTenant in a tenant with devices = %v", err)
	}
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	err = InTenant(ctx, TenantOptions{Caller: c, Tenant: "acme", AllowExistingDevices: true}, func(tn *Tenant) error {
		_, err := Ingest(ctx, IngestOptions{Client: c, Tenant: tn, RootCAs: roots, Devices: 1, Duration: 100 * time.Millisecond}, &bytes.Buffer{})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "does not show you its keys") {
		t.Fatalf("Ingest in a customer's tenant as operator = %v", err)
	}
	devs, err := srv.Store().ListDevices(ctx, "acme")
	if err != nil || len(devs) != 1 || devs[0].ID != "pump-1" {
		t.Errorf("devices of acme after the refused run: %v, %v", devs, err)
	}
}

// A token that may not make tenants falls back to its own tenant, which
// the guard refuses when it holds other devices.
func TestNoThrowAwayTenantFallsBackToTheGuardedOwnTenant(t *testing.T) {
	_, c := startServer(t)
	ctx := t.Context()
	if _, err := c.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("ACME")}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "/api/v1/devices", nil, map[string]string{"id": "pump-1", "tenantId": "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	// A customer user of acme: reads, makes nothing.
	user, err := benchAccountAs(ctx, c, "acme", "customer-user", "reader@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	var progress syncBuffer
	_, err = OpenTenant(ctx, TenantOptions{Caller: user, Progress: &progress})
	if err == nil || !strings.Contains(err.Error(), "tenant acme holds 1 devices") {
		t.Fatalf("OpenTenant as a customer user = %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "cannot make a throw-away tenant") {
		t.Errorf("the progress does not say why it is not a throw-away tenant:\n%s", progress.String())
	}
}

// benchAccountAs makes an activated account and returns a client with a
// token of it.
func benchAccountAs(ctx context.Context, c *client.Client, tenant, role, email string) (*client.Client, error) {
	u, err := c.CreateUser(ctx, apiv1.NewUser{TenantID: tenant, Role: role, Email: email, Profile: apiv1.Profile{FirstName: apiv1.Ptr("T"), LastName: apiv1.Ptr("U")}})
	if err != nil {
		return nil, err
	}
	link, err := url.Parse(u.ActivationLink)
	if err != nil {
		return nil, err
	}
	const pw = "correct horse battery staple"
	if _, err := c.Anonymous().Activate(ctx, link.Query().Get("token"), pw); err != nil {
		return nil, err
	}
	sc, _, err := c.Login(ctx, email, pw, "")
	if err != nil {
		return nil, err
	}
	tok, err := sc.CreateToken(ctx, "test", nil, "")
	if err != nil {
		return nil, err
	}
	return c.WithToken(tok.Token), nil
}

// Benchmark devices left in another tenant (device ids are unique across
// tenants) do not collide with a throw-away tenant's.
func TestThrowAwayDevicesDoNotCollideWithOldOnes(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bench-0001", "alarm-lat-0001", "bench-hub-000"} {
		if _, err := c.CreateDevice(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	var progress syncBuffer
	if _, err := Ingest(t.Context(), IngestOptions{Client: c, RootCAs: roots, Devices: 2, Duration: 200 * time.Millisecond,
		Warmup: -1, Progress: &progress}, &bytes.Buffer{}); err != nil {
		t.Fatalf("Ingest: %v\n%s", err, progress.String())
	}
	if err := AlarmLatency(t.Context(), AlarmLatencyOptions{Client: c, RootCAs: roots, Devices: 1, Probes: 1, Rate: 10, Progress: &progress}, &bytes.Buffer{}); err != nil {
		t.Fatalf("AlarmLatency: %v\n%s", err, progress.String())
	}
	if err := Hub(t.Context(), HubOptions{Client: c, RootCAs: roots, Devices: 1, Calls: 2, Progress: &progress}, &bytes.Buffer{}); err != nil {
		t.Fatalf("Hub: %v\n%s", err, progress.String())
	}
	devs, err := srv.Store().ListDevices(t.Context(), tenancy.RootTenantID)
	if err != nil || len(devs) != 3 {
		t.Errorf("the root's devices afterwards: %d, %v", len(devs), err)
	}
}
