package server

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/notify"
)

// subscribe wires the reactions to the facts the services publish: every
// side effect of a change made through the API is here, once. Reactions
// to one fact run in the order subscribed: for a deleted tenant the
// devices are cut off first, then the alarm runtime forgets the tenant,
// then its keys are shredded.
func (s *Server) subscribe(bus event.Bus) {
	// The device endpoint: no connection outlives its device's deletion,
	// disabling or re-keying (a token of a replaced key must not live on),
	// nor its tenant; cached enrollments are read again.
	event.On(bus, "broker.disconnect-tenant", func(_ context.Context, ev event.TenantDeleted) error {
		for _, id := range ev.DeviceIDs {
			s.broker.Disconnect(id)
		}
		s.broker.EnrollmentsChanged(ev.TenantID)
		return nil
	})
	event.On(bus, "broker.disconnect-deleted", func(_ context.Context, ev event.DeviceDeleted) error {
		s.broker.Disconnect(ev.DeviceID)
		return nil
	})
	event.On(bus, "broker.disconnect-disabled", func(_ context.Context, ev event.DeviceChanged) error {
		if ev.Disabled() {
			s.broker.Disconnect(ev.DeviceID)
		}
		return nil
	})
	event.On(bus, "broker.disconnect-rekeyed", func(_ context.Context, ev event.DeviceRekeyed) error {
		s.broker.Disconnect(ev.DeviceID)
		return nil
	})
	event.On(bus, "broker.enrollments", func(_ context.Context, ev event.EnrollmentsChanged) error {
		s.broker.EnrollmentsChanged(ev.TenantID)
		return nil
	})
	// A queued cloud-to-device message goes out at once if the device is
	// connected and subscribed.
	event.On(bus, "broker.deliver-c2d", func(_ context.Context, ev event.CloudToDeviceQueued) error {
		s.broker.DeliverC2D(ev.DeviceID)
		return nil
	})

	// The alarm and maintenance runtime: what it knows of a device (site,
	// model) is read again; a deleted device's or tenant's states go, so
	// that nothing of it fires again and a device made later with the same
	// id starts afresh; changed rules and plans are reloaded.
	event.On(bus, "monitor.device-changed", func(ctx context.Context, ev event.DeviceChanged) error {
		s.monitor.DeviceChanged(ctx, ev.DeviceID, false)
		return nil
	})
	event.On(bus, "monitor.device-deleted", func(ctx context.Context, ev event.DeviceDeleted) error {
		s.monitor.DeviceChanged(ctx, ev.DeviceID, true)
		return nil
	})
	event.On(bus, "monitor.tenant-deleted", func(ctx context.Context, ev event.TenantDeleted) error {
		return s.monitor.TenantDeleted(ctx, ev.TenantID, ev.DeviceIDs)
	})
	event.On(bus, "monitor.rules", func(ctx context.Context, _ event.RulesChanged) error {
		return s.monitor.RulesChanged(ctx)
	})
	event.On(bus, "monitor.plans", func(ctx context.Context, _ event.MaintenancePlansChanged) error {
		return s.monitor.PlansChanged(ctx)
	})
	// A rule's alarm cleared by hand raises again if its condition still
	// holds.
	event.On(bus, "monitor.cleared-by-hand", func(ctx context.Context, ev event.AlarmClearedByHand) error {
		if ev.Kind != alarm.KindRule {
			return nil
		}
		return s.monitor.ClearedByHand(ctx, ev.RuleID, ev.DeviceID, ev.At)
	})

	// The notifier tells those told of an alarm that a person
	// acknowledged or cleared it.
	event.On(bus, "notifier.acknowledged", func(ctx context.Context, ev event.AlarmAcknowledged) error {
		return s.notifyAlarm(ctx, ev.AlarmID, notify.EventAcknowledged)
	})
	event.On(bus, "notifier.cleared-by-hand", func(ctx context.Context, ev event.AlarmClearedByHand) error {
		return s.notifyAlarm(ctx, ev.AlarmID, notify.EventCleared)
	})

	// The keyring: a deleted tenant's keys are shredded, so that what is
	// left of it in backups cannot be read; shredding also purges the
	// database files of them.
	event.On(bus, "keyring.shred", func(ctx context.Context, ev event.TenantDeleted) error {
		if err := s.keys.Shred(ctx, ev.TenantID); err != nil {
			return err
		}
		return bus.Publish(ctx, event.KeysShredded{TenantID: ev.TenantID, At: s.cfg.Clock.Now().UTC()})
	})
	// Keys held in memory go too (a no-op on the node that shredded them;
	// another node sharing the database must not keep opening with them).
	event.On(bus, "keyring.forget", func(_ context.Context, ev event.KeysShredded) error {
		s.keys.ForgetTenant(ev.TenantID)
		return nil
	})

	// Factory service access closed: the broker closes the connections
	// made with staff credentials no longer allowed, and the notifier
	// gives up the operator's pending notifications about those machines.
	event.On(bus, "broker.recheck-staff", func(ctx context.Context, ev event.FactoryAccessClosed) error {
		s.log.Info("factory service access closed", "tenant", ev.TenantID, "site", ev.SiteID, "device", ev.DeviceID)
		s.broker.RecheckStaff(ctx)
		return nil
	})
	event.On(bus, "notifier.access-closed", func(context.Context, event.FactoryAccessClosed) error {
		s.notifier.AccessClosed()
		return nil
	})
}

// notifyAlarm hands the alarm as stored now to the notifier.
func (s *Server) notifyAlarm(ctx context.Context, alarmID int64, ev string) error {
	a, err := s.store.GetAlarm(ctx, alarmID)
	if err != nil {
		return fmt.Errorf("notify alarm %d %s: %w", alarmID, ev, err)
	}
	return s.notifier.Alarm(ctx, a, ev)
}
