// Package storetest is the behavioural suite every store.Store
// implementation must pass. Each engine's tests call Run with a factory that
// returns a fresh, empty, migrated store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// Factory returns a fresh, empty store that has been migrated. It registers
// its own cleanup with t.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Meta", testMeta},
		{"DeviceLifecycle", testDeviceLifecycle},
		{"DeviceTenantIsolation", testDeviceTenantIsolation},
		{"APITokens", testAPITokens},
		{"WriteAndRead", testWriteAndRead},
		{"Deduplication", testDeduplication},
		{"DuplicateInsideOneBatch", testDuplicateInsideOneBatch},
		{"ForgetMessageIDs", testForgetMessageIDs},
		{"LatestIgnoresOlderPoints", testLatestIgnoresOlderPoints},
		{"SamplesRangeAndLimit", testSamplesRangeAndLimit},
		{"SameTimestampOverwrites", testSameTimestampOverwrites},
		{"Rejected", testRejected},
		{"DeleteDeviceRemovesData", testDeleteDeviceRemovesData},
		{"MigrateTwice", testMigrateTwice},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func mustCreate(t *testing.T, s store.Store, id string) store.Device {
	t.Helper()
	d := store.Device{
		ID:           id,
		TenantID:     store.RootTenantID,
		Status:       store.DeviceEnabled,
		PrimaryKey:   bytes.Repeat([]byte{1}, 32),
		SecondaryKey: bytes.Repeat([]byte{2}, 32),
		CreatedAt:    t0,
	}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatalf("CreateDevice(%q): %v", id, err)
	}
	return d
}

func testMeta(t *testing.T, s store.Store) {
	if _, err := s.GetMeta(ctx(t), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetMeta(missing) error = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetMeta(ctx(t), "k", v); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMeta(ctx(t), "k")
		if err != nil || got != v {
			t.Fatalf("GetMeta = %q, %v; want %q", got, err, v)
		}
	}
}

func testDeviceLifecycle(t *testing.T, s store.Store) {
	want := mustCreate(t, s, "pump-1")
	if err := s.CreateDevice(ctx(t), want); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreateDevice error = %v, want ErrConflict", err)
	}
	got, err := s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.TenantID != want.TenantID || got.Status != store.DeviceEnabled ||
		!bytes.Equal(got.PrimaryKey, want.PrimaryKey) || !bytes.Equal(got.SecondaryKey, want.SecondaryKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeen.IsZero() || got.LastIP != "" {
		t.Fatalf("GetDevice = %+v, want %+v", got, want)
	}

	if err := s.SetDeviceStatus(ctx(t), store.RootTenantID, "pump-1", store.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{9}, 32)
	if err := s.SetDeviceKeys(ctx(t), store.RootTenantID, "pump-1", newKey, want.SecondaryKey); err != nil {
		t.Fatal(err)
	}
	seen := t0.Add(time.Hour)
	if err := s.TouchDevice(ctx(t), "pump-1", seen, "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.DeviceDisabled || !bytes.Equal(got.PrimaryKey, newKey) ||
		!got.LastSeen.Equal(seen) || got.LastIP != "192.0.2.7" {
		t.Fatalf("after updates GetDevice = %+v", got)
	}

	mustCreate(t, s, "heater-P1234")
	list, err := s.ListDevices(ctx(t), store.RootTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "heater-P1234" || list[1].ID != "pump-1" {
		t.Fatalf("ListDevices = %v, want heater-P1234, pump-1 in id order", ids(list))
	}

	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx(t), "pump-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDevice after delete error = %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"SetDeviceStatus": s.SetDeviceStatus(ctx(t), store.RootTenantID, "pump-1", store.DeviceEnabled),
		"SetDeviceKeys":   s.SetDeviceKeys(ctx(t), store.RootTenantID, "pump-1", newKey, newKey),
		"DeleteDevice":    s.DeleteDevice(ctx(t), store.RootTenantID, "pump-1"),
		"TouchDevice":     s.TouchDevice(ctx(t), "pump-1", seen, ""),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s on a deleted device error = %v, want ErrNotFound", name, err)
		}
	}
}

