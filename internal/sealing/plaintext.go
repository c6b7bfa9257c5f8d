package sealing

import (
	"context"
	"encoding/json"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/provision"
)

// Rows written before sealing existed still hold machine data in clear;
// each SQL store seals them at start (SealPlaintext), table by table. The
// stores own the SQL: a SELECT of the row's columns in the order given
// below and an UPDATE taking the sealed parts, then the row's key. The
// functions here turn one selected row into that UPDATE's arguments, so
// both engines seal exactly alike.

// RowScanner is one row of a query result (database/sql's and pgx's rows).
type RowScanner interface {
	Scan(dest ...any) error
}

// PlaintextSealer seals one selected row into its UPDATE's arguments.
type PlaintextSealer func(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error)

// SealPlaintextTwin: device_id, tenant_id, tags, desired, desired_meta,
// reported, reported_meta → sealed, device_id.
func SealPlaintextTwin(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var tw hub.Twin
	var tags, desired, dmeta, reported, rmeta string
	if err := row.Scan(&tw.DeviceID, &tw.TenantID, &tags, &desired, &dmeta, &reported, &rmeta); err != nil {
		return nil, err
	}
	tw.Tags = json.RawMessage(tags)
	tw.Desired.Doc, tw.Desired.Metadata = json.RawMessage(desired), json.RawMessage(dmeta)
	tw.Reported.Doc, tw.Reported.Metadata = json.RawMessage(reported), json.RawMessage(rmeta)
	blob, err := SealTwin(ctx, s, tw)
	return []any{blob, tw.DeviceID}, err
}

// SealPlaintextC2D: id, tenant_id, device_id, message_id, properties,
// payload → sealed, id.
func SealPlaintextC2D(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var m hub.C2DMessage
	var props string
	if err := row.Scan(&m.ID, &m.TenantID, &m.DeviceID, &m.MessageID, &props, &m.Payload); err != nil {
		return nil, err
	}
	var err error
	if m.Properties, err = hub.DecodeC2DProperties(props); err != nil {
		return nil, err
	}
	blob, err := SealC2D(ctx, s, m)
	return []any{blob, m.ID}, err
}

// SealPlaintextAlarm: id, tenant_id, rule_id, device_id, message, value,
// ack_comment → sealed, sealed_comment (nil if none), id.
func SealPlaintextAlarm(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var a alarm.Record
	if err := row.Scan(&a.ID, &a.TenantID, &a.RuleID, &a.DeviceID, &a.Message, &a.Value, &a.AckComment); err != nil {
		return nil, err
	}
	return SealLegacyAlarm(ctx, s, a)
}

// SealPlaintextDelivery: id, tenant_id, alarm_id, channel, target, event,
// payload, last_error → sealed, sealed_error, id.
func SealPlaintextDelivery(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var d notifystore.Delivery
	var payload string
	if err := row.Scan(&d.ID, &d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event, &payload, &d.LastError); err != nil {
		return nil, err
	}
	d.Payload = rawJSON(payload)
	p, e, err := SealDeliveryRow(ctx, s, d)
	return []any{p, e, d.ID}, err
}

// SealPlaintextPlan: tenant_id, model, spec → sealed, tenant_id, model.
func SealPlaintextPlan(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var p alarm.MaintenancePlan
	var spec string
	if err := row.Scan(&p.TenantID, &p.Model, &spec); err != nil {
		return nil, err
	}
	p.Spec = rawJSON(spec)
	blob, err := SealPlan(ctx, s, p)
	return []any{blob, p.TenantID, p.Model}, err
}

// SealPlaintextRegistration: tenant_id, registration_id, enrollment_kind,
// enrollment_id, payload, initial_twin → sealed, tenant_id,
// registration_id.
func SealPlaintextRegistration(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var r provision.Registration
	var kind string
	var payload, twin *string
	if err := row.Scan(&r.TenantID, &r.RegistrationID, &kind, &r.EnrollmentID, &payload, &twin); err != nil {
		return nil, err
	}
	r.EnrollmentKind, r.Payload, r.InitialTwin = provision.EnrollmentKind(kind), optionalBytes(payload), optionalBytes(twin)
	blob, err := SealRegistration(ctx, s, r)
	return []any{blob, r.TenantID, r.RegistrationID}, err
}

// SealPlaintextGroup: tenant_id, id, initial_twin → sealed, tenant_id, id.
func SealPlaintextGroup(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var tenantID, id string
	var twin *string
	if err := row.Scan(&tenantID, &id, &twin); err != nil {
		return nil, err
	}
	blob, err := SealGroupTwin(ctx, s, tenantID, id, optionalBytes(twin))
	return []any{blob, tenantID, id}, err
}

// SealPlaintextEnrollment: tenant_id, registration_id, initial_twin →
// sealed, tenant_id, registration_id.
func SealPlaintextEnrollment(ctx context.Context, s keyring.Sealer, row RowScanner) ([]any, error) {
	var tenantID, id string
	var twin *string
	if err := row.Scan(&tenantID, &id, &twin); err != nil {
		return nil, err
	}
	blob, err := SealEnrollmentTwin(ctx, s, tenantID, id, optionalBytes(twin))
	return []any{blob, tenantID, id}, err
}

// rawJSON is a stored JSON text, nil for an empty one.
func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// optionalBytes is a nullable text column's bytes, nil for NULL.
func optionalBytes(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}
