package api

import (
	"net/http"

	"github.com/warden-iot/warden/internal/access"
)

// routes is every authenticated endpoint with the policy it needs. The
// OpenAPI document (openapi.yaml) is checked against this list.
func (a *API) routes() []route {
	enroll := scopeKind(access.KindEnrollment)
	return []route{
		// Who am I.
		{"GET /api/v1/session", access.UserSelf, self, a.session, "The signed-in account and the session's CSRF token"},
		{"DELETE /api/v1/session", access.UserSelf, self, a.logout, "Sign out"},
		{"GET /api/v1/me", access.UserSelf, self, a.getMe, "Your account"},
		{"PATCH /api/v1/me", access.UserSelf, self, a.updateMe, "Change your name, phone, company or address"},
		{"PUT /api/v1/me/password", access.UserSelf, self, a.changePassword, "Change your password"},
		{"GET /api/v1/me/sessions", access.UserSelf, self, a.listSessions, "Your signed-in sessions"},
		{"DELETE /api/v1/me/sessions/{session}", access.UserSelf, self, a.deleteSession, "End one of your sessions"},
		{"POST /api/v1/me/totp", access.UserSelf, self, a.startTOTP, "Start two-factor sign-in: a new TOTP secret"},
		{"POST /api/v1/me/totp/confirm", access.UserSelf, self, a.confirmTOTP, "Turn two-factor sign-in on with a code"},
		{"DELETE /api/v1/me/totp", access.UserSelf, self, a.disableTOTP, "Turn two-factor sign-in off"},
		{"GET /api/v1/tokens", access.UserSelf, self, a.listTokens, "Your API tokens"},
		{"POST /api/v1/tokens", access.UserSelf, self, a.createToken, "Make an API token acting for you, optionally read-only or expiring"},
		{"DELETE /api/v1/tokens/{token}", access.UserSelf, self, a.deleteToken, "Revoke one of your API tokens"},

		// Tenants.
		{"GET /api/v1/tenant", access.TenantRead, scopeTenant, a.getTenant, "Your tenant (or ?tenant=)"},
		{"PATCH /api/v1/tenant", access.TenantUpdate, scopeTenant, a.updateTenant, "Change your tenant (or ?tenant=)"},
		{"GET /api/v1/tenants", access.TenantRead, listed, a.listTenants, "Tenants you can see: yours and below"},
		{"POST /api/v1/tenants", access.TenantCreate, listed, a.createTenant, "Make a customer or sub-customer below a tenant you administer"},
		{"GET /api/v1/tenants/{tenant}", access.TenantRead, byTenant, a.getTenantByID, "One tenant"},
		{"PATCH /api/v1/tenants/{tenant}", access.TenantUpdate, byTenant, a.updateTenant, "Change a tenant"},
		{"DELETE /api/v1/tenants/{tenant}", access.TenantDelete, byTenant, a.deleteTenant, "Delete a tenant without sub-tenants, with everything in it"},

		// Sites.
		{"GET /api/v1/sites", access.SiteRead, listed, a.listSites, "Sites you can see"},
		{"POST /api/v1/sites", access.SiteManage, listed, a.createSite, "Make a site (installation) in a tenant"},
		{"GET /api/v1/sites/{site}", access.SiteRead, bySite, a.getSite, "One site"},
		{"PATCH /api/v1/sites/{site}", access.SiteManage, bySite, a.updateSite, "Change a site's name or address"},
		{"DELETE /api/v1/sites/{site}", access.SiteManage, bySite, a.deleteSite, "Delete a site; its devices stay, unassigned"},
		{"PUT /api/v1/sites/{site}/factory-access", access.SiteFactoryAccess, bySite, a.setFactoryAccess, "The owner's factory service access switch"},

		// Devices.
		{"GET /api/v1/devices", access.DeviceRead, listed, a.listDevices, "Devices you can see"},
		{"POST /api/v1/devices", access.DeviceManage, listed, a.createDevice, "Register a device"},
		{"GET /api/v1/devices/{id}", access.DeviceRead, byDevice, a.getDevice, "One device"},
		{"PATCH /api/v1/devices/{id}", access.DeviceManage, byDevice, a.updateDevice, "Enable or disable a device, change its site or metadata"},
		{"DELETE /api/v1/devices/{id}", access.DeviceManage, byDevice, a.deleteDevice, "Delete a device and its data"},
		{"POST /api/v1/devices/{id}/keys/regenerate", access.DeviceManage, byDevice, a.regenerateKeys, "Replace a device's keys"},
		{"POST /api/v1/devices/{id}/token", access.DeviceToken, byDevice, a.deviceToken, "Make a SAS token for a device"},
		{"GET /api/v1/devices/{id}/telemetry/latest", access.DeviceData, byDevice, a.latest, "A device's latest values"},
		{"GET /api/v1/devices/{id}/telemetry/{metric}", access.DeviceData, byDevice, a.history, "One metric's history, raw or downsampled"},
		{"GET /api/v1/devices/{id}/telemetry", access.DeviceData, byDevice, a.historyMany, "Several metrics' history"},
		{"GET /api/v1/devices/{id}/rejected", access.DeviceData, byDevice, a.rejected, "Messages refused, with reason and payload"},
		{"GET /api/v1/devices/{id}/messages", access.DeviceData, byDevice, a.messages, "Recent accepted messages"},
		{"GET /api/v1/devices/{id}/twin", access.DeviceData, byDevice, a.getTwin, "A device's twin"},
		{"PATCH /api/v1/devices/{id}/twin", access.DeviceOperate, byDevice, a.patchTwin, "Change desired properties or tags"},
		{"POST /api/v1/devices/{id}/methods/{name}", access.DeviceOperate, byDevice, a.invokeMethod, "Call a direct method"},
		{"POST /api/v1/devices/{id}/c2d", access.DeviceOperate, byDevice, a.sendC2D, "Queue a cloud-to-device message"},
		{"GET /api/v1/devices/{id}/c2d", access.DeviceData, byDevice, a.listC2D, "Queued cloud-to-device messages"},
		{"GET /api/v1/telemetry/latest", access.DeviceData, listed, a.fleetLatest, "Latest values of a tenant's devices, a page at a time"},

		// Device provisioning.
		{"GET /api/v1/dps", access.EnrollmentRead, enroll, a.dpsInfo, "The tenant's DPS ID scope and endpoint"},
		{"GET /api/v1/dps/enrollment-groups", access.EnrollmentRead, enroll, a.listEnrollmentGroups, "Enrollment groups"},
		{"POST /api/v1/dps/enrollment-groups", access.EnrollmentManage, enroll, a.createEnrollmentGroup, "Make an enrollment group"},
		{"GET /api/v1/dps/enrollment-groups/{id}", access.EnrollmentRead, enroll, a.getEnrollmentGroup, "One enrollment group"},
		{"PATCH /api/v1/dps/enrollment-groups/{id}", access.EnrollmentManage, enroll, a.updateEnrollmentGroup, "Change an enrollment group"},
		{"DELETE /api/v1/dps/enrollment-groups/{id}", access.EnrollmentManage, enroll, a.deleteEnrollmentGroup, "Delete an enrollment group"},
		{"GET /api/v1/dps/enrollments", access.EnrollmentRead, enroll, a.listEnrollments, "Individual enrollments"},
		{"POST /api/v1/dps/enrollments", access.EnrollmentManage, enroll, a.createEnrollment, "Make an individual enrollment"},
		{"GET /api/v1/dps/enrollments/{id}", access.EnrollmentRead, enroll, a.getEnrollment, "One individual enrollment"},
		{"PATCH /api/v1/dps/enrollments/{id}", access.EnrollmentManage, enroll, a.updateEnrollment, "Change an individual enrollment"},
		{"DELETE /api/v1/dps/enrollments/{id}", access.EnrollmentManage, enroll, a.deleteEnrollment, "Delete an individual enrollment"},
		{"GET /api/v1/dps/registrations", access.EnrollmentRead, enroll, a.listRegistrations, "Device registrations"},
		{"GET /api/v1/dps/registrations/{id}", access.EnrollmentRead, enroll, a.getRegistration, "One registration"},
		{"DELETE /api/v1/dps/registrations/{id}", access.EnrollmentManage, enroll, a.deleteRegistration, "Delete a registration"},

		// People.
		{"GET /api/v1/users", access.UserRead, listed, a.listUsers, "Accounts you can see"},
		{"POST /api/v1/users", access.UserCreate, listed, a.createUser, "Make an account; the person gets an activation link"},
		{"GET /api/v1/users/{user}", access.UserRead, byUser, a.getUser, "One account"},
		{"PATCH /api/v1/users/{user}", access.UserManage, byUser, a.updateUser, "Change an account: names, role, enabled or disabled"},
		{"DELETE /api/v1/users/{user}", access.UserDelete, byUser, a.deleteUser, "Delete an account"},
		{"POST /api/v1/users/{user}/activation", access.UserEntrust, byUser, a.resendActivation, "Send a new activation link"},
		{"GET /api/v1/supporters/{supporterId}", access.GrantManage, scopeTenant, a.lookupSupporter, "Who a supporter id belongs to, before granting"},

		// Owner-controlled access.
		{"GET /api/v1/grants", access.GrantRead, listed, a.listGrants, "Grants to supporters you can see (as owner or as supporter)"},
		{"POST /api/v1/grants", access.GrantCreate, listed, a.createGrant, "Grant a supporter access to a site or device"},
		{"GET /api/v1/grants/{grant}", access.GrantRead, byGrant, a.getGrant, "One grant"},
		{"DELETE /api/v1/grants/{grant}", access.GrantManage, byGrant, a.revokeGrant, "Revoke a grant; effective on the next request"},

		// Audit trail.
		{"GET /api/v1/access-log", access.AuditRead, scopeKind(access.KindAudit), a.accessLog, "Who did what to a tenant's machines, sites, grants and accounts"},
		{"GET /api/v1/audit", access.AuditAll, scopeKind(access.KindAudit), a.listAudit, "The whole audit trail (operator)"},
		{"GET /api/v1/audit/export", access.AuditAll, scopeKind(access.KindAudit), a.exportAudit, "The audit trail as JSON lines (operator)"},

		// Alarm rules, alarms, notifications and key figures.
		{"GET /api/v1/rules", access.RuleRead, listed, a.listRules, "Alarm rules you can see"},
		{"POST /api/v1/rules", access.RuleManage, listed, a.createRule, "Make an alarm rule in a tenant"},
		{"GET /api/v1/rules/{rule}", access.RuleRead, byRule, a.getRule, "One alarm rule"},
		{"PUT /api/v1/rules/{rule}", access.RuleManage, byRule, a.updateRule, "Replace an alarm rule's definition"},
		{"DELETE /api/v1/rules/{rule}", access.RuleManage, byRule, a.deleteRule, "Delete an alarm rule; its alarms stay"},
		{"GET /api/v1/alarms", access.AlarmRead, listed, a.listAlarms, "Alarms of the devices whose data you may read"},
		{"GET /api/v1/alarms/{alarm}", access.AlarmRead, byAlarm, a.getAlarm, "One alarm"},
		{"POST /api/v1/alarms/{alarm}/ack", access.AlarmAck, byAlarm, a.ackAlarm, "Acknowledge an alarm"},
		{"POST /api/v1/alarms/{alarm}/clear", access.AlarmClear, byAlarm, a.clearAlarm, "Clear an active alarm by hand"},
		{"GET /api/v1/me/notifications", access.UserSelf, self, a.getNotificationPrefs, "Your alarm e-mail preferences"},
		{"PUT /api/v1/me/notifications", access.UserSelf, self, a.setNotificationPrefs, "Set your alarm e-mail preferences"},
		{"GET /api/v1/webhooks", access.NotifyReadLogs, scopeTenant, a.listWebhooks, "A tenant's alarm webhooks, without secrets"},
		{"POST /api/v1/webhooks", access.NotifyManage, listed, a.createWebhook, "Make an alarm webhook; answers its secret, only this once"},
		{"DELETE /api/v1/webhooks/{webhook}", access.NotifyManage, byWebhook, a.deleteWebhook, "Delete an alarm webhook"},
		{"GET /api/v1/escalation", access.NotifyReadLogs, scopeTenant, a.getEscalation, "A tenant's escalation of unacknowledged critical alarms"},
		{"PUT /api/v1/escalation", access.NotifyManage, scopeTenant, a.setEscalation, "Set or remove a tenant's escalation"},
		{"GET /api/v1/deliveries", access.NotifyReadLogs, scopeTenant, a.listDeliveries, "Alarm notifications sent, pending and failed"},
		{"GET /api/v1/kpi", access.AlarmRead, listed, a.kpiReport, "Key figures from the alarm history: availability, MTBF, MTTR, utilisation"},

		// Maintenance.
		{"GET /api/v1/devices/{id}/maintenance", access.AlarmRead, byDevice, a.getMaintenance, "A device's run hours, service forecast, wear trends and anomaly scores"},
		{"POST /api/v1/devices/{id}/maintenance/service", access.DeviceOperate, byDevice, a.recordService, "Record a service of a device"},
		{"GET /api/v1/maintenance-plans", access.RuleRead, scopeTenant, a.listMaintenancePlans, "A tenant's maintenance plans, by device model"},
		{"PUT /api/v1/maintenance-plans/{model}", access.RuleManage, scopeTenant, a.setMaintenancePlan, "Set a tenant's maintenance plan for a device model"},
		{"DELETE /api/v1/maintenance-plans/{model}", access.RuleManage, scopeTenant, a.deleteMaintenancePlan, "Delete a tenant's maintenance plan for a device model"},
	}
}

// publicRoutes need no credentials: signing in and the one-time links.
func (a *API) publicRoutes() []route {
	return []route{
		{"POST /api/v1/auth/login", "", nil, a.login, "Sign in: sets the session cookie and returns the CSRF token"},
		{"POST /api/v1/auth/activate", "", nil, a.activate, "Set the first password with an activation link's token"},
		{"POST /api/v1/auth/password-reset", "", nil, a.requestReset, "Mail a password reset link"},
		{"POST /api/v1/auth/password-reset/confirm", "", nil, a.confirmReset, "Set a new password with a reset link's token"},
	}
}

// noStore keeps API answers out of caches.
func (a *API) noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
