// Package sealing is how each class of machine data is kept at rest: sealed
// with its tenant's data key (package keyring), bound to its table, tenant and
// row so that a blob copied elsewhere does not open, and how rows written
// in clear before sealing existed are sealed by the stores' upgrade pass
// (plaintext.go). Inside a transaction a store seals only with keys it got
// before the transaction began (Pinner), so sealing never calls a store.
package sealing

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/provision"
)

// sealed with its tenant's key: twin documents (tags, desired and reported
// properties with their metadata), cloud-to-device payloads and properties,
// alarm messages, values and acknowledgement comments, notification
// payloads and delivery errors, maintenance plans and the alarm evaluator's
// state. The stores keep such a row's sealed blob in a "sealed" column; a
// row whose sealed column is NULL was written before sealing existed and
// still holds its plaintext in the old columns until SealPlaintext seals it.
//
// The functions below are the one encoding of each class, shared by both
// engines, so that the SQL only moves bytes. Every blob is bound by its
// additional data to the row it belongs to (tenant, class and the row's
// identity), so a blob copied into another row, of the same tenant or not,
// does not open.

// ErrNoSealer: the store was asked to keep machine data before SetSealer.
var ErrNoSealer = errors.New("no sealer set: machine data is only stored encrypted")

// ErrUnreadable: a sealed row cannot be opened, usually because its
// tenant's keys were destroyed. Lists mark such rows (Unreadable) rather
// than fail.
var ErrUnreadable = errors.New("sealed data cannot be read")

// sealAAD is a blob's additional data: a fixed prefix, the class, the
// tenant and the row's identity, each length-prefixed so that no two
// different identities give the same bytes.
func sealAAD(class, tenantID string, ids ...string) []byte {
	var b strings.Builder
	b.WriteString("warden sealed row\x00")
	for _, s := range append([]string{class, tenantID}, ids...) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return []byte(b.String())
}

// sealParts seals parts, framed each with its length (uvarint), so that
// they come back byte for byte.
func sealParts(ctx context.Context, s keyring.Sealer, tenantID string, aad []byte, parts ...[]byte) ([]byte, error) {
	if s == nil {
		return nil, ErrNoSealer
	}
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	pt := make([]byte, 0, n)
	for _, p := range parts {
		pt = binary.AppendUvarint(pt, uint64(len(p)))
		pt = append(pt, p...)
	}
	blob, err := s.Seal(ctx, tenantID, pt, aad)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return blob, nil
}

// openParts opens what sealParts sealed; it wants exactly n parts.
func openParts(ctx context.Context, s keyring.Sealer, tenantID string, blob, aad []byte, n int) ([][]byte, error) {
	if s == nil {
		return nil, ErrNoSealer
	}
	pt, err := s.Open(ctx, tenantID, blob, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	parts := make([][]byte, 0, n)
	for len(pt) > 0 {
		l, k := binary.Uvarint(pt)
		if k <= 0 || l > uint64(len(pt)-k) {
			return nil, fmt.Errorf("%w: bad framing", ErrUnreadable)
		}
		parts = append(parts, pt[k:k+int(l)])
		pt = pt[k+int(l):]
	}
	if len(parts) != n {
		return nil, fmt.Errorf("%w: %d parts, want %d", ErrUnreadable, len(parts), n)
	}
	return parts, nil
}

func float64Bytes(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)) }

