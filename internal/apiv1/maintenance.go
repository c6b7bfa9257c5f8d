package apiv1

import "time"

// MaintenancePlan is the API view of a tenant's maintenance plan for a
// device model (defaults filled in), with its tenant and when it was last
// set. Durations are strings: whole or fractional days such as "30d" or
// "1.5d", or Go durations such as "12h".
type MaintenancePlan struct {
	TenantID string `json:"tenantId"`
	Plan
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Plan is a maintenance plan as a tenant writes it: the body of PUT
// /api/v1/maintenance-plans/{model}.
type Plan struct {
	Model     string         `json:"model"`
	Run       *RunSource     `json:"run,omitempty"`
	Service   *ServicePlan   `json:"service,omitempty"`
	Trends    []TrendWatch   `json:"trends,omitempty"`
	Anomalies []AnomalyWatch `json:"anomalies,omitempty"`
}

// RunSource says how a machine's running time is known: Kind "onoff" (a
// 0/1 metric), "hours" (an operating-hours counter) or "threshold" (running
// while the metric is above Threshold).
type RunSource struct {
	Metric    string   `json:"metric"`
	Kind      string   `json:"kind"`
	Threshold *float64 `json:"threshold,omitempty"` // kind "threshold" only
	// MaxGap is the longest interval between samples that still counts as
	// running; default 1h. Not for kind "hours".
	MaxGap string `json:"maxGap,omitempty"`
}

// ServicePlan is the service interval and how early its warning comes.
type ServicePlan struct {
	EveryRunHours float64 `json:"everyRunHours,omitempty"`
	EveryMonths   int     `json:"everyMonths,omitempty"`
	// WarnDays: the service-due warning is raised when the next service
	// is due within this many days (or overdue); default 7.
	WarnDays float64 `json:"warnDays,omitempty"`
}

// TrendWatch forecasts when a wear measure reaches its limit. Direction is
// "rising" (the default; Limit is a maximum) or "falling".
type TrendWatch struct {
	Metric       string   `json:"metric"`
	Limit        *float64 `json:"limit"`
	Direction    string   `json:"direction,omitempty"`
	Window       string   `json:"window,omitempty"`   // default 30d
	WarnDays     float64  `json:"warnDays,omitempty"` // default 14
	WhileRunning bool     `json:"whileRunning,omitempty"`
}

// AnomalyWatch scores each sample of a metric with an EWMA; a warning is
// raised when a score reaches Threshold (either way).
type AnomalyWatch struct {
	Metric       string  `json:"metric"`
	Alpha        float64 `json:"alpha,omitempty"`     // default 0.05
	Threshold    float64 `json:"threshold,omitempty"` // default 4
	Warmup       int     `json:"warmup,omitempty"`    // default 100
	WhileRunning bool    `json:"whileRunning,omitempty"`
}

// ServiceRecord is the body of POST /api/v1/devices/{id}/maintenance/service
// (optional): when the service was done (zero: now).
type ServiceRecord struct {
	At time.Time `json:"at,omitzero"`
}
