package ingest_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/telemetry"
)

var (
	// now is the server clock in these tests; msgTime stamps flat objects.
	now     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msgTime = time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC)
	t1100   = time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	t1101   = time.Date(2026, 3, 1, 11, 1, 0, 0, time.UTC)
)

func pt(metric string, ts time.Time, v float64) telemetry.Point {
	return telemetry.Point{Metric: metric, TS: ts, Value: v}
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		wantID string
		want   []telemetry.Point
	}{
		{
			name: "flat object: every field a metric, stamped msgTime, sorted by metric",
			body: `{"temperature": 71.5, "inletPressure": 0.12}`,
			want: []telemetry.Point{pt("inletPressure", msgTime, 0.12), pt("temperature", msgTime, 71.5)},
		},
		{
			name: "one timestamped sample",
			body: `{"ts": "2026-03-01T11:00:00Z", "values": {"temperature": 71.5, "inletPressure": 0.12}}`,
			want: []telemetry.Point{pt("inletPressure", t1100, 0.12), pt("temperature", t1100, 71.5)},
		},
		{
			name: "a buffer of samples, each sorted by metric, in array order",
			body: `[{"ts": "2026-03-01T11:00:00Z", "values": {"t": 1, "p": 2}},
			        {"ts": "2026-03-01T11:01:00Z", "values": {"t": 3}}]`,
			want: []telemetry.Point{pt("p", t1100, 2), pt("t", t1100, 1), pt("t", t1101, 3)},
		},
		{
			name: "a buffer may hold flat objects, with or without ts",
			body: `[{"t": 4, "a": 5}, {"ts": "2026-03-01T11:01:00Z", "t": 6}, {"ts": "2026-03-01T11:00:00Z", "values": {"t": 7}}]`,
			want: []telemetry.Point{pt("a", msgTime, 5), pt("t", msgTime, 4), pt("t", t1101, 6), pt("t", t1100, 7)},
		},
		{
			name: "a flat object with ts is stamped ts; ts is not a metric",
			body: `{"ts": "2026-03-01T11:00:00Z", "t": 1}`,
			want: []telemetry.Point{pt("t", t1100, 1)},
		},
		{
			name: "ts with a zone offset",
			body: `{"ts": "2026-03-01T13:00:00+02:00", "values": {"t": 1}}`,
			want: []telemetry.Point{pt("t", t1100, 1)},
		},
		{
			name: "ts with fractional seconds",
			body: `{"ts": "2026-03-01T11:00:00.250Z", "values": {"t": 1}}`,
			want: []telemetry.Point{pt("t", t1100.Add(250*time.Millisecond), 1)},
		},
		{
			name: "ts as Unix milliseconds",
			body: `{"ts": ` + strconv.FormatInt(t1100.UnixMilli()+7, 10) + `, "values": {"t": 1}}`,
			want: []telemetry.Point{pt("t", t1100.Add(7*time.Millisecond), 1)},
		},
		{
			name: "booleans are 1 and 0",
			body: `{"on": true, "off": false}`,
			want: []telemetry.Point{pt("off", msgTime, 0), pt("on", msgTime, 1)},
		},
		{
			name: "null values are skipped",
			body: `{"a": null, "b": 1, "c": {"d": null}}`,
			want: []telemetry.Point{pt("b", msgTime, 1)},
		},
		{
			name: "nested objects are flattened with dots",
			body: `{"motor": {"current": 3.5, "rpm": 1200, "bearing": {"temp": 40}}, "z": -1}`,
			want: []telemetry.Point{pt("motor.bearing.temp", msgTime, 40), pt("motor.current", msgTime, 3.5), pt("motor.rpm", msgTime, 1200), pt("z", msgTime, -1)},
		},
		{
			name: "nested objects inside values",
			body: `{"ts": "2026-03-01T11:00:00Z", "values": {"motor": {"current": 3}}}`,
			want: []telemetry.Point{pt("motor.current", t1100, 3)},
		},
		{
			name: "four levels of nesting are allowed",
			body: `{"a": {"b": {"c": {"d": {"e": 1}}}}}`,
			want: []telemetry.Point{pt("a.b.c.d.e", msgTime, 1)},
		},
		{
			name:   "top-level mid is the message id, not a metric",
			body:   `{"mid": "m-1", "t": 1}`,
			wantID: "m-1",
			want:   []telemetry.Point{pt("t", msgTime, 1)},
		},
		{
			name:   "top-level mid beside values",
			body:   `{"mid": "m-2", "ts": "2026-03-01T11:00:00Z", "values": {"t": 1}}`,
			wantID: "m-2",
			want:   []telemetry.Point{pt("t", t1100, 1)},
		},
		{
			name: "mid and ts inside values are metrics",
			body: `{"ts": "2026-03-01T11:00:00Z", "values": {"mid": 1, "ts": 2}}`,
			want: []telemetry.Point{pt("mid", t1100, 1), pt("ts", t1100, 2)},
		},
		{
			name: "number forms",
			body: `{"a": -0.5, "b": 1e3, "c": 2E-2, "d": 0, "e": 1.7976931348623157e308}`,
			want: []telemetry.Point{pt("a", msgTime, -0.5), pt("b", msgTime, 1000), pt("c", msgTime, 0.02), pt("d", msgTime, 0), pt("e", msgTime, 1.7976931348623157e308)},
		},
		{
			name: "surrounding white space is ignored",
			body: " \r\n\t{\"t\": 1}\n",
			want: []telemetry.Point{pt("t", msgTime, 1)},
		},
		{
			name: "unicode metric names",
			body: `{"température °C": 20, "\u00e9": 1}`,
			want: []telemetry.Point{pt("température °C", msgTime, 20), pt("é", msgTime, 1)},
		},
		{
			name: "ts exactly one day ahead is accepted",
			body: `{"ts": "2026-03-02T12:00:00Z", "values": {"t": 1}}`,
			want: []telemetry.Point{pt("t", now.Add(24*time.Hour), 1)},
		},
		{
			name: "ts at the start of 2000 is accepted",
			body: `{"ts": "2000-01-01T00:00:00Z", "values": {"t": 1}}`,
			want: []telemetry.Point{pt("t", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.ParsePayload([]byte(tc.body), msgTime, now)
			if err != nil {
				t.Fatalf("ParsePayload(%s): %v", tc.body, err)
			}
			if got.MessageID != tc.wantID {
				t.Errorf("MessageID = %q; want %q", got.MessageID, tc.wantID)
			}
			checkPoints(t, got.Points, tc.want)
		})
	}
}

