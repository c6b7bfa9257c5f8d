package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
)

func TestWriteRuleInvalidListsFields(t *testing.T) {
	r := alarm.Rule{ID: "rule_x", TenantID: "A", Severity: "fatal", Scope: alarm.Scope{Model: "pump"},
		Threshold: &alarm.Threshold{Metric: "temp", Op: "over"}}
	err := r.Validate()
	if err == nil {
		t.Fatal("invalid rule validated")
	}
	rec := httptest.NewRecorder()
	writeRuleInvalid(rec, err)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	var body apiv1.ValidationError
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"name": false, "severity": false, "threshold.op": false}
	for _, f := range body.Fields {
		if _, ok := want[f.Field]; ok {
			want[f.Field] = true
		}
		if f.Problem == "" {
			t.Errorf("field %s without a problem", f.Field)
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("fields %+v lack %s", body.Fields, f)
		}
	}
	if body.Status != http.StatusBadRequest || body.Error == "" {
		t.Errorf("body %+v", body)
	}

	// A single problem, not joined.
	rec = httptest.NewRecorder()
	writeRuleInvalid(rec, &alarm.FieldError{Field: "scope.deviceId", Problem: "no device"})
	body = apiv1.ValidationError{}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if len(body.Fields) != 1 || body.Fields[0].Field != "scope.deviceId" || body.Error != "invalid rule: scope.deviceId: no device" {
		t.Errorf("single: %+v", body)
	}
}
