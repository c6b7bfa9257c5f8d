package api

import (
	"errors"
	"net/http"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
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
	ts, err := a.stores.Tenancy.TenantsUnder(r.Context(), id)
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

// tenantPatch is the service's form of a tenant patch.
func tenantPatch(p apiv1.TenantPatch) tenancy.TenantPatch {
	return tenancy.TenantPatch{Name: p.Name, Address: (*tenancy.Address)(p.Address), Contact: (*tenancy.Contact)(p.Contact),
		Contract: (*tenancy.Contract)(p.Contract), RetentionDays: p.TelemetryRetentionDays}
}

// invalidOr answers a service's refusal of the request's content (errors
// wrapping tenancy.ErrInvalid or access.ErrInvalid: 400 with the
// service's words) or else a store error.
func (a *API) invalidOr(w http.ResponseWriter, err error) {
	if errors.Is(err, tenancy.ErrInvalid) || errors.Is(err, access.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.storeError(w, err)
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewTenant
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
	t, err := a.tenancy.CreateTenant(r.Context(), tenancy.NewTenant{ID: req.ID, ParentID: req.ParentID, TenantPatch: tenantPatch(req.TenantPatch)})
	if err != nil {
		a.invalidOr(w, err)
		return
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.owner = t.ID
	}
	writeJSON(w, http.StatusCreated, a.tenantView(r, t))
}

func (a *API) updateTenant(w http.ResponseWriter, r *http.Request) {
	var req apiv1.TenantPatch
	if !decode(w, r, &req) {
		return
	}
	if req.Contract != nil && !a.allowed(r.Context(), access.TenantContract, resourceOf(r.Context())) {
		writeError(w, http.StatusForbidden, "contract: you may not change contract data")
		return
	}
	t, err := a.tenancy.UpdateTenant(r.Context(), loaded[tenancy.Tenant](r.Context()), tenantPatch(req))
	if err != nil {
		a.invalidOr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.tenantView(r, t))
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request) {
	t := loaded[tenancy.Tenant](r.Context())
	switch err := a.tenancy.DeleteTenant(r.Context(), t.ID); {
	case errors.Is(err, database.ErrConflict):
		writeError(w, http.StatusConflict, "tenant %s has sub-tenants: delete them first", t.ID)
	case errors.Is(err, tenancy.ErrUnfinished):
		a.notPurged(w, "tenant "+t.ID, err)
	case err != nil:
		a.storeError(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// notPurged answers a deletion that committed but whose bytes may remain
// in the database files: the caller must know that erasure is unfinished.
func (a *API) notPurged(w http.ResponseWriter, what string, err error) {
	a.log.Error("deleted, but not purged from the database files", "what", what, "err", err)
	writeError(w, http.StatusInternalServerError,
		"%s was deleted, but purging it from the database files did not finish (the next deletion retries); see the server log", what)
}