func checkPoints(t *testing.T, got, want []telemetry.Point) {
	t.Helper()
	equal := len(got) == len(want)
	for i := 0; equal && i < len(got); i++ {
		equal = got[i].Metric == want[i].Metric && got[i].TS.Equal(want[i].TS) && got[i].Value == want[i].Value
	}
	if !equal {
		t.Errorf("points:\n got %v\nwant %v", got, want)
	}
}

func TestParsePayloadMaxPoints(t *testing.T) {
	flat := func(n int) []byte {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"m%d":%d`, i, i)
		}
		b.WriteString("}")
		return []byte(b.String())
	}
	p, err := ingest.ParsePayload(flat(ingest.MaxPoints), msgTime, now)
	if err != nil {
		t.Fatalf("%d values: %v", ingest.MaxPoints, err)
	}
	if len(p.Points) != ingest.MaxPoints {
		t.Fatalf("%d values gave %d points", ingest.MaxPoints, len(p.Points))
	}
	if _, err := ingest.ParsePayload(flat(ingest.MaxPoints+1), msgTime, now); err == nil || !strings.Contains(err.Error(), "more than 10000 values") {
		t.Fatalf("%d values: error %v; want more than 10000 values", ingest.MaxPoints+1, err)
	}
	// The limit is per message, not per sample.
	half := string(flat(ingest.MaxPoints/2 + 1))
	if _, err := ingest.ParsePayload([]byte("["+half+","+half+"]"), msgTime, now); err == nil || !strings.Contains(err.Error(), "more than 10000 values") {
		t.Fatalf("two samples of %d values: error %v; want more than 10000 values", ingest.MaxPoints/2+1, err)
	}
}

func TestParsePayloadErrors(t *testing.T) {
	long := strings.Repeat("x", ingest.MaxMetricName+1)
	for _, tc := range []struct {
		name    string
		body    string
		wantErr string
	}{
		{"string value", `{"t": "hot"}`, `"t": want a number or boolean, got string`},
		{"array value", `{"t": [1, 2]}`, `"t": want a number or boolean, got array`},
		{"string value nested", `{"motor": {"state": "on"}}`, `"motor.state": want a number or boolean, got string`},
		{"string value in values", `{"ts": "2026-03-01T11:00:00Z", "values": {"t": "1"}}`, "got string"},
		{"not JSON", `temperature=71.5`, "not JSON"},
		{"truncated JSON", `{"t": 1`, "not JSON"},
		{"trailing garbage", `{"t": 1} x`, "data after the JSON value"},
		{"a second object", `{"t": 1}{"u": 2}`, "data after the JSON value"},
		{"a stray closing brace", `{"t": 1}}`, "data after the JSON value"},
		{"a stray closing bracket", `[{"t": 1}]]`, "data after the JSON value"},
		{"empty body", ``, "empty payload"},
		{"white space only", " \n\t", "empty payload"},
		{"empty array", `[]`, "empty array"},
		{"array of numbers", `[1, 2]`, "element 0: want an object, got number"},
		{"array with a non-object after a sample", `[{"t": 1}, "x"]`, "element 1: want an object, got string"},
		{"nested array", `[[{"t": 1}]]`, "element 0: want an object, got array"},
		{"a number", `42`, "JSON number; want an object or an array of objects"},
		{"a string", `"hello"`, "JSON string"},
		{"null", `null`, "JSON null"},
		{"values not an object", `{"ts": "2026-03-01T11:00:00Z", "values": [1, 2]}`, `"values" must be an object, got array`},
		{"values a number", `{"values": 3}`, `"values" must be an object, got number`},
		{"unexpected field beside values", `{"ts": "2026-03-01T11:00:00Z", "values": {"t": 1}, "u": 2}`, `unexpected field "u" beside "values"`},
		{"mid beside values in a buffer element", `[{"mid": "x", "values": {"t": 1}}]`, `element 0: unexpected field "mid"`},
		{"mid not a string", `{"mid": 7, "t": 1}`, `"mid" must be a string, got number`},
		{"timestamp before 2000", `{"ts": "1999-12-31T23:59:59Z", "values": {"t": 1}}`, "before 2000"},
		{"Unix epoch in milliseconds", `{"ts": 0, "values": {"t": 1}}`, "before 2000"},
		{"timestamp in seconds, not milliseconds", `{"ts": 1772362800, "values": {"t": 1}}`, "before 2000"},
		{"timestamp more than a day ahead", `{"ts": "2026-03-02T12:00:00.001Z", "values": {"t": 1}}`, "ahead of the server clock"},
		{"timestamp far ahead in a buffer", `[{"t": 1}, {"ts": "2036-01-01T00:00:00Z", "t": 2}]`, "element 1: timestamp 2036-01-01T00:00:00Z is more than"},
		{"timestamp not RFC 3339", `{"ts": "yesterday", "values": {"t": 1}}`, `"ts": "yesterday" is not an RFC 3339 time`},
		{"timestamp without a zone", `{"ts": "2026-03-01T11:00:00", "values": {"t": 1}}`, "not an RFC 3339 time"},
		{"timestamp with fractional milliseconds", `{"ts": 1772362800000.5, "values": {"t": 1}}`, "not whole Unix milliseconds"},
		{"timestamp a boolean", `{"ts": true, "values": {"t": 1}}`, "want an RFC 3339 string or Unix milliseconds, got boolean"},
		{"over-long metric name", `{"` + long + `": 1}`, "longer than 128 bytes"},
		{"over-long flattened metric name", `{"` + long[:100] + `": {"` + long[:28] + `": 1}}`, "longer than 128 bytes"},
		{"empty metric name", `{"": 1}`, "empty metric name"},
		{"control character in a name", `{"a\u0001b": 1}`, "control character"},
		{"newline in a name", `{"a\nb": 1}`, "control character"},
		{"DEL in a name", `{"a\u007fb": 1}`, "control character"},
		{"invalid UTF-8", "{\"t\xff\": 1}", "not valid UTF-8"},
		{"invalid UTF-8 in a string value", "{\"mid\": \"\xc3\x28\", \"t\": 1}", "not valid UTF-8"},
		{"nesting too deep", `{"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}`, "nested deeper than 4 levels"},
		{"no values at all", `{}`, "no values"},
		{"only nulls", `{"a": null, "b": {"c": null}}`, "no values"},
		{"only a mid", `{"mid": "m-1"}`, "no values"},
		{"empty values", `{"ts": "2026-03-01T11:00:00Z", "values": {}}`, "no values"},
		{"an empty sample in a buffer", `[{"t": 1}, {}]`, "element 1: sample holds no values"},
		{"huge exponent", `{"t": 1e400}`, `"t": number 1e400 out of range`},
		{"huge negative exponent", `{"t": -1e400}`, "out of range"},
		{"too-large payload", `{"t": 1, "pad": "` + strings.Repeat(" ", ingest.MaxPayload) + `"}`, "more than 262144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ingest.ParsePayload([]byte(tc.body), msgTime, now)
			if err == nil {
				t.Fatalf("ParsePayload(%.60s) = %v; want an error containing %q", tc.body, p.Points, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePayload(%.60s): error %q; want it to contain %q", tc.body, err, tc.wantErr)
			}
		})
	}
}

// A flat object is stamped msgTime, which itself must be plausible.
func TestParsePayloadChecksMsgTime(t *testing.T) {
	for _, mt := range []time.Time{{}, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(25 * time.Hour)} {
		if _, err := ingest.ParsePayload([]byte(`{"t": 1}`), mt, now); err == nil {
			t.Errorf("flat object stamped %v accepted", mt)
		}
	}
}
