package maintenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Plan is a tenant's maintenance plan for a device model: how the
// machine's running time is known, how often it is to be serviced, which
// wear measures to forecast and which signals to watch for anomalies. It is
// written as JSON, e.g.
//
//	{"model": "vp-40",
//	 "run": {"metric": "running", "kind": "onoff"},
//	 "service": {"everyRunHours": 2000, "everyMonths": 12},
//	 "trends": [{"metric": "temperature", "limit": 95, "window": "30d", "warnDays": 14, "whileRunning": true}],
//	 "anomalies": [{"metric": "motorCurrent", "alpha": 0.05, "threshold": 4, "warmup": 100, "whileRunning": true}]}
//
// ParsePlan reads it strictly (unknown fields are errors), fills in the
// defaults and validates it.
type Plan struct {
	Model     string         `json:"model"`
	Run       *RunSource     `json:"run,omitempty"`
	Service   *ServicePlan   `json:"service,omitempty"`
	Trends    []TrendWatch   `json:"trends,omitempty"`
	Anomalies []AnomalyWatch `json:"anomalies,omitempty"`
}

// How a plan's run metric tells that the machine runs.
const (
	RunOnOff     = "onoff"     // a 0/1 metric: running while it is 1 (≥ 0.5)
	RunHours     = "hours"     // a cumulative operating-hours counter
	RunThreshold = "threshold" // running while the metric is above Threshold
)

// Which way a trend's measure wears.
const (
	Rising  = "rising"  // the limit is a maximum
	Falling = "falling" // the limit is a minimum
)

// RunSource says how a machine's running time is known. For "onoff" and
// "threshold" the time between two samples counts as running if the first
// says so, but not across a gap longer than MaxGap (see RunCounter); for
// "hours" the counter's increases are the running time, however far apart
// the samples (a counter that goes back restarts the count).
type RunSource struct {
	Metric    string   `json:"metric"`
	Kind      string   `json:"kind"`
	Threshold *float64 `json:"threshold,omitempty"` // kind "threshold" only
	// MaxGap is the longest interval between samples that still counts as
	// running; default 1h. Not for kind "hours".
	MaxGap Duration `json:"maxGap,omitzero"`
}

// ServicePlan is the service interval and how early its warning comes.
type ServicePlan struct {
	ServiceInterval
	// WarnDays: the service-due warning is raised when the next service
	// is due within this many days (or overdue); default 7.
	WarnDays float64 `json:"warnDays,omitempty"`
}

// TrendWatch forecasts when a wear measure reaches its limit (see Trend):
// the metric is averaged over buckets (at least 10 minutes, at most 360 of
// them in the window), a line is fitted to the buckets of the last Window,
// and a warning is raised while the fitted value is at or beyond Limit, or
// the line moves towards Limit and reaches it within WarnDays.
//
// Direction says which way the measure wears: "rising" (the default; Limit
// is a maximum, as for a temperature) or "falling" (Limit is a minimum, as
// for a battery voltage). A line that moves the other way forecasts no
// crossing, so noise around a steady value does not warn.
type TrendWatch struct {
	Metric    string   `json:"metric"`
	Limit     *float64 `json:"limit"`
	Direction string   `json:"direction,omitempty"`
	Window    Duration `json:"window,omitzero"`    // default 30d
	WarnDays  float64  `json:"warnDays,omitempty"` // default 14
	// WhileRunning uses only samples taken while the machine runs (by the
	// plan's run metric), e.g. an oil temperature that means something
	// only when the pump is warm.
	WhileRunning bool `json:"whileRunning,omitempty"`
}

// AnomalyWatch scores each sample of a metric with an EWMA (see EWMA); a
// warning is raised when a score reaches Threshold (either way) and cleared
// when scores fall below half of it.
type AnomalyWatch struct {
	Metric       string  `json:"metric"`
	Alpha        float64 `json:"alpha,omitempty"`     // default 0.05
	Threshold    float64 `json:"threshold,omitempty"` // default 4
	Warmup       int     `json:"warmup,omitempty"`    // default 100
	WhileRunning bool    `json:"whileRunning,omitempty"`
}

// Plan defaults and limits.
const (
	DefaultRunMaxGap       = time.Hour
	DefaultServiceWarnDays = 7.0
	DefaultTrendWindow     = 30 * 24 * time.Hour
	DefaultTrendWarnDays   = 14.0
	DefaultAnomalyAlpha    = 0.05
	DefaultAnomalyScore    = 4.0
	DefaultAnomalyWarmup   = 100

	MinTrendWindow   = time.Hour
	MaxTrendWindow   = 366 * 24 * time.Hour
	MaxWarnDays      = 3660.0
	MaxPlanWatches   = 32  // trends, and anomalies, per plan
	MaxPlanMetricLen = 128 // bytes, as ingest accepts
	MaxPlanModelLen  = 128
	maxPlanBytes     = 64 << 10
)

