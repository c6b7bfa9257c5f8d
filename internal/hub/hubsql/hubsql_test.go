package hubsql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/hub/hubsql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore is the conformance suite of hub.Store: twins, cloud-to-device
// messages, model ids and session subscriptions, on each engine. Each test
// gets a fresh engine (e, for devices) with a keyring, and a hubsql.Store on
// its database sealing with that keyring.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, hubsql.New, []enginetest.Test[*hubsql.Store]{
		{Name: "TwinEmpty", Fn: testTwinEmpty},
		{Name: "TwinReportedMerge", Fn: testTwinReportedMerge},
		{Name: "TwinDesiredAndTags", Fn: testTwinDesiredAndTags},
		{Name: "TwinInvalid", Fn: testTwinInvalid},
		{Name: "TwinInitial", Fn: testTwinInitial},
		{Name: "TwinConcurrentUpdates", Fn: testTwinConcurrentUpdates},
		{Name: "TwinGoesWithDevice", Fn: testTwinGoesWithDevice},
		{Name: "C2DLifecycle", Fn: testC2DLifecycle},
		{Name: "C2DExpiry", Fn: testC2DExpiry},
		{Name: "C2DLimits", Fn: testC2DLimits},
		{Name: "C2DTenantIsolation", Fn: testC2DTenantIsolation},
		{Name: "C2DHistoryBound", Fn: testC2DHistoryBound},
		{Name: "SessionSubscriptions", Fn: testSessionSubscriptions},
		{Name: "ModelID", Fn: testModelID},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

// jsonEq compares two JSON documents by value.
func jsonEq(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %q is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

// metaAt digs a value out of a $metadata document.
func metaAt(t *testing.T, meta json.RawMessage, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(meta, &v); err != nil {
		t.Fatalf("metadata %q: %v", meta, err)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("metadata %s: no %v", meta, path)
		}
		v = m[p]
	}
	return v
}

func testTwinEmpty(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	tw, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if tw.Version != 1 || tw.Desired.Version != 1 || tw.Reported.Version != 1 || tw.ETag() != "AAAAAAAAAAE=" {
		t.Fatalf("empty twin versions %d/%d/%d etag %s, want 1/1/1 AAAAAAAAAAE=", tw.Version, tw.Desired.Version, tw.Reported.Version, tw.ETag())
	}
	jsonEq(t, "tags", tw.Tags, `{}`)
	jsonEq(t, "desired", tw.Desired.Doc, `{}`)
	jsonEq(t, "reported", tw.Reported.Doc, `{}`)
	jsonEq(t, "desired with version", tw.Desired.WithVersion(false), `{"$version":1}`)
	if v := metaAt(t, tw.Desired.Metadata, "$lastUpdatedVersion"); v != float64(1) {
		t.Fatalf("desired $lastUpdatedVersion = %v, want 1", v)
	}
	if !tw.CreatedAt.Equal(t0) {
		t.Fatalf("twin CreatedAt = %v, want the device's %v", tw.CreatedAt, t0)
	}
	if _, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetTwin(ghost) error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetTwin(ctx(t), "another-tenant", "d1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetTwin from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateReported(ctx(t), "another-tenant", "d1", json.RawMessage(`{"a":1}`), t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("UpdateReported from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateTwin(ctx(t), "another-tenant", "d1", hub.TwinUpdate{Desired: json.RawMessage(`{"a":1}`)}, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("UpdateTwin from another tenant error = %v, want ErrNotFound", err)
	}
}

func testTwinReportedMerge(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	at1 := t0.Add(time.Minute)
	tw, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1",
		json.RawMessage(`{"firmware":"1.0.0","interval":5,"net":{"ip":"192.0.2.1","rssi":-60},"big":12345678901234567890}`), at1)
	if err != nil {
		t.Fatal(err)
	}
	if tw.Reported.Version != 2 || tw.Version != 2 || tw.Desired.Version != 1 {
		t.Fatalf("after one patch: reported $version %d, twin version %d, desired %d; want 2, 2, 1", tw.Reported.Version, tw.Version, tw.Desired.Version)
	}
	at2 := t0.Add(2 * time.Minute)
	if _, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1",
		json.RawMessage(`{"interval":null,"net":{"rssi":null,"ssid":"plant"},"state":{"a":{"b":1}}}`), at2); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reported.Version != 3 || got.Version != 3 {
		t.Fatalf("after two patches: reported $version %d, twin version %d; want 3, 3", got.Reported.Version, got.Version)
	}
	jsonEq(t, "reported", got.Reported.Doc,
		`{"firmware":"1.0.0","net":{"ip":"192.0.2.1","ssid":"plant"},"state":{"a":{"b":1}},"big":12345678901234567890}`)
	if !strings.Contains(string(got.Reported.Doc), "12345678901234567890") {
		t.Fatalf("a large number lost precision: %s", got.Reported.Doc)
	}
	ts1, ts2 := at1.Format("2006-01-02T15:04:05.0000000Z"), at2.Format("2006-01-02T15:04:05.0000000Z")
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"$lastUpdated"}, ts2},
		{[]string{"firmware", "$lastUpdated"}, ts1},
		{[]string{"net", "$lastUpdated"}, ts2},
		{[]string{"net", "ip", "$lastUpdated"}, ts1},
		{[]string{"net", "ssid", "$lastUpdated"}, ts2},
		{[]string{"net", "rssi"}, nil},
		{[]string{"interval"}, nil},
		{[]string{"state", "a", "b", "$lastUpdated"}, ts2},
		{[]string{"$lastUpdatedVersion"}, nil}, // only desired metadata has versions
	} {
		if v := metaAt(t, got.Reported.Metadata, c.path...); v != c.want {
			t.Errorf("reported $metadata %v = %v, want %v (%s)", c.path, v, c.want, got.Reported.Metadata)
		}
	}
	if !got.UpdatedAt.Equal(at2) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, at2)
	}
}

