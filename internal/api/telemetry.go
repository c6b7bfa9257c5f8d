package api

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tsdb"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

func metrics(ls []tsdbstore.Latest) []apiv1.Metric {
	out := make([]apiv1.Metric, len(ls))
	for i, l := range ls {
		out[i] = apiv1.Metric{Name: l.Metric, Value: l.Value, TS: l.TS}
	}
	return out
}

func (a *API) latest(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	a.caughtUp(r.Context())
	ls, err := a.tsdb.Latest(r.Context(), d.TenantID, d.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.DeviceMetrics{DeviceID: d.ID, Metrics: metrics(ls)})
}

// fleetLatest answers GET /api/v1/telemetry/latest?after=&limit=: the newest
// values of a page of devices, in id order; "next" is the "after" of the
// following page.
func (a *API) fleetLatest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 1000
	if s := q.Get("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 10_000 {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and 10000")
			return
		}
	}
	tenant := q.Get("tenant")
	known := tenant == ""
	if known {
		tenant = principal(r.Context()).TenantID
	} else {
		_, _, err := a.namedTenant(r.Context(), tenant)
		known = err == nil
	}
	// Pages are read until limit devices the caller may see are found (or
	// the tenant's end), so that "next" names only a device of the page:
	// never one the caller may not know of.
	out := make([]apiv1.DeviceLatest, 0, min(limit, 1000))
	cache, after, more := a.newResolverCache(), q.Get("after"), false
	var shown []registry.Device // for the owners' access logs
	for {
		a.caughtUp(r.Context())
		page, err := a.tsdb.FleetLatest(r.Context(), tenant, after, limit)
		if err != nil {
			a.storeError(w, err)
			return
		}
		// The page is one tenant's; each device still passes the policy
		// (a service desk sees only devices of switched-on sites).
		ids := make([]string, len(page))
		for i, d := range page {
			ids[i] = d.DeviceID
		}
		devs, err := a.stores.Registry.FindDevices(r.Context(), registry.DeviceFilter{IDs: ids})
		if err != nil {
			a.storeError(w, err)
			return
		}
		may := map[string]registry.Device{}
		for _, d := range devs {
			res, err := cache.device(r.Context(), d)
			if err != nil {
				a.storeError(w, err)
				return
			}
			if a.allowed(r.Context(), access.DeviceData, res) {
				may[d.ID] = d
			}
		}
		for _, d := range page {
			dev, ok := may[d.DeviceID]
			if !ok {
				continue
			}
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, apiv1.DeviceLatest{DeviceID: d.DeviceID, Metrics: metrics(d.Metrics)})
			shown = append(shown, dev)
		}
		if len(page) < limit {
			break // the tenant's end
		}
		if len(out) == limit {
			more = true // there may be more after the page
			break
		}
		after = page[len(page)-1].DeviceID
	}
	noteOutsideList(r, "telemetry.latest.read", shown)
	// A tenant the caller may neither read nor see a device of answers
	// like one that does not exist.
	if !known && len(out) == 0 && q.Get("after") == "" {
		a.storeError(w, noTenant(tenant))
		return
	}
	resp := map[string]any{"devices": out}
	if more && len(out) > 0 {
		resp["next"] = out[len(out)-1].DeviceID
	}
	writeJSON(w, http.StatusOK, resp)
}

// Raw-query limits.
const (
	defaultLimit = 10_000
	maxLimit     = 100_000
)

// seriesQuery is a parsed history query.
type seriesQuery struct {
	from, to time.Time
	width    time.Duration // 0: raw
	limit    int
}

// errBadQuery marks a client error in a history query.
var errBadQuery = errors.New("bad query")

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadQuery, fmt.Sprintf(format, args...))
}

// parseSeriesQuery reads from, to (RFC 3339; default the last 24 hours),
// bucket (a width) or buckets (a count), and limit.
func (a *API) parseSeriesQuery(q url.Values) (seriesQuery, error) {
	sq := seriesQuery{to: a.now(), limit: defaultLimit}
	var err error
	if s := q.Get("to"); s != "" {
		if sq.to, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return sq, badQuery("to: %q is not an RFC 3339 time", s)
		}
	}
	sq.from = sq.to.Add(-24 * time.Hour)
	if s := q.Get("from"); s != "" {
		if sq.from, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return sq, badQuery("from: %q is not an RFC 3339 time", s)
		}
	}
	if !sq.to.After(sq.from) {
		return sq, badQuery("to must be after from")
	}
	switch bw, bn := q.Get("bucket"), q.Get("buckets"); {
	case bw != "" && bn != "":
		return sq, badQuery("give bucket (a width) or buckets (a count), not both")
	case bw != "":
		if sq.width, err = time.ParseDuration(bw); err != nil {
			return sq, badQuery("bucket: %q is not a duration like 5m or 1h", bw)
		}
		if _, err := tsdb.NewDownsampler(sq.from, sq.to, sq.width); err != nil {
			return sq, badQuery("bucket: %v", err)
		}
	case bn != "":
		n, err := strconv.Atoi(bn)
		if err == nil {
			sq.width, err = tsdb.BucketWidth(sq.from, sq.to, n)
		}
		if err != nil {
			return sq, badQuery("buckets: %v", err)
		}
	}
	if s := q.Get("limit"); s != "" {
		if sq.limit, err = strconv.Atoi(s); err != nil || sq.limit < 1 || sq.limit > maxLimit {
			return sq, badQuery("limit must be between 1 and %d", maxLimit)
		}
	}
	return sq, nil
}

