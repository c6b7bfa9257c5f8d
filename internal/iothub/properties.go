package iothub

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Properties are the message properties a device sends in the topic's
// property bag, the way Azure IoT Hub devices do:
// devices/{id}/messages/events/$.mid=1&$.ct=application%2Fjson&alert=true
type Properties struct {
	MessageID       string // $.mid
	CorrelationID   string // $.cid
	ContentType     string // $.ct
	ContentEncoding string // $.ce
	// CreatedAt is the device's creation time of the message, from $.ctime
	// or the application property iothub-creation-time-utc; zero if absent.
	CreatedAt time.Time
	// System holds every $.-prefixed property (without "$."), including the
	// ones above.
	System map[string]string
	// App holds the application properties.
	App map[string]string
}

// maxBagLen bounds the property bag; IoT Hub allows 8 KiB of properties.
const maxBagLen = 8 << 10

// ParseProperties decodes a property bag. Keys and values are percent-decoded
// (%XX only: a literal '+' stays '+'); both "%24.mid" and "$.mid" are
// understood. An empty bag gives empty properties.
func ParseProperties(bag string) (Properties, error) {
	var p Properties
	if len(bag) > maxBagLen {
		return p, fmt.Errorf("property bag is %d bytes, more than %d", len(bag), maxBagLen)
	}
	for part := range strings.SplitSeq(bag, "&") {
		if part == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(part, "=")
		key, err := percentDecode(rawKey)
		if err != nil {
			return p, fmt.Errorf("property key %q: %w", rawKey, err)
		}
		value, err := percentDecode(rawValue)
		if err != nil {
			return p, fmt.Errorf("property %q: %w", key, err)
		}
		if key == "" {
			return p, errors.New("property with an empty name")
		}
		if sys, ok := strings.CutPrefix(key, "$."); ok {
			if p.System == nil {
				p.System = map[string]string{}
			}
			p.System[sys] = value
			switch sys {
			case "mid":
				p.MessageID = value
			case "cid":
				p.CorrelationID = value
			case "ct":
				p.ContentType = value
			case "ce":
				p.ContentEncoding = value
			case "ctime":
				if p.CreatedAt, err = parseTime(value); err != nil {
					return p, fmt.Errorf("property $.ctime: %w", err)
				}
			}
			continue
		}
		if p.App == nil {
			p.App = map[string]string{}
		}
		p.App[key] = value
		if key == "iothub-creation-time-utc" && p.CreatedAt.IsZero() {
			if p.CreatedAt, err = parseTime(value); err != nil {
				return p, fmt.Errorf("property iothub-creation-time-utc: %w", err)
			}
		}
	}
	return p, nil
}

// percentDecode decodes %XX escapes and nothing else.
func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent escape at byte %d", i)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// parseTime reads an RFC 3339 time, in UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
