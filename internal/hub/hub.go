// Package hub owns the device side of Warden's IoT Hub features: device
// twins (tags, desired and reported properties, with IoT Hub's rules and
// limits), cloud-to-device message queues, the model id a device announced
// and the subscriptions of its persistent MQTT session; the Store that
// keeps them, and Messages, the service that queues cloud-to-device
// messages. The SQL implementation, for both engines, is hubsql.
package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Store holds what the IoT Hub device features need: device twins,
// cloud-to-device message queues, model ids and session subscriptions.
// Every method is safe for concurrent use. Errors wrap
// database.ErrNotFound (a device unknown, or of another tenant) and
// database.ErrConflict where they say so.
//
// Every device has a twin. One that was never written is not stored: it
// reads as the empty twin of version 1 (NewTwin), with empty tags, desired
// and reported properties at $version 1. The first change stores it.
type Store interface {
	// GetTwin returns a device's twin (the empty twin if none is stored).
	GetTwin(ctx context.Context, tenantID, deviceID string) (Twin, error)
	// SetDeviceModelID records the model id (a DTMI) a device announced
	// when it connected; DeviceModelID returns it ("" if none was).
	SetDeviceModelID(ctx context.Context, tenantID, deviceID, modelID string) error
	DeviceModelID(ctx context.Context, tenantID, deviceID string) (string, error)
	// UpdateTwin applies an operator's change (tags and desired
	// properties, JSON merge patches) atomically. A bad patch is an error
	// wrapping ErrInvalidTwin; a failed IfVersion check wraps ErrTwinChanged.
	UpdateTwin(ctx context.Context, tenantID, deviceID string, u TwinUpdate, at time.Time) (Twin, error)
	// UpdateReported applies a device's reported-properties merge patch
	// atomically and bumps the reported $version.
	UpdateReported(ctx context.Context, tenantID, deviceID string, patch json.RawMessage, at time.Time) (Twin, error)
	// SetInitialTwin gives a new device its first twin: tags and desired
	// properties (each a JSON object, or nil/empty for none) at desired
	// $version 1, as the device provisioning service's initial twin state.
	// If the device already has a stored twin it is left as it is (a
	// re-registration must not reset what the device and operators have
	// changed since) and nil is returned. Invalid documents wrap
	// ErrInvalidTwin.
	SetInitialTwin(ctx context.Context, tenantID, deviceID string, tags, desired json.RawMessage, at time.Time) error

	// EnqueueC2D queues a cloud-to-device message (ID is assigned; State
	// is C2DQueued). It fails with ErrConflict if the device already has a
	// message with the same MessageID, and with ErrQueueFull if it has
	// maxPending messages that are queued or delivered and not expired.
	// Old completed and expired messages beyond C2DHistory are dropped.
	EnqueueC2D(ctx context.Context, m C2DMessage, maxPending int) (C2DMessage, error)
	// PendingC2D returns a device's messages that are queued, or delivered
	// and not yet acknowledged, oldest first, after marking those whose
	// expiry has passed as expired.
	PendingC2D(ctx context.Context, deviceID string, now time.Time) ([]C2DMessage, error)
	// MarkC2DDelivered records that a message is being sent to the device.
	// It returns false, changing nothing, if the message is no longer
	// pending (completed, expired or past its expiry at at).
	MarkC2DDelivered(ctx context.Context, deviceID string, id int64, at time.Time) (bool, error)
	// CompleteC2D records the device's acknowledgement of a delivered
	// message. A message never delivered, or already completed, is left as
	// it is.
	CompleteC2D(ctx context.Context, deviceID string, id int64, at time.Time) error
	// ListC2D returns a device's messages, newest first, after marking
	// those whose expiry has passed as expired.
	ListC2D(ctx context.Context, tenantID, deviceID string, now time.Time, limit int) ([]C2DMessage, error)

	// SessionSubscriptions returns the MQTT subscriptions (filter → QoS)
	// of a device's persistent session, as last saved (none: empty map).
	SessionSubscriptions(ctx context.Context, deviceID string) (map[string]byte, error)
	// SetSessionSubscriptions replaces them; an empty map deletes them. The
	// broker saves them so that a clean-session-0 device finds its
	// subscriptions again after a server restart.
	SetSessionSubscriptions(ctx context.Context, deviceID string, subs map[string]byte, at time.Time) error
}

// Errors of the hub store.
var (
	// ErrInvalidTwin: a twin patch or document breaks the twin rules.
	ErrInvalidTwin = errors.New("invalid twin document")
	// ErrTwinChanged: the twin is not at the version the caller expected.
	ErrTwinChanged = errors.New("twin changed")
	// ErrQueueFull: the device has too many cloud-to-device messages pending.
	ErrQueueFull = errors.New("cloud-to-device queue full")
)

