package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Firmware is the firmware version a simulated machine of kind k reports.
func (k Kind) Firmware() string {
	switch k {
	case VacuumPump:
		return "VP-4.2.1"
	case CoffeeMachine:
		return "CM-2.7.0"
	case PelletHeater:
		return "PH-1.9.3"
	case Meter:
		return "LW-3.1.4"
	}
	return "0.0.0"
}

// Interval limits of the "interval" desired property, in seconds.
const (
	minIntervalSec = 1
	maxIntervalSec = 86400
)

// agent answers the cloud's side of one simulated device the way a device
// built on the Azure IoT SDK would: it reports its kind, firmware and
// publish interval, applies the desired property "interval" (seconds) and
// reports it back, answers the direct methods reboot and getStatus (404
// for others) and logs the cloud-to-device messages it receives.
type agent struct {
	dev  *Device
	kind Kind
	log  *slog.Logger

	interval atomic.Int64 // the publish interval, ns
	changed  chan struct{}
	pause    atomic.Int64 // unix ns until which a reboot keeps telemetry off
	rid      atomic.Int64

	mu       sync.Mutex
	latest   map[string]float64
	latestAt time.Time
	fault    string
}

func newAgent(dev *Device, kind Kind, interval time.Duration, log *slog.Logger) *agent {
	a := &agent{dev: dev, kind: kind, log: log.With("device", dev.ID()), changed: make(chan struct{}, 1)}
	a.interval.Store(int64(interval))
	return a
}

// start subscribes to the twin, method and cloud-to-device topics, reports
// the device's properties and asks for the twin, to apply a desired
// interval set while it was away.
func (a *agent) start(ctx context.Context) error {
	subs := []struct {
		filter string
		handle func(string, []byte)
	}{
		{"$iothub/twin/res/#", a.twinResponse},
		{"$iothub/twin/PATCH/properties/desired/#", a.desired},
		{"$iothub/methods/POST/#", a.method},
		{"devices/" + a.dev.ID() + "/messages/devicebound/#", a.cloudToDevice},
	}
	for _, s := range subs {
		if err := a.dev.Subscribe(ctx, s.filter, 0, s.handle); err != nil {
			return fmt.Errorf("subscribe %s: %w", s.filter, err)
		}
	}
	if err := a.report(ctx, map[string]any{"kind": string(a.kind), "firmware": a.kind.Firmware(),
		"interval": a.Interval().Seconds()}); err != nil {
		return err
	}
	return a.dev.PublishTopic(ctx, "$iothub/twin/GET/?$rid="+a.nextRID(), 0, nil)
}

func (a *agent) nextRID() string { return strconv.FormatInt(a.rid.Add(1), 10) }

// Interval is the current publish interval.
func (a *agent) Interval() time.Duration { return time.Duration(a.interval.Load()) }

// Changed signals a new publish interval.
func (a *agent) Changed() <-chan struct{} { return a.changed }

// Paused says whether a reboot keeps the telemetry off at t.
func (a *agent) Paused(t time.Time) bool { return t.UnixNano() < a.pause.Load() }

// sampled records the latest values, for getStatus.
func (a *agent) sampled(at time.Time, values map[string]float64, fault string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.latest == nil {
		a.latest = make(map[string]float64, len(values))
	}
	for k, v := range values {
		a.latest[k] = v
	}
	a.latestAt, a.fault = at, fault
}

// report sends a reported-properties patch.
func (a *agent) report(ctx context.Context, patch map[string]any) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return a.dev.PublishTopic(ctx, "$iothub/twin/PATCH/properties/reported/?$rid="+a.nextRID(), 0, body)
}

// async runs fn off the MQTT client's goroutine, which handlers must not
// block.
func (a *agent) async(fn func(ctx context.Context) error, what string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fn(ctx); err != nil {
			a.log.Warn(what+" failed", "err", err)
		}
	}()
}

// twinResponse handles the answers to GET and reported patches.
func (a *agent) twinResponse(topic string, payload []byte) {
	rest := strings.TrimPrefix(topic, "$iothub/twin/res/")
	status, _, _ := strings.Cut(rest, "/")
	switch status {
	case "200":
		var twin struct {
			Desired map[string]json.RawMessage `json:"desired"`
		}
		if json.Unmarshal(payload, &twin) == nil && twin.Desired != nil {
			a.applyDesired(twin.Desired)
		}
	case "204":
	default:
		a.log.Warn("twin request refused", "status", status, "answer", string(payload))
	}
}

// desired handles a desired-properties patch.
func (a *agent) desired(_ string, payload []byte) {
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(payload, &patch); err != nil {
		a.log.Warn("desired properties: not a JSON object", "payload", string(payload))
		return
	}
	a.log.Info("desired properties received", "patch", string(payload))
	a.applyDesired(patch)
}

