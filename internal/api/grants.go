package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
)

func grantView(g store.Grant, sup identity.User, now time.Time) apiv1.Grant {
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
	f := store.GrantFilter{SiteID: q.Get("site"), DeviceID: q.Get("device")}
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
	gs, err := a.store.ListGrants(ctx, f)
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
			if sup, err = a.store.GetUser(ctx, g.SupporterUserID); err != nil && !errors.Is(err, database.ErrNotFound) {
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
	var req struct {
		SupporterID string     `json:"supporterId"`
		SiteID      string     `json:"siteId"`
		DeviceID    string     `json:"deviceId"`
		ExpiresAt   *time.Time `json:"expiresAt"`
	}
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
		if s, err = a.store.GetSite(ctx, req.SiteID); err == nil {
			var t tenancy.Tenant
			if t, err = a.store.GetTenant(ctx, s.TenantID); err == nil {
				res = siteResource(s, t)
			}
		}
	} else {
		var d registry.Device
		if d, err = a.store.GetDevice(ctx, req.DeviceID); err == nil {
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
	sup, err := a.store.UserBySupporterID(ctx, identity.NormalizeSupporterID(req.SupporterID))
	if errors.Is(err, database.ErrNotFound) || (err == nil && (sup.Role != identity.RoleSupporter || sup.Status == identity.UserDisabled)) {
		writeError(w, http.StatusBadRequest, "supporterId: no supporter %q", req.SupporterID)
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	now := a.now().UTC().Truncate(time.Millisecond)
	id, err := identity.NewID("grt")
	if err != nil {
		a.storeError(w, err)
		return
	}
	g := store.Grant{ID: id, TenantID: res.TenantID, SupporterUserID: sup.ID, SiteID: req.SiteID, DeviceID: req.DeviceID,
		CreatedBy: principal(ctx).ActorID, CreatedAt: now}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			writeError(w, http.StatusBadRequest, "expiresAt: must be in the future")
			return
		}
		g.ExpiresAt = req.ExpiresAt.UTC().Truncate(time.Millisecond)
	}
	if err := a.store.CreateGrant(ctx, g); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("access granted", "grant", g.ID, "tenant", g.TenantID, "supporter", sup.ID, "site", g.SiteID, "device", g.DeviceID)
	a.publish(ctx, event.GrantCreated{TenantID: g.TenantID, GrantID: g.ID, SupporterUserID: g.SupporterUserID,
		SiteID: g.SiteID, DeviceID: g.DeviceID, ExpiresAt: g.ExpiresAt, At: now})
	writeJSON(w, http.StatusCreated, grantView(g, sup, now))
}

func (a *API) getGrant(w http.ResponseWriter, r *http.Request) {
	g := loaded[store.Grant](r.Context())
	sup, err := a.store.GetUser(r.Context(), g.SupporterUserID)
	if err != nil && !errors.Is(err, database.ErrNotFound) {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, grantView(g, sup, a.now()))
}

func (a *API) revokeGrant(w http.ResponseWriter, r *http.Request) {
	g := loaded[store.Grant](r.Context())
	at := a.now().UTC().Truncate(time.Millisecond)
	if err := a.store.RevokeGrant(r.Context(), g.ID, principal(r.Context()).ActorID, at); err != nil {
		if errors.Is(err, database.ErrConflict) {
			writeError(w, http.StatusConflict, "grant %s is already revoked", g.ID)
			return
		}
		a.storeError(w, err)
		return
	}
	a.log.Info("access revoked", "grant", g.ID, "tenant", g.TenantID)
	a.publish(r.Context(), event.GrantRevoked{TenantID: g.TenantID, GrantID: g.ID, SupporterUserID: g.SupporterUserID,
		SiteID: g.SiteID, DeviceID: g.DeviceID, At: at})
	w.WriteHeader(http.StatusNoContent)
}