// Twin limits, those of IoT Hub.
const (
	MaxTwinDepth       = 10        // levels of objects below the root of tags, desired or reported
	MaxTwinKeyLen      = 1024      // bytes of one key
	MaxTwinPropsSize   = 32 * 1024 // bytes of the desired or the reported document
	MaxTwinTagsSize    = 8 * 1024  // bytes of the tags
	twinMetaTimeLayout = "2006-01-02T15:04:05.0000000Z"
)

// Twin is a device twin.
type Twin struct {
	TenantID  string
	DeviceID  string
	Version   int64           // bumps with every change of tags, desired or reported
	Tags      json.RawMessage // JSON object
	Desired   TwinProperties
	Reported  TwinProperties
	CreatedAt time.Time // when the device was created
	UpdatedAt time.Time // last change; the device's creation for a twin never written
}

// TwinProperties is the desired or the reported section.
type TwinProperties struct {
	Doc      json.RawMessage // JSON object, without $version and $metadata
	Version  int64           // the section's $version
	Metadata json.RawMessage // the section's $metadata object
}

// TwinUpdate is an operator's change of a twin.
type TwinUpdate struct {
	Tags    json.RawMessage // merge patch of the tags; nil: unchanged
	Desired json.RawMessage // merge patch of the desired properties; nil or {}: unchanged
	// IfVersion, if not 0, makes the update apply only to a twin of this
	// version (an If-Match etag); otherwise it fails with ErrTwinChanged.
	IfVersion int64
}

// NewTwin is the twin of a device that has none stored: empty, version 1,
// desired and reported at $version 1.
func NewTwin(tenantID, deviceID string, created time.Time) Twin {
	stamp := json.RawMessage(`{"$lastUpdated":"` + created.UTC().Format(twinMetaTimeLayout) + `"}`)
	return Twin{
		TenantID: tenantID, DeviceID: deviceID, Version: 1,
		Tags: json.RawMessage(`{}`),
		Desired: TwinProperties{Doc: json.RawMessage(`{}`), Version: 1,
			Metadata: json.RawMessage(`{"$lastUpdated":"` + created.UTC().Format(twinMetaTimeLayout) + `","$lastUpdatedVersion":1}`)},
		Reported:  TwinProperties{Doc: json.RawMessage(`{}`), Version: 1, Metadata: stamp},
		CreatedAt: created, UpdatedAt: created,
	}
}

// ETag is the twin's etag: its version as 8 big-endian bytes in base64,
// as IoT Hub shows it ("AAAAAAAAAAE=" for version 1).
func (tw Twin) ETag() string { return TwinETag(tw.Version) }

// TwinETag is the etag of a twin version.
func TwinETag(version int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(version))
	return base64.StdEncoding.EncodeToString(b[:])
}