func testTwinDesiredAndTags(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	tw, err := s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{
		Desired: json.RawMessage(`{"interval":10,"modes":{"eco":true}}`),
		Tags:    json.RawMessage(`{"site":"berlin","rack":{"row":3}}`),
	}, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tw.Desired.Version != 2 || tw.Version != 2 {
		t.Fatalf("desired $version %d, twin version %d; want 2, 2", tw.Desired.Version, tw.Version)
	}
	if v := metaAt(t, tw.Desired.Metadata, "interval", "$lastUpdatedVersion"); v != float64(2) {
		t.Fatalf("desired interval $lastUpdatedVersion = %v, want 2", v)
	}
	// Tags alone bump the twin version, not the desired $version.
	tw, err = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Tags: json.RawMessage(`{"rack":null}`)}, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tw.Desired.Version != 2 || tw.Version != 3 {
		t.Fatalf("after tags: desired $version %d, twin version %d; want 2, 3", tw.Desired.Version, tw.Version)
	}
	jsonEq(t, "tags", tw.Tags, `{"site":"berlin"}`)
	// An update for an older etag fails and changes nothing.
	_, err = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Desired: json.RawMessage(`{"interval":1}`), IfVersion: 2}, t0.Add(3*time.Minute))
	if !errors.Is(err, hub.ErrTwinChanged) {
		t.Fatalf("update with a stale version: error %v, want ErrTwinChanged", err)
	}
	tw, err = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Desired: json.RawMessage(`{"modes":{"eco":null,"night":1}}`), IfVersion: 3}, t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tw.Desired.Version != 3 || tw.Version != 4 {
		t.Fatalf("desired $version %d, twin version %d; want 3, 4", tw.Desired.Version, tw.Version)
	}
	// Nothing to change: no new version.
	tw, err = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Desired: json.RawMessage(`{}`)}, t0.Add(4*time.Minute))
	if err != nil || tw.Version != 4 {
		t.Fatalf("empty update: version %d, %v; want 4", tw.Version, err)
	}
	got, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "desired", got.Desired.Doc, `{"interval":10,"modes":{"night":1}}`)
	jsonEq(t, "desired shown", got.Desired.WithVersion(false), `{"interval":10,"modes":{"night":1},"$version":3}`)
	if v := metaAt(t, got.Desired.Metadata, "interval", "$lastUpdatedVersion"); v != float64(2) {
		t.Errorf("interval $lastUpdatedVersion = %v, want 2", v)
	}
	if v := metaAt(t, got.Desired.Metadata, "modes", "night", "$lastUpdatedVersion"); v != float64(3) {
		t.Errorf("modes.night $lastUpdatedVersion = %v, want 3", v)
	}
	if v := metaAt(t, got.Desired.Metadata, "$lastUpdatedVersion"); v != float64(3) {
		t.Errorf("desired $lastUpdatedVersion = %v, want 3", v)
	}
	jsonEq(t, "reported", got.Reported.Doc, `{}`)
	if got.Reported.Version != 1 {
		t.Errorf("reported $version = %d, want 1", got.Reported.Version)
	}
}

