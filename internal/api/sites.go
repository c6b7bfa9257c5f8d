package api

import (
	"net/http"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

func siteView(s tenancy.Site) apiv1.Site {
	v := apiv1.Site{ID: s.ID, TenantID: s.TenantID, Name: s.Name, Address: addressView(s.Address), FactoryAccess: s.FactoryAccess, CreatedAt: s.CreatedAt}
	if !s.FactoryAccessChangedAt.IsZero() {
		v.FactoryAccessChangedAt = &s.FactoryAccessChangedAt
	}
	return v
}

func (a *API) listSites(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := principal(ctx)
	var f tenancy.SiteFilter
	switch c.Role {
	case identity.RoleSupporter:
		f.IDs = []string{}
		for _, g := range c.Grants {
			if g.SiteID != "" {
				f.IDs = append(f.IDs, g.SiteID)
			}
		}
	case identity.RoleOperatorService:
		f.FactoryAccess = true
	default:
		id, ok := a.listTenant(w, r)
		if !ok {
			return
		}
		f.Under = id
	}
	ss, err := a.stores.Tenancy.ListSites(ctx, f)
	if err != nil {
		a.storeError(w, err)
		return
	}
	cache := a.newResolverCache()
	out := []apiv1.Site{}
	for _, s := range ss {
		t, err := cache.tenant(ctx, s.TenantID)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if a.allowed(ctx, access.SiteRead, siteResource(s, t)) {
			out = append(out, siteView(s))
		}
	}
	writeJSON(w, http.StatusOK, apiv1.SiteList{Sites: out})
}

// sitePatch is the service's form of a site patch.
func sitePatch(p apiv1.SitePatch) tenancy.SitePatch {
	return tenancy.SitePatch{Name: p.Name, Address: (*tenancy.Address)(p.Address)}
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewSite
	if !decode(w, r, &req) {
		return
	}
	tenantID, _, ok := a.inTenant(w, r, req.TenantID, access.KindSite, access.SiteManage)
	if !ok {
		return
	}
	s, err := a.tenancy.CreateSite(r.Context(), tenantID, sitePatch(req.SitePatch))
	if err != nil {
		a.invalidOr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, siteView(s))
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, siteView(loaded[tenancy.Site](r.Context())))
}

func (a *API) updateSite(w http.ResponseWriter, r *http.Request) {
	var req apiv1.SitePatch
	if !decode(w, r, &req) {
		return
	}
	s, err := a.tenancy.UpdateSite(r.Context(), loaded[tenancy.Site](r.Context()), sitePatch(req))
	if err != nil {
		a.invalidOr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, siteView(s))
}

func (a *API) deleteSite(w http.ResponseWriter, r *http.Request) {
	if err := a.tenancy.DeleteSite(r.Context(), loaded[tenancy.Site](r.Context())); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setFactoryAccess is the owner's switch: while it is on, the operator's
// service desk sees the site's machines.
func (a *API) setFactoryAccess(w http.ResponseWriter, r *http.Request) {
	var req apiv1.FactoryAccess
	if !decode(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		writeError(w, http.StatusBadRequest, "enabled: true or false is required")
		return
	}
	s, err := a.tenancy.SetFactoryAccess(r.Context(), loaded[tenancy.Site](r.Context()), *req.Enabled)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, siteView(s))
}
