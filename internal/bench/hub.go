package bench

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/simulate"
)

// HubOptions sizes the direct-method and desired-property benchmark.
type HubOptions struct {
	// Client is the caller's API client; without Tenant it makes a
	// throw-away tenant for the benchmark.
	Client *client.Client
	// Tenant is where the answering devices are registered (nil: a
	// throw-away tenant, deleted afterwards).
	Tenant   *Tenant
	Progress io.Writer
	RootCAs  *x509.CertPool
	MQTTAddr string // default: from the hub host name
	Devices  int    // connected devices answering (default 10)
	Calls    int    // method calls and desired patches each (default 200)
	Parallel int    // calls in flight at once (default 4)
}

// Hub measures, through the REST API against connected devices, the
// round trip of a direct method (REST call → device → answer → REST reply)
// and the delivery of a desired-property patch (REST PATCH sent → patch
// received by the device), and prints their percentiles.
func Hub(ctx context.Context, o HubOptions, out io.Writer) error {
	if o.Devices <= 0 {
		o.Devices = 10
	}
	if o.Calls <= 0 {
		o.Calls = 200
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Tenant == nil {
		if o.Client == nil {
			return errors.New("bench: want a Warden server")
		}
		return InTenant(ctx, TenantOptions{Caller: o.Client, Progress: o.Progress}, func(t *Tenant) error {
			o.Tenant = t
			return Hub(ctx, o, out)
		})
	}
	api := o.Tenant.API
	fmt.Fprintf(o.Progress, "bench: registering and connecting %d devices that answer methods and desired properties\n", o.Devices)
	received := newWaiters()
	devs := make([]*simulate.Device, o.Devices)
	ids := make([]string, o.Devices)
	for i := range devs {
		ids[i] = fmt.Sprintf("%s-%03d", o.Tenant.DevicePrefix("bench-hub"), i)
		cs, err := o.Tenant.Register(ctx, ids[i])
		if err != nil {
			return err
		}
		addr := o.MQTTAddr
		if addr == "" {
			addr = simulate.HubAddr(cs.HostName)
		}
		d, err := simulate.Dial(ctx, simulate.DialConfig{Addr: addr, HubHost: cs.HostName, DeviceID: ids[i],
			Key: cs.SharedAccessKey, RootCAs: o.RootCAs, NoReconnect: true})
		if err != nil {
			return fmt.Errorf("device %s: %w", ids[i], err)
		}
		defer d.Close()
		devs[i] = d
		// Answer every method at once, echoing the payload.
		err = d.Subscribe(ctx, "$iothub/methods/POST/#", 0, func(topic string, payload []byte) {
			_, q, _ := strings.Cut(topic, "?")
			go d.PublishTopic(context.WithoutCancel(ctx), "$iothub/methods/res/200/?"+q, 0, payload)
		})
		if err != nil {
			return err
		}
		err = d.Subscribe(ctx, "$iothub/twin/PATCH/properties/desired/#", 0, func(_ string, payload []byte) {
			var p struct {
				Seq string `json:"benchSeq"`
			}
			if json.Unmarshal(payload, &p) == nil && p.Seq != "" {
				received.done(p.Seq)
			}
		})
		if err != nil {
			return err
		}
	}

	var calls atomic.Int64
	phase := "direct methods"
	stop := ticker(o.Progress, "hub calls", func() string { return fmt.Sprintf("%s, %d of %d", phase, calls.Load(), o.Calls) })
	defer stop()
	methodLat, methodTook, err := parallel(ctx, o.Calls, o.Parallel, func(i int) (time.Duration, error) {
		start := time.Now()
		defer calls.Add(1)
		res, err := api.InvokeMethod(ctx, ids[i%len(ids)], "bench", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), 10*time.Second)
		if err == nil && res.Status != 200 {
			err = fmt.Errorf("method answered %d", res.Status)
		}
		return time.Since(start), err
	})
	if err != nil {
		return fmt.Errorf("direct methods: %w", err)
	}
	stop()
	calls.Store(0)
	phase = "desired properties"
	stop = ticker(o.Progress, "hub calls", func() string { return fmt.Sprintf("%s, %d of %d", phase, calls.Load(), o.Calls) })
	desiredLat, _, err := parallel(ctx, o.Calls, o.Parallel, func(i int) (time.Duration, error) {
		defer calls.Add(1)
		seq := fmt.Sprint(i)
		ch := received.expect(seq)
		start := time.Now()
		if _, err := api.UpdateTwin(ctx, ids[i%len(ids)], client.TwinPatch{Desired: json.RawMessage(`{"benchSeq":"` + seq + `"}`)}); err != nil {
			return 0, err
		}
		select {
		case <-ch:
			return time.Since(start), nil
		case <-time.After(10 * time.Second):
			return 0, errors.New("desired patch not delivered within 10 s")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	stop()
	if err != nil {
		return fmt.Errorf("desired patches: %w", err)
	}
	fmt.Fprintf(out, "method_calls: %d calls\n", o.Calls)
	fmt.Fprintf(out, "method_rtt_p50_ms: %.2f ms\n", ms(pct(methodLat, 0.50)))
	fmt.Fprintf(out, "method_rtt_p99_ms: %.2f ms\n", ms(pct(methodLat, 0.99)))
	fmt.Fprintf(out, "methods_per_s: %.0f calls/s\n", float64(o.Calls)/methodTook.Seconds())
	fmt.Fprintf(out, "desired_delivery_p50_ms: %.2f ms\n", ms(pct(desiredLat, 0.50)))
	fmt.Fprintf(out, "desired_delivery_p99_ms: %.2f ms\n", ms(pct(desiredLat, 0.99)))
	return nil
}

// parallel runs n calls of fn, k at a time, and returns their durations and
// the wall time; the first error stops it.
func parallel(ctx context.Context, n, k int, fn func(i int) (time.Duration, error)) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	errc := make(chan error, k)
	start := time.Now()
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d, err := fn(i)
				if err != nil {
					errc <- err
					return
				}
				lat[i] = d
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return lat, time.Since(start), err
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// waiters lets a sender wait for a device to receive a given sequence.
type waiters struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func newWaiters() *waiters { return &waiters{ch: map[string]chan struct{}{}} }

func (w *waiters) expect(seq string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := make(chan struct{})
	w.ch[seq] = c
	return c
}

func (w *waiters) done(seq string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.ch[seq]; ok {
		close(c)
		delete(w.ch, seq)
	}
}
