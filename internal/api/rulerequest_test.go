package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
)

// TestRuleRequest: a rule body decodes through apiv1.RuleRequest to the
// rule that decoding it as package alarm's Rule (with enabled defaulting
// to true) gives, and the same bodies are refused.
func TestRuleRequest(t *testing.T) {
	type direct struct {
		alarm.Rule
		Enabled *bool `json:"enabled"`
	}
	strict := func(body string, v any) error {
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	for _, body := range []string{
		`{"name":"hot","severity":"critical","scope":{"deviceId":"d"},"threshold":{"metric":"t","op":"outside","low":-2,"high":3.5,"hysteresis":0.5,"minDuration":"90s"}}`,
		`{"id":"r2","tenantId":"A","name":"jump","severity":"warning","scope":{"siteId":"s"},"enabled":false,"rateOfChange":{"metric":"p","maxRatePerMinute":2,"direction":"up","hysteresis":0.1,"minDuration":"1m"}}`,
		`{"scope":{"model":"m"},"enabled":true,"expression":{"expr":"a > b","minDuration":"1h"}}`,
		`{"stale":{"metric":"t","after":"5m"}}`,
		`{"offline":{"after":"10m"}}`,
		`{"threshold":{"metric":"t","op":"above","value":0}}`,
		`{}`,
		`{"enabled":null}`,
		`{"extra":1}`,
		`{"threshold":{"metric":"t","op":"above","value":0,"extra":1}}`,
		`{"offline":{"after":"soon"}}`,
		`{"offline":{"after":5}}`,
	} {
		var want direct
		werr := strict(body, &want)
		var req apiv1.RuleRequest
		gerr := strict(body, &req)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%s: decoding as a rule: %v; as apiv1.RuleRequest: %v", body, werr, gerr)
			continue
		}
		if werr != nil {
			continue
		}
		want.Rule.Enabled = want.Enabled == nil || *want.Enabled
		sameJSON(t, body, want.Rule, ruleOf(req))
	}
}
