package hub_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is the service on a fresh SQLite engine with device "pump-1" in
// the root tenant, with the facts it published.
type fixture struct {
	e     store.Store
	svc   *hub.Messages
	clk   *clocktest.Fake
	facts []event.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := enginetest.SQLite(t)
	enginetest.WithKeyring(t, e)
	f := &fixture{e: e, clk: clocktest.New(t0)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := event.NewLocal(log)
	bus.Subscribe(event.Subscription{Name: "test", Type: event.CloudToDeviceQueued{}.Type(),
		Handle: func(_ context.Context, ev event.Event) error {
			f.facts = append(f.facts, ev)
			return nil
		}})
	f.svc = hub.NewMessages(e, bus, f.clk, log)
	if err := e.CreateDevice(t.Context(), registry.Device{ID: "pump-1", TenantID: tenancy.RootTenantID,
		Status: registry.DeviceEnabled, PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32),
		CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

// published returns the facts published since the last call.
func (f *fixture) published() []event.Event {
	out := f.facts
	f.facts = nil
	return out
}

func wantFacts(t *testing.T, got []event.Event, want ...event.Event) {
	t.Helper()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
}

func out(msgID string) hub.Outgoing {
	return hub.Outgoing{TenantID: tenancy.RootTenantID, DeviceID: "pump-1", MessageID: msgID, Payload: []byte("hi")}
}

func queued(msgID string) event.CloudToDeviceQueued {
	return event.CloudToDeviceQueued{TenantID: tenancy.RootTenantID, DeviceID: "pump-1", MessageID: msgID, At: t0}
}

func TestSend(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	// A message id is made; the time to live is the default.
	m, err := f.svc.Send(ctx, out(""))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(m.MessageID) {
		t.Errorf("made message id %q, want a version 4 UUID", m.MessageID)
	}
	if m.State != hub.C2DQueued || string(m.Payload) != "hi" || !m.CreatedAt.Equal(t0) ||
		!m.ExpiresAt.Equal(t0.Add(hub.DefaultC2DTTL)) {
		t.Fatalf("Send = %+v", m)
	}
	wantFacts(t, f.published(), queued(m.MessageID))

	// Given id, correlation id, properties and time to live.
	o := out("m-2")
	ttl := int64(30)
	o.TTLSeconds, o.CorrelationID, o.Properties = &ttl, "c-1", map[string]string{"k": "v"}
	if m, err = f.svc.Send(ctx, o); err != nil || m.MessageID != "m-2" || m.CorrelationID != "c-1" ||
		m.Properties["k"] != "v" || !m.ExpiresAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("Send = %+v, %v", m, err)
	}
	wantFacts(t, f.published(), queued("m-2"))
	pending, err := f.e.PendingC2D(ctx, "pump-1", t0)
	if err != nil || len(pending) != 2 || pending[1].MessageID != "m-2" {
		t.Fatalf("pending %+v, %v", pending, err)
	}

	// The same id again.
	if _, err := f.svc.Send(ctx, out("m-2")); !errors.Is(err, database.ErrConflict) {
		t.Errorf("Send of a used id = %v, want ErrConflict", err)
	}
	wantFacts(t, f.published())
}

func TestSendRefused(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	big := out("big")
	big.Payload = make([]byte, hub.MaxC2DPayload+1)
	if _, err := f.svc.Send(ctx, big); !errors.Is(err, hub.ErrMessageTooLarge) ||
		err.Error() != "payload is 65537 bytes; the limit is 65536" {
		t.Errorf("Send of a large payload = %v, want ErrMessageTooLarge", err)
	}
	zero, long := int64(0), int64(hub.MaxC2DTTL/time.Second)+1
	for name, c := range map[string]struct {
		change func(o *hub.Outgoing)
		msg    string
	}{
		"ttl 0":         {func(o *hub.Outgoing) { o.TTLSeconds = &zero }, "ttlSeconds must be from 1 to 172800"},
		"ttl too long":  {func(o *hub.Outgoing) { o.TTLSeconds = &long }, "ttlSeconds must be from 1 to 172800"},
		"empty name":    {func(o *hub.Outgoing) { o.Properties = map[string]string{"": "v"} }, `property name "": must not be empty or start with '$' (system properties have fields of their own)`},
		"system name":   {func(o *hub.Outgoing) { o.Properties = map[string]string{"$to": "v"} }, `property name "$to": must not be empty or start with '$' (system properties have fields of their own)`},
		"bad UTF-8":     {func(o *hub.Outgoing) { o.Properties = map[string]string{"k": "\xff"} }, `property "k": not valid UTF-8`},
		"big props":     {func(o *hub.Outgoing) { o.Properties = map[string]string{"k": strings.Repeat("v", hub.MaxC2DPropsSize)} }, "properties take 8195 bytes; the limit is 8192"},
		"space in id":   {func(o *hub.Outgoing) { o.MessageID = "a b" }, `messageId "a b": only printable ASCII without spaces is allowed`},
		"long id":       {func(o *hub.Outgoing) { o.MessageID = strings.Repeat("x", hub.MaxC2DMessageID+1) }, "messageId must be at most 128 characters"},
		"long corr. id": {func(o *hub.Outgoing) { o.CorrelationID = strings.Repeat("x", hub.MaxC2DMessageID+1) }, "correlationId must be at most 128 characters"},
	} {
		o := out("x")
		c.change(&o)
		if _, err := f.svc.Send(ctx, o); !errors.Is(err, hub.ErrInvalidMessage) || err.Error() != c.msg {
			t.Errorf("%s: Send = %v, want ErrInvalidMessage %q", name, err, c.msg)
		}
	}
	if pending, err := f.e.PendingC2D(ctx, "pump-1", t0); err != nil || len(pending) != 0 {
		t.Fatalf("refused messages were queued: %+v, %v", pending, err)
	}
	wantFacts(t, f.published())
}

func TestSendQueueFull(t *testing.T) {
	f := newFixture(t)
	for range hub.MaxC2DQueued {
		if _, err := f.svc.Send(t.Context(), out("")); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(f.published()); got != hub.MaxC2DQueued {
		t.Fatalf("%d facts, want %d", got, hub.MaxC2DQueued)
	}
	if _, err := f.svc.Send(t.Context(), out("")); !errors.Is(err, hub.ErrQueueFull) {
		t.Fatalf("Send to a full queue = %v, want ErrQueueFull", err)
	}
	wantFacts(t, f.published())
}
