package apiv1

import (
	"encoding/json"
	"fmt"
	"time"
)

// RuleSpec is an alarm rule as a tenant writes it: the body of POST
// /api/v1/rules and PUT /api/v1/rules/{rule} (without id; enabled defaults
// to true), and the rule part of every answer about rules. Exactly one of
// Threshold, RateOfChange, Expression, Stale and Offline is set.
type RuleSpec struct {
	ID       string    `json:"id"`
	TenantID string    `json:"tenantId"`
	Name     string    `json:"name"`
	Severity string    `json:"severity"` // "warning" or "critical"
	Scope    RuleScope `json:"scope"`
	Enabled  bool      `json:"enabled"`

	Threshold    *Threshold    `json:"threshold,omitempty"`
	RateOfChange *RateOfChange `json:"rateOfChange,omitempty"`
	Expression   *Expression   `json:"expression,omitempty"`
	Stale        *Stale        `json:"stale,omitempty"`
	Offline      *Offline      `json:"offline,omitempty"`
}

// RuleScope selects the devices a rule watches: one device, every device
// of a site, or every device of a model. Exactly one field is set.
type RuleScope struct {
	DeviceID string `json:"deviceId,omitempty"`
	SiteID   string `json:"siteId,omitempty"`
	Model    string `json:"model,omitempty"`
}

// Threshold raises when a metric is beyond a limit. Op is "above" or
// "below" (against Value) or "outside" or "inside" (the band Low…High).
type Threshold struct {
	Metric      string   `json:"metric"`
	Op          string   `json:"op"`
	Value       *float64 `json:"value,omitempty"` // above, below
	Low         *float64 `json:"low,omitempty"`   // outside, inside
	High        *float64 `json:"high,omitempty"`  // outside, inside
	Hysteresis  float64  `json:"hysteresis,omitempty"`
	MinDuration Duration `json:"minDuration,omitzero"`
}

// RateOfChange raises when a metric changes faster than MaxRatePerMinute.
// Direction is "up", "down" or "either" (empty: either).
type RateOfChange struct {
	Metric           string   `json:"metric"`
	MaxRatePerMinute float64  `json:"maxRatePerMinute"`
	Direction        string   `json:"direction,omitempty"`
	Hysteresis       float64  `json:"hysteresis,omitempty"`
	MinDuration      Duration `json:"minDuration,omitzero"`
}

// Expression raises when a boolean expression over several metrics of one
// device is true, e.g. `outlet_temp - inlet_temp > 40 && pump_on == 1`.
type Expression struct {
	Expr        string   `json:"expr"`
	MinDuration Duration `json:"minDuration,omitzero"`
}

// Stale raises when a device has sent no value of Metric for After.
type Stale struct {
	Metric string   `json:"metric"`
	After  Duration `json:"after"`
}

// Offline raises when a device has been neither connected nor sent a
// message for After.
type Offline struct {
	After Duration `json:"after"`
}

// Duration is a time.Duration written in JSON as a Go duration string such
// as "5m" or "1h30m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"90s\" or \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// Rule is the API view of an alarm rule: the rule as its tenant wrote it,
// with who made it and when.
type Rule struct {
	RuleSpec
	CreatedBy string    `json:"createdBy,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// FieldProblem is one problem with one field of a request body.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// ValidationError is the answer to an invalid rule or plan: ErrorBody with
// each problem by field.
type ValidationError struct {
	ErrorBody
	Fields []FieldProblem `json:"fields"`
}

// RuleRequest is the body of POST /api/v1/rules (without id; tenantId
// defaults to the caller's) and PUT /api/v1/rules/{rule} (id and tenantId
// may be left out). Enabled defaults to true.
type RuleRequest struct {
	RuleSpec
	Enabled *bool `json:"enabled"` // shadows RuleSpec.Enabled
}