// applyDesired applies the "interval" desired property, if there, and
// reports the interval in force.
func (a *agent) applyDesired(desired map[string]json.RawMessage) {
	raw, ok := desired["interval"]
	if !ok {
		return
	}
	var sec float64
	if err := json.Unmarshal(raw, &sec); err != nil || math.IsNaN(sec) || sec < minIntervalSec || sec > maxIntervalSec {
		a.log.Warn("desired interval ignored: want seconds from 1 to 86400", "interval", string(raw))
		a.async(func(ctx context.Context) error {
			return a.report(ctx, map[string]any{"interval": a.Interval().Seconds(),
				"intervalError": fmt.Sprintf("%s: want seconds from %d to %d", raw, minIntervalSec, maxIntervalSec)})
		}, "report the interval")
		return
	}
	d := time.Duration(sec * float64(time.Second))
	if old := time.Duration(a.interval.Swap(int64(d))); old != d {
		a.log.Info("publish interval changed", "from", old, "to", d)
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}
	a.async(func(ctx context.Context) error {
		return a.report(ctx, map[string]any{"interval": sec, "intervalError": nil})
	}, "report the interval")
}

// method answers $iothub/methods/POST/{name}/?$rid={rid}.
func (a *agent) method(topic string, payload []byte) {
	rest := strings.TrimPrefix(topic, "$iothub/methods/POST/")
	name, query, _ := strings.Cut(rest, "/?")
	q, _ := url.ParseQuery(query)
	rid := q.Get("$rid")
	status, answer := a.call(name, payload)
	a.log.Info("direct method", "method", name, "payload", string(payload), "status", status)
	body, err := json.Marshal(answer)
	if err != nil {
		status, body = 500, []byte(`{"error":"internal error"}`)
	}
	a.async(func(ctx context.Context) error {
		return a.dev.PublishTopic(ctx, "$iothub/methods/res/"+strconv.Itoa(status)+"/?$rid="+url.QueryEscape(rid), 0, body)
	}, "answer method "+name)
}

// call runs a direct method and returns its status and answer.
func (a *agent) call(name string, payload []byte) (int, any) {
	switch name {
	case "reboot":
		var req struct {
			Delay *float64 `json:"delay"`
		}
		if len(payload) > 0 && string(payload) != "null" {
			if err := json.Unmarshal(payload, &req); err != nil {
				return 400, map[string]string{"error": "payload: want {\"delay\": seconds}"}
			}
		}
		delay := 0.0
		if req.Delay != nil {
			delay = *req.Delay
		}
		if math.IsNaN(delay) || delay < 0 || delay > 3600 {
			return 400, map[string]string{"error": "delay: want seconds from 0 to 3600"}
		}
		now := time.Now()
		back := now.Add(time.Duration(delay * float64(time.Second)))
		a.pause.Store(back.UnixNano())
		a.log.Info("rebooting: no telemetry until it is back", "delay", delay, "back", back.Format(time.RFC3339))
		a.async(func(ctx context.Context) error {
			return a.report(ctx, map[string]any{"lastReboot": now.UTC().Format(time.RFC3339)})
		}, "report the reboot")
		return 200, map[string]any{"rebooting": true, "delay": delay, "backAt": back.UTC().Format(time.RFC3339)}
	case "getStatus":
		a.mu.Lock()
		defer a.mu.Unlock()
		values := make(map[string]float64, len(a.latest))
		for k, v := range a.latest {
			values[k] = v
		}
		st := map[string]any{"kind": string(a.kind), "firmware": a.kind.Firmware(), "interval": a.Interval().Seconds(),
			"values": values, "rebooting": a.Paused(time.Now())}
		if !a.latestAt.IsZero() {
			st["ts"] = a.latestAt.UTC().Format(time.RFC3339Nano)
		}
		if a.fault != "" {
			st["fault"] = a.fault
		}
		return 200, st
	}
	return 404, map[string]string{"error": fmt.Sprintf("unknown method %q (this device knows reboot and getStatus)", name)}
}

// cloudToDevice logs a message sent to the device, with its properties.
func (a *agent) cloudToDevice(topic string, payload []byte) {
	_, bag, _ := strings.Cut(topic, "/messages/devicebound/")
	props, err := url.ParseQuery(bag)
	attrs := []any{"body", string(payload)}
	if err == nil {
		flat := make(map[string]string, len(props))
		for k, v := range props {
			flat[k] = strings.Join(v, ",")
		}
		attrs = append(attrs, "properties", flat)
	} else {
		attrs = append(attrs, "properties", bag)
	}
	a.log.Info("cloud-to-device message", attrs...)
}
