package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
)

// The commit log holds what the pipeline accepted, in the order it was
// accepted: messages and connection changes. Each record is
//
//	kind     byte    recordMessage or recordPresence
//	tenant   string  (uvarint length, bytes)
//	sealed   []byte  the rest, sealed with the tenant's data key
//
// The tenant id is in clear, to find the key; everything else — the device,
// its message id, the values — is sealed, so that what the log files hold
// of a tenant becomes unreadable when the tenant's keys are destroyed, as
// the database does. The sealed body is bound (associated data) to its
// kind and tenant.
const (
	recordMessage  byte = 1
	recordPresence byte = 2
)

// logAAD binds a record's sealed body to its kind and tenant.
func logAAD(kind byte, tenantID string) []byte {
	return append([]byte{'l', 'o', 'g', 0, kind, 0}, tenantID...)
}

// encodeRecord frames a sealed body.
func encodeRecord(kind byte, tenantID string, sealed []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(tenantID)+len(sealed))
	b = append(b, kind)
	b = appendString(b, tenantID)
	return append(b, sealed...)
}

var errRecord = errors.New("malformed log record")

// decodeRecord splits a record into its kind, tenant and sealed body.
func decodeRecord(b []byte) (kind byte, tenantID string, sealed []byte, err error) {
	if len(b) < 1 {
		return 0, "", nil, errRecord
	}
	kind = b[0]
	if kind != recordMessage && kind != recordPresence {
		return 0, "", nil, fmt.Errorf("%w: kind %d", errRecord, kind)
	}
	tenantID, rest, err := readString(b[1:])
	if err != nil {
		return 0, "", nil, err
	}
	return kind, tenantID, rest, nil
}

// appendMessage encodes what a committed message keeps: its device, id,
// times, points and properties (not its payload, topic or content type:
// they are read by then).
func appendMessage(b []byte, m *telemetry.Message) []byte {
	b = appendString(b, m.DeviceID)
	b = appendString(b, m.MessageID)
	b = appendString(b, m.Protocol)
	b = appendTime(b, m.ReceivedAt)
	b = appendTime(b, m.CreatedAt)
	b = binary.AppendUvarint(b, uint64(len(m.Points)))
	for _, p := range m.Points {
		b = appendString(b, p.Metric)
		b = appendTime(b, p.TS)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
	}
	for _, props := range []map[string]string{m.System, m.App} {
		b = binary.AppendUvarint(b, uint64(len(props)))
		for _, k := range slices.Sorted(maps.Keys(props)) {
			b = appendString(b, k)
			b = appendString(b, props[k])
		}
	}
	return b
}

// decodeMessage is appendMessage's inverse; the message gets tenantID.
func decodeMessage(b []byte, tenantID string) (telemetry.Message, error) {
	m := telemetry.Message{TenantID: tenantID}
	var err error
	for _, s := range []*string{&m.DeviceID, &m.MessageID, &m.Protocol} {
		if *s, b, err = readString(b); err != nil {
			return m, err
		}
	}
	for _, t := range []*time.Time{&m.ReceivedAt, &m.CreatedAt} {
		if *t, b, err = readTime(b); err != nil {
			return m, err
		}
	}
	n, b, err := readCount(b, 1+1+8)
	if err != nil {
		return m, err
	}
	if n > 0 {
		m.Points = make([]telemetry.Point, n)
	}
	for i := range m.Points {
		p := &m.Points[i]
		if p.Metric, b, err = readString(b); err != nil {
			return m, err
		}
		if p.TS, b, err = readTime(b); err != nil {
			return m, err
		}
		if len(b) < 8 {
			return m, errRecord
		}
		p.Value = math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, dst := range []*map[string]string{&m.System, &m.App} {
		n, rest, err := readCount(b, 2)
		if err != nil {
			return m, err
		}
		b = rest
		if n == 0 {
			continue
		}
		*dst = make(map[string]string, n)
		for range n {
			var k, v string
			if k, b, err = readString(b); err != nil {
				return m, err
			}
			if v, b, err = readString(b); err != nil {
				return m, err
			}
			(*dst)[k] = v
		}
	}
	if len(b) != 0 {
		return m, fmt.Errorf("%w: %d bytes after the message", errRecord, len(b))
	}
	return m, nil
}

// appendPresence encodes a connection change.
func appendPresence(b []byte, deviceID string, connected bool, at time.Time) []byte {
	b = appendString(b, deviceID)
	if connected {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return appendTime(b, at)
}

func decodePresence(b []byte) (deviceID string, connected bool, at time.Time, err error) {
	if deviceID, b, err = readString(b); err != nil {
		return "", false, time.Time{}, err
	}
	if len(b) < 1 || b[0] > 1 {
		return "", false, time.Time{}, errRecord
	}
	connected = b[0] == 1
	if at, b, err = readTime(b[1:]); err != nil {
		return "", false, time.Time{}, err
	}
	if len(b) != 0 {
		return "", false, time.Time{}, errRecord
	}
	return deviceID, connected, at, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errRecord
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// readCount reads a count of items of at least minSize bytes each, which
// the rest of b must be able to hold.
func readCount(b []byte, minSize int) (int, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/uint64(minSize) {
		return 0, nil, errRecord
	}
	return int(n), b[k:], nil
}

// appendTime encodes a time as Unix nanoseconds, the zero time as 0 (a
// flag byte tells them apart from the epoch).
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, t.UnixNano())
}

func readTime(b []byte) (time.Time, []byte, error) {
	if len(b) < 1 || b[0] > 1 {
		return time.Time{}, nil, errRecord
	}
	if b[0] == 0 {
		return time.Time{}, b[1:], nil
	}
	ns, k := binary.Varint(b[1:])
	if k <= 0 {
		return time.Time{}, nil, errRecord
	}
	return time.Unix(0, ns), b[1+k:], nil
}
