package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/store"
)

// The alarm store's suite is package alarmsql's (and notifysql's); these
// helpers remain for the sealing tests.

func raised(tenant, rule, device string, at time.Time, value float64) alarm.Change {
	return alarm.Change{Kind: "raised", TenantID: tenant, RuleID: rule, DeviceID: device, SiteID: "site-" + device,
		Alarm: alarm.KindRule, Severity: "critical", Message: fmt.Sprintf("value %g", value), Value: value, At: at}
}

func apply(t *testing.T, s store.Store, changes ...alarm.Change) []alarm.Record {
	t.Helper()
	got, err := s.ApplyAlarmChanges(ctx(t), changes)
	if err != nil {
		t.Fatalf("ApplyAlarmChanges: %v", err)
	}
	if len(got) != len(changes) {
		t.Fatalf("ApplyAlarmChanges returned %d alarms for %d changes", len(got), len(changes))
	}
	return got
}

func mustRule(t *testing.T, s store.Store, id, tenant string) alarm.StoredRule {
	t.Helper()
	r := alarm.StoredRule{ID: id, TenantID: tenant, Name: "Rule " + id, Enabled: true,
		Spec: json.RawMessage(`{"metric":"temp","op":">","threshold":80}`), CreatedBy: "u1", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateAlarmRule(ctx(t), r); err != nil {
		t.Fatalf("CreateAlarmRule(%q): %v", id, err)
	}
	return r
}
