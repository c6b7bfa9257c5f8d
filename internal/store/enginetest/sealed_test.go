package enginetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sealing"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestSealed checks, on each engine, that machine data is refused without
// a sealer and that a tenant whose keys are destroyed reads cleanly: each
// test gets a fresh engine without a sealer and sets up what it needs.
func TestSealed(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"NoSealerRefusesMachineData", testNoSealer},
		{"ShreddedTenantReadsCleanly", testShreddedTenant},
	}
	enginetest.Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, _ := open(t)
				tc.fn(t, s)
			})
		}
	})
}

var t0 = enginetest.T0

var twin = []byte(`{"tags":{"site":"Lyon"},"properties":{"desired":{"interval":30}}}`)

func ctx(t *testing.T) context.Context { return t.Context() }

func testNoSealer(t *testing.T, s store.Store) {
	enginetest.RootDevice(t, s, "dev")
	_, err := s.UpdateTwin(ctx(t), tenancy.RootTenantID, "dev", hub.TwinUpdate{Tags: json.RawMessage(`{"a":1}`)}, t0)
	enginetest.WantErr(t, "UpdateTwin without a sealer", err, sealing.ErrNoSealer)
	_, err = s.EnqueueC2D(ctx(t), hub.C2DMessage{TenantID: tenancy.RootTenantID, DeviceID: "dev", MessageID: "m",
		Payload: []byte("x"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, 10)
	enginetest.WantErr(t, "EnqueueC2D without a sealer", err, sealing.ErrNoSealer)
	_, err = s.ApplyAlarmChanges(ctx(t), []alarm.Change{enginetest.Raised(tenancy.RootTenantID, "r", "dev", t0, 1)})
	enginetest.WantErr(t, "ApplyAlarmChanges without a sealer", err, sealing.ErrNoSealer)
	enginetest.WantErr(t, "SetMaintenancePlan without a sealer", s.SetMaintenancePlan(ctx(t), alarm.MaintenancePlan{
		TenantID: tenancy.RootTenantID, Model: "m", Spec: json.RawMessage(`{}`), UpdatedAt: t0}), sealing.ErrNoSealer)
	enginetest.WantErr(t, "SaveMonitorState without a sealer", s.SaveMonitorState(ctx(t), "k",
		map[string][]byte{tenancy.RootTenantID: []byte("x")}), sealing.ErrNoSealer)
}

// testShreddedTenant: after a tenant's keys are destroyed, its sealed rows
// give clean errors (one row) or are marked or left out (lists), and other
// tenants are untouched.
func testShreddedTenant(t *testing.T, s store.Store) {
	kr := enginetest.WithKeyring(t, s)
	for _, tn := range []string{"acme", "beta"} {
		enginetest.Tenant(t, s, tn, tenancy.RootTenantID)
		if err := s.CreateDevice(ctx(t), registry.Device{ID: "dev-" + tn, TenantID: tn, Status: registry.DeviceEnabled,
			PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateTwin(ctx(t), tn, "dev-"+tn, hub.TwinUpdate{Tags: json.RawMessage(`{"site":"x"}`)}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EnqueueC2D(ctx(t), hub.C2DMessage{TenantID: tn, DeviceID: "dev-" + tn, MessageID: "m1",
			Properties: map[string]string{"k": "v"}, Payload: []byte("hello"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, 10); err != nil {
			t.Fatal(err)
		}
		enginetest.Rule(t, s, "rule-"+tn, tn)
		a := enginetest.Apply(t, s, enginetest.Raised(tn, "rule-"+tn, "dev-"+tn, t0, 42))[0]
		if _, err := s.AckAlarm(ctx(t), a.ID, "u", "seen", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueDeliveries(ctx(t), []notifystore.Delivery{{TenantID: tn, AlarmID: a.ID, Channel: "webhook", Target: "h",
			Event: "raised", Payload: json.RawMessage(`{"v":42}`), CreatedAt: t0, NextAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMaintenancePlan(ctx(t), alarm.MaintenancePlan{TenantID: tn, Model: "P1", Spec: json.RawMessage(`{"x":1}`), UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEnrollmentGroup(ctx(t), provision.EnrollmentGroup{ID: "g", TenantID: tn, Enabled: true, PrimaryKey: enginetest.Key(1),
			SecondaryKey: enginetest.Key(2), InitialTwin: twin, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEnrollment(ctx(t), provision.Enrollment{RegistrationID: "ind-" + tn, TenantID: tn, DeviceID: "ind-" + tn,
			Enabled: true, PrimaryKey: enginetest.Key(3), SecondaryKey: enginetest.Key(4), InitialTwin: twin, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		ra := enginetest.Assignment(tn, "reg-"+tn, "g", 10, t0)
		ra.Registration.Payload, ra.Registration.InitialTwin = []byte(`{"model":"X2"}`), twin
		if res := enginetest.Assign(t, s, ra); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
	if err := s.SaveMonitorState(ctx(t), "k", map[string][]byte{"acme": []byte("a"), "beta": []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if err := kr.Shred(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}

	_, err := s.GetTwin(ctx(t), "acme", "dev-acme")
	enginetest.WantErr(t, "GetTwin of a shredded tenant", err, sealing.ErrUnreadable)
	_, err = s.UpdateReported(ctx(t), "acme", "dev-acme", json.RawMessage(`{"a":1}`), t0)
	enginetest.WantErr(t, "UpdateReported of a shredded tenant", err, sealing.ErrUnreadable)
	if tw, err := s.GetTwin(ctx(t), "beta", "dev-beta"); err != nil || string(tw.Tags) != `{"site":"x"}` {
		t.Errorf("GetTwin of the other tenant = %s, %v", tw.Tags, err)
	}

	if ms, err := s.ListC2D(ctx(t), "acme", "dev-acme", t0, 10); err != nil || len(ms) != 1 || !ms[0].Unreadable || len(ms[0].Payload) != 0 {
		t.Errorf("ListC2D of a shredded tenant = %+v, %v; want one message marked unreadable", ms, err)
	}
	if ms, err := s.PendingC2D(ctx(t), "dev-acme", t0); err != nil || len(ms) != 0 {
		t.Errorf("PendingC2D of a shredded tenant = %d messages, %v; want none", len(ms), err)
	}
	if ms, err := s.PendingC2D(ctx(t), "dev-beta", t0); err != nil || len(ms) != 1 || string(ms[0].Payload) != "hello" ||
		ms[0].Properties["k"] != "v" {
		t.Errorf("PendingC2D of the other tenant = %+v, %v", ms, err)
	}

	as, err := s.ListAlarms(ctx(t), alarm.Filter{})
	if err != nil || len(as) != 2 {
		t.Fatalf("ListAlarms = %d, %v", len(as), err)
	}
	for _, a := range as {
		shredded := a.TenantID == "acme"
		if a.Unreadable != shredded || (shredded && (a.Message != "" || a.Value != 0 || a.AckComment != "")) ||
			(!shredded && (a.Message != "value 42" || a.Value != 42 || a.AckComment != "seen")) {
			t.Errorf("alarm of %s = %+v", a.TenantID, a)
		}
	}
	ds, err := s.DueDeliveries(ctx(t), t0, 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("DueDeliveries = %d, %v", len(ds), err)
	}
	for _, d := range ds {
		shredded := d.TenantID == "acme"
		if d.Unreadable != shredded || (shredded && d.Payload != nil) || (!shredded && string(d.Payload) != `{"v":42}`) {
			t.Errorf("delivery of %s = %+v", d.TenantID, d)
		}
	}
	ps, err := s.ListMaintenancePlans(ctx(t), nil)
	if err != nil || len(ps) != 1 || ps[0].TenantID != "beta" || string(ps[0].Spec) != `{"x":1}` {
		t.Errorf("ListMaintenancePlans = %+v, %v; want beta's only", ps, err)
	}
	st, err := s.LoadMonitorState(ctx(t), "k")
	if err != nil || len(st) != 1 || string(st["beta"]) != "b" {
		t.Errorf("LoadMonitorState = %q, %v; want beta's only", st, err)
	}
	for _, tn := range []string{"acme", "beta"} {
		shredded := tn == "acme"
		r, err := s.GetRegistration(ctx(t), tn, "reg-"+tn)
		if err != nil || r.Unreadable != shredded || r.DeviceID != "reg-"+tn || (shredded && (r.Payload != nil || r.InitialTwin != nil)) ||
			(!shredded && (string(r.Payload) != `{"model":"X2"}` || string(r.InitialTwin) != string(twin))) {
			t.Errorf("GetRegistration of %s = %+v, %v", tn, r, err)
		}
		if rs, err := s.ListRegistrations(ctx(t), tn, "", 10); err != nil || len(rs) != 1 || rs[0].Unreadable != shredded {
			t.Errorf("ListRegistrations of %s = %+v, %v", tn, rs, err)
		}
		gs, err := s.ListEnrollmentGroups(ctx(t), tn)
		if err != nil || len(gs) != 1 || gs[0].Unreadable != shredded || !bytes.Equal(gs[0].PrimaryKey, enginetest.Key(1)) ||
			(shredded && gs[0].InitialTwin != nil) || (!shredded && string(gs[0].InitialTwin) != string(twin)) {
			t.Errorf("ListEnrollmentGroups of %s = %+v, %v", tn, gs, err)
		}
		e, err := s.GetEnrollment(ctx(t), tn, "ind-"+tn)
		if err != nil || e.Unreadable != shredded || (shredded && e.InitialTwin != nil) || (!shredded && string(e.InitialTwin) != string(twin)) {
			t.Errorf("GetEnrollment of %s = %+v, %v", tn, e, err)
		}
	}
	// The shredded tenant's devices still provision (sealed with its new
	// key), and a new initial twin is readable again.
	a := enginetest.Assignment("acme", "reg-acme", "g", 20, t0.Add(time.Hour))
	a.Registration.Payload = []byte(`{"model":"X3"}`)
	if res := enginetest.Assign(t, s, a); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if r, err := s.GetRegistration(ctx(t), "acme", "reg-acme"); err != nil || r.Unreadable || string(r.Payload) != `{"model":"X3"}` {
		t.Errorf("registration of the shredded tenant after a new assignment = %+v, %v", r, err)
	}
	if g, err := s.UpdateEnrollmentGroup(ctx(t), "acme", "g", provision.EnrollmentUpdate{SetInitialTwin: true, InitialTwin: twin,
		UpdatedAt: t0}); err != nil || g.Unreadable || string(g.InitialTwin) != string(twin) {
		t.Errorf("new initial twin of the shredded tenant's group = %+v, %v", g, err)
	}

	if n, err := s.SealPlaintext(ctx(t)); err != nil || n != 0 {
		t.Errorf("SealPlaintext with nothing to seal = %d, %v", n, err)
	}
	if errors.Is(s.CompactSealed(ctx(t)), sealing.ErrNoSealer) {
		t.Error("CompactSealed needs no sealer")
	}
}
