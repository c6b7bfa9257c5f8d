package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// route is one authenticated endpoint: the action it needs and how to find
// the resource it acts on. Every /api/v1/ route is registered through
// route, so every call passes access.Decide before its handler runs.
type route struct {
	pattern string
	action  access.Action
	// resolve finds the resource (and the loaded object the handler uses)
	// from the request.
	resolve resolver
	handler http.HandlerFunc
	summary string
}

// resolver finds the resource a request acts on. The object it returns is
// handed to the handler (see loaded).
type resolver func(a *API, r *http.Request) (access.Resource, any, error)

// listed marks a list route: there is no single resource, so the handler
// passes every item it returns through a.allowed (the same Decide).
var listed resolver

type loadedKey struct{}

// target is what the route's resolver found.
type target struct {
	res access.Resource
	obj any
}

func loaded[T any](ctx context.Context) T {
	t, _ := ctx.Value(loadedKey{}).(*target)
	if t == nil {
		var zero T
		return zero
	}
	v, _ := t.obj.(T)
	return v
}

func resourceOf(ctx context.Context) access.Resource {
	t, _ := ctx.Value(loadedKey{}).(*target)
	if t == nil {
		return access.Resource{}
	}
	return t.res
}

// readAction is the read that goes with an action on a kind: a subject
// that may not even read a resource is told it does not exist.
func readAction(k access.Kind) access.Action {
	switch k {
	case access.KindTenant:
		return access.TenantRead
	case access.KindSite:
		return access.SiteRead
	case access.KindDevice:
		return access.DeviceRead
	case access.KindUser:
		return access.UserRead
	case access.KindGrant:
		return access.GrantRead
	case access.KindEnrollment:
		return access.EnrollmentRead
	case access.KindRule:
		return access.RuleRead
	case access.KindAlarm:
		return access.AlarmRead
	}
	return ""
}

// guard runs the route's policy check and then its handler.
func (a *API) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.resolve == nil {
			rt.handler(w, r)
			return
		}
		res, obj, err := rt.resolve(a, r)
		if errors.Is(err, errNoAccount) {
			writeError(w, http.StatusForbidden, "%v", err)
			return
		}
		if err != nil {
			a.storeError(w, err)
			return
		}
		if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
			call.owner = res.TenantID
		}
		// Reads of a customer's machine by outsiders are recorded, allowed
		// or refused.
		a.noteOutsideRead(r, rt.action, res)
		if !a.allow(w, r, rt.action, res) {
			if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
				call.denied = true
			}
			return
		}
		ctx := context.WithValue(r.Context(), loadedKey{}, &target{res: res, obj: obj})
		rt.handler(w, r.WithContext(ctx))
	})
}

// allow decides and, on refusal, answers: 404 if the caller may not even
// see the resource, 403 if it may see it but not do this.
func (a *API) allow(w http.ResponseWriter, r *http.Request, act access.Action, res access.Resource) bool {
	s := principal(r.Context())
	err := access.Decide(s.Subject, act, res, a.now())
	if err == nil {
		return true
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.denied = true
	}
	ra := readAction(res.Kind)
	if ra == "" {
		ra = act
	}
	if res.ID != "" && (ra == act || access.Decide(s.Subject, ra, res, a.now()) != nil) {
		writeError(w, http.StatusNotFound, "%s %q: not found", res.Kind, res.ID)
		return false
	}
	writeError(w, http.StatusForbidden, "%v", err)
	return false
}

// allowed says whether the caller may take act on res, without answering
// (for filtering lists).
func (a *API) allowed(ctx context.Context, act access.Action, res access.Resource) bool {
	return access.Decide(principal(ctx).Subject, act, res, a.now()) == nil
}

