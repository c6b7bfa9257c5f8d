// Package alarmsvc is the alarm domain's service: it changes what the
// people of a tenant manage — alarm rules, maintenance plans, and the
// acknowledgement and clearing of alarms by hand — in the alarm store and
// publishes the facts (event.RulesChanged, MaintenancePlansChanged,
// AlarmAcknowledged, AlarmClearedByHand) that the alarm runtime and the
// notifier react to.
//
// It lives beside package alarm, not in it, because alarm is the pure
// evaluator and promises no I/O; the runtime that evaluates (package
// monitor) is a different job from the bookkeeping done here. Who may do
// what is the caller's to decide (the API's policy check) before it calls.
package alarmsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/maintenance"
)

// Store is what the service needs of the alarm store.
type Store interface {
	CreateAlarmRule(ctx context.Context, r alarm.StoredRule) error
	UpdateAlarmRule(ctx context.Context, r alarm.StoredRule) error
	DeleteAlarmRule(ctx context.Context, id string) error

	ApplyAlarmChanges(ctx context.Context, changes []alarm.Change) ([]alarm.Record, error)
	AckAlarm(ctx context.Context, id int64, by, comment string, at time.Time) (alarm.Record, error)

	SetMaintenancePlan(ctx context.Context, p alarm.MaintenancePlan) error
	DeleteMaintenancePlan(ctx context.Context, tenantID, model string) error
}

// InvalidError says a rule or plan is not valid. Err is the validator's
// error: an *alarm.FieldError or *maintenance.PlanError, or several of
// them joined.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap is the validator's error.
func (e *InvalidError) Unwrap() error { return e.Err }

// ConflictError says an alarm is not in the state the change needs
// (acknowledged twice, cleared when not active); its text says how.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// ScopeCheck is the caller's check of a valid rule's scope before it is
// stored (e.g. that the scope device is in the rule's tenant and the
// caller may read its alarms). An *alarm.FieldError it returns makes the
// rule invalid; any other error is returned as is.
type ScopeCheck func(ctx context.Context, r alarm.Rule) error

// Service manages rules, plans and alarms by hand. It is safe for
// concurrent use. The store's errors (database.ErrNotFound, ErrConflict)
// come back as they are, so that their text can be shown.
type Service struct {
	store  Store
	events event.Publisher
	clock  clock.Clock
	log    *slog.Logger
}

// New makes the service on st, publishing to events, on clk (nil: the
// wall clock).
func New(st Store, events event.Publisher, clk clock.Clock, log *slog.Logger) *Service {
	return &Service{store: st, events: events, clock: clock.OrReal(clk), log: log}
}

// publish tells the subscribers of a committed fact. A reaction that
// failed is logged by the bus; the fact stands.
func (s *Service) publish(ctx context.Context, ev event.Event) {
	_ = s.events.Publish(ctx, ev)
}

// now is the time as stored (UTC, milliseconds).
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }

// complete trims, validates and scope-checks a rule.
func complete(ctx context.Context, r *alarm.Rule, check ScopeCheck) error {
	r.Name = strings.TrimSpace(r.Name)
	if err := r.Validate(); err != nil {
		return &InvalidError{Err: err}
	}
	if check == nil {
		return nil
	}
	if err := check(ctx, *r); err != nil {
		var fe *alarm.FieldError
		if errors.As(err, &fe) {
			return &InvalidError{Err: err}
		}
		return err
	}
	return nil
}

