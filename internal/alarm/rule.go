package alarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity is how urgent a rule's alarms are.
type Severity string

// The severities a rule may have.
const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Rule is an alarm rule as a tenant writes it. Exactly one of Threshold,
// RateOfChange, Expression, Stale and Offline is set.
type Rule struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenantId"`
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	Scope    Scope    `json:"scope"`
	Enabled  bool     `json:"enabled"`

	Threshold    *Threshold    `json:"threshold,omitempty"`
	RateOfChange *RateOfChange `json:"rateOfChange,omitempty"`
	Expression   *Expression   `json:"expression,omitempty"`
	Stale        *Stale        `json:"stale,omitempty"`
	Offline      *Offline      `json:"offline,omitempty"`
}

// Scope selects the devices a rule watches: one device, every device of a
// site, or every device of a model. Exactly one field is set. Whatever the
// scope, a rule only ever watches devices of its own tenant or of tenants
// below it (see DeviceFacts.TenantPath).
type Scope struct {
	DeviceID string `json:"deviceId,omitempty"`
	SiteID   string `json:"siteId,omitempty"`
	Model    string `json:"model,omitempty"`
}

// DeviceFacts is what the evaluator needs to know about a device to find
// the rules that apply to it.
type DeviceFacts struct {
	ID string `json:"id"`
	// TenantPath is the ids of the device's tenant and its ancestors from
	// the root down, joined by "/" (as store.Tenant.Path), e.g.
	// "root/acme/acme-north". A rule applies only when its TenantID is one
	// of them, so a rule of the operator ("root") may watch all machines of
	// a model while a customer's rule never sees another customer's device.
	TenantPath string `json:"tenantPath"`
	SiteID     string `json:"siteId,omitempty"` // empty: not assigned to a site
	Model      string `json:"model,omitempty"`
}

// Op says how a threshold compares a value with its limits.
type Op string

// The threshold comparisons. Above and Below compare with Value; Outside
// and Inside with the band Low…High, bounds included in the band.
const (
	Above   Op = "above"   // value > Value
	Below   Op = "below"   // value < Value
	Outside Op = "outside" // value < Low or value > High
	Inside  Op = "inside"  // Low <= value <= High
)

// Threshold raises when a metric is beyond a limit.
//
// Hysteresis: a raised alarm clears only once the value is back past the
// limit by Hysteresis: for above at value <= Value-Hysteresis, for below at
// value >= Value+Hysteresis, for outside at Low+Hysteresis <= value <=
// High-Hysteresis, for inside at value < Low-Hysteresis or value >
// High+Hysteresis.
//
// MinDuration: the condition must hold this long, sample after sample,
// before the alarm raises (see Evaluator for how time is judged). Clearing
// needs no duration.
type Threshold struct {
	Metric      string   `json:"metric"`
	Op          Op       `json:"op"`
	Value       *float64 `json:"value,omitempty"` // above, below
	Low         *float64 `json:"low,omitempty"`   // outside, inside
	High        *float64 `json:"high,omitempty"`  // outside, inside
	Hysteresis  float64  `json:"hysteresis,omitempty"`
	MinDuration Duration `json:"minDuration,omitzero"`
}

// Direction says which changes a rate-of-change rule watches.
type Direction string

// The directions of change. An empty Direction means Either.
const (
	Up     Direction = "up"
	Down   Direction = "down"
	Either Direction = "either"
)

// RateOfChange raises when a metric changes faster than MaxRatePerMinute.
// The rate is taken between consecutive samples of the metric: (v2-v1)
// divided by the minutes between their timestamps. It needs no history
// beyond the previous sample; MinDuration (as for Threshold) filters single
// noisy steps. A raised alarm clears once the rate in the watched direction
// (for Either its absolute value) is at most MaxRatePerMinute-Hysteresis.
type RateOfChange struct {
	Metric           string    `json:"metric"`
	MaxRatePerMinute float64   `json:"maxRatePerMinute"`
	Direction        Direction `json:"direction,omitempty"`
	Hysteresis       float64   `json:"hysteresis,omitempty"`
	MinDuration      Duration  `json:"minDuration,omitzero"`
}

