package ingest_test

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/ingest"
)

func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"temperature": 71.5, "inletPressure": 0.12}`,
		`{"ts": "2026-03-01T11:00:00Z", "values": {"temperature": 71.5, "inletPressure": 0.12}}`,
		`[{"ts": "2026-03-01T11:00:00Z", "values": {"t": 1, "p": 2}}, {"ts": 1772362860000, "values": {"t": 3}}, {"t": 4}]`,
		`{"mid": "m-1", "on": true, "off": false, "x": null, "motor": {"current": 3.5, "a": {"b": {"c": 1}}}}`,
		`{"ts": "2026-03-01T13:00:00.123+02:00", "t": 1e308}`,
		`{"t": 1e400}`,
		`{"t": "hot"}`,
		`{"t": 1}}`,
		`[]`,
		`{}`,
		"{\"t\xff\": 1}",
		`{"a\u0001": 1}`,
		``,
	} {
		f.Add([]byte(s))
	}
	earliest := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ingest.ParsePayload(body, msgTime, now)
		if err != nil {
			return
		}
		if len(p.Points) == 0 || len(p.Points) > ingest.MaxPoints {
			t.Fatalf("%d points", len(p.Points))
		}
		for _, pt := range p.Points {
			if math.IsNaN(pt.Value) || math.IsInf(pt.Value, 0) {
				t.Fatalf("point %v: value not finite", pt)
			}
			if pt.Metric == "" || len(pt.Metric) > ingest.MaxMetricName || !utf8.ValidString(pt.Metric) ||
				strings.ContainsFunc(pt.Metric, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("point %v: invalid metric name %q", pt, pt.Metric)
			}
			if pt.TS.Before(earliest) || pt.TS.After(now.Add(24*time.Hour)) {
				t.Fatalf("point %v: implausible time", pt)
			}
		}
	})
}