func testDeviceTenantIsolation(t *testing.T, s store.Store) {
	mustCreate(t, s, "d1")
	const other = "another-tenant"
	if err := s.SetDeviceStatus(ctx(t), other, "d1", store.DeviceDisabled); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetDeviceStatus from another tenant error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), other, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDevice from another tenant error = %v, want ErrNotFound", err)
	}
	list, err := s.ListDevices(ctx(t), other)
	if err != nil || len(list) != 0 {
		t.Errorf("ListDevices(other) = %v, %v; want none", ids(list), err)
	}
	if _, err := s.LatestValues(ctx(t), other, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LatestValues from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := s.ListRejected(ctx(t), other, "d1", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListRejected from another tenant error = %v, want ErrNotFound", err)
	}
	err = s.Samples(ctx(t), other, "d1", "m", t0, t0.Add(time.Hour), 0, func(store.Sample) bool { return true })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Samples from another tenant error = %v, want ErrNotFound", err)
	}
	d, err := s.GetDevice(ctx(t), "d1")
	if err != nil || d.Status != store.DeviceEnabled {
		t.Errorf("device changed by another tenant: %+v, %v", d, err)
	}
}

func testAPITokens(t *testing.T, s store.Store) {
	tok := store.APIToken{ID: "tok1", TenantID: store.RootTenantID, Name: "operator", Role: store.RoleOperatorAdmin,
		Hash: bytes.Repeat([]byte{7}, 32), CreatedAt: t0}
	if err := s.CreateAPIToken(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.APITokenByHash(ctx(t), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.TenantID != tok.TenantID || got.Role != tok.Role || got.Name != tok.Name || !got.CreatedAt.Equal(t0) {
		t.Fatalf("APITokenByHash = %+v, want %+v", got, tok)
	}
	if _, err := s.APITokenByHash(ctx(t), bytes.Repeat([]byte{8}, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash error = %v, want ErrNotFound", err)
	}
}

func msg(dev, mid string, ts time.Time, kv ...any) store.Message {
	m := store.Message{TenantID: store.RootTenantID, DeviceID: dev, MessageID: mid, ReceivedAt: ts}
	for i := 0; i < len(kv); i += 2 {
		m.Points = append(m.Points, store.Point{Metric: kv[i].(string), TS: ts, Value: kv[i+1].(float64)})
	}
	return m
}

func samples(t *testing.T, s store.Store, dev, metric string, from, to time.Time, limit int) []store.Sample {
	t.Helper()
	var out []store.Sample
	err := s.Samples(ctx(t), store.RootTenantID, dev, metric, from, to, limit, func(x store.Sample) bool {
		out = append(out, x)
		return true
	})
	if err != nil {
		t.Fatalf("Samples(%s, %s): %v", dev, metric, err)
	}
	return out
}

func testWriteAndRead(t *testing.T, s store.Store) {
	mustCreate(t, s, "pump-1")
	res, err := s.WriteMessages(ctx(t), []store.Message{
		msg("pump-1", "m1", t0, "temperature", 71.5, "inletPressure", 0.12),
		msg("pump-1", "m2", t0.Add(time.Minute), "temperature", 72.25),
		msg("pump-1", "", t0.Add(2*time.Minute), "temperature", -3.0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Duplicate || res[1].Duplicate || res[2].Duplicate {
		t.Fatalf("results = %+v, want three non-duplicates", res)
	}
	got := samples(t, s, "pump-1", "temperature", t0, t0.Add(time.Hour), 0)
	want := []store.Sample{{TS: t0, Value: 71.5}, {TS: t0.Add(time.Minute), Value: 72.25}, {TS: t0.Add(2 * time.Minute), Value: -3}}
	if !equalSamples(got, want) {
		t.Fatalf("Samples = %v, want %v", got, want)
	}
	latest, err := s.LatestValues(ctx(t), store.RootTenantID, "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	wantLatest := []store.Latest{{Metric: "inletPressure", TS: t0, Value: 0.12}, {Metric: "temperature", TS: t0.Add(2 * time.Minute), Value: -3}}
	if fmt.Sprint(latest) != fmt.Sprint(wantLatest) {
		t.Fatalf("LatestValues = %v, want %v", latest, wantLatest)
	}
	// Millisecond precision survives the round trip.
	ms := t0.Add(1500 * time.Millisecond)
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("pump-1", "m3", ms, "current", 1.0)}); err != nil {
		t.Fatal(err)
	}
	if got := samples(t, s, "pump-1", "current", t0, t0.Add(time.Second*2), 0); len(got) != 1 || !got[0].TS.Equal(ms) {
		t.Fatalf("millisecond sample = %v, want ts %v", got, ms)
	}
}

func testDeduplication(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	mustCreate(t, s, "b")
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "same", t0, "x", 1.0)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteMessages(ctx(t), []store.Message{
		msg("a", "same", t0.Add(time.Second), "x", 2.0), // repeat from a: dropped
		msg("b", "same", t0.Add(time.Second), "x", 3.0), // same id from another device: kept
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("results = %+v, want [dup, new]", res)
	}
	if got := samples(t, s, "a", "x", t0, t0.Add(time.Hour), 0); len(got) != 1 || got[0].Value != 1 {
		t.Fatalf("device a samples = %v, want only the first copy", got)
	}
	if got := samples(t, s, "b", "x", t0, t0.Add(time.Hour), 0); len(got) != 1 || got[0].Value != 3 {
		t.Fatalf("device b samples = %v", got)
	}
}

func testDuplicateInsideOneBatch(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	res, err := s.WriteMessages(ctx(t), []store.Message{
		msg("a", "m", t0, "x", 1.0),
		msg("a", "m", t0.Add(time.Second), "x", 2.0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate {
		t.Fatalf("results = %+v, want [new, dup]", res)
	}
	if got := samples(t, s, "a", "x", t0, t0.Add(time.Hour), 0); len(got) != 1 {
		t.Fatalf("samples = %v, want one", got)
	}
}

func testForgetMessageIDs(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	old := msg("a", "old", t0, "x", 1.0)
	recent := msg("a", "recent", t0.Add(48*time.Hour), "x", 2.0)
	if _, err := s.WriteMessages(ctx(t), []store.Message{old, recent}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ForgetMessageIDs(ctx(t), t0.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("ForgetMessageIDs = %d, %v; want 1", n, err)
	}
	res, err := s.WriteMessages(ctx(t), []store.Message{
		msg("a", "old", t0.Add(72*time.Hour), "y", 1.0),
		msg("a", "recent", t0.Add(72*time.Hour), "y", 2.0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate {
		t.Fatalf("results = %+v, want the forgotten id accepted and the recent one deduplicated", res)
	}
}

func testLatestIgnoresOlderPoints(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "new", t0.Add(time.Hour), "x", 5.0)}); err != nil {
		t.Fatal(err)
	}
	// A box uploading its buffer sends older points later.
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "old", t0, "x", 1.0)}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.LatestValues(ctx(t), store.RootTenantID, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Value != 5 || !latest[0].TS.Equal(t0.Add(time.Hour)) {
		t.Fatalf("LatestValues = %v, want the newer point", latest)
	}
	if got := samples(t, s, "a", "x", t0, t0.Add(2*time.Hour), 0); len(got) != 2 || got[0].Value != 1 {
		t.Fatalf("samples = %v, want both in time order", got)
	}
}

func testSamplesRangeAndLimit(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	var batch []store.Message
	for i := range 100 {
		batch = append(batch, msg("a", fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute), "x", float64(i)))
	}
	if _, err := s.WriteMessages(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	got := samples(t, s, "a", "x", t0.Add(10*time.Minute), t0.Add(20*time.Minute), 0)
	if len(got) != 10 || got[0].Value != 10 || got[9].Value != 19 {
		t.Fatalf("half-open range [10,20) = %v", got)
	}
	if got := samples(t, s, "a", "x", t0, t0.Add(time.Hour*2), 5); len(got) != 5 || got[4].Value != 4 {
		t.Fatalf("limit 5 = %v", got)
	}
	n := 0
	err := s.Samples(ctx(t), store.RootTenantID, "a", "x", t0, t0.Add(2*time.Hour), 0, func(store.Sample) bool {
		n++
		return n < 3
	})
	if err != nil || n != 3 {
		t.Fatalf("early stop after %d samples, err %v; want 3", n, err)
	}
	if got := samples(t, s, "a", "nothing", t0, t0.Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("unknown metric = %v, want none", got)
	}
}

func testSameTimestampOverwrites(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "1", t0, "x", 1.0), msg("a", "2", t0, "x", 2.0)}); err != nil {
		t.Fatal(err)
	}
	if got := samples(t, s, "a", "x", t0, t0.Add(time.Second), 0); len(got) != 1 || got[0].Value != 2 {
		t.Fatalf("samples = %v, want one point holding the last value", got)
	}
}

func testRejected(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	for i := range 3 {
		r := store.Rejected{TenantID: store.RootTenantID, DeviceID: "a", MessageID: fmt.Sprint("m", i),
			Topic: "devices/a/messages/events/", Reason: fmt.Sprint("reason ", i),
			Payload: []byte{'{', byte(i), 0xff}, ReceivedAt: t0.Add(time.Duration(i) * time.Second)}
		if err := s.AddRejected(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListRejected(ctx(t), store.RootTenantID, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Reason != "reason 2" || got[1].Reason != "reason 1" ||
		!bytes.Equal(got[0].Payload, []byte{'{', 2, 0xff}) || got[0].MessageID != "m2" ||
		got[0].Topic != "devices/a/messages/events/" || !got[0].ReceivedAt.Equal(t0.Add(2*time.Second)) || got[0].ID == 0 {
		t.Fatalf("ListRejected = %+v", got)
	}
}

func testDeleteDeviceRemovesData(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if _, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "m", t0, "x", 1.0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRejected(ctx(t), store.Rejected{TenantID: store.RootTenantID, DeviceID: "a", Reason: "r", ReceivedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "a") // a new device under the old name starts empty
	if got := samples(t, s, "a", "x", t0, t0.Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("samples of re-created device = %v, want none", got)
	}
	if l, err := s.LatestValues(ctx(t), store.RootTenantID, "a"); err != nil || len(l) != 0 {
		t.Fatalf("latest of re-created device = %v, %v", l, err)
	}
	if r, err := s.ListRejected(ctx(t), store.RootTenantID, "a", 10); err != nil || len(r) != 0 {
		t.Fatalf("rejected of re-created device = %v, %v", r, err)
	}
	res, err := s.WriteMessages(ctx(t), []store.Message{msg("a", "m", t0, "x", 1.0)})
	if err != nil || res[0].Duplicate {
		t.Fatalf("message id of the deleted device still remembered: %+v, %v", res, err)
	}
}

func testMigrateTwice(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "a"); err != nil {
		t.Fatalf("device lost by second Migrate: %v", err)
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	const writers, perWriter = 4, 25
	for w := range writers {
		mustCreate(t, s, fmt.Sprint("w", w))
	}
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range perWriter {
				_, err := s.WriteMessages(ctx(t), []store.Message{
					msg(fmt.Sprint("w", w), fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), "x", float64(i)),
				})
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		if got := samples(t, s, fmt.Sprint("w", w), "x", t0, t0.Add(time.Hour), 0); len(got) != perWriter {
			t.Fatalf("writer %d: %d samples, want %d", w, len(got), perWriter)
		}
	}
}

func ids(ds []store.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func equalSamples(a, b []store.Sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].TS.Equal(b[i].TS) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}
