// Package event carries domain events: facts a service has committed (a
// tenant was deleted, a device re-keyed, a rule changed) that other parts
// react to — the device endpoint drops connections, the alarm runtime
// forgets state, the keyring shreds keys — without the service calling
// each of them by hand.
//
// An event is a plain struct with a stable type name (Event.Type), JSON
// fields, the ids of the tenant and device it concerns, and the time it
// happened. It is published after the fact is committed: a subscriber
// may read the store and find the fact there.
//
// Bus is the narrow interface publishers and subscribers use. Local is the
// in-process implementation: it hands an event to the subscribers of its
// type, in the order they subscribed, before Publish returns. A durable
// stream (NATS JetStream, one subject per type and one durable consumer per
// subscription name) can implement the same interface for several nodes;
// Subscription carries what such a transport needs (a name, the type, and
// how to decode the event from JSON).
package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Event is a fact that happened.
type Event interface {
	// Type is the event's stable name, e.g. "device.deleted": the key
	// subscribers choose by, and the subject on a message stream. It
	// must not depend on the event's fields.
	Type() string
}

// Handler reacts to an event. Its error says the reaction did not finish;
// it does not undo the fact.
type Handler func(ctx context.Context, ev Event) error

// Subscription is one reaction to one type of event.
type Subscription struct {
	// Name says who reacts, e.g. "broker.disconnect": unique per bus, it
	// names the reaction in logs and, on a durable stream, its consumer.
	Name string
	// Type is the Event.Type reacted to.
	Type string
	// Decode makes the event from its JSON encoding (transports that carry
	// events as bytes).
	Decode func(data []byte) (Event, error)
	// Handle reacts.
	Handle Handler
}

// Publisher publishes facts.
type Publisher interface {
	// Publish hands ev to its subscribers. The error joins the reactions
	// that did not finish (Local) or says the event was not accepted (a
	// stream); the fact stands either way.
	Publish(ctx context.Context, ev Event) error
}

// Subscriber takes reactions.
type Subscriber interface {
	Subscribe(s Subscription)
}

// Bus publishes events and takes subscriptions.
type Bus interface {
	Publisher
	Subscriber
}

// On subscribes f to the events of type T on b, under name.
func On[T Event](b Subscriber, name string, f func(context.Context, T) error) {
	var zero T
	b.Subscribe(Subscription{
		Name: name,
		Type: zero.Type(),
		Decode: func(data []byte) (Event, error) {
			var ev T
			if err := json.Unmarshal(data, &ev); err != nil {
				return nil, fmt.Errorf("decode %s: %w", zero.Type(), err)
			}
			return ev, nil
		},
		Handle: func(ctx context.Context, ev Event) error {
			t, ok := ev.(T)
			if !ok {
				return fmt.Errorf("%s: got a %T", zero.Type(), ev)
			}
			return f(ctx, t)
		},
	})
}

// Local is the in-process bus. It is safe for concurrent use.
//
// Publish runs the subscribers of the event's type one after another, in
// the order they subscribed, on the publisher's goroutine, and returns when
// all have run: a publisher may tell its caller that a reaction (erasing a
// tenant's keys, say) did not finish. The subscribers get the publisher's
// context without its cancellation — the fact happened; a caller that gave
// up must not cut its consequences short — and should not block for long.
// A subscriber that fails or panics is logged and does not keep the others
// from running. An event published by a subscriber is handled before the
// Publish that ran it returns.
type Local struct {
	log *slog.Logger

	mu   sync.RWMutex
	subs map[string][]Subscription // by type
}

// NewLocal makes an in-process bus logging failed reactions to log.
func NewLocal(log *slog.Logger) *Local {
	return &Local{log: log, subs: map[string][]Subscription{}}
}

// Subscribe adds a reaction after those already subscribed to its type. A
// subscription without a name, type or handler, or with a name taken, is a
// programming error and panics.
func (b *Local) Subscribe(s Subscription) {
	if s.Name == "" || s.Type == "" || s.Handle == nil {
		panic(fmt.Sprintf("event: incomplete subscription %q to %q", s.Name, s.Type))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for _, o := range subs {
			if o.Name == s.Name {
				panic(fmt.Sprintf("event: two subscriptions named %q", s.Name))
			}
		}
	}
	// A new slice each time: Publish ranges over the one it read.
	subs := make([]Subscription, 0, len(b.subs[s.Type])+1)
	b.subs[s.Type] = append(append(subs, b.subs[s.Type]...), s)
}

// Publish runs every subscriber of ev's type, in order.
func (b *Local) Publish(ctx context.Context, ev Event) error {
	b.mu.RLock()
	subs := b.subs[ev.Type()]
	b.mu.RUnlock()
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, s := range subs {
		if err := run(ctx, s, ev); err != nil {
			b.log.Error("event: reaction failed", "event", ev.Type(), "subscriber", s.Name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ErrPanicked is wrapped by the error of a subscriber that panicked.
var ErrPanicked = errors.New("subscriber panicked")

func run(ctx context.Context, s Subscription, ev Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrPanicked, v)
		}
	}()
	return s.Handle(ctx, ev)
}
