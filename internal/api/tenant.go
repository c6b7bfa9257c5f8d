package api

import (
	"net/http"
	"time"
)

// Tenant is the API view of the caller's tenant.
type Tenant struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	CreatedAt              time.Time `json:"createdAt"`
	TelemetryRetentionDays int       `json:"telemetryRetentionDays"` // 0: kept until deleted
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := a.store.GetTenant(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, TelemetryRetentionDays: t.RetentionDays})
}

// maxRetentionDays is a hundred years: "forever" is 0.
const maxRetentionDays = 36500

func (a *API) updateTenant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TelemetryRetentionDays *int `json:"telemetryRetentionDays"`
	}
	if !decode(w, r, &req) {
		return
	}
	id := principal(r.Context()).TenantID
	if d := req.TelemetryRetentionDays; d != nil {
		if *d < 0 || *d > maxRetentionDays {
			writeError(w, http.StatusBadRequest, "telemetryRetentionDays must be between 0 (keep) and %d", maxRetentionDays)
			return
		}
		if err := a.store.SetTenantRetention(r.Context(), id, *d); err != nil {
			a.storeError(w, err)
			return
		}
		a.log.Info("telemetry retention changed", "tenant", id, "days", *d)
	}
	a.getTenant(w, r)
}
