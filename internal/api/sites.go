package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/event"
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
	ss, err := a.store.ListSites(ctx, f)
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

type sitePatch struct {
	Name    *string          `json:"name"`
	Address *tenancy.Address `json:"address"`
}

func (p sitePatch) apply(s *tenancy.Site) error {
	if p.Name != nil {
		s.Name = strings.TrimSpace(*p.Name)
	}
	if s.Name == "" || len(s.Name) > 200 {
		return errors.New("name: 1 to 200 characters")
	}
	if p.Address != nil {
		if err := checkAddress(*p.Address); err != nil {
			return err
		}
		s.Address = *p.Address
	}
	return nil
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TenantID string `json:"tenantId"` // default: the caller's
		sitePatch
	}
	if !decode(w, r, &req) {
		return
	}
	tenantID, _, ok := a.inTenant(w, r, req.TenantID, access.KindSite, access.SiteManage)
	if !ok {
		return
	}
	req.TenantID = tenantID
	id, err := identity.NewID("site")
	if err != nil {
		a.storeError(w, err)
		return
	}
	s := tenancy.Site{ID: id, TenantID: req.TenantID, CreatedAt: a.now().UTC().Truncate(time.Millisecond)}
	if err := req.sitePatch.apply(&s); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := a.store.CreateSite(r.Context(), s); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, siteView(s))
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, siteView(loaded[tenancy.Site](r.Context())))
}

func (a *API) updateSite(w http.ResponseWriter, r *http.Request) {
	var req sitePatch
	if !decode(w, r, &req) {
		return
	}
	s := loaded[tenancy.Site](r.Context())
	if err := req.apply(&s); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := a.store.UpdateSite(r.Context(), s); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, siteView(s))
}

func (a *API) deleteSite(w http.ResponseWriter, r *http.Request) {
	s := loaded[tenancy.Site](r.Context())
	if err := a.store.DeleteSite(r.Context(), s.ID, a.now().UTC()); err != nil {
		a.storeError(w, err)
		return
	}
	if s.FactoryAccess {
		a.publish(r.Context(), event.FactoryAccessClosed{TenantID: s.TenantID, SiteID: s.ID, At: a.now().UTC()})
	}
	w.WriteHeader(http.StatusNoContent)
}

// setFactoryAccess is the owner's switch: while it is on, the operator's
// service desk sees the site's machines.
func (a *API) setFactoryAccess(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		writeError(w, http.StatusBadRequest, "enabled: true or false is required")
		return
	}
	s := loaded[tenancy.Site](r.Context())
	at := a.now().UTC().Truncate(time.Millisecond)
	if err := a.store.SetFactoryAccess(r.Context(), s.ID, *req.Enabled, at); err != nil {
		a.storeError(w, err)
		return
	}
	was := s.FactoryAccess
	s.FactoryAccess, s.FactoryAccessChangedAt = *req.Enabled, at
	a.log.Info("factory service access switched", "site", s.ID, "on", s.FactoryAccess)
	if was && !s.FactoryAccess {
		a.publish(r.Context(), event.FactoryAccessClosed{TenantID: s.TenantID, SiteID: s.ID, At: at})
	}
	writeJSON(w, http.StatusOK, siteView(s))
}