func bytesFloat64(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: bad number", ErrUnreadable)
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// rawOrNil is a stored JSON document: nil when empty.
func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// SealTwin seals a twin's documents (not its versions and times).
func SealTwin(ctx context.Context, s keyring.Sealer, tw hub.Twin) ([]byte, error) {
	return sealParts(ctx, s, tw.TenantID, sealAAD("twin", tw.TenantID, tw.DeviceID),
		tw.Tags, tw.Desired.Doc, tw.Desired.Metadata, tw.Reported.Doc, tw.Reported.Metadata)
}

// OpenTwin fills tw's documents from its sealed blob; tw's tenant and
// device must be set.
func OpenTwin(ctx context.Context, s keyring.Sealer, tw *hub.Twin, blob []byte) error {
	p, err := openParts(ctx, s, tw.TenantID, blob, sealAAD("twin", tw.TenantID, tw.DeviceID), 5)
	if err != nil {
		return fmt.Errorf("twin of %q: %w", tw.DeviceID, err)
	}
	tw.Tags = json.RawMessage(p[0])
	tw.Desired.Doc, tw.Desired.Metadata = json.RawMessage(p[1]), json.RawMessage(p[2])
	tw.Reported.Doc, tw.Reported.Metadata = json.RawMessage(p[3]), json.RawMessage(p[4])
	return nil
}

// SealC2D seals a cloud-to-device message's payload and properties.
func SealC2D(ctx context.Context, s keyring.Sealer, m hub.C2DMessage) ([]byte, error) {
	return sealParts(ctx, s, m.TenantID, sealAAD("c2d", m.TenantID, m.DeviceID, m.MessageID),
		[]byte(hub.EncodeC2DProperties(m.Properties)), m.Payload)
}

// OpenC2D fills m's payload and properties from its sealed blob.
func OpenC2D(ctx context.Context, s keyring.Sealer, m *hub.C2DMessage, blob []byte) error {
	p, err := openParts(ctx, s, m.TenantID, blob, sealAAD("c2d", m.TenantID, m.DeviceID, m.MessageID), 2)
	if err == nil {
		m.Properties, err = hub.DecodeC2DProperties(string(p[0]))
	}
	if err != nil {
		return fmt.Errorf("message %d of %q: %w", m.ID, m.DeviceID, err)
	}
	m.Payload = append([]byte{}, p[1]...)
	return nil
}

// SealAlarm seals an alarm's message and value. The blob is bound to the
// tenant, rule and device: the alarm's id is not known before it is
// inserted.
func SealAlarm(ctx context.Context, s keyring.Sealer, tenantID, ruleID, deviceID, message string, value float64) ([]byte, error) {
	return sealParts(ctx, s, tenantID, sealAAD("alarm", tenantID, ruleID, deviceID), []byte(message), float64Bytes(value))
}

// OpenAlarm fills a's message and value from its sealed blob. If it cannot
// be opened, a is marked Unreadable and the error returned.
func OpenAlarm(ctx context.Context, s keyring.Sealer, a *alarm.Record, blob []byte) error {
	p, err := openParts(ctx, s, a.TenantID, blob, sealAAD("alarm", a.TenantID, a.RuleID, a.DeviceID), 2)
	var v float64
	if err == nil {
		v, err = bytesFloat64(p[1])
	}
	if err != nil {
		a.Message, a.Value, a.Unreadable = "", 0, true
		return fmt.Errorf("alarm %d: %w", a.ID, err)
	}
	a.Message, a.Value = string(p[0]), v
	return nil
}

// SealAckComment seals the comment of an alarm's acknowledgement.
func SealAckComment(ctx context.Context, s keyring.Sealer, tenantID string, alarmID int64, comment string) ([]byte, error) {
	return sealParts(ctx, s, tenantID, sealAAD("alarm-ack", tenantID, strconv.FormatInt(alarmID, 10)), []byte(comment))
}

// OpenAckComment fills a's acknowledgement comment from its sealed blob.
func OpenAckComment(ctx context.Context, s keyring.Sealer, a *alarm.Record, blob []byte) error {
	p, err := openParts(ctx, s, a.TenantID, blob, sealAAD("alarm-ack", a.TenantID, strconv.FormatInt(a.ID, 10)), 1)
	if err != nil {
		a.AckComment, a.Unreadable = "", true
		return fmt.Errorf("alarm %d: %w", a.ID, err)
	}
	a.AckComment = string(p[0])
	return nil
}

func deliveryAAD(d notifystore.Delivery) []byte {
	return sealAAD("delivery", d.TenantID, strconv.FormatInt(d.AlarmID, 10), d.Channel, d.Target, d.Event)
}

func deliveryErrorAAD(d notifystore.Delivery) []byte {
	return sealAAD("delivery-error", d.TenantID, strconv.FormatInt(d.AlarmID, 10), d.Channel, d.Target, d.Event)
}

// SealDeliveryPayload seals a delivery's payload.
func SealDeliveryPayload(ctx context.Context, s keyring.Sealer, d notifystore.Delivery) ([]byte, error) {
	return sealParts(ctx, s, d.TenantID, deliveryAAD(d), d.Payload)
}

// OpenDeliveryPayload fills d's payload from its sealed blob, or marks d
// Unreadable.
func OpenDeliveryPayload(ctx context.Context, s keyring.Sealer, d *notifystore.Delivery, blob []byte) error {
	p, err := openParts(ctx, s, d.TenantID, blob, deliveryAAD(*d), 1)
	if err != nil {
		d.Payload, d.Unreadable = nil, true
		return fmt.Errorf("delivery %d: %w", d.ID, err)
	}
	d.Payload = rawOrNil(p[0])
	return nil
}

// SealDeliveryError seals a delivery's last error (it may quote what the
// receiver answered).
func SealDeliveryError(ctx context.Context, s keyring.Sealer, d notifystore.Delivery) ([]byte, error) {
	return sealParts(ctx, s, d.TenantID, deliveryErrorAAD(d), []byte(d.LastError))
}

// OpenDeliveryError fills d's last error from its sealed blob.
func OpenDeliveryError(ctx context.Context, s keyring.Sealer, d *notifystore.Delivery, blob []byte) error {
	p, err := openParts(ctx, s, d.TenantID, blob, deliveryErrorAAD(*d), 1)
	if err != nil {
		d.LastError, d.Unreadable = "", true
		return fmt.Errorf("delivery %d: %w", d.ID, err)
	}
	d.LastError = string(p[0])
	return nil
}

// SealPlan seals a maintenance plan's spec.
func SealPlan(ctx context.Context, s keyring.Sealer, p alarm.MaintenancePlan) ([]byte, error) {
	return sealParts(ctx, s, p.TenantID, sealAAD("maintenance-plan", p.TenantID, p.Model), p.Spec)
}

// OpenPlan fills p's spec from its sealed blob.
func OpenPlan(ctx context.Context, s keyring.Sealer, p *alarm.MaintenancePlan, blob []byte) error {
	parts, err := openParts(ctx, s, p.TenantID, blob, sealAAD("maintenance-plan", p.TenantID, p.Model), 1)
	if err != nil {
		return fmt.Errorf("maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	p.Spec = rawOrNil(parts[0])
	return nil
}

// SealMonitorState seals one tenant's part of the alarm evaluator's state.
func SealMonitorState(ctx context.Context, s keyring.Sealer, key, tenantID string, state []byte) ([]byte, error) {
	if s == nil {
		return nil, ErrNoSealer
	}
	blob, err := s.Seal(ctx, tenantID, state, sealAAD("monitor-state", tenantID, key))
	if err != nil {
		return nil, fmt.Errorf("seal monitor state %q of tenant %q: %w", key, tenantID, err)
	}
	return blob, nil
}

// OpenMonitorState opens what SealMonitorState sealed.
func OpenMonitorState(ctx context.Context, s keyring.Sealer, key, tenantID string, blob []byte) ([]byte, error) {
	if s == nil {
		return nil, ErrNoSealer
	}
	pt, err := s.Open(ctx, tenantID, blob, sealAAD("monitor-state", tenantID, key))
	if err != nil {
		return nil, fmt.Errorf("monitor state %q of tenant %q: %w: %w", key, tenantID, ErrUnreadable, err)
	}
	return pt, nil
}

// OpenAlarmRow opens what a stored alarm row holds sealed: message and
// value (sealed; nil for a row from before sealing, whose plaintext a
// already holds) and acknowledgement comment (sealedComment). A part that
// cannot be opened marks a Unreadable; only a missing sealer is an error.
func OpenAlarmRow(ctx context.Context, s keyring.Sealer, a *alarm.Record, sealed, sealedComment []byte) error {
	if sealed != nil {
		if err := OpenAlarm(ctx, s, a, sealed); errors.Is(err, ErrNoSealer) {
			return err
		}
	}
	if sealedComment != nil {
		if err := OpenAckComment(ctx, s, a, sealedComment); errors.Is(err, ErrNoSealer) {
			return err
		}
	}
	return nil
}

// SealDeliveryRow seals a new delivery's payload and, if it has one, its
// last error (nil if not).
func SealDeliveryRow(ctx context.Context, s keyring.Sealer, d notifystore.Delivery) (payload, lastErr []byte, err error) {
	if payload, err = SealDeliveryPayload(ctx, s, d); err != nil {
		return nil, nil, err
	}
	if d.LastError != "" {
		if lastErr, err = SealDeliveryError(ctx, s, d); err != nil {
			return nil, nil, err
		}
	}
	return payload, lastErr, nil
}

// OpenDeliveryRow opens a stored delivery's sealed payload and error (nil:
// not sealed). A part that cannot be opened marks d Unreadable; only a
// missing sealer is an error.
func OpenDeliveryRow(ctx context.Context, s keyring.Sealer, d *notifystore.Delivery, payload, lastErr []byte) error {
	if payload != nil {
		if err := OpenDeliveryPayload(ctx, s, d, payload); errors.Is(err, ErrNoSealer) {
			return err
		}
	}
	if lastErr != nil {
		if err := OpenDeliveryError(ctx, s, d, lastErr); errors.Is(err, ErrNoSealer) {
			return err
		}
	}
	return nil
}

// PrepareSeal makes sure the tenant has a data key before a caller enters
// a transaction that will seal: creating the key writes to the store, which
// on SQLite's single writer connection must not happen inside another
// transaction. With the key cached it costs one sealing of nothing.
func PrepareSeal(ctx context.Context, s keyring.Sealer, tenantID string) error {
	if s == nil {
		return ErrNoSealer
	}
	if _, err := s.Seal(ctx, tenantID, nil, []byte("warden prepare")); err != nil {
		return fmt.Errorf("data key of tenant %q: %w", tenantID, err)
	}
	return nil
}

// Pinner is a Sealer that can hand out a tenant's sealer for use inside a
// transaction: its Seal uses a data key obtained beforehand and never
// writes to the store (it cannot create a key), its Open only reads.
type Pinner interface {
	SealerFor(ctx context.Context, tenantID string) (keyring.Sealer, error)
}

// PinSealer returns the sealer to use for tenantID inside a transaction:
// s's pinned one if s is a Pinner, else s after PrepareSeal.
func PinSealer(ctx context.Context, s keyring.Sealer, tenantID string) (keyring.Sealer, error) {
	if s == nil {
		return nil, ErrNoSealer
	}
	if p, ok := s.(Pinner); ok {
		ps, err := p.SealerFor(ctx, tenantID)
		if err != nil {
			return nil, fmt.Errorf("data key of tenant %q: %w", tenantID, err)
		}
		return ps, nil
	}
	if err := PrepareSeal(ctx, s, tenantID); err != nil {
		return nil, err
	}
	return s, nil
}

// SealLegacyAlarm seals an alarm row written before sealing: its message
// and value, and its acknowledgement comment if it has one. It returns the
// arguments of the stores' UPDATE: sealed, sealed comment (nil if none),
// id.
func SealLegacyAlarm(ctx context.Context, s keyring.Sealer, a alarm.Record) ([]any, error) {
	sealed, err := SealAlarm(ctx, s, a.TenantID, a.RuleID, a.DeviceID, a.Message, a.Value)
	if err != nil {
		return nil, err
	}
	var comment []byte
	if a.AckComment != "" {
		if comment, err = SealAckComment(ctx, s, a.TenantID, a.ID, a.AckComment); err != nil {
			return nil, err
		}
	}
	return []any{sealed, comment, a.ID}, nil
}

// OpenC2DRow opens a stored message's sealed part (nil: not sealed); a
// message whose part cannot be opened is marked Unreadable, with no
// payload or properties. Only a missing sealer is an error.
func OpenC2DRow(ctx context.Context, s keyring.Sealer, m *hub.C2DMessage, sealed []byte) error {
	if sealed == nil {
		return nil
	}
	if err := OpenC2D(ctx, s, m, sealed); err != nil {
		if errors.Is(err, ErrNoSealer) {
			return err
		}
		m.Payload, m.Properties, m.Unreadable = []byte{}, map[string]string{}, true
	}
	return nil
}

// OpenPlans opens stored plans' sealed specs (nil: not sealed). A plan
// whose spec cannot be opened is left out: without its spec it is no plan.
func OpenPlans(ctx context.Context, s keyring.Sealer, plans []alarm.MaintenancePlan, sealed [][]byte) ([]alarm.MaintenancePlan, error) {
	out := make([]alarm.MaintenancePlan, 0, len(plans))
	for i, p := range plans {
		if sealed[i] != nil {
			if err := OpenPlan(ctx, s, &p, sealed[i]); err != nil {
				if errors.Is(err, ErrNoSealer) {
					return nil, err
				}
				continue
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// OpenMonitorStates opens the sealed parts of a monitor state, by tenant;
// parts that cannot be opened are left out.
func OpenMonitorStates(ctx context.Context, s keyring.Sealer, key string, sealed map[string][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(sealed))
	for tenantID, blob := range sealed {
		state, err := OpenMonitorState(ctx, s, key, tenantID, blob)
		if errors.Is(err, ErrNoSealer) {
			return nil, err
		}
		if err == nil {
			out[tenantID] = state
		}
	}
	return out, nil
}

// optPart frames a document that may be absent (nil) as one part: a
// leading 0 for none, 1 and the bytes otherwise, so that nil and empty
// come back as they went in.
func optPart(b []byte) []byte {
	if b == nil {
		return []byte{0}
	}
	return append([]byte{1}, b...)
}

func partOpt(p []byte) ([]byte, error) {
	switch {
	case len(p) == 1 && p[0] == 0:
		return nil, nil
	case len(p) >= 1 && p[0] == 1:
		return append([]byte{}, p[1:]...), nil
	}
	return nil, fmt.Errorf("%w: bad optional part", ErrUnreadable)
}

// registrationAAD binds a registration record's blob to its tenant, its
// registration id and the enrollment it came through (all written together
// by every assignment).
func registrationAAD(r provision.Registration) []byte {
	return sealAAD("registration", r.TenantID, r.RegistrationID, string(r.EnrollmentKind), r.EnrollmentID)
}

// SealRegistration seals a registration record's payload (what the device
// sent) and initial twin (what it was given), either of which may be nil.
func SealRegistration(ctx context.Context, s keyring.Sealer, r provision.Registration) ([]byte, error) {
	return sealParts(ctx, s, r.TenantID, registrationAAD(r), optPart(r.Payload), optPart(r.InitialTwin))
}

// OpenRegistration fills r's payload and initial twin from its sealed
// blob; r's tenant, registration id and enrollment must be set. If it
// cannot be opened, r is marked Unreadable and the error returned.
func OpenRegistration(ctx context.Context, s keyring.Sealer, r *provision.Registration, blob []byte) error {
	p, err := openParts(ctx, s, r.TenantID, blob, registrationAAD(*r), 2)
	var payload, twin []byte
	if err == nil {
		if payload, err = partOpt(p[0]); err == nil {
			twin, err = partOpt(p[1])
		}
	}
	if err != nil {
		r.Payload, r.InitialTwin, r.Unreadable = nil, nil, true
		return fmt.Errorf("registration %q: %w", r.RegistrationID, err)
	}
	r.Payload, r.InitialTwin = payload, twin
	return nil
}

// OpenRegistrationRow opens a stored registration's sealed part (nil: a
// record from before sealing, whose plaintext r already holds). A record
// that cannot be opened is marked Unreadable; only a missing sealer is an
// error.
func OpenRegistrationRow(ctx context.Context, s keyring.Sealer, r *provision.Registration, sealed []byte) error {
	if sealed == nil {
		return nil
	}
	if err := OpenRegistration(ctx, s, r, sealed); errors.Is(err, ErrNoSealer) {
		return err
	}
	return nil
}

func enrollmentGroupAAD(tenantID, groupID string) []byte {
	return sealAAD("enrollment-group", tenantID, groupID)
}

func enrollmentAAD(tenantID, registrationID string) []byte {
	return sealAAD("enrollment", tenantID, registrationID)
}

// SealGroupTwin seals an enrollment group's initial twin (nil: none). The
// initial twin becomes the twin of every device the group assigns, which
// is sealed too: it is sealed like it.
func SealGroupTwin(ctx context.Context, s keyring.Sealer, tenantID, groupID string, twin []byte) ([]byte, error) {
	return sealParts(ctx, s, tenantID, enrollmentGroupAAD(tenantID, groupID), optPart(twin))
}

// SealEnrollmentTwin seals an individual enrollment's initial twin (nil:
// none).
func SealEnrollmentTwin(ctx context.Context, s keyring.Sealer, tenantID, registrationID string, twin []byte) ([]byte, error) {
	return sealParts(ctx, s, tenantID, enrollmentAAD(tenantID, registrationID), optPart(twin))
}

func openInitialTwin(ctx context.Context, s keyring.Sealer, tenantID string, blob, aad []byte) ([]byte, error) {
	p, err := openParts(ctx, s, tenantID, blob, aad, 1)
	if err != nil {
		return nil, err
	}
	return partOpt(p[0])
}

// OpenGroupRow opens a stored group's sealed initial twin (nil: a group
// from before sealing, whose plaintext g already holds). A twin that
// cannot be opened leaves g without one, marked Unreadable; only a missing
// sealer is an error.
func OpenGroupRow(ctx context.Context, s keyring.Sealer, g *provision.EnrollmentGroup, sealed []byte) error {
	if sealed == nil {
		return nil
	}
	twin, err := openInitialTwin(ctx, s, g.TenantID, sealed, enrollmentGroupAAD(g.TenantID, g.ID))
	if errors.Is(err, ErrNoSealer) {
		return err
	}
	g.InitialTwin, g.Unreadable = twin, err != nil
	return nil
}

// OpenEnrollmentRow is OpenGroupRow for an individual enrollment.
func OpenEnrollmentRow(ctx context.Context, s keyring.Sealer, e *provision.Enrollment, sealed []byte) error {
	if sealed == nil {
		return nil
	}
	twin, err := openInitialTwin(ctx, s, e.TenantID, sealed, enrollmentAAD(e.TenantID, e.RegistrationID))
	if errors.Is(err, ErrNoSealer) {
		return err
	}
	e.InitialTwin, e.Unreadable = twin, err != nil
	return nil
}
