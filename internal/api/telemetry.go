package api

import (
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tsdb"
)

// Metric is a metric's newest value.
type Metric struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	TS    time.Time `json:"ts"`
}

func (a *API) latest(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	ls, err := a.store.LatestValues(r.Context(), d.TenantID, d.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]Metric, len(ls))
	for i, l := range ls {
		out[i] = Metric{Name: l.Metric, Value: l.Value, TS: l.TS}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deviceId": d.ID, "metrics": out})
}

// Raw-query limits.
const (
	defaultLimit = 10_000
	maxLimit     = 100_000
)

// Sample is one raw point.
type Sample struct {
	TS    time.Time `json:"ts"`
	Value float64   `json:"value"`
}

// Bucket is one downsampled interval.
type Bucket struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Avg   float64   `json:"avg"`
	Sum   float64   `json:"sum"`
	First float64   `json:"first"`
	Last  float64   `json:"last"`
}

// history answers GET …/telemetry/{metric}?from=&to=[&bucket=5m|&buckets=N][&limit=N].
// from and to are RFC 3339 (default: the last 24 hours); without bucket or
// buckets the raw points come back, at most limit of them.
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	metric := r.PathValue("metric")
	q := r.URL.Query()
	to, from := a.now(), time.Time{}
	var err error
	if s := q.Get("to"); s != "" {
		if to, err = time.Parse(time.RFC3339Nano, s); err != nil {
			writeError(w, http.StatusBadRequest, "to: %q is not an RFC 3339 time", s)
			return
		}
	}
	from = to.Add(-24 * time.Hour)
	if s := q.Get("from"); s != "" {
		if from, err = time.Parse(time.RFC3339Nano, s); err != nil {
			writeError(w, http.StatusBadRequest, "from: %q is not an RFC 3339 time", s)
			return
		}
	}
	if !to.After(from) {
		writeError(w, http.StatusBadRequest, "to must be after from")
		return
	}
	resp := map[string]any{"deviceId": d.ID, "metric": metric, "from": from.UTC(), "to": to.UTC()}

	var width time.Duration
	switch bw, bn := q.Get("bucket"), q.Get("buckets"); {
	case bw != "" && bn != "":
		writeError(w, http.StatusBadRequest, "give bucket (a width) or buckets (a count), not both")
		return
	case bw != "":
		if width, err = time.ParseDuration(bw); err != nil {
			writeError(w, http.StatusBadRequest, "bucket: %q is not a duration like 5m or 1h", bw)
			return
		}
	case bn != "":
		n, err := strconv.Atoi(bn)
		if err == nil {
			width, err = tsdb.BucketWidth(from, to, n)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "buckets: %v", err)
			return
		}
	}

	if width > 0 {
		ds, err := tsdb.NewDownsampler(from, to, width)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bucket: %v", err)
			return
		}
		err = a.store.Samples(r.Context(), d.TenantID, d.ID, metric, from, to, 0, func(s store.Sample) bool {
			ds.Add(s.TS, s.Value)
			return true
		})
		if err != nil {
			a.storeError(w, err)
			return
		}
		bs := ds.Buckets()
		out := make([]Bucket, len(bs))
		for i, b := range bs {
			out[i] = Bucket{Start: b.Start.UTC(), Count: b.Count, Min: b.Min, Max: b.Max, Avg: round(b.Avg()),
				Sum: b.Sum, First: b.First, Last: b.Last}
		}
		resp["bucket"] = width.String()
		resp["buckets"] = out
		writeJSON(w, http.StatusOK, resp)
		return
	}

	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxLimit {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and %d", maxLimit)
			return
		}
	}
	points := []Sample{}
	err = a.store.Samples(r.Context(), d.TenantID, d.ID, metric, from, to, limit+1, func(s store.Sample) bool {
		points = append(points, Sample{TS: s.TS, Value: s.Value})
		return true
	})
	if err != nil {
		a.storeError(w, err)
		return
	}
	resp["truncated"] = len(points) > limit
	if len(points) > limit {
		points = points[:limit]
	}
	resp["points"] = points
	writeJSON(w, http.StatusOK, resp)
}

// round trims float noise from averages to 12 significant digits.
func round(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return f
}

// Rejected is a message Warden could not accept.
type Rejected struct {
	ID         int64     `json:"id"`
	MessageID  string    `json:"messageId,omitempty"`
	Topic      string    `json:"topic"`
	Reason     string    `json:"reason"`
	Payload    string    `json:"payload"` // as text when it is valid UTF-8
	PayloadB64 string    `json:"payloadBase64,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
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
	rs, err := a.store.ListRejected(r.Context(), d.TenantID, d.ID, limit)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]Rejected, len(rs))
	for i, x := range rs {
		out[i] = Rejected{ID: x.ID, MessageID: x.MessageID, Topic: x.Topic, Reason: x.Reason, ReceivedAt: x.ReceivedAt}
		if utf8.Valid(x.Payload) {
			out[i].Payload = string(x.Payload)
		} else {
			out[i].PayloadB64 = base64.StdEncoding.EncodeToString(x.Payload)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deviceId": d.ID, "rejected": out})
}
