package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

func grantView(g access.Grant, sup identity.User, now time.Time) apiv1.Grant {
	v := apiv1.Grant{ID: g.ID, TenantID: g.TenantID, SupporterID: sup.SupporterID, SiteID: g.SiteID, DeviceID: g.DeviceID,
		CreatedBy: g.CreatedBy, CreatedAt: g.CreatedAt, RevokedBy: g.RevokedBy, State: "active"}
	v.Supporter = sup.FirstName + " " + sup.LastName
	if sup.Company != "" {
		v.Supporter += " (" + sup.Company + ")"
	}
	if !g.ExpiresAt.IsZero() {
		v.ExpiresAt = &g.ExpiresAt
		if !now.Before(g.ExpiresAt) {
			v.State = "expired"
		}
	}
	if !g.RevokedAt.IsZero() {
		v.RevokedAt, v.State = &g.RevokedAt, "revoked"
	}
	return v
}

func (a *API) listGrants(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := principal(ctx)
	q := r.URL.Query()
	f := access.GrantFilter{SiteID: q.Get("site"), DeviceID: q.Get("device")}
	if q.Get("active") == "true" {
		f.ActiveAt = a.now()
	}
	if c.Role == identity.RoleSupporter {
		f.SupporterUserID = c.UserID
	} else {
		id, ok := a.listTenant(w, r)
		if !ok {
			return
		}
		f.Under = id
	}
	gs, err := a.stores.Grants.ListGrants(ctx, f)
	if err != nil {
		a.storeError(w, err)
		return
	}
	cache := a.newResolverCache()
	users := map[string]identity.User{}
	out := []apiv1.Grant{}
	for _, g := range gs {
		t, err := cache.tenant(ctx, g.TenantID)
		if err != nil {
			a.storeError(w, err)
			return
		}
		res := access.Resource{Kind: access.KindGrant, ID: g.ID, TenantID: g.TenantID, TenantPath: t.Path, UserID: g.SupporterUserID}
		if !a.allowed(ctx, access.GrantRead, res) {
			continue
		}
		sup, ok := users[g.SupporterUserID]
		if !ok {
			if sup, err = a.stores.Users.GetUser(ctx, g.SupporterUserID); err != nil && !errors.Is(err, database.ErrNotFound) {
				a.storeError(w, err)
				return
			}
			users[g.SupporterUserID] = sup
		}
		out = append(out, grantView(g, sup, a.now()))
	}
	writeJSON(w, http.StatusOK, apiv1.GrantList{Grants: out})
}

func (a *API) createGrant(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewGrant
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	if (req.SiteID == "") == (req.DeviceID == "") {
		writeError(w, http.StatusBadRequest, "give exactly one of siteId and deviceId")
		return
	}
	// The grant belongs to the tenant of what it opens; the caller must
	// be allowed to manage grants there and to see the thing itself.
	var res access.Resource
	var err error
	if req.SiteID != "" {
		var s tenancy.Site
		if s, err = a.stores.Tenancy.GetSite(ctx, req.SiteID); err == nil {
			var t tenancy.Tenant
			if t, err = a.stores.Tenancy.GetTenant(ctx, s.TenantID); err == nil {
				res = siteResource(s, t)
			}
		}
	} else {
		var d registry.Device
		if d, err = a.stores.Registry.GetDevice(ctx, req.DeviceID); err == nil {
			res, err = a.deviceResource(ctx, d)
		}
	}
	if errors.Is(err, database.ErrNotFound) || (err == nil && !a.allowed(ctx, readAction(res.Kind), res)) {
		writeError(w, http.StatusBadRequest, "no such site or device: %s%s", req.SiteID, req.DeviceID)
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	owner := res
	owner.Kind, owner.ID = access.KindGrant, ""
	if !a.allow(w, r, access.GrantCreate, owner) {
		return
	}
	if call, ok := ctx.Value(auditCallKey{}).(*auditCall); ok {
		call.owner = res.TenantID
	}
	g, sup, err := a.grants.Create(ctx, access.NewGrant{TenantID: res.TenantID, SupporterID: req.SupporterID,
		SiteID: req.SiteID, DeviceID: req.DeviceID, ExpiresAt: req.ExpiresAt, CreatedBy: principal(ctx).ActorID})
	if err != nil {
		a.invalidOr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, grantView(g, sup, g.CreatedAt))
}

func (a *API) getGrant(w http.ResponseWriter, r *http.Request) {
	g := loaded[access.Grant](r.Context())
	sup, err := a.stores.Users.GetUser(r.Context(), g.SupporterUserID)
	if err != nil && !errors.Is(err, database.ErrNotFound) {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, grantView(g, sup, a.now()))
}

func (a *API) revokeGrant(w http.ResponseWriter, r *http.Request) {
	g := loaded[access.Grant](r.Context())
	if err := a.grants.Revoke(r.Context(), g, principal(r.Context()).ActorID); err != nil {
		if errors.Is(err, database.ErrConflict) {
			writeError(w, http.StatusConflict, "grant %s is already revoked", g.ID)
			return
		}
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
