package bench

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/simulate"
)

// AlarmLatencyOptions sizes the end-to-end alarm benchmark against a
// running server.
type AlarmLatencyOptions struct {
	// Client is the caller's API client; without Tenant it makes a
	// throw-away tenant for the benchmark.
	Client *client.Client
	// Tenant is where the devices and the probe rule are made (nil: a
	// throw-away tenant, deleted afterwards).
	Tenant   *Tenant
	RootCAs  *x509.CertPool
	MQTTAddr string
	// Devices publish the background load; probes go through them too.
	Devices int
	// Rate is the background load in messages per second over all devices
	// (run it at half the rate bench ingest measured as the maximum).
	Rate float64
	// Probes is how many alarms are raised and timed.
	Probes   int
	Progress io.Writer
	// Warn receives the warning when the asked load is not reached (nil:
	// Progress).
	Warn io.Writer
}

const latencyModel = "alarm-latency-bench"

// AlarmLatency times publish → alarm visible in the API: a device
// publishes a value over a rule's limit (MQTT over TLS, QoS 1) and the
// benchmark polls GET /api/v1/alarms until the alarm is there, while the
// other devices keep up a background load. It prints "name: value unit"
// lines, and a warning when the background load fell short of o.Rate.
func AlarmLatency(ctx context.Context, o AlarmLatencyOptions, out io.Writer) error {
	if o.Devices <= 0 {
		o.Devices = 100
	}
	if o.Probes <= 0 {
		o.Probes = 200
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Warn == nil {
		o.Warn = o.Progress
	}
	if o.Tenant == nil {
		if o.Client == nil {
			return errors.New("bench: want a Warden server")
		}
		return InTenant(ctx, TenantOptions{Caller: o.Client, Progress: o.Progress}, func(t *Tenant) error {
			o.Tenant = t
			return AlarmLatency(ctx, o, out)
		})
	}
	t := o.Tenant
	width := max(4, len(strconv.Itoa(o.Devices)))
	cfgs := make([]simulate.DialConfig, o.Devices)
	for i := range cfgs {
		cfgs[i] = simulate.DialConfig{DeviceID: fmt.Sprintf("%s-%0*d", t.DevicePrefix("alarm-lat"), width, i+1), RootCAs: o.RootCAs}
	}
	if err := registerAll(ctx, t, cfgs, o.MQTTAddr, 32, o.Progress); err != nil {
		return err
	}
	for _, c := range cfgs {
		if err := t.API.Do(ctx, http.MethodPatch, "/api/v1/devices/"+url.PathEscape(c.DeviceID), nil,
			map[string]any{"model": latencyModel}, nil); err != nil {
			return fmt.Errorf("bench: set model of %s: %w", c.DeviceID, err)
		}
	}
	ruleID, err := t.CreateRule(ctx, map[string]any{
		"name": "bench: latency probe", "severity": "warning", "enabled": true, "scope": map[string]string{"model": latencyModel},
		"threshold": map[string]any{"metric": "probe", "op": "above", "value": 100},
	})
	if err != nil {
		return fmt.Errorf("bench: create the probe rule: %w", err)
	}

	fmt.Fprintf(o.Progress, "bench: connecting %d devices\n", len(cfgs))
	devs, failed, err := connectAll(ctx, cfgs, 32, nil, o.Progress)
	defer closeAll(devs)
	if failed > 0 {
		return fmt.Errorf("bench: %d devices did not connect: %w", failed, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Message ids must be new: the server drops repeated ones as
	// duplicates, also from an earlier run.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	// Background load, paced per device.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var sent atomic.Int64
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	// A probe holds its device's lock, so no background message (with
	// probe 0) lands between the probe and the check.
	locks := make([]sync.Mutex, len(devs))
	if o.Rate > 0 {
		every := time.Duration(float64(time.Second) * float64(len(devs)) / o.Rate)
		for i, d := range devs {
			wg.Go(func() {
				t := time.NewTicker(max(every, time.Microsecond))
				defer t.Stop()
				for n := 0; ; n++ {
					select {
					case <-loadCtx.Done():
						return
					case <-t.C:
					}
					body := fmt.Sprintf(`{"temperature":%d,"probe":0}`, 60+n%10)
					locks[i].Lock()
					err := d.Publish(loadCtx, fmt.Sprintf("%s-bg-%d-%d", run, i, n), []byte(body))
					locks[i].Unlock()
					if err == nil {
						sent.Add(1)
					}
				}
			})
		}
	}
	fmt.Fprintf(o.Progress, "bench: warm-up: %.0f msg/s of background load for 2 s\n", o.Rate)
	if !sleepUntil(ctx, time.Now().Add(2*time.Second)) { // let the load settle
		return ctx.Err()
	}
	fmt.Fprintf(o.Progress, "bench: %d probes under %.0f msg/s of background load\n", o.Probes, o.Rate)
	loadStart, sentStart := time.Now(), sent.Load()
	var lat []time.Duration
	var probes atomic.Int64
	stop := ticker(o.Progress, "probing", func() string {
		el := time.Since(loadStart).Seconds()
		return fmt.Sprintf("%d of %d probes, background %.0f msg/s", probes.Load(), o.Probes, float64(sent.Load()-sentStart)/el)
	})
	defer stop()
	probe := func(p int) error {
		i := p % len(devs)
		locks[i].Lock()
		defer locks[i].Unlock()
		d := devs[i]
		t0 := time.Now()
		if err := d.Publish(ctx, run+"-probe-"+strconv.Itoa(p), []byte(`{"probe":200}`)); err != nil {
			return fmt.Errorf("bench: probe publish: %w", err)
		}
		if err := waitAlarm(ctx, t.API, d.ID(), ruleID, "active", 10*time.Second); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		// Clear it before the device is used again.
		if err := d.Publish(ctx, run+"-probe-clear-"+strconv.Itoa(p), []byte(`{"probe":0}`)); err != nil {
			return err
		}
		return waitAlarm(ctx, t.API, d.ID(), ruleID, "none", 10*time.Second)
	}
	for p := range o.Probes {
		if err := probe(p); err != nil {
			return err
		}
		probes.Add(1)
	}
	rate := float64(sent.Load()-sentStart) / time.Since(loadStart).Seconds()
	stop()
	stopLoad()
	wg.Wait()
	slices.Sort(lat)
	fmt.Fprintf(out, "alarm_probes: %d probes\n", len(lat))
	fmt.Fprintf(out, "alarm_background_msgs_per_s: %.0f msg/s\n", rate)
	fmt.Fprintf(out, "alarm_visible_p50_ms: %.1f ms\n", ms(lat[len(lat)/2]))
	fmt.Fprintf(out, "alarm_visible_p99_ms: %.1f ms\n", ms(lat[(len(lat)*99)/100]))
	fmt.Fprintf(out, "alarm_visible_max_ms: %.1f ms\n", ms(lat[len(lat)-1]))
	shortfall(out, o.Warn, "rate_reached_ratio", "background load", o.Rate, rate, "msg/s")
	return nil
}

// waitAlarm polls until the device has an active alarm of the rule
// (want "active") or none (want "none").
func waitAlarm(ctx context.Context, c *client.Client, deviceID, ruleID, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	q := url.Values{"device": {deviceID}, "state": {"active"}}
	for {
		var page struct {
			Alarms []struct {
				RuleID string `json:"ruleId"`
			} `json:"alarms"`
		}
		if err := c.Do(ctx, http.MethodGet, "/api/v1/alarms", q, nil, &page); err != nil {
			return fmt.Errorf("bench: list alarms: %w", err)
		}
		found := false
		for _, a := range page.Alarms {
			found = found || a.RuleID == ruleID
		}
		if found == (want == "active") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: alarm of %s not %s after %s", deviceID, want, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