// noteOutsideRead marks, for the audit trail, a read of a customer's
// machine by someone outside the customer: a supporter or operator staff.
func (a *API) noteOutsideRead(r *http.Request, act access.Action, res access.Resource) {
	if res.Kind != access.KindDevice || (act != access.DeviceRead && act != access.DeviceData && act != access.AlarmRead) {
		return
	}
	if !outsider(r.Context()) || res.TenantID == tenancy.RootTenantID {
		return // customers read inside their own tenant tree; the operator's own machines
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.outsideRead = string(act)
		if act == access.AlarmRead {
			call.outsideRead = "alarm" // recorded as "alarm.read" (a device's alarms, maintenance)
		}
	}
}

// outsider says whether the caller is outside every customer: a supporter
// or operator staff.
func outsider(ctx context.Context) bool {
	switch principal(ctx).Role {
	case identity.RoleSupporter, identity.RoleOperatorService, identity.RoleOperatorAdmin:
		return true
	}
	return false
}

// noteOutsideList marks, for the audit trail, a list of machine data (as
// action) that showed an outsider devices of customers: the owner of each
// finds an entry in the access log naming its devices.
func noteOutsideList(r *http.Request, action string, devs []registry.Device) {
	if !outsider(r.Context()) {
		return
	}
	call, ok := r.Context().Value(auditCallKey{}).(*auditCall)
	if !ok {
		return
	}
	for _, d := range devs {
		if d.TenantID == tenancy.RootTenantID {
			continue
		}
		if call.listed == nil {
			call.listed, call.listAction = map[string][]string{}, action
		}
		if !slices.Contains(call.listed[d.TenantID], d.ID) {
			call.listed[d.TenantID] = append(call.listed[d.TenantID], d.ID)
		}
	}
}

// tenantResource loads a tenant as a resource.
func (a *API) tenantResource(ctx context.Context, id string) (access.Resource, tenancy.Tenant, error) {
	t, err := a.stores.Tenancy.GetTenant(ctx, id)
	if err != nil {
		return access.Resource{}, t, err
	}
	return access.Resource{Kind: access.KindTenant, ID: t.ID, TenantID: t.ID, TenantPath: t.Path}, t, nil
}

// deviceResource describes a device with its tenant's path and its site's
// switch.
func (a *API) deviceResource(ctx context.Context, d registry.Device) (access.Resource, error) {
	return a.newResolverCache().device(ctx, d)
}

func siteResource(s tenancy.Site, t tenancy.Tenant) access.Resource {
	return access.Resource{Kind: access.KindSite, ID: s.ID, TenantID: s.TenantID, TenantPath: t.Path,
		SiteID: s.ID, FactoryAccess: s.FactoryAccess}
}

// byDevice resolves the device named by the "id" path value.
func byDevice(a *API, r *http.Request) (access.Resource, any, error) {
	d, err := a.stores.Registry.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		return access.Resource{}, nil, err
	}
	res, err := a.deviceResource(r.Context(), d)
	return res, d, err
}

