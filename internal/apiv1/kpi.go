package apiv1

import (
	"time"
)

// KPIFigures are the key figures of a device, or of all devices of a
// report, over its period. Durations are in seconds.
type KPIFigures struct {
	// Alarms counts the alarms raised in the period, by severity.
	Alarms map[string]int `json:"alarms"`
	// TimeInAlarm: the time at least one alarm was active.
	TimeInAlarm float64 `json:"timeInAlarm"`
	// Downtime: the time at least one critical alarm was active.
	Downtime float64 `json:"downtime"`
	// Availability is 1 - downtime/period (for all devices: their mean).
	Availability float64 `json:"availability"`
	// Failures are the critical alarms raised in the period.
	Failures int `json:"failures"`
	// Repairs are the critical alarms cleared in the period.
	Repairs int `json:"repairs"`
	// MTBF is (period - downtime) / failures; null without failures.
	MTBF *float64 `json:"mtbf"`
	// MTTR is the downtime of the repaired alarms / repairs; null
	// without repairs.
	MTTR *float64 `json:"mttr"`
	// Utilisation is the share of the period the machine ran, from its
	// maintenance plan's run source; null without one (for all devices:
	// the mean of those that have one).
	Utilisation *float64 `json:"utilisation"`
}

// KPIDevice is one device's figures.
type KPIDevice struct {
	DeviceID string `json:"deviceId"`
	Name     string `json:"name,omitempty"`
	SiteID   string `json:"siteId,omitempty"`
	Model    string `json:"model,omitempty"`
	KPIFigures
}

// KPIReport is the answer of GET /api/v1/kpi.
type KPIReport struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Period is To - From in seconds.
	Period float64 `json:"period"`
	// Scope is what the report covers: "device", "site" or "tenant", and
	// its ID.
	Scope   string      `json:"scope"`
	ScopeID string      `json:"scopeId"`
	Total   KPIFigures  `json:"total"`
	Devices []KPIDevice `json:"devices"`
	// Series is the total per bucket when ?bucket= (e.g. 1d) was given,
	// for charts; utilisation is left out of it.
	Series []KPIBucket `json:"series,omitempty"`
}

// KPIBucket is the total figures of one bucket of a report's period.
type KPIBucket struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	KPIFigures
}
