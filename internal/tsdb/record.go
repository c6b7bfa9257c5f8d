package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/warden-iot/warden/internal/telemetry"
)

// A point list is the plaintext of a head record (one message's points) and
// of a device's latest values (one point per metric):
//
//	uvarint count, then per point: uvarint len(metric), metric, varint ts (Unix ms), float64 bits (8 bytes LE)
func appendPoints(b []byte, ps []telemetry.Point) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = binary.AppendUvarint(b, uint64(len(p.Metric)))
		b = append(b, p.Metric...)
		b = binary.AppendVarint(b, p.TS.UnixMilli())
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
	}
	return b
}

// point is a decoded point with a millisecond timestamp.
type point struct {
	metric string
	ts     int64
	v      float64
}

var errRecord = errors.New("malformed point list")

// names interns metric names: a fleet's devices share a few dozen, so a
// fleet-wide read need not allocate one string per device and metric.
type names map[string]string

func (n names) get(b []byte) string {
	if n == nil {
		return string(b)
	}
	if s, ok := n[string(b)]; ok {
		return s
	}
	s := string(b)
	n[s] = s
	return s
}

func decodePoints(b []byte, interned names) ([]point, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errRecord
	}
	b = b[k:]
	out := make([]point, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errRecord
		}
		metric := interned.get(b[k : k+int(l)])
		b = b[k+int(l):]
		ts, k := binary.Varint(b)
		if k <= 0 || len(b) < k+8 {
			return nil, errRecord
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[k:]))
		b = b[k+8:]
		out = append(out, point{metric: metric, ts: ts, v: v})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errRecord, len(b))
	}
	return out, nil
}

// A head record's plaintext is its point list followed by its properties:
// uvarint count of system properties, each as uvarint length + key, uvarint
// length + value; then the application properties the same way.
func appendHead(b []byte, m telemetry.Message) []byte {
	b = appendPoints(b, m.Points)
	for _, props := range []map[string]string{m.System, m.App} {
		keys := slices.Sorted(maps.Keys(props))
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, props[k])
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// headMessage is a decoded head record.
type headMessage struct {
	points      []point
	system, app map[string]string
}

func decodeHead(b []byte) (headMessage, error) {
	var h headMessage
	n, err := pointListLen(b)
	if err != nil {
		return h, err
	}
	if h.points, err = decodePoints(b[:n], nil); err != nil {
		return h, err
	}
	b = b[n:]
	for _, dst := range []*map[string]string{&h.system, &h.app} {
		count, k := binary.Uvarint(b)
		if k <= 0 || count > uint64(len(b)) {
			return h, errRecord
		}
		b = b[k:]
		if count > 0 {
			*dst = make(map[string]string, count)
		}
		for range count {
			var key, val string
			if key, b, err = readString(b); err != nil {
				return h, err
			}
			if val, b, err = readString(b); err != nil {
				return h, err
			}
			(*dst)[key] = val
		}
	}
	if len(b) != 0 {
		return h, fmt.Errorf("%w: %d trailing bytes", errRecord, len(b))
	}
	return h, nil
}

func readString(b []byte) (string, []byte, error) {
	l, k := binary.Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return "", nil, errRecord
	}
	return string(b[k : k+int(l)]), b[k+int(l):], nil
}

// pointListLen returns the length in bytes of the point list at the start
// of b.
func pointListLen(b []byte) (int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return 0, errRecord
	}
	off := k
	for range n {
		l, k := binary.Uvarint(b[off:])
		if k <= 0 || l > uint64(len(b)-off-k) {
			return 0, errRecord
		}
		off += k + int(l)
		_, k = binary.Varint(b[off:])
		if k <= 0 || len(b)-off < k+8 {
			return 0, errRecord
		}
		off += k + 8
	}
	return off, nil
}
