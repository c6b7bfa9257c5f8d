package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/warden-iot/warden/internal/store"
)

// A point list is the plaintext of a head record (one message's points) and
// of a device's latest values (one point per metric):
//
//	uvarint count, then per point: uvarint len(metric), metric, varint ts (Unix ms), float64 bits (8 bytes LE)
func appendPoints(b []byte, ps []store.Point) []byte {
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

func decodePoints(b []byte) ([]point, error) {
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
		metric := string(b[k : k+int(l)])
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
