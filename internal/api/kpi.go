package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/kpi"
	"github.com/warden-iot/warden/internal/registry"
)

// maxKPIBuckets bounds a series.
const maxKPIBuckets = 1000

// Bounds of a KPI period.
const (
	DefaultKPIPeriod = 30 * 24 * time.Hour
	MaxKPIPeriod     = 400 * 24 * time.Hour
)

func secondsPtr(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	s := round(d.Seconds())
	return &s
}

func kpiFigures(f kpi.Figures, utilisation *float64) apiv1.KPIFigures {
	out := apiv1.KPIFigures{Alarms: map[string]int{kpi.Warning: 0, kpi.Critical: 0}, TimeInAlarm: round(f.InAlarm.Seconds()),
		Downtime: round(f.Downtime.Seconds()), Availability: round(f.Availability), Failures: f.Failures,
		Repairs: f.Repairs, MTBF: secondsPtr(f.MTBF()), MTTR: secondsPtr(f.MTTR()), Utilisation: utilisation}
	for k, n := range f.Raised {
		out.Alarms[k] += n
	}
	return out
}

// kpiQuery reads the period and scope of GET /api/v1/kpi.
func (a *API) kpiQuery(w http.ResponseWriter, r *http.Request) (from, to time.Time, scope, id string, ok bool) {
	q := r.URL.Query()
	now := a.now().UTC().Truncate(time.Millisecond)
	to = now
	var err error
	if s := q.Get("to"); s != "" {
		if to, err = time.Parse(time.RFC3339Nano, s); err != nil {
			writeError(w, http.StatusBadRequest, "to: %q is not an RFC 3339 time", s)
			return
		}
	}
	if to.After(now) {
		to = now // the future has no alarms yet
	}
	from = to.Add(-DefaultKPIPeriod)
	if s := q.Get("from"); s != "" {
		if from, err = time.Parse(time.RFC3339Nano, s); err != nil {
			writeError(w, http.StatusBadRequest, "from: %q is not an RFC 3339 time", s)
			return
		}
	}
	switch {
	case !to.After(from):
		writeError(w, http.StatusBadRequest, "from must be before to (and before now)")
		return
	case to.Sub(from) > MaxKPIPeriod:
		writeError(w, http.StatusBadRequest, "the period is longer than %d days", MaxKPIPeriod/(24*time.Hour))
		return
	}
	var given []string
	for _, k := range []string{"device", "site", "tenant"} {
		if v := q.Get(k); v != "" {
			given = append(given, k)
			scope, id = k, v
		}
	}
	if len(given) > 1 {
		writeError(w, http.StatusBadRequest, "give one of device, site and tenant, not %s", strings.Join(given, " and "))
		return
	}
	if scope == "" {
		scope, id = "tenant", principal(r.Context()).TenantID
	}
	return from.UTC(), to.UTC(), scope, id, true
}