// Expression raises when a boolean expression over several metrics of one
// device is true (expr-lang syntax, e.g. `outlet_temp - inlet_temp > 40 &&
// pump_on == 1`).
//
// Every identifier that is not a builtin function is a metric name, so
// metrics need not be declared: the expression is checked with each of them
// as a float64. A dotted name such as motor.current is the metric
// "motor.current" (ingest flattens nested objects that way); any other name
// is written $env["inlet-temp"]. The expression sees the latest value of
// every metric it names, whatever message carried it, and is not evaluated
// until each has had a value. It clears as soon as it is false again.
//
// Expressions are arithmetic, comparisons and logic (including `x in [1,
// 2]`, `let` and `?:`) with the numeric builtins abs, ceil, floor, round,
// int, float, min, max, mean and median; other builtins, ranges and
// predicates are refused, so that evaluation stays cheap, bounded and
// deterministic. A runtime error (rare with float64 operands) counts as
// false.
type Expression struct {
	Expr        string   `json:"expr"`
	MinDuration Duration `json:"minDuration,omitzero"`
}

// Stale raises when a device has sent no value of Metric for After, and
// clears with the next value. The time counts from the last value, or, if
// none has been seen, from when the evaluator first watched the device with
// this rule.
type Stale struct {
	Metric string   `json:"metric"`
	After  Duration `json:"after"`
}

// Offline raises when a device has been neither connected nor sent a
// message for After, and clears when it connects or sends a message. A
// device that only ever sends messages (a LoRaWAN meter behind a network
// server) is offline After its last message.
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

// Limits on a rule's content.
const (
	MaxMetricName = 128  // bytes, as ingest accepts
	MaxExprLen    = 2048 // bytes
	maxIDLen      = 128
	maxNameLen    = 200
	maxExprNodes  = 500
)

// FieldError is one problem with one field of a rule. Field is the JSON
// path of the field, e.g. "threshold.hysteresis".
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Validate reports every problem with r, each as a *FieldError, joined with
// errors.Join; nil means New accepts r. It compiles r's expression, so it
// costs about as much as compiling the rule.
func (r Rule) Validate() error {
	_, err := compile(r)
	return err
}

// Matches reports whether the rule watches dev: dev belongs to the rule's
// tenant or one below it, and dev is the rule's device, is at its site or is
// of its model. Enabled is not considered.
func (r Rule) Matches(dev DeviceFacts) bool {
	if !inTenantPath(dev.TenantPath, r.TenantID) {
		return false
	}
	switch {
	case r.Scope.DeviceID != "":
		return dev.ID == r.Scope.DeviceID
	case r.Scope.SiteID != "":
		return dev.SiteID == r.Scope.SiteID
	case r.Scope.Model != "":
		return dev.Model == r.Scope.Model
	}
	return false
}

func inTenantPath(path, tenant string) bool {
	if tenant == "" {
		return false
	}
	for path != "" {
		seg, rest, _ := strings.Cut(path, "/")
		if seg == tenant {
			return true
		}
		path = rest
	}
	return false
}

// kind is which condition a rule has.
type kind uint8

const (
	kindThreshold kind = iota
	kindRate
	kindExpr
	kindStale
	kindOffline
)

// conditionKinds names the condition fields that are set.
func (r Rule) conditionKinds() []string {
	var set []string
	if r.Threshold != nil {
		set = append(set, "threshold")
	}
	if r.RateOfChange != nil {
		set = append(set, "rateOfChange")
	}
	if r.Expression != nil {
		set = append(set, "expression")
	}
	if r.Stale != nil {
		set = append(set, "stale")
	}
	if r.Offline != nil {
		set = append(set, "offline")
	}
	return set
}

