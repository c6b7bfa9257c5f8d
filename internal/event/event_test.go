package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/event"
)

func newBus(t *testing.T) (*event.Local, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return event.NewLocal(slog.New(slog.NewTextHandler(&logs, nil))), &logs
}

// TestOrder: subscribers of a type run in the order they subscribed, and
// only they.
func TestOrder(t *testing.T) {
	b, _ := newBus(t)
	var got []string
	for _, name := range []string{"broker", "monitor", "keyring"} {
		event.On(b, name, func(_ context.Context, ev event.TenantDeleted) error {
			got = append(got, name+" "+ev.TenantID)
			return nil
		})
	}
	event.On(b, "other", func(context.Context, event.DeviceDeleted) error {
		got = append(got, "device subscriber")
		return nil
	})
	if err := b.Publish(t.Context(), event.TenantDeleted{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), event.TenantDeleted{TenantID: "beta"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"broker acme", "monitor acme", "keyring acme", "broker beta", "monitor beta", "keyring beta"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Nobody subscribed: nothing runs, nothing fails.
	if err := b.Publish(t.Context(), event.KeysShredded{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
}

// TestFailingSubscriber: a subscriber that fails or panics is logged and
// reported, and the others still run.
func TestFailingSubscriber(t *testing.T) {
	b, logs := newBus(t)
	var ran []string
	event.On(b, "fails", func(context.Context, event.DeviceDeleted) error {
		ran = append(ran, "fails")
		return errors.New("disk on fire")
	})
	event.On(b, "panics", func(context.Context, event.DeviceDeleted) error {
		ran = append(ran, "panics")
		panic("nil map")
	})
	event.On(b, "works", func(context.Context, event.DeviceDeleted) error {
		ran = append(ran, "works")
		return nil
	})
	err := b.Publish(t.Context(), event.DeviceDeleted{TenantID: "acme", DeviceID: "d1"})
	if !slices.Equal(ran, []string{"fails", "panics", "works"}) {
		t.Fatalf("ran %q, want every subscriber", ran)
	}
	if err == nil || !strings.Contains(err.Error(), "fails: disk on fire") || !errors.Is(err, event.ErrPanicked) ||
		!strings.Contains(err.Error(), "panics:") || strings.Contains(err.Error(), "works") {
		t.Fatalf("Publish: %v, want the failure and the panic", err)
	}
	for _, want := range []string{"subscriber=fails", "subscriber=panics", "event=device.deleted", "nil map"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// The bus still works afterwards.
	ran = nil
	_ = b.Publish(t.Context(), event.DeviceDeleted{DeviceID: "d2"})
	if len(ran) != 3 {
		t.Fatalf("second publish ran %q", ran)
	}
}

type ctxKey struct{}

// TestContext: subscribers get the publisher's values but not its
// cancellation: a request that ended does not cut the reactions short.
func TestContext(t *testing.T) {
	b, _ := newBus(t)
	var gotValue any
	var gotErr error
	event.On(b, "reader", func(ctx context.Context, _ event.RulesChanged) error {
		gotValue, gotErr = ctx.Value(ctxKey{}), ctx.Err()
		return nil
	})
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "request 7"))
	cancel()
	if err := b.Publish(ctx, event.RulesChanged{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if gotValue != "request 7" || gotErr != nil {
		t.Fatalf("subscriber saw value %v and ctx error %v, want the value and no error", gotValue, gotErr)
	}
}

// TestNested: an event published by a subscriber is handled before the
// outer Publish returns, and after the subscribers before it.
func TestNested(t *testing.T) {
	b, _ := newBus(t)
	var got []string
	event.On(b, "keyring", func(ctx context.Context, ev event.TenantDeleted) error {
		got = append(got, "shred "+ev.TenantID)
		return b.Publish(ctx, event.KeysShredded{TenantID: ev.TenantID})
	})
	event.On(b, "cache", func(_ context.Context, ev event.KeysShredded) error {
		got = append(got, "forget "+ev.TenantID)
		return nil
	})
	event.On(b, "last", func(_ context.Context, ev event.TenantDeleted) error {
		got = append(got, "last "+ev.TenantID)
		return nil
	})
	if err := b.Publish(t.Context(), event.TenantDeleted{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"shred acme", "forget acme", "last acme"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestFacts: every fact has its own stable type name and survives a JSON
// round trip through its subscription's Decode (what a stream carries).
func TestFacts(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	facts := []event.Event{
		event.TenantDeleted{TenantID: "acme", DeviceIDs: []string{"d1", "d2"}, At: at},
		event.KeysShredded{TenantID: "acme", At: at},
		event.DeviceCreated{TenantID: "acme", DeviceID: "d1", At: at},
		event.DeviceChanged{TenantID: "acme", DeviceID: "d1", SiteID: "s2", PreviousSiteID: "s1", Model: "vp-40", Status: "disabled", At: at},
		event.DeviceDeleted{TenantID: "acme", DeviceID: "d1", At: at},
		event.DeviceRekeyed{TenantID: "acme", DeviceID: "d1", Keys: "both", At: at},
		event.RulesChanged{TenantID: "acme", RuleID: "r1", At: at},
		event.MaintenancePlansChanged{TenantID: "acme", Model: "vp-40", At: at},
		event.EnrollmentsChanged{TenantID: "acme", At: at},
		event.GrantCreated{TenantID: "acme", GrantID: "g1", SupporterUserID: "u1", SiteID: "s1", ExpiresAt: at.Add(time.Hour), At: at},
		event.GrantRevoked{TenantID: "acme", GrantID: "g1", SupporterUserID: "u1", DeviceID: "d1", At: at},
		event.FactoryAccessClosed{TenantID: "acme", SiteID: "s1", At: at},
		event.AlarmAcknowledged{TenantID: "acme", DeviceID: "d1", AlarmID: 7, By: "ann@acme.example (usr_1)", At: at},
		event.AlarmClearedByHand{TenantID: "acme", DeviceID: "d1", AlarmID: 7, Kind: "rule", RuleID: "r1", By: "ann", At: at},
		event.UserDeleted{TenantID: "acme", UserID: "usr_1", At: at},
		event.CloudToDeviceQueued{TenantID: "acme", DeviceID: "d1", MessageID: "m1", At: at},
	}
	var subs []event.Subscription
	rec := recorder{subs: &subs}
	event.On(rec, "x", func(context.Context, event.TenantDeleted) error { return nil })
	event.On(rec, "x", func(context.Context, event.KeysShredded) error { return nil })
	event.On(rec, "x", func(context.Context, event.DeviceCreated) error { return nil })
	event.On(rec, "x", func(context.Context, event.DeviceChanged) error { return nil })
	event.On(rec, "x", func(context.Context, event.DeviceDeleted) error { return nil })
	event.On(rec, "x", func(context.Context, event.DeviceRekeyed) error { return nil })
	event.On(rec, "x", func(context.Context, event.RulesChanged) error { return nil })
	event.On(rec, "x", func(context.Context, event.MaintenancePlansChanged) error { return nil })
	event.On(rec, "x", func(context.Context, event.EnrollmentsChanged) error { return nil })
	event.On(rec, "x", func(context.Context, event.GrantCreated) error { return nil })
	event.On(rec, "x", func(context.Context, event.GrantRevoked) error { return nil })
	event.On(rec, "x", func(context.Context, event.FactoryAccessClosed) error { return nil })
	event.On(rec, "x", func(context.Context, event.AlarmAcknowledged) error { return nil })
	event.On(rec, "x", func(context.Context, event.AlarmClearedByHand) error { return nil })
	event.On(rec, "x", func(context.Context, event.UserDeleted) error { return nil })
	event.On(rec, "x", func(context.Context, event.CloudToDeviceQueued) error { return nil })
	seen := map[string]bool{}
	for i, ev := range facts {
		typ := ev.Type()
		if seen[typ] || typ == "" {
			t.Errorf("type %q empty or twice", typ)
		}
		seen[typ] = true
		s := subs[i]
		if s.Type != typ {
			t.Fatalf("subscription %d is to %q, want %q", i, s.Type, typ)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Errorf("%s: %s came back as %#v", typ, data, back)
		}
		if err := s.Handle(t.Context(), back); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		// A handler given another type refuses it instead of panicking.
		if err := s.Handle(t.Context(), facts[(i+1)%len(facts)]); err == nil {
			t.Errorf("%s: handler took another type", typ)
		}
		if !strings.Contains(string(data), `"tenantId":"acme"`) || !strings.Contains(string(data), `"at":"2026-03-02T10:00:00Z"`) {
			t.Errorf("%s: %s lacks the tenant or the time", typ, data)
		}
	}
}

// recorder keeps subscriptions instead of running them.
type recorder struct{ subs *[]event.Subscription }

func (r recorder) Subscribe(s event.Subscription) { *r.subs = append(*r.subs, s) }

// TestSubscriptionNames: a name is one reaction; a second use panics.
func TestSubscriptionNames(t *testing.T) {
	b, _ := newBus(t)
	event.On(b, "broker.disconnect", func(context.Context, event.DeviceDeleted) error { return nil })
	defer func() {
		if recover() == nil {
			t.Error("a second subscription named broker.disconnect was taken")
		}
	}()
	event.On(b, "broker.disconnect", func(context.Context, event.DeviceRekeyed) error { return nil })
}

// TestConcurrent: publishing and subscribing from several goroutines is
// safe (run with -race), and every publish reaches the subscribers that
// were there before it began.
func TestConcurrent(t *testing.T) {
	b, _ := newBus(t)
	var mu sync.Mutex
	count := 0
	event.On(b, "counter", func(context.Context, event.DeviceCreated) error {
		mu.Lock()
		count++
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := b.Publish(t.Context(), event.DeviceCreated{DeviceID: "d"}); err != nil {
					t.Error(err)
				}
				if i%25 == 0 {
					event.On(b, fmt.Sprintf("late-%d-%d", g, i), func(context.Context, event.DeviceCreated) error { return nil })
				}
			}
		}()
	}
	wg.Wait()
	if count != 800 {
		t.Fatalf("counter ran %d times, want 800", count)
	}
}