// kpiReport answers GET /api/v1/kpi: key figures of the devices whose
// alarms the caller may read, from their alarm history in [from, to).
func (a *API) kpiReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	from, to, scope, id, ok := a.kpiQuery(w, r)
	if !ok {
		return
	}
	var bucket time.Duration
	if b := r.URL.Query().Get("bucket"); b != "" {
		var err error
		if strings.HasSuffix(b, "d") {
			var days float64
			if days, err = strconv.ParseFloat(strings.TrimSuffix(b, "d"), 64); err == nil {
				bucket = time.Duration(days * float64(24*time.Hour))
			}
		} else {
			bucket, err = time.ParseDuration(b)
		}
		if err != nil || bucket < time.Minute || to.Sub(from)/bucket > maxKPIBuckets {
			writeError(w, http.StatusBadRequest, "bucket: a duration of at least 1m like 1h or 1d, at most %d buckets in the period", maxKPIBuckets)
			return
		}
	}
	var f registry.DeviceFilter
	if scope == "site" {
		f.SiteIDs = []string{id}
	}
	devs, ok := a.visibleDevices(w, r, f, access.AlarmRead)
	if !ok {
		return
	}
	switch scope {
	case "device", "site":
		keep := devs[:0]
		for _, d := range devs {
			if (scope == "device" && d.ID == id) || (scope == "site" && d.Info.SiteID == id) {
				keep = append(keep, d)
			}
		}
		devs = keep
		if scope == "device" && len(devs) == 0 {
			writeError(w, http.StatusNotFound, "device %q: not found", id)
			return
		}
	case "tenant":
		// Customers' lists are of the tenant's tree already; supporters'
		// and the service desk's are of wherever they have access.
		if devs, ok = a.devicesWithin(w, r, devs, id); !ok {
			return
		}
		// A tenant the caller may neither read nor see a device of
		// answers like one that does not exist.
		if len(devs) == 0 {
			if _, _, err := a.namedTenant(ctx, id); err != nil {
				a.storeError(w, err)
				return
			}
		}
	}
	noteOutsideList(r, "kpi.read", devs)
	af := alarm.Filter{Since: from, Until: to}
	if scope == "device" {
		af.DeviceIDs = []string{id}
	}
	byDevice, ok := a.kpiAlarms(w, r, devs, af)
	if !ok {
		return
	}
	runs, err := a.runSources(ctx, devs)
	if err != nil {
		a.storeError(w, err)
		return
	}
	rep := apiv1.KPIReport{From: from, To: to, Period: round(to.Sub(from).Seconds()), Scope: scope, ScopeID: id,
		Devices: make([]apiv1.KPIDevice, 0, len(devs))}
	all := make([]kpi.Figures, 0, len(devs))
	var utilSum float64
	var utilN int
	for _, d := range devs {
		fig := kpi.Device(byDevice[d.ID], from, to)
		all = append(all, fig)
		var util *float64
		if src, ok := runs[d.ID]; ok {
			if util, err = a.utilisation(ctx, d, src, from, to); err != nil {
				a.storeError(w, err)
				return
			}
		}
		if util != nil {
			utilSum += *util
			utilN++
		}
		rep.Devices = append(rep.Devices, apiv1.KPIDevice{DeviceID: d.ID, Name: d.Info.Name, SiteID: d.Info.SiteID,
			Model: d.Info.Model, KPIFigures: kpiFigures(fig, util)})
	}
	var util *float64
	if utilN > 0 {
		u := round(utilSum / float64(utilN))
		util = &u
	}
	rep.Total = kpiFigures(kpi.Aggregate(all), util)
	if bucket > 0 {
		for b := from; b.Before(to); b = b.Add(bucket) {
			e := b.Add(bucket)
			if e.After(to) {
				e = to
			}
			figs := make([]kpi.Figures, 0, len(devs))
			for _, d := range devs {
				figs = append(figs, kpi.Device(byDevice[d.ID], b, e))
			}
			rep.Series = append(rep.Series, apiv1.KPIBucket{From: b, To: e, KPIFigures: kpiFigures(kpi.Aggregate(figs), nil)})
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// devicesWithin keeps the devices of the tenant and its sub-tenants.
func (a *API) devicesWithin(w http.ResponseWriter, r *http.Request, devs []registry.Device, tenantID string) ([]registry.Device, bool) {
	ctx := r.Context()
	cache := a.newResolverCache()
	t, err := cache.tenant(ctx, tenantID)
	if errors.Is(err, database.ErrNotFound) {
		err = noTenant(tenantID)
	}
	if err != nil {
		a.storeError(w, err)
		return nil, false
	}
	keep := devs[:0]
	for _, d := range devs {
		dt, err := cache.tenant(ctx, d.TenantID)
		if err != nil {
			a.storeError(w, err)
			return nil, false
		}
		if access.Within(dt.Path, t.Path) {
			keep = append(keep, d)
		}
	}
	return keep, true
}

// kpiAlarms reads the rule alarms of devs that f selects (those that
// overlap the period), by device: the alarms in the caller's scope
// (alarmScopes), a page at a time, kept if their device is one of devs.
// Maintenance warnings are no faults and do not count.
func (a *API) kpiAlarms(w http.ResponseWriter, r *http.Request, devs []registry.Device, f alarm.Filter) (map[string][]kpi.Alarm, bool) {
	ctx := r.Context()
	of := make(map[string]bool, len(devs))
	for _, d := range devs {
		of[d.ID] = true
	}
	out := map[string][]kpi.Alarm{}
	if len(devs) == 0 {
		return out, true
	}
	filters, ok := a.alarmScopes(w, r, f)
	if !ok {
		return nil, false
	}
	pages := a.alarmPages(filters, 0, 1000)
	for {
		al, ok, err := pages.next(ctx)
		if err != nil {
			a.storeError(w, err)
			return nil, false
		}
		if !ok {
			return out, true
		}
		if al.Kind != alarm.KindRule || !of[al.DeviceID] {
			continue
		}
		out[al.DeviceID] = append(out[al.DeviceID], kpi.Alarm{Severity: al.Severity, Raised: al.RaisedAt, Cleared: al.ClearedAt})
	}
}

// runSource is where a maintenance plan reads whether a machine runs:
// "run": {"metric": M, "kind": "onoff"|"hours"} in the plan's spec.
type runSource struct {
	Metric string `json:"metric"`
	// Kind "onoff": M is 1 while running, 0 while not; "hours": M is
	// a cumulative operating-hours counter.
	Kind string `json:"kind"`
}

// runSources finds each device's run source: the maintenance plan of its
// model in its tenant or, failing that, in the nearest tenant above.
func (a *API) runSources(ctx context.Context, devs []registry.Device) (map[string]runSource, error) {
	cache := a.newResolverCache()
	paths := map[string][]string{} // device → its tenant path, root first
	seen := map[string]bool{}
	var tenants []string
	for _, d := range devs {
		if d.Info.Model == "" {
			continue
		}
		t, err := cache.tenant(ctx, d.TenantID)
		if err != nil {
			return nil, err
		}
		paths[d.ID] = strings.Split(t.Path, "/")
		for _, id := range paths[d.ID] {
			if !seen[id] {
				seen[id] = true
				tenants = append(tenants, id)
			}
		}
	}
	out := map[string]runSource{}
	if len(tenants) == 0 {
		return out, nil
	}
	plans, err := a.stores.Alarms.ListMaintenancePlans(ctx, tenants)
	if err != nil {
		return nil, err
	}
	type key struct{ tenant, model string }
	srcs := map[key]runSource{}
	for _, p := range plans {
		var spec struct {
			Run *runSource `json:"run"`
		}
		if json.Unmarshal(p.Spec, &spec) != nil || spec.Run == nil || spec.Run.Metric == "" {
			continue
		}
		if spec.Run.Kind != "onoff" && spec.Run.Kind != "hours" {
			continue
		}
		srcs[key{p.TenantID, p.Model}] = *spec.Run
	}
	for _, d := range devs {
		path := paths[d.ID]
		for i := len(path) - 1; i >= 0; i-- {
			if s, ok := srcs[key{path[i], d.Info.Model}]; ok {
				out[d.ID] = s
				break
			}
		}
	}
	return out, nil
}

// utilisation is the share of [from, to) the device ran: the mean of an
// on/off metric, or the operating hours its counter advanced per hour of
// the period. Nil without readings (or with a counter that went back).
func (a *API) utilisation(ctx context.Context, d registry.Device, src runSource, from, to time.Time) (*float64, error) {
	if a.tsdb == nil {
		return nil, nil
	}
	// One bucket over the whole period.
	width := (to.Sub(from) + time.Millisecond).Truncate(time.Millisecond)
	bs, err := a.tsdb.Downsample(ctx, d.TenantID, d.ID, src.Metric, from, to, width)
	if err != nil {
		return nil, fmt.Errorf("utilisation of %s: %w", d.ID, err)
	}
	if len(bs) == 0 || bs[0].Count == 0 {
		return nil, nil
	}
	b := bs[0]
	var u float64
	switch src.Kind {
	case "onoff":
		u = b.Avg()
	case "hours":
		if b.Last < b.First {
			return nil, nil // the counter was reset or replaced
		}
		u = (b.Last - b.First) / to.Sub(from).Hours()
	}
	if math.IsNaN(u) || math.IsInf(u, 0) {
		return nil, nil
	}
	u = round(u)
	return &u, nil
}
