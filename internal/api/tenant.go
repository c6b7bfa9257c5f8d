package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

func (a *API) tenantView(r *http.Request, t tenancy.Tenant) apiv1.Tenant {
	v := apiv1.Tenant{ID: t.ID, ParentID: t.ParentID, Path: t.Path, Name: t.Name, Address: addressView(t.Address), Contact: contactView(t.Contact),
		CreatedAt: t.CreatedAt, TelemetryRetentionDays: t.RetentionDays}
	res := access.Resource{Kind: access.KindTenant, ID: t.ID, TenantID: t.ID, TenantPath: t.Path}
	if a.allowed(r.Context(), access.TenantContract, res) {
		v.Contract = contractView(t.Contract)
	}
	return v
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.tenantView(r, loaded[tenancy.Tenant](r.Context())))
}

func (a *API) getTenantByID(w http.ResponseWriter, r *http.Request) { a.getTenant(w, r) }

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("tenant")
	if id == "" {
		id = principal(r.Context()).TenantID
	} else if res, _, err := a.tenantResource(r.Context(), id); errors.Is(err, database.ErrNotFound) ||
		(err == nil && !a.allowed(r.Context(), access.TenantRead, res)) {
		// A tenant the caller may not see answers like one that does
		// not exist.
		a.storeError(w, noTenant(id))
		return
	} else if err != nil {
		a.storeError(w, err)
		return
	}
	ts, err := a.store.TenantsUnder(r.Context(), id)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := []apiv1.Tenant{}
	for _, t := range ts {
		if a.allowed(r.Context(), access.TenantRead, access.Resource{Kind: access.KindTenant, ID: t.ID, TenantID: t.ID, TenantPath: t.Path}) {
			out = append(out, a.tenantView(r, t))
		}
	}
	writeJSON(w, http.StatusOK, apiv1.TenantList{Tenants: out})
}

// tenantPatch is the changeable part of a tenant.
type tenantPatch struct {
	Name                   *string           `json:"name"`
	Address                *tenancy.Address  `json:"address"`
	Contact                *tenancy.Contact  `json:"contact"`
	Contract               *tenancy.Contract `json:"contract"`
	TelemetryRetentionDays *int              `json:"telemetryRetentionDays"`
}

// maxRetentionDays is a hundred years: "forever" is 0.
const maxRetentionDays = 36500

func (p tenantPatch) apply(t *tenancy.Tenant) error {
	if p.Name != nil {
		t.Name = strings.TrimSpace(*p.Name)
	}
	if t.Name == "" || len(t.Name) > 200 {
		return errors.New("name: 1 to 200 characters")
	}
	if p.Address != nil {
		if err := checkAddress(*p.Address); err != nil {
			return err
		}
		t.Address = *p.Address
	}
	if p.Contact != nil {
		c := *p.Contact
		if c.Email != "" {
			e, err := normalizeEmail(c.Email)
			if err != nil {
				return fmt.Errorf("contact.email: %w", err)
			}
			c.Email = e
		}
		if len(c.Name) > 200 || len(c.Phone) > 50 {
			return errors.New("contact: name at most 200, phone at most 50 characters")
		}
		t.Contact = c
	}
	if p.Contract != nil {
		c := *p.Contract
		if !c.Start.IsZero() && !c.End.IsZero() && c.End.Before(c.Start) {
			return errors.New("contract: end before start")
		}
		if c.NoticeDays < 0 || c.NoticeDays > 3650 {
			return errors.New("contract.noticeDays: 0 to 3650")
		}
		if len(c.Number) > 100 || len(c.BillingReference) > 200 || len(c.Notes) > 2000 {
			return errors.New("contract: number at most 100, billingReference 200, notes 2000 characters")
		}
		t.Contract = c
	}
	if d := p.TelemetryRetentionDays; d != nil {
		if *d < 0 || *d > maxRetentionDays {
			return fmt.Errorf("telemetryRetentionDays must be between 0 (keep) and %d", maxRetentionDays)
		}
	}
	return nil
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID       string `json:"id"`       // optional; made up if empty
		ParentID string `json:"parentId"` // default: the caller's tenant
		tenantPatch
	}
	if !decode(w, r, &req) {
		return
	}
	if req.ParentID == "" {
		req.ParentID = principal(r.Context()).TenantID
	}
	res, _, err := a.namedTenant(r.Context(), req.ParentID)
	if errors.Is(err, database.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "parentId: no tenant %q", req.ParentID)
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	if !a.allow(w, r, access.TenantCreate, res) {
		return
	}
	if req.Contract != nil && !a.allowed(r.Context(), access.TenantContract, res) {
		writeError(w, http.StatusForbidden, "contract: you may not set contract data")
		return
	}
	if req.ID == "" {
		if req.ID, err = identity.NewID("cus"); err != nil {
			a.storeError(w, err)
			return
		}
	} else if err := ValidDeviceID(req.ID); err != nil || strings.ContainsAny(req.ID, ":@") {
		writeError(w, http.StatusBadRequest, "id: 1 to 128 letters, digits, '-', '.' or '_'")
		return
	}
	t := tenancy.Tenant{ID: req.ID, ParentID: req.ParentID, CreatedAt: a.now().UTC().Truncate(time.Millisecond)}
	if err := req.tenantPatch.apply(&t); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if d := req.TelemetryRetentionDays; d != nil {
		t.RetentionDays = *d
	}
	// The id of a deleted tenant is never used again: its history (the
	// access log) is keyed by it and must not pass to a newcomer. It
	// answers like a taken id.
	retired, err := a.store.IDRetired(r.Context(), "tenant", t.ID)
	if err == nil && retired {
		err = fmt.Errorf("tenant %q: %w", t.ID, database.ErrConflict)
	}
	if err == nil {
		err = a.store.CreateTenant(r.Context(), t)
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.owner = t.ID
	}
	t, err = a.store.GetTenant(r.Context(), t.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("tenant created", "tenant", t.ID, "parent", t.ParentID)
	writeJSON(w, http.StatusCreated, a.tenantView(r, t))
}