// ParseTwinETag returns the twin version of an etag (quotes allowed).
func ParseTwinETag(etag string) (int64, error) {
	etag = strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	etag = strings.Trim(etag, `"`)
	b, err := base64.StdEncoding.DecodeString(etag)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("etag %q is not a twin etag", etag)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ApplyUpdate applies an operator's update to the twin in memory, as the
// stores do before they store the result. It returns false if nothing was to
// change (no tags, empty desired patch).
func (tw *Twin) ApplyUpdate(u TwinUpdate, at time.Time) (bool, error) {
	if u.IfVersion != 0 && u.IfVersion != tw.Version {
		return false, fmt.Errorf("%w: the twin is at version %d (etag %s), not %d", ErrTwinChanged, tw.Version, tw.ETag(), u.IfVersion)
	}
	var tags, desired map[string]any
	var err error
	if u.Tags != nil {
		if tags, err = parsePatch("tags", u.Tags); err != nil {
			return false, err
		}
	}
	if u.Desired != nil {
		if desired, err = parsePatch("desired properties", u.Desired); err != nil {
			return false, err
		}
	}
	if len(tags) == 0 && len(desired) == 0 {
		return false, nil
	}
	next := *tw
	if len(tags) > 0 {
		doc, err := decodeObject(tw.Tags)
		if err != nil {
			return false, err
		}
		mergeDoc(doc, nil, tags, nil)
		if next.Tags, err = encodeLimited("tags", doc, MaxTwinTagsSize); err != nil {
			return false, err
		}
	}
	if len(desired) > 0 {
		if next.Desired, err = applySection("desired properties", tw.Desired, desired, at, true); err != nil {
			return false, err
		}
	}
	next.Version++
	next.UpdatedAt = at
	*tw = next
	return true, nil
}

// ApplyReported applies a device's reported-properties patch to the twin
// in memory and bumps the reported $version.
func (tw *Twin) ApplyReported(patch json.RawMessage, at time.Time) error {
	p, err := parsePatch("reported properties", patch)
	if err != nil {
		return err
	}
	rep, err := applySection("reported properties", tw.Reported, p, at, false)
	if err != nil {
		return err
	}
	tw.Reported = rep
	tw.Version++
	tw.UpdatedAt = at
	return nil
}

// ApplyInitial sets the tags and desired properties of a new twin (as
// NewTwin made it) without bumping any version.
func (tw *Twin) ApplyInitial(tags, desired json.RawMessage, at time.Time) error {
	if len(bytes.TrimSpace(tags)) > 0 && string(bytes.TrimSpace(tags)) != "null" {
		p, err := parsePatch("initial tags", tags)
		if err != nil {
			return err
		}
		doc := map[string]any{}
		mergeDoc(doc, nil, p, nil)
		if tw.Tags, err = encodeLimited("initial tags", doc, MaxTwinTagsSize); err != nil {
			return err
		}
	}
	if len(bytes.TrimSpace(desired)) > 0 && string(bytes.TrimSpace(desired)) != "null" {
		p, err := parsePatch("initial desired properties", desired)
		if err != nil {
			return err
		}
		d := tw.Desired
		d.Version-- // applySection bumps it: stay at the current $version
		if tw.Desired, err = applySection("initial desired properties", d, p, at, true); err != nil {
			return err
		}
	}
	tw.UpdatedAt = at
	return nil
}

// applySection merges patch into a desired or reported section, updating
// its $metadata, and bumps its $version.
func applySection(what string, sec TwinProperties, patch map[string]any, at time.Time, desired bool) (TwinProperties, error) {
	doc, err := decodeObject(sec.Doc)
	if err != nil {
		return sec, err
	}
	meta, err := decodeObject(sec.Metadata)
	if err != nil {
		return sec, err
	}
	version := sec.Version + 1
	ts := at.UTC().Format(twinMetaTimeLayout)
	stamp := func(m map[string]any) {
		m["$lastUpdated"] = ts
		if desired {
			m["$lastUpdatedVersion"] = version
		}
	}
	mergeDoc(doc, meta, patch, stamp)
	stamp(meta)
	out := TwinProperties{Version: version}
	if out.Doc, err = encodeLimited(what, doc, MaxTwinPropsSize); err != nil {
		return sec, err
	}
	if out.Metadata, err = encodeJSON(meta); err != nil {
		return sec, err
	}
	return out, nil
}

// mergeDoc applies a JSON merge patch (RFC 7386) to doc, and, when meta is
// not nil, keeps meta (the $metadata tree of doc) in step: every property
// the patch sets gets stamped, every object on the way to it too.
func mergeDoc(doc, meta, patch map[string]any, stamp func(map[string]any)) {
	for k, pv := range patch {
		if pv == nil {
			delete(doc, k)
			if meta != nil {
				delete(meta, k)
			}
			continue
		}
		po, isObj := pv.(map[string]any)
		if !isObj {
			doc[k] = pv
			if meta != nil {
				m := map[string]any{}
				stamp(m)
				meta[k] = m
			}
			continue
		}
		dst, ok := doc[k].(map[string]any)
		if !ok {
			dst = map[string]any{}
			doc[k] = dst
		}
		var m map[string]any
		if meta != nil {
			if m, _ = meta[k].(map[string]any); m == nil || !ok {
				m = map[string]any{}
			}
			stamp(m)
			meta[k] = m
		}
		mergeDoc(dst, m, po, stamp)
	}
}

// parsePatch checks that a patch is a JSON object that follows the twin
// rules (keys, depth) and decodes it, with numbers kept as written.
func parsePatch(what string, raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: %s: empty document, want a JSON object", ErrInvalidTwin, what)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %s: not valid JSON: %v", ErrInvalidTwin, what, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s: data after the JSON object", ErrInvalidTwin, what)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: want a JSON object, not %s", ErrInvalidTwin, what, jsonKind(v))
	}
	if err := checkValue(obj, 0, what); err != nil {
		return nil, err
	}
	return obj, nil
}