// CreateRule stores a new rule of tenantID made by actorID: it gets a new
// id, its name is trimmed, and it must be valid (Validate, then check).
// Publishes event.RulesChanged.
func (s *Service) CreateRule(ctx context.Context, tenantID, actorID string, r alarm.Rule, check ScopeCheck) (alarm.StoredRule, error) {
	r.TenantID = tenantID
	id, err := identity.NewID("rule")
	if err != nil {
		return alarm.StoredRule{}, fmt.Errorf("new rule id: %w", err)
	}
	r.ID = id
	if err := complete(ctx, &r, check); err != nil {
		return alarm.StoredRule{}, err
	}
	spec, err := json.Marshal(r)
	if err != nil {
		return alarm.StoredRule{}, fmt.Errorf("encode rule: %w", err)
	}
	now := s.now()
	row := alarm.StoredRule{ID: r.ID, TenantID: tenantID, Name: r.Name, Enabled: r.Enabled, Spec: spec,
		CreatedBy: actorID, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateAlarmRule(ctx, row); err != nil {
		return alarm.StoredRule{}, err
	}
	s.publish(ctx, event.RulesChanged{TenantID: row.TenantID, RuleID: row.ID, At: s.clock.Now().UTC()})
	s.log.Info("alarm rule created", "rule", row.ID, "tenant", row.TenantID)
	return row, nil
}

// UpdateRule replaces the definition of the stored rule row with r; its
// id, tenant and alarms stay. r must be valid (Validate, then check).
// Publishes event.RulesChanged.
func (s *Service) UpdateRule(ctx context.Context, row alarm.StoredRule, r alarm.Rule, check ScopeCheck) (alarm.StoredRule, error) {
	r.ID, r.TenantID = row.ID, row.TenantID
	if err := complete(ctx, &r, check); err != nil {
		return alarm.StoredRule{}, err
	}
	spec, err := json.Marshal(r)
	if err != nil {
		return alarm.StoredRule{}, fmt.Errorf("encode rule: %w", err)
	}
	row.Name, row.Enabled, row.Spec = r.Name, r.Enabled, spec
	row.UpdatedAt = s.now()
	if err := s.store.UpdateAlarmRule(ctx, row); err != nil {
		return alarm.StoredRule{}, err
	}
	s.publish(ctx, event.RulesChanged{TenantID: row.TenantID, RuleID: row.ID, At: s.clock.Now().UTC()})
	s.log.Info("alarm rule updated", "rule", row.ID, "tenant", row.TenantID)
	return row, nil
}

// DeleteRule removes a rule; its alarms stay (the alarm runtime clears
// those still active). Publishes event.RulesChanged.
func (s *Service) DeleteRule(ctx context.Context, row alarm.StoredRule) error {
	if err := s.store.DeleteAlarmRule(ctx, row.ID); err != nil {
		return err
	}
	s.publish(ctx, event.RulesChanged{TenantID: row.TenantID, RuleID: row.ID, At: s.clock.Now().UTC()})
	s.log.Info("alarm rule deleted", "rule", row.ID, "tenant", row.TenantID)
	return nil
}

// CheckPlanModel says whether model may name a maintenance plan.
func CheckPlanModel(model string) error {
	if model == "" || len(model) > maintenance.MaxPlanModelLen {
		return &InvalidError{Err: &maintenance.PlanError{Field: "model", Problem: fmt.Sprintf("must be 1 to %d bytes", maintenance.MaxPlanModelLen)}}
	}
	return nil
}

// SetPlan sets the tenant's maintenance plan for model from its JSON
// spec; the spec may leave the model out, and must not name another.
// Publishes event.MaintenancePlansChanged.
func (s *Service) SetPlan(ctx context.Context, tenantID, model string, spec []byte) (alarm.MaintenancePlan, error) {
	if err := CheckPlanModel(model); err != nil {
		return alarm.MaintenancePlan{}, err
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(spec, &probe) == nil && probe != nil {
		if _, ok := probe["model"]; !ok {
			probe["model"], _ = json.Marshal(model)
			spec, _ = json.Marshal(probe)
		}
	}
	p, err := maintenance.ParsePlan(spec)
	if err != nil {
		return alarm.MaintenancePlan{}, &InvalidError{Err: err}
	}
	if p.Model != model {
		return alarm.MaintenancePlan{}, &InvalidError{Err: &maintenance.PlanError{Field: "model", Problem: fmt.Sprintf("%q differs from the path's %q", p.Model, model)}}
	}
	norm, err := json.Marshal(p)
	if err != nil {
		return alarm.MaintenancePlan{}, fmt.Errorf("encode plan: %w", err)
	}
	row := alarm.MaintenancePlan{TenantID: tenantID, Model: model, Spec: norm, UpdatedAt: s.clock.Now()}
	if err := s.store.SetMaintenancePlan(ctx, row); err != nil {
		return alarm.MaintenancePlan{}, err
	}
	s.publish(ctx, event.MaintenancePlansChanged{TenantID: tenantID, Model: model, At: s.clock.Now().UTC()})
	s.log.Info("maintenance plan set", "tenant", tenantID, "model", model)
	return row, nil
}

// DeletePlan deletes the tenant's maintenance plan for model. Publishes
// event.MaintenancePlansChanged.
func (s *Service) DeletePlan(ctx context.Context, tenantID, model string) error {
	if err := s.store.DeleteMaintenancePlan(ctx, tenantID, model); err != nil {
		return err
	}
	s.publish(ctx, event.MaintenancePlansChanged{TenantID: tenantID, Model: model, At: s.clock.Now().UTC()})
	s.log.Info("maintenance plan deleted", "tenant", tenantID, "model", model)
	return nil
}

// Acknowledge acknowledges an alarm, active or cleared, by by (who, as
// alarms record it) with comment. Twice is a *ConflictError. Publishes
// event.AlarmAcknowledged.
func (s *Service) Acknowledge(ctx context.Context, al alarm.Record, by, comment string) (alarm.Record, error) {
	if !al.AckedAt.IsZero() {
		return alarm.Record{}, &ConflictError{Msg: fmt.Sprintf("alarm %d: already acknowledged by %s", al.ID, al.AckedBy)}
	}
	acked, err := s.store.AckAlarm(ctx, al.ID, by, comment, s.now())
	if errors.Is(err, database.ErrConflict) {
		return alarm.Record{}, &ConflictError{Msg: fmt.Sprintf("alarm %d: already acknowledged", al.ID)}
	}
	if err != nil {
		return alarm.Record{}, err
	}
	s.publish(ctx, event.AlarmAcknowledged{TenantID: acked.TenantID, DeviceID: acked.DeviceID, AlarmID: acked.ID,
		By: acked.AckedBy, At: acked.AckedAt})
	return acked, nil
}

// ClearByHand clears an active alarm by by (who, as alarms record it). If
// nobody acknowledged it yet, clearing acknowledges it too, with comment.
// An alarm that is not active is a *ConflictError. Publishes
// event.AlarmClearedByHand: the alarm runtime lets the rule raise again if
// the condition still holds; the notifier tells those who were told of
// the alarm.
func (s *Service) ClearByHand(ctx context.Context, al alarm.Record, by, comment string) (alarm.Record, error) {
	if al.State != alarm.StateActive {
		return alarm.Record{}, &ConflictError{Msg: fmt.Sprintf("alarm %d is not active (%s)", al.ID, al.State)}
	}
	at := s.now()
	got, err := s.store.ApplyAlarmChanges(ctx, []alarm.Change{{Kind: "cleared", TenantID: al.TenantID,
		RuleID: al.RuleID, DeviceID: al.DeviceID, SiteID: al.SiteID, Alarm: al.Kind, Severity: al.Severity,
		Message: al.Message, Value: al.Value, At: at, By: by}})
	if err != nil {
		return alarm.Record{}, err
	}
	if len(got) != 1 || got[0].ID != al.ID {
		return alarm.Record{}, &ConflictError{Msg: fmt.Sprintf("alarm %d is not active any more", al.ID)}
	}
	al = got[0]
	if al.AckedAt.IsZero() {
		switch acked, err := s.store.AckAlarm(ctx, al.ID, by, comment, at); {
		case err == nil:
			al = acked
		case !errors.Is(err, database.ErrConflict): // acknowledged in the meantime: fine
			s.log.Error("acknowledge cleared alarm", "alarm", al.ID, "err", err)
		}
	}
	s.log.Info("alarm cleared by hand", "alarm", al.ID, "device", al.DeviceID, "by", by)
	s.publish(ctx, event.AlarmClearedByHand{TenantID: al.TenantID, DeviceID: al.DeviceID, AlarmID: al.ID, Kind: al.Kind,
		RuleID: al.RuleID, By: by, At: at})
	return al, nil
}