// PlanError is one problem with one field of a plan; Field is the JSON
// path, e.g. "trends[1].window".
type PlanError struct {
	Field   string
	Problem string
}

func (e *PlanError) Error() string { return e.Field + ": " + e.Problem }

// ParsePlan reads a plan from JSON, fills in the defaults and validates
// it. Unknown fields and trailing data are errors; problems come as
// *PlanError values joined with errors.Join.
func ParsePlan(b []byte) (Plan, error) {
	var p Plan
	if len(b) > maxPlanBytes {
		return p, &PlanError{Field: "plan", Problem: fmt.Sprintf("longer than %d bytes", maxPlanBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, &PlanError{Field: "plan", Problem: jsonProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return Plan{}, &PlanError{Field: "plan", Problem: "data after the JSON object"}
	}
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: wrong type: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return "invalid JSON: " + err.Error()
}

// SetDefaults fills in every field left zero that has a default.
func (p *Plan) SetDefaults() {
	if p.Run != nil && p.Run.MaxGap == 0 && p.Run.Kind != RunHours {
		p.Run.MaxGap = Duration(DefaultRunMaxGap)
	}
	if p.Service != nil && p.Service.WarnDays == 0 {
		p.Service.WarnDays = DefaultServiceWarnDays
	}
	for i := range p.Trends {
		t := &p.Trends[i]
		if t.Window == 0 {
			t.Window = Duration(DefaultTrendWindow)
		}
		if t.WarnDays == 0 {
			t.WarnDays = DefaultTrendWarnDays
		}
		if t.Direction == "" {
			t.Direction = Rising
		}
	}
	for i := range p.Anomalies {
		a := &p.Anomalies[i]
		if a.Alpha == 0 {
			a.Alpha = DefaultAnomalyAlpha
		}
		if a.Threshold == 0 {
			a.Threshold = DefaultAnomalyScore
		}
		if a.Warmup == 0 {
			a.Warmup = DefaultAnomalyWarmup
		}
	}
}

// Validate reports every problem with p, each a *PlanError, joined with
// errors.Join. It expects the defaults filled in (SetDefaults).
func (p Plan) Validate() error {
	var v planValidator
	v.text("model", p.Model, MaxPlanModelLen)
	if p.Service == nil && len(p.Trends) == 0 && len(p.Anomalies) == 0 {
		v.add("plan", "set service, trends or anomalies: a plan with none of them does nothing")
	}
	if r := p.Run; r != nil {
		v.text("run.metric", r.Metric, MaxPlanMetricLen)
		switch r.Kind {
		case RunOnOff, RunHours:
			if r.Threshold != nil {
				v.add("run.threshold", "only for kind %q", RunThreshold)
			}
		case RunThreshold:
			if r.Threshold == nil {
				v.add("run.threshold", "required for kind %q", RunThreshold)
			} else {
				v.finite("run.threshold", *r.Threshold)
			}
		case "":
			v.add("run.kind", "required: %q, %q or %q", RunOnOff, RunHours, RunThreshold)
		default:
			v.add("run.kind", "%q is not %q, %q or %q", r.Kind, RunOnOff, RunHours, RunThreshold)
		}
		switch {
		case r.Kind == RunHours && r.MaxGap != 0:
			v.add("run.maxGap", "not for kind %q: the counter's increases count, however far apart", RunHours)
		case r.Kind != RunHours && r.MaxGap <= 0:
			v.add("run.maxGap", "must be a positive duration such as \"1h\", got %q", r.MaxGap.String())
		}
	}
	if s := p.Service; s != nil {
		if err := s.ServiceInterval.Validate(); err != nil {
			for _, e := range unjoin(err) {
				field, problem, ok := strings.Cut(e.Error(), ": ")
				if !ok || strings.Contains(field, " ") {
					field, problem = "", e.Error()
				}
				v.add(strings.TrimSuffix("service."+field, "."), "%s", problem)
			}
		}
		if s.EveryRunHours > 0 && p.Run == nil {
			v.add("service.everyRunHours", "needs run: how the machine's running time is known")
		}
		v.days("service.warnDays", s.WarnDays)
	}
	if len(p.Trends) > MaxPlanWatches {
		v.add("trends", "at most %d, got %d", MaxPlanWatches, len(p.Trends))
	}
	seen := map[string]int{}
	for i, t := range p.Trends {
		f := fmt.Sprintf("trends[%d]", i)
		v.text(f+".metric", t.Metric, MaxPlanMetricLen)
		if j, dup := seen[t.Metric]; dup && t.Metric != "" {
			v.add(f+".metric", "%q is already watched by trends[%d]", t.Metric, j)
		}
		seen[t.Metric] = i
		if t.Limit == nil {
			v.add(f+".limit", "required: the value the measure must not reach")
		} else {
			v.finite(f+".limit", *t.Limit)
		}
		if w := t.Window.D(); w < MinTrendWindow || w > MaxTrendWindow {
			v.add(f+".window", "must be between %s and %s, got %s", Duration(MinTrendWindow), Duration(MaxTrendWindow), t.Window)
		}
		v.days(f+".warnDays", t.WarnDays)
		if t.Direction != Rising && t.Direction != Falling {
			v.add(f+".direction", "%q is not %q or %q", t.Direction, Rising, Falling)
		}
		if t.WhileRunning && p.Run == nil {
			v.add(f+".whileRunning", "needs run: how the machine's running time is known")
		}
	}
	if len(p.Anomalies) > MaxPlanWatches {
		v.add("anomalies", "at most %d, got %d", MaxPlanWatches, len(p.Anomalies))
	}
	seen = map[string]int{}
	for i, a := range p.Anomalies {
		f := fmt.Sprintf("anomalies[%d]", i)
		v.text(f+".metric", a.Metric, MaxPlanMetricLen)
		if j, dup := seen[a.Metric]; dup && a.Metric != "" {
			v.add(f+".metric", "%q is already watched by anomalies[%d]", a.Metric, j)
		}
		seen[a.Metric] = i
		if !(a.Alpha > 0 && a.Alpha < 1) {
			v.add(f+".alpha", "must be between 0 and 1 (exclusive), got %g", a.Alpha)
		}
		if v.finite(f+".threshold", a.Threshold) && a.Threshold <= 0 {
			v.add(f+".threshold", "must be positive, got %g", a.Threshold)
		}
		if a.Warmup < 2 || a.Warmup > 1_000_000 {
			v.add(f+".warmup", "must be between 2 and 1000000 readings, got %d", a.Warmup)
		}
		if a.WhileRunning && p.Run == nil {
			v.add(f+".whileRunning", "needs run: how the machine's running time is known")
		}
	}
	return v.err()
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

type planValidator struct{ errs []error }

func (v *planValidator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &PlanError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (v *planValidator) err() error { return errors.Join(v.errs...) }

func (v *planValidator) text(field, s string, max int) {
	switch {
	case s == "":
		v.add(field, "required")
	case len(s) > max:
		v.add(field, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		v.add(field, "not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		v.add(field, "has a control character")
	}
}

func (v *planValidator) finite(field string, x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		v.add(field, "must be a finite number")
		return false
	}
	return true
}

func (v *planValidator) days(field string, d float64) {
	if v.finite(field, d) && (d <= 0 || d > MaxWarnDays) {
		v.add(field, "must be more than 0 and at most %g days, got %g", MaxWarnDays, d)
	}
}

// Duration is a time.Duration written in JSON as a string: a Go duration
// such as "90m" or "1h30m", or whole and fractional days such as "30d",
// "1.5d" or "2d12h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes whole days as "30d", days and a rest as "2d12h0m0s", and
// anything shorter than a day as a Go duration.
func (d Duration) String() string {
	const day = 24 * time.Hour
	t := time.Duration(d)
	if t < day {
		return t.String()
	}
	days, rest := t/day, t%day
	s := strconv.FormatInt(int64(days), 10) + "d"
	if rest != 0 {
		s += rest.String()
	}
	return s
}

// MarshalJSON writes d as a string (see String).
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string (see Duration).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30d\" or \"12h\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration ("90m", "1h30m") optionally preceded
// by a number of days ("30d", "1.5d", "2d12h").
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("duration %q: want days such as \"30d\" or a Go duration such as \"12h\"", s)
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		v, err := time.ParseDuration(s)
		if err != nil {
			return 0, bad
		}
		return v, nil
	}
	n, err := strconv.ParseFloat(days, 64)
	if err != nil || days == "" || strings.ContainsAny(days, "eEinfINFxX_") || n < 0 || n > 100*366 {
		return 0, bad
	}
	v := time.Duration(math.Round(n * float64(24*time.Hour)))
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 || strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "-") {
			return 0, bad
		}
		v += r
	}
	return v, nil
}