func (a *API) updateTenant(w http.ResponseWriter, r *http.Request) {
	var req tenantPatch
	if !decode(w, r, &req) {
		return
	}
	t := loaded[tenancy.Tenant](r.Context())
	if req.Contract != nil && !a.allowed(r.Context(), access.TenantContract, resourceOf(r.Context())) {
		writeError(w, http.StatusForbidden, "contract: you may not change contract data")
		return
	}
	if err := req.apply(&t); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := a.store.UpdateTenant(r.Context(), t); err != nil {
		a.storeError(w, err)
		return
	}
	if d := req.TelemetryRetentionDays; d != nil {
		if err := a.store.SetTenantRetention(r.Context(), t.ID, *d); err != nil {
			a.storeError(w, err)
			return
		}
		t.RetentionDays = *d
		a.log.Info("telemetry retention changed", "tenant", t.ID, "days", *d)
	}
	writeJSON(w, http.StatusOK, a.tenantView(r, t))
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request) {
	t := loaded[tenancy.Tenant](r.Context())
	devs, err := a.store.ListDevices(r.Context(), t.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	// Retired first: should the deletion fail, the id stays in use anyway.
	if err := a.store.RetireID(r.Context(), "tenant", t.ID, a.now().UTC()); err != nil {
		a.storeError(w, err)
		return
	}
	if err := a.store.DeleteTenant(r.Context(), t.ID); err != nil {
		if errors.Is(err, database.ErrConflict) {
			writeError(w, http.StatusConflict, "tenant %s has sub-tenants: delete them first", t.ID)
			return
		}
		a.storeError(w, err)
		return
	}
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	a.log.Info("tenant deleted", "tenant", t.ID, "devices", len(devs))
	// Its devices are disconnected, their rule and maintenance state
	// forgotten, and its keys shredded: without them, whatever of the
	// tenant is left in backups cannot be read, and shredding purges the
	// database files of it. A reaction that did not finish is the
	// caller's to know.
	if err := a.cfg.Events.Publish(r.Context(), event.TenantDeleted{TenantID: t.ID, DeviceIDs: ids, At: a.now().UTC()}); err != nil {
		a.notPurged(w, "tenant "+t.ID, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// notPurged answers a deletion that committed but whose bytes may remain
// in the database files: the caller must know that erasure is unfinished.
func (a *API) notPurged(w http.ResponseWriter, what string, err error) {
	a.log.Error("deleted, but not purged from the database files", "what", what, "err", err)
	writeError(w, http.StatusInternalServerError,
		"%s was deleted, but purging it from the database files did not finish (the next deletion retries); see the server log", what)
}
