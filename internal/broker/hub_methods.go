package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Errors of a direct-method invocation.
var (
	// ErrDeviceOffline: the device is not connected to this server, or
	// not subscribed to method requests, or it went away before answering.
	ErrDeviceOffline = errors.New("device not online")
	// ErrMethodTimeout: the device did not answer in time.
	ErrMethodTimeout = errors.New("device did not answer in time")
)

// MethodResult is a device's answer to a direct method.
type MethodResult struct {
	Status  int
	Payload json.RawMessage // JSON; null when the device sent none
}

// methodCall is an invocation waiting for the device's answer.
type methodCall struct {
	deviceID string
	client   *mqtt.Client
	done     chan methodOutcome // buffered: the answer or the disconnection
}

type methodOutcome struct {
	res MethodResult
	err error
}

// InvokeMethod sends a direct-method request to a connected device and
// waits up to timeout for its answer. payload must be JSON (nil sends
// null). Several invocations may be in flight at once, to one device or
// many; each has its own $rid.
func (b *Broker) InvokeMethod(ctx context.Context, deviceID, name string, payload json.RawMessage, timeout time.Duration) (MethodResult, error) {
	s, ok := b.deviceSession(deviceID)
	if !ok {
		return MethodResult{}, fmt.Errorf("%w: device %q is not connected", ErrDeviceOffline, deviceID)
	}
	cl := s.client
	if _, ok := subscribed(cl, methodsFilter); !ok {
		return MethodResult{}, fmt.Errorf("%w: device %q is not subscribed to direct methods", ErrDeviceOffline, deviceID)
	}
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	h := b.hub
	call := &methodCall{deviceID: deviceID, client: cl, done: make(chan methodOutcome, 1)}
	h.mu.Lock()
	h.rid++
	rid := strconv.FormatUint(h.rid, 16)
	h.calls[rid] = call
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.calls, rid)
		h.mu.Unlock()
	}()
	if err := b.publishTo(cl, "$iothub/methods/POST/"+name+"/?$rid="+rid, payload); err != nil {
		return MethodResult{}, fmt.Errorf("%w: device %q: %v", ErrDeviceOffline, deviceID, err)
	}
	t := b.clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case out := <-call.done:
		return out.res, out.err
	case <-t.C():
		return MethodResult{}, fmt.Errorf("%w: no answer from %q to %q within %s", ErrMethodTimeout, deviceID, name, timeout)
	case <-ctx.Done():
		return MethodResult{}, ctx.Err()
	}
}

// methodResponse completes an invocation with the device's answer,
// "$iothub/methods/res/{status}/?$rid={rid}".
func (b *Broker) methodResponse(cl *mqtt.Client, path string, query map[string]string, payload []byte) {
	rid := query["$rid"]
	statusText := strings.TrimSuffix(strings.TrimPrefix(path, methodResTopic), "/")
	status, err := strconv.Atoi(statusText)
	if err != nil || rid == "" {
		b.log.Debug("malformed method response ignored", "device", cl.ID, "topic", path)
		return
	}
	h := b.hub
	h.mu.Lock()
	call, ok := h.calls[rid]
	if ok && call.deviceID == cl.ID {
		delete(h.calls, rid)
	}
	h.mu.Unlock()
	if !ok || call.deviceID != cl.ID {
		b.log.Debug("method response for no pending request", "device", cl.ID, "rid", rid)
		return
	}
	res := MethodResult{Status: status, Payload: json.RawMessage("null")}
	if p := strings.TrimSpace(string(payload)); p != "" {
		if json.Valid(payload) {
			res.Payload = append(json.RawMessage(nil), payload...)
		} else {
			// Not JSON: hand it on as a JSON string rather than lose it.
			res.Payload, _ = json.Marshal(string(payload))
		}
	}
	call.done <- methodOutcome{res: res}
}

// failCalls ends the invocations waiting on a connection that closed.
func (h *hubState) failCalls(cl *mqtt.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for rid, call := range h.calls {
		if call.client == cl {
			delete(h.calls, rid)
			call.done <- methodOutcome{err: fmt.Errorf("%w: device %q disconnected before answering", ErrDeviceOffline, call.deviceID)}
		}
	}
}
