package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/alarm/alarmsvc"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/maintenance"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/registry"
)

func planView(row alarm.MaintenancePlan) apiv1.MaintenancePlan {
	p, err := maintenance.ParsePlan(row.Spec)
	if err != nil {
		p = maintenance.Plan{} // written by setMaintenancePlan; a broken one shows the row alone
	}
	p.Model = row.Model
	return apiv1.MaintenancePlan{TenantID: row.TenantID, Plan: planSpecView(p), UpdatedAt: row.UpdatedAt}
}

// monitorOr503 is the monitor, or answers 503 if there is none.
func (a *API) monitorOr503(w http.ResponseWriter) *monitor.Monitor {
	if a.cfg.Monitor == nil {
		writeError(w, http.StatusServiceUnavailable, "the alarm monitor is not running")
	}
	return a.cfg.Monitor
}

// maintenanceError answers a monitor failure.
func (a *API) maintenanceError(w http.ResponseWriter, d registry.Device, err error) {
	if errors.Is(err, monitor.ErrNoPlan) {
		model := d.Info.Model
		if model == "" {
			writeError(w, http.StatusNotFound, "device %q has no model, so no maintenance plan", d.ID)
			return
		}
		writeError(w, http.StatusNotFound, "no maintenance plan for model %q in the device's tenant or above", model)
		return
	}
	a.storeError(w, err)
}

func (a *API) getMaintenance(w http.ResponseWriter, r *http.Request) {
	d := loaded[registry.Device](r.Context())
	m := a.monitorOr503(w)
	if m == nil {
		return
	}
	st, err := m.Maintenance(r.Context(), d.ID)
	if err != nil {
		a.maintenanceError(w, d, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// maxServiceSkew is how far in the future a recorded service may be
// (clocks differ a little).
const maxServiceSkew = 5 * time.Minute

func (a *API) recordService(w http.ResponseWriter, r *http.Request) {
	var req apiv1.ServiceRecord
	if !decodeOptional(w, r, &req) {
		return
	}
	ctx := r.Context()
	d := loaded[registry.Device](ctx)
	now := a.now()
	switch {
	case req.At.IsZero():
		req.At = now
	case req.At.After(now.Add(maxServiceSkew)):
		writeError(w, http.StatusBadRequest, "at: %s is in the future", req.At.Format(time.RFC3339))
		return
	case req.At.Year() < 2000:
		writeError(w, http.StatusBadRequest, "at: %s is too far in the past", req.At.Format(time.RFC3339))
		return
	}
	m := a.monitorOr503(w)
	if m == nil {
		return
	}
	if err := m.RecordService(context.WithoutCancel(ctx), d.ID, req.At); err != nil {
		a.maintenanceError(w, d, err)
		return
	}
	a.log.Info("service recorded", "device", d.ID, "at", req.At, "by", principal(ctx).UserID)
	st, err := m.Maintenance(ctx, d.ID)
	if err != nil {
		a.maintenanceError(w, d, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) listMaintenancePlans(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rows, err := a.stores.Alarms.ListMaintenancePlans(ctx, []string{scopeTenantID(ctx)})
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.MaintenancePlan, 0, len(rows))
	for _, row := range rows {
		out = append(out, planView(row))
	}
	writeJSON(w, http.StatusOK, apiv1.MaintenancePlanList{Plans: out})
}

// writePlanInvalid answers 400 with ParsePlan's problems, by field.
func writePlanInvalid(w http.ResponseWriter, err error) {
	writeInvalid(w, "invalid maintenance plan", err, func(e error) (apiv1.FieldProblem, bool) {
		var pe *maintenance.PlanError
		if errors.As(e, &pe) {
			return apiv1.FieldProblem{Field: pe.Field, Problem: pe.Problem}, true
		}
		return apiv1.FieldProblem{}, false
	})
}

// planError answers a failure of the plans service.
func (a *API) planError(w http.ResponseWriter, err error) {
	var ie *alarmsvc.InvalidError
	if errors.As(err, &ie) {
		writePlanInvalid(w, ie.Err)
		return
	}
	a.storeError(w, err)
}

func (a *API) setMaintenancePlan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	model := r.PathValue("model")
	if err := alarmsvc.CheckPlanModel(model); err != nil {
		a.planError(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body: %v", err)
		return
	}
	// The model comes from the path; the body may leave it out.
	row, err := a.alarms.SetPlan(ctx, scopeTenantID(ctx), model, body)
	if err != nil {
		a.planError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, planView(row))
}

func (a *API) deleteMaintenancePlan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := a.alarms.DeletePlan(ctx, scopeTenantID(ctx), r.PathValue("model")); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
