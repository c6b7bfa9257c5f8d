package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Lists read the store a page at a time. The queries select the rows a
// caller may be allowed to see by the caller's role (a tenant's subtree,
// expressed in SQL; a supporter's grants; the operator's own machines and
// the sites whose owners switched the factory service access on) — a
// superset at most — and access.Decide, the one policy point, keeps or
// drops each row read.

// storePage is how many rows a list reads from the store at a time.
const storePage = 500

// maxListScan bounds the rows one request of a paged list reads while the
// policy drops them: a page not filled by then ends there, and its "next"
// goes on after the last row read.
const maxListScan = 5000

// pager reads one store query, in ascending key order, a page at a time.
type pager[T any, K cmp.Ordered] struct {
	fetch func(ctx context.Context, after K) ([]T, error) // the page after key after
	size  int                                             // rows fetch asks for
	buf   []T
	after K
	done  bool
}

// merged reads several store queries, each in ascending key order, as one
// sequence in key order without repeats (a row two queries select comes
// once).
type merged[T any, K cmp.Ordered] struct {
	key     func(T) K
	pagers  []*pager[T, K]
	last    K
	started bool
}

// newMerged starts the queries after key after; fetch asks each for its
// rows after a key, size at a time.
func newMerged[T any, K cmp.Ordered](key func(T) K, after K, size int, fetches ...func(context.Context, K) ([]T, error)) *merged[T, K] {
	m := &merged[T, K]{key: key}
	for _, f := range fetches {
		m.pagers = append(m.pagers, &pager[T, K]{fetch: f, size: size, after: after})
	}
	return m
}

// next is the next row in key order; false at the end of every query.
func (m *merged[T, K]) next(ctx context.Context) (T, bool, error) {
	for {
		var best *pager[T, K]
		for _, p := range m.pagers {
			if len(p.buf) == 0 && !p.done {
				rows, err := p.fetch(ctx, p.after)
				if err != nil {
					var zero T
					return zero, false, err
				}
				p.buf, p.done = rows, len(rows) < p.size
				if len(rows) > 0 {
					p.after = m.key(rows[len(rows)-1])
				}
			}
			if len(p.buf) > 0 && (best == nil || m.key(p.buf[0]) < m.key(best.buf[0])) {
				best = p
			}
		}
		if best == nil {
			var zero T
			return zero, false, nil
		}
		row := best.buf[0]
		best.buf = best.buf[1:]
		k := m.key(row)
		if m.started && k <= m.last {
			continue // selected by an earlier query too
		}
		m.started, m.last = true, k
		return row, true, nil
	}
}

// listTenant is the tenant whose subtree a list is about: ?tenant= or the
// caller's tenant. A tenant the caller may not see answers like one that
// does not exist.
func (a *API) listTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.URL.Query().Get("tenant")
	if id == "" {
		return principal(r.Context()).TenantID, true
	}
	res, _, err := a.tenantResource(r.Context(), id)
	if errors.Is(err, database.ErrNotFound) || (err == nil && !a.allowed(r.Context(), access.TenantRead, res)) {
		err = noTenant(id)
	}
	if err != nil {
		a.storeError(w, err)
		return "", false
	}
	return id, true
}

// grantLists are the devices and sites the supporter's grants open.
func grantLists(c caller) (devs, sites []string) {
	for _, g := range c.Grants {
		if g.DeviceID != "" {
			devs = append(devs, g.DeviceID)
		}
		if g.SiteID != "" {
			sites = append(sites, g.SiteID)
		}
	}
	return devs, sites
}

// scope is one query the caller's role asks for; the union of a caller's
// scopes holds everything the caller may be allowed to see, and Decide
// judges each row. Exactly one of its parts is set.
type scope struct {
	devices, sites []string // a supporter's grants (few: they stay lists)
	root           bool     // the operator's own tenant
	factory        bool     // sites whose factory-service switch is on
	under          string   // a tenant and the tenants below it
}

// scopes are the caller's scopes.
func (a *API) scopes(w http.ResponseWriter, r *http.Request) ([]scope, bool) {
	c := principal(r.Context())
	switch c.Role {
	case identity.RoleSupporter:
		var out []scope
		devs, sites := grantLists(c)
		if len(devs) > 0 {
			out = append(out, scope{devices: devs})
		}
		if len(sites) > 0 {
			out = append(out, scope{sites: sites})
		}
		return out, true
	case identity.RoleOperatorService:
		return []scope{{root: true}, {factory: true}}, true
	}
	id, ok := a.listTenant(w, r)
	if !ok {
		return nil, false
	}
	return []scope{{under: id}}, true
}

// deviceScopes are the device queries, each narrowing f, whose union holds
// every device the caller may be allowed to see.
func (a *API) deviceScopes(w http.ResponseWriter, r *http.Request, f registry.DeviceFilter) ([]registry.DeviceFilter, bool) {
	scopes, ok := a.scopes(w, r)
	filters := make([]registry.DeviceFilter, len(scopes))
	for i, s := range scopes {
		g := f
		switch {
		case s.devices != nil:
			g.IDs = intersectOrAll(f.IDs, s.devices)
		case s.sites != nil:
			g.SiteIDs = intersectOrAll(f.SiteIDs, s.sites)
		case s.root:
			g.TenantIDs = []string{tenancy.RootTenantID}
		case s.factory:
			g.FactoryAccess = true
		default:
			g.Under = s.under
		}
		filters[i] = g
	}
	return filters, ok
}