func checkValue(v any, depth int, path string) error {
	switch v := v.(type) {
	case map[string]any:
		if depth > MaxTwinDepth {
			return fmt.Errorf("%w: %s: objects nested more than %d levels deep", ErrInvalidTwin, path, MaxTwinDepth)
		}
		for k, child := range v {
			if err := CheckTwinKey(k); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalidTwin, path, err)
			}
			if err := checkValue(child, depth+1, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := checkValue(child, depth+1, path+"[]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckTwinKey applies IoT Hub's rules for twin property names: 1 to 1024
// bytes, no '.', '$', space or control characters.
func CheckTwinKey(k string) error {
	if k == "" {
		return errors.New("empty property name")
	}
	if len(k) > MaxTwinKeyLen {
		return fmt.Errorf("property name %.20q… is longer than %d bytes", k, MaxTwinKeyLen)
	}
	for _, r := range k {
		switch {
		case r == '.' || r == '$' || r == ' ':
			return fmt.Errorf("property name %q: '.', '$' and space are not allowed", k)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == utf8.RuneError:
			return fmt.Errorf("property name %q: control characters are not allowed", k)
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("stored twin document is corrupt: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func encodeJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func encodeLimited(what string, v any, limit int) (json.RawMessage, error) {
	b, err := encodeJSON(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidTwin, what, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %s would be %d bytes; the limit is %d", ErrInvalidTwin, what, len(b), limit)
	}
	return b, nil
}

// WithVersion returns a section's document with "$version" (and, if meta
// is true, "$metadata") added, as devices and the API show it.
func (p TwinProperties) WithVersion(meta bool) json.RawMessage {
	doc, err := decodeObject(p.Doc)
	if err != nil {
		doc = map[string]any{}
	}
	doc["$version"] = p.Version
	if meta {
		if m, err := decodeObject(p.Metadata); err == nil {
			doc["$metadata"] = m
		}
	}
	b, _ := encodeJSON(doc)
	return b
}

// PatchWithVersion returns a merge patch with "$version" added: the body of
// a desired-properties update sent to a device.
func PatchWithVersion(patch json.RawMessage, version int64) (json.RawMessage, error) {
	doc, err := decodeObject(patch)
	if err != nil {
		return nil, err
	}
	doc["$version"] = version
	return encodeJSON(doc)
}

// C2DState is where a cloud-to-device message is in its life.
type C2DState string

// States of a cloud-to-device message: queued (not sent yet), delivered
// (sent, not acknowledged yet), completed (the device acknowledged it),
// expired (its time to live passed before the device acknowledged it).
const (
	C2DQueued    C2DState = "queued"
	C2DDelivered C2DState = "delivered"
	C2DCompleted C2DState = "completed"
	C2DExpired   C2DState = "expired"
)

// C2DHistory is how many completed or expired messages a device keeps.
const C2DHistory = 100

// C2DMessage is a cloud-to-device message.
type C2DMessage struct {
	ID            int64 // assigned by the store, increasing
	TenantID      string
	DeviceID      string
	MessageID     string // $.mid, unique per device
	CorrelationID string // $.cid, optional
	// Properties are the application properties, sent in the topic.
	Properties    map[string]string
	Payload       []byte
	State         C2DState
	CreatedAt     time.Time
	ExpiresAt     time.Time
	DeliveredAt   time.Time // last (re)delivery; zero if never sent
	CompletedAt   time.Time // zero unless completed
	ExpiredAt     time.Time // zero unless expired
	DeliveryCount int       // how many times it was sent
	// Unreadable: the sealed payload and properties cannot be opened (the
	// tenant's keys were destroyed); they read as empty.
	Unreadable bool
}

// EncodeC2DProperties is how the stores keep Properties: a JSON object.
func EncodeC2DProperties(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := encodeJSON(p)
	return string(b)
}

// DecodeC2DProperties reverses EncodeC2DProperties.
func DecodeC2DProperties(s string) (map[string]string, error) {
	var p map[string]string
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("stored message properties are corrupt: %w", err)
	}
	return p, nil
}

// EncodeSubscriptions is how the stores keep session subscriptions: a JSON
// object of filter → QoS.
func EncodeSubscriptions(subs map[string]byte) string {
	m := make(map[string]int, len(subs))
	for f, q := range subs {
		m[f] = int(q)
	}
	b, _ := encodeJSON(m)
	return string(b)
}

// DecodeSubscriptions reverses EncodeSubscriptions.
func DecodeSubscriptions(s string) (map[string]byte, error) {
	var m map[string]int
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored session subscriptions are corrupt: %w", err)
	}
	out := make(map[string]byte, len(m))
	for f, q := range m {
		out[f] = byte(q)
	}
	return out, nil
}