func testTwinInvalid(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	deep := `{"v":1}`
	for range 11 {
		deep = `{"x":` + deep + `}`
	}
	tenDeep := `{"v":1}`
	for range 9 {
		tenDeep = `{"x":` + tenDeep + `}`
	}
	big := `{"blob":"` + strings.Repeat("a", hub.MaxTwinPropsSize) + `"}`
	for _, c := range []struct{ name, patch, want string }{
		{"not JSON", `{"a":`, "not valid JSON"},
		{"not an object", `[1,2]`, "want a JSON object"},
		{"null", `null`, "want a JSON object"},
		{"dot in key", `{"a.b":1}`, "not allowed"},
		{"dollar in key", `{"$version":3}`, "not allowed"},
		{"space in nested key", `{"a":{"b c":1}}`, "not allowed"},
		{"empty key", `{"":1}`, "empty property name"},
		{"too deep", deep, "levels deep"},
		{"too big", big, "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(c.patch), t0)
			if !errors.Is(err, hub.ErrInvalidTwin) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("UpdateReported(%.40s) error = %v, want ErrInvalidTwin with %q", c.patch, err, c.want)
			}
			_, err = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Desired: json.RawMessage(c.patch)}, t0)
			if !errors.Is(err, hub.ErrInvalidTwin) {
				t.Fatalf("UpdateTwin(%.40s) error = %v, want ErrInvalidTwin", c.patch, err)
			}
		})
	}
	bigTags := `{"t":"` + strings.Repeat("a", hub.MaxTwinTagsSize) + `"}`
	if _, err := s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Tags: json.RawMessage(bigTags)}, t0); !errors.Is(err, hub.ErrInvalidTwin) {
		t.Fatalf("tags over 8 KB: error %v, want ErrInvalidTwin", err)
	}
	// Ten levels below the root are allowed.
	if _, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(tenDeep), t0); err != nil {
		t.Fatalf("ten levels deep: %v", err)
	}
	tw, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil || tw.Version != 2 || tw.Desired.Version != 1 {
		t.Fatalf("after refused patches: version %d desired %d, %v; want only the valid patch applied", tw.Version, tw.Desired.Version, err)
	}
}

func testTwinInitial(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	if err := s.SetInitialTwin(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(`{"site":"lab"}`), json.RawMessage(`{"interval":5}`), t0); err != nil {
		t.Fatal(err)
	}
	tw, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if tw.Version != 1 || tw.Desired.Version != 1 || tw.Reported.Version != 1 {
		t.Fatalf("initial twin versions %d/%d/%d, want 1/1/1", tw.Version, tw.Desired.Version, tw.Reported.Version)
	}
	jsonEq(t, "initial desired", tw.Desired.WithVersion(false), `{"interval":5,"$version":1}`)
	jsonEq(t, "initial tags", tw.Tags, `{"site":"lab"}`)
	if v := metaAt(t, tw.Desired.Metadata, "interval", "$lastUpdatedVersion"); v != float64(1) {
		t.Errorf("interval $lastUpdatedVersion = %v, want 1", v)
	}
	// A second initial twin (re-registration) leaves the twin alone.
	if _, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(`{"fw":"2"}`), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInitialTwin(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(`{"site":"elsewhere"}`), json.RawMessage(`{"interval":99}`), t0); err != nil {
		t.Fatal(err)
	}
	tw, err = s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "desired after second initial twin", tw.Desired.Doc, `{"interval":5}`)
	jsonEq(t, "tags after second initial twin", tw.Tags, `{"site":"lab"}`)
	// Empty documents are allowed; bad ones are refused.
	enginetest.RootDevice(t, e, "d2")
	if err := s.SetInitialTwin(ctx(t), tenancy.RootTenantID, "d2", nil, json.RawMessage(`{"a.b":1}`), t0); !errors.Is(err, hub.ErrInvalidTwin) {
		t.Fatalf("bad initial twin: error %v, want ErrInvalidTwin", err)
	}
	if err := s.SetInitialTwin(ctx(t), tenancy.RootTenantID, "d2", nil, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInitialTwin(ctx(t), tenancy.RootTenantID, "ghost", nil, nil, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("initial twin of an unknown device: error %v, want ErrNotFound", err)
	}
}