// devicePages reads the devices the filters select, in id order.
func (a *API) devicePages(filters []registry.DeviceFilter) *merged[registry.Device, string] {
	fetches := make([]func(context.Context, string) ([]registry.Device, error), len(filters))
	for i, g := range filters {
		fetches[i] = func(ctx context.Context, after string) ([]registry.Device, error) {
			g.After, g.Limit = after, storePage
			return a.stores.Registry.FindDevices(ctx, g)
		}
	}
	return newMerged(func(d registry.Device) string { return d.ID }, "", storePage, fetches...)
}

// visibleDevices is every device of f that Decide allows the caller for
// act, in id order, read from the store a page at a time.
func (a *API) visibleDevices(w http.ResponseWriter, r *http.Request, f registry.DeviceFilter, act access.Action) ([]registry.Device, bool) {
	ctx := r.Context()
	filters, ok := a.deviceScopes(w, r, f)
	if !ok {
		return nil, false
	}
	cache := a.newResolverCache()
	pages := a.devicePages(filters)
	var out []registry.Device
	for {
		d, ok, err := pages.next(ctx)
		if err != nil {
			a.storeError(w, err)
			return nil, false
		}
		if !ok {
			return out, true
		}
		res, err := cache.device(ctx, d)
		if err != nil {
			a.storeError(w, err)
			return nil, false
		}
		if a.allowed(ctx, act, res) {
			out = append(out, d)
		}
	}
}

// alarmScopes are the alarm queries, each narrowing f, whose union holds
// every alarm of a device whose alarms the caller may be allowed to read.
func (a *API) alarmScopes(w http.ResponseWriter, r *http.Request, f alarm.Filter) ([]alarm.Filter, bool) {
	scopes, ok := a.scopes(w, r)
	filters := make([]alarm.Filter, len(scopes))
	for i, s := range scopes {
		g := f
		switch {
		case s.devices != nil:
			g.DeviceIDs = intersectOrAll(f.DeviceIDs, s.devices)
		case s.sites != nil:
			g.DeviceSiteIDs = s.sites
		case s.root:
			g.TenantIDs = []string{tenancy.RootTenantID}
		case s.factory:
			g.FactoryAccess = true
		default:
			g.Under = s.under
		}
		filters[i] = g
	}
	return filters, ok
}

// alarmPages reads the alarms the filters select after id after, in id
// order, size at a time from each.
func (a *API) alarmPages(filters []alarm.Filter, after int64, size int) *merged[alarm.Record, int64] {
	fetches := make([]func(context.Context, int64) ([]alarm.Record, error), len(filters))
	for i, g := range filters {
		fetches[i] = func(ctx context.Context, after int64) ([]alarm.Record, error) {
			g.After, g.Limit = after, size
			return a.stores.Alarms.ListAlarms(ctx, g)
		}
	}
	return newMerged(func(al alarm.Record) int64 { return al.ID }, after, size, fetches...)
}

// alarmDevices decides, once per device, whether the caller may read a
// device's alarms (for act) and keeps the devices it may.
type alarmDevices struct {
	a     *API
	act   access.Action
	cache *resolverCache
	seen  map[string]bool
	shown map[string]registry.Device
}

func (a *API) newAlarmDevices(act access.Action) *alarmDevices {
	return &alarmDevices{a: a, act: act, cache: a.newResolverCache(), seen: map[string]bool{}, shown: map[string]registry.Device{}}
}

// allowed says whether the caller may read the alarms of device id: it
// exists and Decide allows act on it.
func (v *alarmDevices) allowed(ctx context.Context, id string) (bool, error) {
	if ok, done := v.seen[id]; done {
		return ok, nil
	}
	d, err := v.a.stores.Registry.GetDevice(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		v.seen[id] = false
		return false, nil
	}
	if err != nil {
		return false, err
	}
	res, err := v.cache.device(ctx, d)
	if err != nil {
		return false, err
	}
	ok := v.a.allowed(ctx, v.act, res)
	v.seen[id] = ok
	if ok {
		v.shown[id] = d
	}
	return ok, nil
}

// devices is the devices of ids (allowed before), in id order.
func (v *alarmDevices) devices(ids map[string]bool) []registry.Device {
	out := make([]registry.Device, 0, len(ids))
	for id := range ids {
		if d, ok := v.shown[id]; ok {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y registry.Device) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// intersectOrAll is want ∩ have, or have if want is nil.
func intersectOrAll(want, have []string) []string {
	if want == nil {
		return have
	}
	out := []string{}
	for _, x := range want {
		if slices.Contains(have, x) {
			out = append(out, x)
		}
	}
	return out
}