func (a *API) series(r *http.Request, d registry.Device, metric string, sq seriesQuery) (apiv1.Series, error) {
	out := apiv1.Series{Metric: metric, From: sq.from.UTC(), To: sq.to.UTC()}
	if sq.width > 0 {
		a.caughtUp(r.Context())
		bs, err := a.tsdb.Downsample(r.Context(), d.TenantID, d.ID, metric, sq.from, sq.to, sq.width)
		if err != nil {
			return out, err
		}
		out.Bucket = sq.width.String()
		out.Buckets = make([]apiv1.Bucket, len(bs))
		for i, b := range bs {
			out.Buckets[i] = apiv1.Bucket{Start: b.Start.UTC(), Count: b.Count, Min: b.Min, Max: b.Max, Avg: round(b.Avg()),
				Sum: b.Sum, First: b.First, Last: b.Last}
		}
		return out, nil
	}
	out.Points = []apiv1.Sample{}
	a.caughtUp(r.Context())
	err := a.tsdb.Range(r.Context(), d.TenantID, d.ID, metric, sq.from, sq.to, sq.limit+1, func(s tsdbstore.Sample) bool {
		out.Points = append(out.Points, apiv1.Sample{TS: s.TS, Value: s.Value})
		return true
	})
	if len(out.Points) > sq.limit {
		out.Points, out.Truncated = out.Points[:sq.limit], true
	}
	return out, err
}

func (a *API) queryError(w http.ResponseWriter, err error) {
	if errors.Is(err, errBadQuery) {
		writeError(w, http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), errBadQuery.Error()+": "))
		return
	}
	a.storeError(w, err)
}

// history answers GET …/telemetry/{metric}?from=&to=[&bucket=5m|&buckets=N][&limit=N].
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	sq, err := a.parseSeriesQuery(r.URL.Query())
	if err != nil {
		a.queryError(w, err)
		return
	}
	s, err := a.series(r, d, r.PathValue("metric"), sq)
	if err != nil {
		a.queryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.MetricHistory{DeviceID: d.ID, Series: s})
}

// maxMetricsPerQuery bounds GET …/telemetry?metrics=….
const maxMetricsPerQuery = 50

// historyMany answers GET …/telemetry?metrics=a,b,c&… with one series per
// metric, for charts that show several signals of a machine together.
func (a *API) historyMany(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	var names []string
	for _, m := range strings.Split(r.URL.Query().Get("metrics"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	if len(names) == 0 || len(names) > maxMetricsPerQuery {
		writeError(w, http.StatusBadRequest, "metrics must name 1 to %d metrics, comma-separated", maxMetricsPerQuery)
		return
	}
	sq, err := a.parseSeriesQuery(r.URL.Query())
	if err != nil {
		a.queryError(w, err)
		return
	}
	out := make([]apiv1.Series, len(names))
	for i, m := range names {
		if out[i], err = a.series(r, d, m, sq); err != nil {
			a.queryError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, apiv1.DeviceSeries{DeviceID: d.ID, Series: out})
}

// round trims float noise from averages to 12 significant digits.
func round(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return f
}

func (a *API) rejected(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and 1000")
			return
		}
	}
	a.caughtUp(r.Context())
	rs, err := a.tsdb.ListRejected(r.Context(), d.TenantID, d.ID, limit)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Rejected, len(rs))
	for i, x := range rs {
		out[i] = apiv1.Rejected{ID: x.ID, MessageID: x.MessageID, Topic: x.Topic, Reason: x.Reason, ReceivedAt: x.ReceivedAt,
			Truncated: x.Truncated(), Size: x.Size, SHA256: hex.EncodeToString(x.SHA256), Unreadable: x.Unreadable}
		if utf8.Valid(x.Payload) {
			out[i].Payload = string(x.Payload)
		} else {
			out[i].PayloadB64 = base64.StdEncoding.EncodeToString(x.Payload)
		}
	}
	writeJSON(w, http.StatusOK, apiv1.RejectedList{DeviceID: d.ID, Rejected: out})
}

// messages answers GET /api/v1/devices/{id}/messages?limit=: the device's
// newest messages still in the engine's head, with their system and
// application properties.
func (a *API) messages(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and 1000")
			return
		}
	}
	a.caughtUp(r.Context())
	ms, err := a.tsdb.RecentMessages(r.Context(), d.ID, limit)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Message, len(ms))
	for i, m := range ms {
		out[i] = apiv1.Message{MessageID: m.MessageID, ReceivedAt: m.ReceivedAt, System: m.System, App: m.App}
		if out[i].System == nil {
			out[i].System = map[string]string{}
		}
		if out[i].App == nil {
			out[i].App = map[string]string{}
		}
		for _, p := range m.Points {
			out[i].Values = append(out[i].Values, apiv1.Metric{Name: p.Metric, Value: p.Value, TS: p.TS})
		}
	}
	writeJSON(w, http.StatusOK, apiv1.MessageList{DeviceID: d.ID, Messages: out})
}