// validator collects field errors.
type validator struct{ errs []error }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) text(field, s string, max int, required bool) {
	switch {
	case s == "" && required:
		v.add(field, "required")
	case len(s) > max:
		v.add(field, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		v.add(field, "not valid UTF-8")
	case hasControl(s):
		v.add(field, "has a control character")
	}
}

func (v *validator) metric(field, name string) {
	if problem := metricNameProblem(name); problem != "" {
		v.add(field, "%s", problem)
	}
}

// metricNameProblem applies ingest's rules for metric names: non-empty, at
// most MaxMetricName bytes of UTF-8 without control characters.
func metricNameProblem(name string) string {
	switch {
	case name == "":
		return "metric name required"
	case len(name) > MaxMetricName:
		return fmt.Sprintf("metric name %.32q… longer than %d bytes", name, MaxMetricName)
	case !utf8.ValidString(name):
		return fmt.Sprintf("metric name %q is not valid UTF-8", name)
	case hasControl(name):
		return fmt.Sprintf("metric name %q has a control character", name)
	}
	return ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func (v *validator) finite(field string, x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		v.add(field, "must be a finite number")
		return false
	}
	return true
}

func (v *validator) nonNegative(field string, x float64) {
	if v.finite(field, x) && x < 0 {
		v.add(field, "must not be negative, got %g", x)
	}
}

func (v *validator) minDuration(field string, d Duration) {
	if d < 0 {
		v.add(field, "must not be negative, got %s", d)
	}
}

func (v *validator) after(field string, d Duration) {
	if d <= 0 {
		v.add(field, "must be a positive duration such as \"10m\", got %q", d.String())
	}
}

func (v *validator) common(r Rule) {
	v.text("id", r.ID, maxIDLen, true)
	v.text("tenantId", r.TenantID, maxIDLen, true)
	if strings.Contains(r.TenantID, "/") {
		v.add("tenantId", "must not contain \"/\"")
	}
	v.text("name", r.Name, maxNameLen, true)
	switch r.Severity {
	case Warning, Critical:
	case "":
		v.add("severity", "required: %q or %q", Warning, Critical)
	default:
		v.add("severity", "%q is not %q or %q", r.Severity, Warning, Critical)
	}
	var set []string
	if r.Scope.DeviceID != "" {
		set = append(set, "deviceId")
		v.text("scope.deviceId", r.Scope.DeviceID, maxIDLen, true)
	}
	if r.Scope.SiteID != "" {
		set = append(set, "siteId")
		v.text("scope.siteId", r.Scope.SiteID, maxIDLen, true)
	}
	if r.Scope.Model != "" {
		set = append(set, "model")
		v.text("scope.model", r.Scope.Model, maxIDLen, true)
	}
	if len(set) != 1 {
		v.add("scope", "exactly one of deviceId, siteId and model must be set, got %s", listOrNone(set))
	}
	if kinds := r.conditionKinds(); len(kinds) != 1 {
		v.add("condition", "exactly one of threshold, rateOfChange, expression, stale and offline must be set, got %s", listOrNone(kinds))
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (v *validator) threshold(t *Threshold) {
	v.metric("threshold.metric", t.Metric)
	v.nonNegative("threshold.hysteresis", t.Hysteresis)
	v.minDuration("threshold.minDuration", t.MinDuration)
	switch t.Op {
	case Above, Below:
		if t.Value == nil {
			v.add("threshold.value", "required for op %q", t.Op)
		} else {
			v.finite("threshold.value", *t.Value)
		}
		if t.Low != nil || t.High != nil {
			v.add("threshold.low", "only for ops %q and %q; op %q uses value", Outside, Inside, t.Op)
		}
	case Outside, Inside:
		if t.Value != nil {
			v.add("threshold.value", "only for ops %q and %q; op %q uses low and high", Above, Below, t.Op)
		}
		if t.Low == nil || t.High == nil {
			v.add("threshold.low", "low and high are required for op %q", t.Op)
			return
		}
		lowOK := v.finite("threshold.low", *t.Low)
		highOK := v.finite("threshold.high", *t.High)
		if !lowOK || !highOK {
			return
		}
		if *t.Low > *t.High {
			v.add("threshold.low", "low %g is above high %g", *t.Low, *t.High)
			return
		}
		if t.Op == Outside && t.Hysteresis >= 0 && 2*t.Hysteresis > *t.High-*t.Low {
			v.add("threshold.hysteresis", "%g is more than half the band %g…%g, so the alarm could never clear", t.Hysteresis, *t.Low, *t.High)
		}
	case "":
		v.add("threshold.op", "required: one of above, below, outside, inside")
	default:
		v.add("threshold.op", "%q is not one of above, below, outside, inside", t.Op)
	}
}

func (v *validator) rate(r *RateOfChange) {
	v.metric("rateOfChange.metric", r.Metric)
	if v.finite("rateOfChange.maxRatePerMinute", r.MaxRatePerMinute) && r.MaxRatePerMinute <= 0 {
		v.add("rateOfChange.maxRatePerMinute", "must be positive, got %g", r.MaxRatePerMinute)
	}
	v.nonNegative("rateOfChange.hysteresis", r.Hysteresis)
	if r.Hysteresis > 0 && r.Hysteresis >= r.MaxRatePerMinute {
		v.add("rateOfChange.hysteresis", "%g must be below maxRatePerMinute %g", r.Hysteresis, r.MaxRatePerMinute)
	}
	switch r.Direction {
	case "", Up, Down, Either:
	default:
		v.add("rateOfChange.direction", "%q is not one of up, down, either", r.Direction)
	}
	v.minDuration("rateOfChange.minDuration", r.MinDuration)
}
