package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/telemetry"
)

// Limits on one message's content.
const (
	MaxPayload      = 256 << 10 // bytes, as IoT Hub
	MaxPoints       = 10_000    // points in one message
	MaxMetricName   = 128       // bytes
	maxNestingDepth = 4
)

// Payload is a decoded telemetry body.
type Payload struct {
	MessageID string // from a top-level "mid" field, if any
	Points    []telemetry.Point
}

// ParsePayload decodes a telemetry body. The accepted shapes (see
// docs/telemetry.md) are:
//
//	{"temperature": 71.5, "inletPressure": 0.12}            flat object, stamped msgTime
//	{"ts": "2026-03-01T12:00:00Z", "values": {...}}         one timestamped sample
//	[{"ts": ..., "values": {...}}, ...]                     a buffer of samples
//
// Values are JSON numbers or booleans (true = 1, false = 0); nested objects
// are flattened with "." ("motor": {"current": 3} is "motor.current"); null
// values are skipped. "ts" is an RFC 3339 string or Unix milliseconds. A
// top-level "mid" string is the message id when the properties carry none.
// Anything else (a string value, an array value, a bad timestamp) rejects the
// whole message: Warden never keeps half a message.
func ParsePayload(body []byte, msgTime, now time.Time) (Payload, error) {
	var p Payload
	if len(body) > MaxPayload {
		return p, fmt.Errorf("payload is %d bytes, more than %d", len(body), MaxPayload)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return p, errors.New("empty payload")
	}
	if !utf8.Valid(body) {
		return p, errors.New("payload is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return p, fmt.Errorf("payload is not JSON: %w", err)
	}
	// dec.More would miss a stray '}' or ']' after the value.
	if _, err := dec.Token(); err != io.EOF {
		return p, errors.New("payload has data after the JSON value")
	}
	switch v := v.(type) {
	case map[string]any:
		if err := p.addObject(v, msgTime, now, true); err != nil {
			return p, err
		}
	case []any:
		if len(v) == 0 {
			return p, errors.New("payload is an empty array")
		}
		for i, e := range v {
			obj, ok := e.(map[string]any)
			if !ok {
				return p, fmt.Errorf("element %d: want an object, got %s", i, jsonKind(e))
			}
			if err := p.addObject(obj, msgTime, now, false); err != nil {
				return p, fmt.Errorf("element %d: %w", i, err)
			}
		}
	default:
		return p, fmt.Errorf("payload is a JSON %s; want an object or an array of objects", jsonKind(v))
	}
	if len(p.Points) == 0 {
		return p, errors.New("payload holds no values")
	}
	return p, nil
}

// addObject adds one sample object: either {"ts":…, "values":{…}} or a flat
// object of values stamped msgTime.
func (p *Payload) addObject(obj map[string]any, msgTime, now time.Time, topLevel bool) error {
	if mid, ok := obj["mid"]; ok && topLevel {
		s, ok := mid.(string)
		if !ok {
			return fmt.Errorf(`"mid" must be a string, got %s`, jsonKind(mid))
		}
		p.MessageID = s
	}
	ts := msgTime
	if raw, ok := obj["ts"]; ok {
		var err error
		if ts, err = parseTS(raw); err != nil {
			return fmt.Errorf(`"ts": %w`, err)
		}
	}
	if err := checkTime(ts, now); err != nil {
		return err
	}
	values, flat := obj, true
	if raw, ok := obj["values"]; ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf(`"values" must be an object, got %s`, jsonKind(raw))
		}
		for k := range obj {
			if k != "ts" && k != "values" && !(topLevel && k == "mid") {
				return fmt.Errorf(`unexpected field %q beside "values"`, k)
			}
		}
		values, flat = m, false
	}
	before := len(p.Points)
	if err := p.addValues("", values, ts, 0, flat); err != nil {
		return err
	}
	if len(p.Points) == before {
		return errors.New("sample holds no values")
	}
	// A stable order makes stored results independent of map iteration.
	added := p.Points[before:]
	sort.Slice(added, func(i, j int) bool { return added[i].Metric < added[j].Metric })
	return nil
}

func (p *Payload) addValues(prefix string, values map[string]any, ts time.Time, depth int, skipReserved bool) error {
	if depth > maxNestingDepth {
		return fmt.Errorf("values nested deeper than %d levels", maxNestingDepth)
	}
	for k, raw := range values {
		if skipReserved && depth == 0 && (k == "ts" || k == "mid") {
			continue
		}
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if err := checkMetricName(name); err != nil {
			return err
		}
		var v float64
		switch raw := raw.(type) {
		case nil:
			continue
		case json.Number:
			f, err := raw.Float64()
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return fmt.Errorf("%q: number %s out of range", name, raw.String())
			}
			v = f
		case bool:
			if raw {
				v = 1
			}
		case map[string]any:
			if err := p.addValues(name, raw, ts, depth+1, false); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%q: want a number or boolean, got %s", name, jsonKind(raw))
		}
		if len(p.Points) >= MaxPoints {
			return fmt.Errorf("more than %d values in one message", MaxPoints)
		}
		p.Points = append(p.Points, telemetry.Point{Metric: name, TS: ts, Value: v})
	}
	return nil
}

func checkMetricName(name string) error {
	if name == "" {
		return errors.New("empty metric name")
	}
	if len(name) > MaxMetricName {
		return fmt.Errorf("metric name %.32q… longer than %d bytes", name, MaxMetricName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("metric name %q has a control character", name)
		}
	}
	return nil
}

func parseTS(raw any) (time.Time, error) {
	switch v := raw.(type) {
	case string:
		return parseTime(v)
	case json.Number:
		ms, err := v.Int64()
		if err != nil {
			return time.Time{}, fmt.Errorf("%s is not whole Unix milliseconds", v.String())
		}
		return time.UnixMilli(ms).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("want an RFC 3339 string or Unix milliseconds, got %s", jsonKind(raw))
	}
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// Points from before 2000 or more than a day ahead of the server's clock come
// from a device whose clock is wrong; storing them would scatter its history.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const maxClockAhead = 24 * time.Hour

func checkTime(ts, now time.Time) error {
	if ts.Before(earliest) {
		return fmt.Errorf("timestamp %s is before 2000: the device clock looks unset", ts.Format(time.RFC3339))
	}
	if ts.After(now.Add(maxClockAhead)) {
		return fmt.Errorf("timestamp %s is more than %s ahead of the server clock", ts.Format(time.RFC3339), maxClockAhead)
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