// Concurrent patches are applied one after the other: none is lost.
func testTwinConcurrentUpdates(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(fmt.Sprintf(`{"r%d":%d}`, i, i)), t0)
		})
		wg.Go(func() {
			_, errs[n+i] = s.UpdateTwin(ctx(t), tenancy.RootTenantID, "d1", hub.TwinUpdate{Desired: json.RawMessage(fmt.Sprintf(`{"d%d":%d}`, i, i))}, t0)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tw, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if tw.Version != 1+2*n || tw.Desired.Version != 1+n || tw.Reported.Version != 1+n {
		t.Fatalf("versions %d/%d/%d, want %d/%d/%d", tw.Version, tw.Desired.Version, tw.Reported.Version, 1+2*n, 1+n, 1+n)
	}
	var rep, des map[string]any
	json.Unmarshal(tw.Reported.Doc, &rep)
	json.Unmarshal(tw.Desired.Doc, &des)
	if len(rep) != n || len(des) != n {
		t.Fatalf("reported %s desired %s: want %d properties each", tw.Reported.Doc, tw.Desired.Doc, n)
	}
}

func testTwinGoesWithDevice(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	if _, err := s.UpdateReported(ctx(t), tenancy.RootTenantID, "d1", json.RawMessage(`{"a":1}`), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("d1", "m1", time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteDevice(ctx(t), tenancy.RootTenantID, "d1"); err != nil {
		t.Fatal(err)
	}
	enginetest.RootDevice(t, e, "d1")
	tw, err := s.GetTwin(ctx(t), tenancy.RootTenantID, "d1")
	if err != nil || tw.Version != 1 {
		t.Fatalf("twin of a re-created device: version %d, %v; want a new twin", tw.Version, err)
	}
	jsonEq(t, "reported of a re-created device", tw.Reported.Doc, `{}`)
	if ms, err := s.ListC2D(ctx(t), tenancy.RootTenantID, "d1", t0, 10); err != nil || len(ms) != 0 {
		t.Fatalf("messages of a re-created device: %d, %v; want none", len(ms), err)
	}
}

func c2d(device, mid string, ttl time.Duration) hub.C2DMessage {
	return hub.C2DMessage{TenantID: tenancy.RootTenantID, DeviceID: device, MessageID: mid,
		Properties: map[string]string{"k": "v", "unit name": "°C/x"}, Payload: []byte("hello " + mid),
		CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
}

func testC2DLifecycle(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	m1, err := s.EnqueueC2D(ctx(t), c2d("d1", "m1", time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.EnqueueC2D(ctx(t), c2d("d1", "m2", time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if m1.ID == 0 || m2.ID <= m1.ID || m1.State != hub.C2DQueued {
		t.Fatalf("enqueued ids %d, %d state %s; want increasing ids, queued", m1.ID, m2.ID, m1.State)
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("d1", "m1", time.Hour), 10); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("repeated message id: error %v, want ErrConflict", err)
	}
	now := t0.Add(time.Minute)
	pending, err := s.PendingC2D(ctx(t), "d1", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].MessageID != "m1" || pending[1].MessageID != "m2" {
		t.Fatalf("pending = %+v, want m1, m2", pending)
	}
	p := pending[0]
	if string(p.Payload) != "hello m1" || p.Properties["unit name"] != "°C/x" || !p.ExpiresAt.Equal(t0.Add(time.Hour)) ||
		!p.CreatedAt.Equal(t0) || p.TenantID != tenancy.RootTenantID || p.DeliveryCount != 0 || !p.DeliveredAt.IsZero() {
		t.Fatalf("pending message = %+v", p)
	}
	ok, err := s.MarkC2DDelivered(ctx(t), "d1", m1.ID, now)
	if err != nil || !ok {
		t.Fatalf("MarkC2DDelivered = %v, %v; want true", ok, err)
	}
	// Still pending until acknowledged: a reconnecting device gets it again.
	pending, err = s.PendingC2D(ctx(t), "d1", now)
	if err != nil || len(pending) != 2 || pending[0].State != hub.C2DDelivered || pending[0].DeliveryCount != 1 {
		t.Fatalf("pending after delivery = %+v, %v", pending, err)
	}
	if ok, err := s.MarkC2DDelivered(ctx(t), "d1", m1.ID, now.Add(time.Second)); err != nil || !ok {
		t.Fatalf("redelivery: %v, %v", ok, err)
	}
	done := now.Add(2 * time.Second)
	if err := s.CompleteC2D(ctx(t), "d1", m1.ID, done); err != nil {
		t.Fatal(err)
	}
	// Completing a message never delivered does nothing.
	if err := s.CompleteC2D(ctx(t), "d1", m2.ID, done); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkC2DDelivered(ctx(t), "d1", m1.ID, done); err != nil || ok {
		t.Fatalf("MarkC2DDelivered of a completed message = %v, %v; want false", ok, err)
	}
	list, err := s.ListC2D(ctx(t), tenancy.RootTenantID, "d1", done, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].MessageID != "m2" || list[1].MessageID != "m1" {
		t.Fatalf("list = %+v, want m2, m1 (newest first)", list)
	}
	if list[0].State != hub.C2DQueued || list[1].State != hub.C2DCompleted || list[1].DeliveryCount != 2 ||
		!list[1].CompletedAt.Equal(done) || !list[1].DeliveredAt.Equal(now.Add(time.Second)) {
		t.Fatalf("list = %+v", list)
	}
	if list, err := s.ListC2D(ctx(t), tenancy.RootTenantID, "d1", done, 1); err != nil || len(list) != 1 {
		t.Fatalf("list with limit 1: %d, %v", len(list), err)
	}
	pending, err = s.PendingC2D(ctx(t), "d1", done)
	if err != nil || len(pending) != 1 || pending[0].MessageID != "m2" {
		t.Fatalf("pending after completion = %+v, %v; want m2", pending, err)
	}
}

func testC2DExpiry(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	short, err := s.EnqueueC2D(ctx(t), c2d("d1", "short", time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := s.EnqueueC2D(ctx(t), c2d("d1", "sent", time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("d1", "long", time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkC2DDelivered(ctx(t), "d1", sent.ID, t0.Add(30*time.Second)); err != nil || !ok {
		t.Fatalf("deliver: %v, %v", ok, err)
	}
	later := t0.Add(2 * time.Minute)
	// Past its expiry a message is not delivered, even if nothing swept it.
	if ok, err := s.MarkC2DDelivered(ctx(t), "d1", short.ID, later); err != nil || ok {
		t.Fatalf("MarkC2DDelivered after expiry = %v, %v; want false", ok, err)
	}
	pending, err := s.PendingC2D(ctx(t), "d1", later)
	if err != nil || len(pending) != 1 || pending[0].MessageID != "long" {
		t.Fatalf("pending after expiry = %+v, %v; want only long", pending, err)
	}
	// The device acknowledged what it got before the expiry, late.
	if err := s.CompleteC2D(ctx(t), "d1", sent.ID, later); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteC2D(ctx(t), "d1", short.ID, later); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListC2D(ctx(t), tenancy.RootTenantID, "d1", later, 10)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]hub.C2DMessage{}
	for _, m := range list {
		states[m.MessageID] = m
	}
	if m := states["short"]; m.State != hub.C2DExpired || !m.ExpiredAt.Equal(later) || m.DeliveryCount != 0 {
		t.Errorf("short = %+v, want expired at %v, never delivered", m, later)
	}
	if m := states["sent"]; m.State != hub.C2DCompleted || !m.ExpiredAt.IsZero() {
		t.Errorf("sent = %+v, want completed", m)
	}
	if m := states["long"]; m.State != hub.C2DQueued {
		t.Errorf("long = %+v, want queued", m)
	}
	// Expiry is also applied by ListC2D alone.
	enginetest.RootDevice(t, e, "d2")
	if _, err := s.EnqueueC2D(ctx(t), c2d("d2", "x", time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	list, err = s.ListC2D(ctx(t), tenancy.RootTenantID, "d2", later, 10)
	if err != nil || len(list) != 1 || list[0].State != hub.C2DExpired {
		t.Fatalf("list of d2 = %+v, %v; want x expired", list, err)
	}
}

func testC2DLimits(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	for i := range 3 {
		if _, err := s.EnqueueC2D(ctx(t), c2d("d1", fmt.Sprint("m", i), time.Minute), 3); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.EnqueueC2D(ctx(t), c2d("d1", "m3", time.Minute), 3)
	if !errors.Is(err, hub.ErrQueueFull) {
		t.Fatalf("fourth message with room for 3: error %v, want ErrQueueFull", err)
	}
	// Expired messages do not count.
	m := c2d("d1", "m3", time.Minute)
	m.CreatedAt, m.ExpiresAt = t0.Add(2*time.Minute), t0.Add(time.Hour)
	if _, err := s.EnqueueC2D(ctx(t), m, 3); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
}

func testC2DTenantIsolation(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	m := c2d("d1", "m1", time.Hour)
	m.TenantID = "another-tenant"
	if _, err := s.EnqueueC2D(ctx(t), m, 10); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("EnqueueC2D from another tenant: error %v, want ErrNotFound", err)
	}
	if _, err := s.ListC2D(ctx(t), "another-tenant", "d1", t0, 10); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("ListC2D from another tenant: error %v, want ErrNotFound", err)
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("ghost", "m1", time.Hour), 10); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("EnqueueC2D to an unknown device: error %v, want ErrNotFound", err)
	}
	// Message ids are per device.
	enginetest.RootDevice(t, e, "d2")
	if _, err := s.EnqueueC2D(ctx(t), c2d("d1", "same", time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("d2", "same", time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if p, err := s.PendingC2D(ctx(t), "d2", t0); err != nil || len(p) != 1 {
		t.Fatalf("pending of d2 = %d, %v; want 1", len(p), err)
	}
}

func testC2DHistoryBound(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	n := hub.C2DHistory + 5
	for i := range n {
		m, err := s.EnqueueC2D(ctx(t), c2d("d1", fmt.Sprint("m", i), time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkC2DDelivered(ctx(t), "d1", m.ID, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteC2D(ctx(t), "d1", m.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EnqueueC2D(ctx(t), c2d("d1", "last", time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListC2D(ctx(t), tenancy.RootTenantID, "d1", t0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != hub.C2DHistory+1 || list[0].MessageID != "last" || list[len(list)-1].MessageID != fmt.Sprint("m", n-hub.C2DHistory) {
		t.Fatalf("kept %d messages (newest %s, oldest %s); want %d: the pending one and the newest %d finished",
			len(list), list[0].MessageID, list[len(list)-1].MessageID, hub.C2DHistory+1, hub.C2DHistory)
	}
}

func testSessionSubscriptions(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "d1")
	got, err := s.SessionSubscriptions(ctx(t), "d1")
	if err != nil || len(got) != 0 {
		t.Fatalf("subscriptions of a new device = %v, %v; want none", got, err)
	}
	want := map[string]byte{"$iothub/twin/res/#": 0, "devices/d1/messages/devicebound/#": 1}
	if err := s.SetSessionSubscriptions(ctx(t), "d1", want, t0); err != nil {
		t.Fatal(err)
	}
	if got, err = s.SessionSubscriptions(ctx(t), "d1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("subscriptions = %v, %v; want %v", got, err, want)
	}
	want = map[string]byte{"$iothub/methods/POST/#": 0}
	if err := s.SetSessionSubscriptions(ctx(t), "d1", want, t0); err != nil {
		t.Fatal(err)
	}
	if got, err = s.SessionSubscriptions(ctx(t), "d1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("replaced subscriptions = %v, %v; want %v", got, err, want)
	}
	if err := s.SetSessionSubscriptions(ctx(t), "d1", nil, t0); err != nil {
		t.Fatal(err)
	}
	if got, err = s.SessionSubscriptions(ctx(t), "d1"); err != nil || len(got) != 0 {
		t.Fatalf("cleared subscriptions = %v, %v; want none", got, err)
	}
	if err := s.SetSessionSubscriptions(ctx(t), "ghost", want, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("subscriptions of an unknown device: error %v, want ErrNotFound", err)
	}
	if err := s.SetSessionSubscriptions(ctx(t), "d1", want, t0); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteDevice(ctx(t), tenancy.RootTenantID, "d1"); err != nil {
		t.Fatal(err)
	}
	enginetest.RootDevice(t, e, "d1")
	if got, err = s.SessionSubscriptions(ctx(t), "d1"); err != nil || len(got) != 0 {
		t.Fatalf("subscriptions of a re-created device = %v, %v; want none", got, err)
	}
}

func testModelID(t *testing.T, e store.Store, s *hubsql.Store) {
	enginetest.RootDevice(t, e, "a")
	if id, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "a"); err != nil || id != "" {
		t.Fatalf("model id of a new device = %q, %v", id, err)
	}
	const dtmi = "dtmi:com:example:Thermostat;1"
	if err := s.SetDeviceModelID(ctx(t), tenancy.RootTenantID, "a", dtmi); err != nil {
		t.Fatal(err)
	}
	if id, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "a"); err != nil || id != dtmi {
		t.Fatalf("model id = %q, %v; want %q", id, err, dtmi)
	}
	if err := s.SetDeviceModelID(ctx(t), "other-tenant", "a", "dtmi:x;1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("SetDeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), "other-tenant", "a"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeviceModelID of an unknown device: %v, want ErrNotFound", err)
	}
}
