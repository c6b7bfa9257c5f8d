package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/warden-iot/warden/internal/tsdb/chunkenc"
)

// summary is kept, encrypted, at the front of every chunk so coarse queries
// can use a whole chunk without decoding its points.
type summary struct {
	count                      int
	min, max, sum, first, last float64
}

const chunkVersion = 1

// Chunk plaintext: version byte | uvarint count | min max sum first last
// (float64 LE each) | chunkenc bytes.
func encodeChunk(ts []int64, vs []float64) ([]byte, summary, error) {
	s := summary{count: len(vs), min: vs[0], max: vs[0], first: vs[0], last: vs[len(vs)-1]}
	for _, v := range vs {
		s.min = math.Min(s.min, v)
		s.max = math.Max(s.max, v)
		s.sum += v
	}
	data, err := chunkenc.Encode(ts, vs)
	if err != nil {
		return nil, s, err
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+40+len(data))
	b = append(b, chunkVersion)
	b = binary.AppendUvarint(b, uint64(s.count))
	for _, f := range []float64{s.min, s.max, s.sum, s.first, s.last} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return append(b, data...), s, nil
}

var errChunk = errors.New("malformed chunk")

// splitChunk separates a chunk plaintext into its summary and encoded points.
func splitChunk(b []byte) (summary, []byte, error) {
	var s summary
	if len(b) < 1 || b[0] != chunkVersion {
		return s, nil, fmt.Errorf("%w: unknown version", errChunk)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || len(b) < 1+k+40 || n == 0 || n > math.MaxUint16 {
		return s, nil, errChunk
	}
	s.count = int(n)
	b = b[1+k:]
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])) }
	s.min, s.max, s.sum, s.first, s.last = f(0), f(1), f(2), f(3), f(4)
	return s, b[40:], nil
}
