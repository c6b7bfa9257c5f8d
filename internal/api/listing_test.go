package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

// TestAlarmPagesPastDroppedRows: the alarm list reads the caller's subtree
// from the store and drops what the policy does not allow; a page is
// filled from further store pages, and a run of dropped alarms longer
// than the scan bound ends a page early with a "next" that goes on.
func TestAlarmPagesPastDroppedRows(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	if err := w.op.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": "r1", "tenantId": "root"}, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	// The operator admin sees the alarms of its own machine r1, not those
	// of A's machines, which are in its subtree too.
	own1 := w.raise(t, "root", "rule_r", "r1", "warning", now)
	w.raise(t, "A", "rule_x", "a1", "warning", now)
	w.raise(t, "A", "rule_x", "a2", "warning", now)
	own2 := w.raise(t, "root", "rule_s", "r1", "warning", now)
	var bulk []alarm.Change
	for i := range api.MaxListScan + 10 {
		bulk = append(bulk, alarm.Change{Kind: "raised", TenantID: "A", RuleID: fmt.Sprintf("bulk-%d", i), DeviceID: "a1",
			Alarm: alarm.KindRule, Severity: "warning", Message: "m", At: now})
	}
	if _, err := w.st.ApplyAlarmChanges(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	own3 := w.raise(t, "root", "rule_t", "r1", "warning", now)

	page, err := w.op.Alarms(ctx, client.AlarmFilter{Limit: 1})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != own1.ID || page.Next != own1.ID {
		t.Fatalf("first page: %v %+v", err, page)
	}
	// Filled past A's two alarms, then into the bulk, which is longer
	// than one request reads: the page ends early, its next is where it
	// stopped and the next page goes on from there.
	page, err = w.op.Alarms(ctx, client.AlarmFilter{Limit: 2, After: page.Next})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != own2.ID || page.Next <= own2.ID || page.Next >= own3.ID {
		t.Fatalf("second page: %v %+v", err, page)
	}
	var got []int64
	after, requests := page.Next, 0
	for after != 0 {
		requests++
		page, err = w.op.Alarms(ctx, client.AlarmFilter{Limit: 2, After: after})
		if err != nil || requests > 5 {
			t.Fatalf("page %d after %d: %v", requests, after, err)
		}
		for _, a := range page.Alarms {
			got = append(got, a.ID)
		}
		after = page.Next
	}
	if !slices.Equal(got, []int64{own3.ID}) {
		t.Errorf("after the bulk: %v in %d requests, want [%d]", got, requests, own3.ID)
	}
	// A's admin sees its alarms in full, a page at a time.
	page, err = w.adminA.Alarms(ctx, client.AlarmFilter{Limit: 1000})
	if err != nil || len(page.Alarms) != 1000 || page.Next != page.Alarms[999].ID {
		t.Fatalf("A's first page: %v %d alarms, next %d", err, len(page.Alarms), page.Next)
	}
}

// TestListsOfSubtrees: a tenant's lists take its sub-tenants however deep,
// and never a tenant whose id only starts with the tenant's.
func TestListsOfSubtrees(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	for _, tn := range []struct{ id, parent string }{{"A2", ""}, {"A-b", ""}, {"east", "A"}, {"floor", "east"}, {"bay", "floor"}} {
		if _, err := w.op.CreateTenant(ctx, apiv1.NewTenant{ID: tn.id, ParentID: tn.parent, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr(tn.id)}}); err != nil {
			t.Fatalf("tenant %s: %v", tn.id, err)
		}
	}
	for _, d := range []struct{ id, tenant string }{{"x-A2", "A2"}, {"x-Ab", "A-b"}, {"x-bay", "bay"}, {"x-east", "east"}} {
		if err := w.op.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": d.id, "tenantId": d.tenant}, nil); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Add(-time.Hour)
	for _, dev := range []struct{ id, tenant string }{{"x-A2", "A2"}, {"x-Ab", "A-b"}, {"x-bay", "bay"}, {"a2", "A"}} {
		w.raise(t, dev.tenant, "rule_z", dev.id, "critical", now)
	}
	devs, err := w.adminA.Devices(ctx)
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.ID)
	}
	if want := []string{"a1", "a2", "x-bay", "x-east"}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("A's devices: %v %v, want %v", ids, err, want)
	}
	var sub []string
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/devices", url.Values{"tenant": {"floor"}}, nil, &struct {
		Devices *[]apiv1.Device `json:"devices"`
	}{&devs}); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		sub = append(sub, d.ID)
	}
	if want := []string{"x-bay"}; !slices.Equal(sub, want) {
		t.Errorf("floor's devices: %v, want %v", sub, want)
	}
	page, err := w.adminA.Alarms(ctx, client.AlarmFilter{})
	var devOf []string
	for _, a := range page.Alarms {
		devOf = append(devOf, a.DeviceID)
	}
	if want := []string{"x-bay", "a2"}; err != nil || !slices.Equal(devOf, want) {
		t.Errorf("A's alarms are of %v (%v), want %v", devOf, err, want)
	}
	_, err = w.adminA.Alarms(ctx, client.AlarmFilter{Tenant: "A2"})
	wantStatus(t, "A's admin lists A2's alarms", err, http.StatusNotFound)
}

// TestAlarmsOfSiteGrant: a supporter granted a site reads the alarms of
// the devices at the site now, a page at a time, and no others.
func TestAlarmsOfSiteGrant(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	sup, u := signUpAs(t, w.op, w.op, "root", "supporter", "site-tech@installer.example")
	if _, err := w.adminA.Grant(ctx, u.SupporterID, w.siteA, "", ""); err != nil {
		t.Fatalf("grant: %v", err)
	}
	now := time.Now().Add(-time.Hour)
	var want []int64
	for i := range 3 {
		want = append(want, w.raise(t, "A", fmt.Sprint("rule_", i), "a1", "warning", now).ID)
		w.raise(t, "A", fmt.Sprint("rule_", i), "a2", "warning", now)
		w.raise(t, "B", fmt.Sprint("rule_", i), "b1", "warning", now)
	}
	var got []int64
	var after int64
	for range 5 {
		page, err := sup.Alarms(ctx, client.AlarmFilter{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Alarms {
			got = append(got, a.ID)
		}
		if after = page.Next; after == 0 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("site supporter's alarms: %v, want %v", got, want)
	}
	if page, err := sup.Alarms(ctx, client.AlarmFilter{Device: "a2"}); err != nil || len(page.Alarms) != 0 {
		t.Errorf("site supporter's alarms of a2: %v %+v", err, page)
	}
}
