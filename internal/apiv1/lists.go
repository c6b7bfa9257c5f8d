package apiv1

// The answers of the list endpoints.

// DeviceList is the answer of GET /api/v1/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// TenantList is the answer of GET /api/v1/tenants.
type TenantList struct {
	Tenants []Tenant `json:"tenants"`
}

// SiteList is the answer of GET /api/v1/sites.
type SiteList struct {
	Sites []Site `json:"sites"`
}

// UserList is the answer of GET /api/v1/users.
type UserList struct {
	Users []User `json:"users"`
}

// GrantList is the answer of GET /api/v1/grants.
type GrantList struct {
	Grants []Grant `json:"grants"`
}

// TokenList is the answer of GET /api/v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// SessionList is the answer of GET /api/v1/me/sessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// RuleList is the answer of GET /api/v1/rules.
type RuleList struct {
	Rules []Rule `json:"rules"`
}

// WebhookList is the answer of GET /api/v1/webhooks.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// DeliveryList is the answer of GET /api/v1/deliveries.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// MaintenancePlanList is the answer of GET /api/v1/maintenance-plans.
type MaintenancePlanList struct {
	Plans []MaintenancePlan `json:"plans"`
}

// EnrollmentGroupList is the answer of GET /api/v1/dps/enrollment-groups.
type EnrollmentGroupList struct {
	EnrollmentGroups []EnrollmentGroup `json:"enrollmentGroups"`
}

// EnrollmentList is the answer of GET /api/v1/dps/enrollments.
type EnrollmentList struct {
	Enrollments []Enrollment `json:"enrollments"`
}

// C2DMessageList is the answer of GET /api/v1/devices/{id}/c2d.
type C2DMessageList struct {
	Messages []C2DMessage `json:"messages"`
}

// DeviceMetrics is the answer of GET /api/v1/devices/{id}/telemetry/latest.
type DeviceMetrics struct {
	DeviceID string   `json:"deviceId"`
	Metrics  []Metric `json:"metrics"`
}

// DeviceSeries is the answer of GET /api/v1/devices/{id}/telemetry?metrics=….
type DeviceSeries struct {
	DeviceID string   `json:"deviceId"`
	Series   []Series `json:"series"`
}

// MetricHistory is the answer of GET /api/v1/devices/{id}/telemetry/{metric}.
type MetricHistory struct {
	DeviceID string `json:"deviceId"`
	Series
}

// RejectedList is the answer of GET /api/v1/devices/{id}/rejected.
type RejectedList struct {
	DeviceID string     `json:"deviceId"`
	Rejected []Rejected `json:"rejected"`
}

// MessageList is the answer of GET /api/v1/devices/{id}/messages.
type MessageList struct {
	DeviceID string    `json:"deviceId"`
	Messages []Message `json:"messages"`
}