// bySite resolves the site named by the "site" path value.
func bySite(a *API, r *http.Request) (access.Resource, any, error) {
	s, err := a.stores.Tenancy.GetSite(r.Context(), r.PathValue("site"))
	if err != nil {
		return access.Resource{}, nil, err
	}
	t, err := a.stores.Tenancy.GetTenant(r.Context(), s.TenantID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	return siteResource(s, t), s, nil
}

// byTenant resolves the tenant named by the "tenant" path value.
func byTenant(a *API, r *http.Request) (access.Resource, any, error) {
	res, t, err := a.tenantResource(r.Context(), r.PathValue("tenant"))
	return res, t, err
}

// scopeTenant resolves the tenant a tenant-wide request is about: the
// "tenant" query parameter, or the caller's own tenant.
func scopeTenant(a *API, r *http.Request) (access.Resource, any, error) {
	id := r.URL.Query().Get("tenant")
	if id == "" {
		id = principal(r.Context()).TenantID
	}
	res, t, err := a.namedTenant(r.Context(), id)
	return res, t, err
}

// noTenant is the one answer for a tenant id that names no tenant and for
// one that names a tenant the caller may not know of.
func noTenant(id string) error { return fmt.Errorf("tenant %q: %w", id, database.ErrNotFound) }

// namedTenant resolves a tenant a caller names (?tenant=, a body's
// tenantId): its own, one above it (its path shows them), or one it may
// read. Any other, existing or not, is noTenant: whether a tenant id
// exists is not told to those who may not see it.
func (a *API) namedTenant(ctx context.Context, id string) (access.Resource, tenancy.Tenant, error) {
	res, t, err := a.tenantResource(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		return access.Resource{}, tenancy.Tenant{}, noTenant(id)
	}
	if err != nil {
		return res, t, err
	}
	c := principal(ctx)
	if t.ID == c.TenantID || access.Within(c.TenantPath, t.Path) || a.allowed(ctx, access.TenantRead, res) {
		return res, t, nil
	}
	return access.Resource{}, tenancy.Tenant{}, noTenant(id)
}

// scopeKind is scopeTenant for resources of another kind that live in a
// tenant (enrollments, the audit trail): the resource is the tenant's
// collection of that kind.
func scopeKind(k access.Kind) resolver {
	return func(a *API, r *http.Request) (access.Resource, any, error) {
		res, t, err := scopeTenant(a, r)
		res.Kind, res.ID = k, ""
		return res, t, err
	}
}

// scopeTenantID is the tenant scopeTenant resolved for this request.
func scopeTenantID(ctx context.Context) string {
	return loaded[tenancy.Tenant](ctx).ID
}

// byUser resolves the account named by the "user" path value.
func byUser(a *API, r *http.Request) (access.Resource, any, error) {
	u, err := a.stores.Users.GetUser(r.Context(), r.PathValue("user"))
	if err != nil {
		return access.Resource{}, nil, err
	}
	t, err := a.stores.Tenancy.GetTenant(r.Context(), u.TenantID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	res := access.Resource{Kind: access.KindUser, ID: u.ID, TenantID: u.TenantID, TenantPath: t.Path, UserID: u.ID,
		ActivatedAdmin: activatedAdmin(u)}
	if res.CustomerAdministered, err = a.customerAdministered(r.Context(), t); err != nil {
		return access.Resource{}, nil, err
	}
	return res, u, nil
}

// activatedAdmin says u is a customer administrator who has set a password
// (enabled or disabled now): the customer has taken its accounts over.
func activatedAdmin(u identity.User) bool {
	return u.Role == identity.RoleCustomerAdmin && u.PasswordHash != ""
}

// customerAdministered is the fact access.Resource.CustomerAdministered
// for accounts in tenant t: whether an activated customer administrator
// exists in t, in a customer tenant above it or in one below it.
func (a *API) customerAdministered(ctx context.Context, t tenancy.Tenant) (bool, error) {
	if t.ID == tenancy.RootTenantID {
		return false, nil
	}
	ids := []string{}
	for _, id := range strings.Split(t.Path, "/") {
		if id != tenancy.RootTenantID && id != t.ID {
			ids = append(ids, id)
		}
	}
	above, err := a.stores.Users.ListUsers(ctx, ids)
	if err != nil {
		return false, fmt.Errorf("accounts above tenant %s: %w", t.ID, err)
	}
	if slices.ContainsFunc(above, activatedAdmin) {
		return true, nil
	}
	below, err := a.stores.Users.ListUsersUnder(ctx, t.ID)
	if err != nil {
		return false, fmt.Errorf("accounts of tenant %s and below: %w", t.ID, err)
	}
	return slices.ContainsFunc(below, activatedAdmin), nil
}

// self resolves the caller's own account.
func self(a *API, r *http.Request) (access.Resource, any, error) {
	s := principal(r.Context())
	if s.UserID == "" {
		return access.Resource{}, nil, fmt.Errorf("this token has no account (it is the operator's bootstrap token): %w", errNoAccount)
	}
	u, err := a.stores.Users.GetUser(r.Context(), s.UserID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	return access.Resource{Kind: access.KindUser, ID: u.ID, TenantID: u.TenantID, TenantPath: s.TenantPath, UserID: u.ID}, u, nil
}

var errNoAccount = errors.New("no account")

// byGrant resolves the grant named by the "grant" path value.
func byGrant(a *API, r *http.Request) (access.Resource, any, error) {
	g, err := a.stores.Grants.GetGrant(r.Context(), r.PathValue("grant"))
	if err != nil {
		return access.Resource{}, nil, err
	}
	t, err := a.stores.Tenancy.GetTenant(r.Context(), g.TenantID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	return access.Resource{Kind: access.KindGrant, ID: g.ID, TenantID: g.TenantID, TenantPath: t.Path, UserID: g.SupporterUserID}, g, nil
}

// resolverCache describes many devices without asking the store for the
// same tenant or site twice.
type resolverCache struct {
	a       *API
	tenants map[string]tenancy.Tenant
	sites   map[string]tenancy.Site
}

func (a *API) newResolverCache() *resolverCache {
	return &resolverCache{a: a, tenants: map[string]tenancy.Tenant{}, sites: map[string]tenancy.Site{}}
}

func (c *resolverCache) tenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	if t, ok := c.tenants[id]; ok {
		return t, nil
	}
	t, err := c.a.stores.Tenancy.GetTenant(ctx, id)
	if err != nil {
		return t, err
	}
	c.tenants[id] = t
	return t, nil
}

func (c *resolverCache) site(ctx context.Context, id string) (tenancy.Site, error) {
	if s, ok := c.sites[id]; ok {
		return s, nil
	}
	s, err := c.a.stores.Tenancy.GetSite(ctx, id)
	if err != nil {
		return s, err
	}
	c.sites[id] = s
	return s, nil
}

func (c *resolverCache) device(ctx context.Context, d registry.Device) (access.Resource, error) {
	res := access.Resource{Kind: access.KindDevice, ID: d.ID, TenantID: d.TenantID, SiteID: d.Info.SiteID}
	t, err := c.tenant(ctx, d.TenantID)
	if err != nil {
		return res, fmt.Errorf("tenant of device %s: %w", d.ID, err)
	}
	res.TenantPath = t.Path
	if d.Info.SiteID != "" {
		s, err := c.site(ctx, d.Info.SiteID)
		switch {
		case err == nil:
			res.FactoryAccess = s.FactoryAccess
		case !errors.Is(err, database.ErrNotFound):
			return res, fmt.Errorf("site of device %s: %w", d.ID, err)
		}
	}
	return res, nil
}

// inTenant is the policy check of a request that makes a resource of kind
// in the tenant named by its body (the caller's tenant if empty): it
// answers 400 for an unknown tenant, applies Decide, and records the
// tenant as the owner for the audit trail. It returns the tenant id and
// the collection resource.
func (a *API) inTenant(w http.ResponseWriter, r *http.Request, tenantID string, kind access.Kind, act access.Action) (string, access.Resource, bool) {
	if tenantID == "" {
		tenantID = principal(r.Context()).TenantID
	}
	// A tenant the caller may not know of answers like one that does
	// not exist.
	res, t, err := a.namedTenant(r.Context(), tenantID)
	if errors.Is(err, database.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "tenantId: no tenant %q", tenantID)
		return "", res, false
	}
	if err != nil {
		a.storeError(w, err)
		return "", res, false
	}
	res.Kind, res.ID = kind, ""
	if kind == access.KindUser {
		if res.CustomerAdministered, err = a.customerAdministered(r.Context(), t); err != nil {
			a.storeError(w, err)
			return "", res, false
		}
	}
	// The tenant is one the caller may know of: what is done there, or
	// refused, is in its owner's access log.
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.owner = tenantID
	}
	if !a.allow(w, r, act, res) {
		return "", res, false
	}
	return tenantID, res, true
}
