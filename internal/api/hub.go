package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/broker"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/registry"
)

func (a *API) twinView(r *http.Request, d registry.Device, tw hub.Twin) apiv1.Twin {
	v := a.view(d, false)
	out := apiv1.Twin{
		DeviceID: d.ID, ETag: tw.ETag(), DeviceETag: deviceETag(d), Status: string(d.Status),
		ConnectionState: "Disconnected", AuthenticationType: "sas", Version: tw.Version, Tags: tw.Tags,
		Properties: apiv1.TwinProperties{Desired: tw.Desired.WithVersion(true), Reported: tw.Reported.WithVersion(true)},
	}
	if v.Connected {
		out.ConnectionState = "Connected"
	}
	if v.LastSeen != nil {
		out.LastActivityTime = v.LastSeen.UTC()
	}
	if pending, err := a.stores.Hub.PendingC2D(r.Context(), d.ID, a.now()); err == nil {
		out.CloudToDeviceMessageCount = len(pending)
	}
	if id, err := a.stores.Hub.DeviceModelID(r.Context(), d.TenantID, d.ID); err == nil {
		out.ModelID = id
	}
	return out
}

// deviceETag changes when the device's identity (status, keys) does.
func deviceETag(d registry.Device) string {
	h := sha256.New()
	h.Write([]byte(d.Status))
	h.Write(d.PrimaryKey)
	h.Write(d.SecondaryKey)
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(uint64(binary.BigEndian.Uint32(h.Sum(nil))), 10)))
}

func (a *API) writeTwin(w http.ResponseWriter, r *http.Request, d registry.Device, tw hub.Twin) {
	w.Header().Set("ETag", `"`+tw.ETag()+`"`)
	writeJSON(w, http.StatusOK, a.twinView(r, d, tw))
}

// hubError answers a failure of the twin, method or C2D features.
func (a *API) hubError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, hub.ErrMessageTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "%s", err.Error())
	case errors.Is(err, hub.ErrInvalidTwin), errors.Is(err, hub.ErrInvalidMessage):
		writeError(w, http.StatusBadRequest, "%s", err.Error())
	case errors.Is(err, hub.ErrTwinChanged):
		writeError(w, http.StatusPreconditionFailed, "%s", err.Error())
	case errors.Is(err, hub.ErrQueueFull):
		writeError(w, http.StatusTooManyRequests, "%s: at most %d cloud-to-device messages may wait for a device; "+
			"they leave the queue when the device acknowledges or they expire", err.Error(), MaxC2DQueued)
	case errors.Is(err, broker.ErrDeviceOffline):
		writeError(w, http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, broker.ErrMethodTimeout):
		writeError(w, http.StatusGatewayTimeout, "%s", err.Error())
	default:
		a.storeError(w, err)
	}
}

func (a *API) getTwin(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	tw, err := a.stores.Hub.GetTwin(r.Context(), d.TenantID, d.ID)
	if err != nil {
		a.hubError(w, err)
		return
	}
	a.writeTwin(w, r, d, tw)
}

func (a *API) patchTwin(w http.ResponseWriter, r *http.Request) {
	var req apiv1.TwinPatch
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	var u hub.TwinUpdate
	u.Tags = req.Tags
	if req.Properties != nil {
		if req.Properties.Reported != nil {
			writeError(w, http.StatusBadRequest, "reported properties are set by the device only")
			return
		}
		u.Desired = req.Properties.Desired
	}
	if u.Tags == nil && u.Desired == nil {
		writeError(w, http.StatusBadRequest, `nothing to change: give "properties": {"desired": {…}} and/or "tags": {…}`)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" {
		v, err := hub.ParseTwinETag(m)
		if err != nil {
			writeError(w, http.StatusBadRequest, "If-Match: %v", err)
			return
		}
		u.IfVersion = v
	}
	tw, err := a.endpoint.UpdateTwin(r.Context(), d.TenantID, d.ID, u)
	if err != nil {
		a.hubError(w, err)
		return
	}
	a.log.Info("twin updated", "device", d.ID, "version", tw.Version, "desired_version", tw.Desired.Version,
		"caller", principal(r.Context()).ActorID)
	a.writeTwin(w, r, d, tw)
}

// maxMethodNameLen is IoT Hub's limit on a direct method's name.
const maxMethodNameLen = 100

// validMethodName allows what fits safely in the request topic.
func validMethodName(name string) error {
	if name == "" || len(name) > maxMethodNameLen {
		return fmt.Errorf("method name must be 1 to %d characters", maxMethodNameLen)
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@':
		default:
			return fmt.Errorf("method name %q: character %q not allowed (letters, digits and - _ . : @)", name, c)
		}
	}
	return nil
}

func (a *API) invokeMethod(w http.ResponseWriter, r *http.Request) {
	var req apiv1.MethodCall
	if !decodeOptional(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	if err := validMethodName(name); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	timeout := apiv1.DefaultMethodTimeout
	if req.TimeoutSeconds != nil {
		timeout = time.Duration(*req.TimeoutSeconds * float64(time.Second))
		if timeout < apiv1.MinMethodTimeout || timeout > apiv1.MaxMethodTimeout {
			writeError(w, http.StatusBadRequest, "timeoutSeconds must be from %d to %d", int(apiv1.MinMethodTimeout.Seconds()), int(apiv1.MaxMethodTimeout.Seconds()))
			return
		}
	}
	if len(req.Payload) > apiv1.MaxMethodPayload {
		writeError(w, http.StatusRequestEntityTooLarge, "method payload is %d bytes; the limit is %d", len(req.Payload), apiv1.MaxMethodPayload)
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	start := time.Now()
	res, err := a.endpoint.InvokeMethod(r.Context(), d.ID, name, compactJSON(req.Payload), timeout)
	// The audit trail of remote maintenance: who called what, how it went;
	// never the payloads.
	attrs := []any{"device", d.ID, "tenant", d.TenantID, "method", name, "caller", principal(r.Context()).ActorID,
		"duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		a.log.Info("direct method failed", append(attrs, "err", err)...)
		a.hubError(w, err)
		return
	}
	a.log.Info("direct method invoked", append(attrs, "status", res.Status)...)
	writeJSON(w, http.StatusOK, apiv1.MethodResponse{Status: res.Status, Payload: res.Payload})
}

// compactJSON drops insignificant white space (the payload was decoded, so
// it is valid JSON); nil stays nil.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// Cloud-to-device limits (package hub's).
const (
	MaxC2DQueued      = hub.MaxC2DQueued
	MaxC2DPayload     = hub.MaxC2DPayload
	MaxC2DPropsSize   = hub.MaxC2DPropsSize
	DefaultC2DTTL     = hub.DefaultC2DTTL
	MaxC2DTTL         = hub.MaxC2DTTL
	defaultC2DListLen = 100 // messages listed
	maxC2DListLen     = hub.C2DHistory + MaxC2DQueued
)

func c2dView(m hub.C2DMessage) apiv1.C2DMessage {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	props := m.Properties
	if props == nil {
		props = map[string]string{}
	}
	return apiv1.C2DMessage{ID: m.MessageID, CorrelationID: m.CorrelationID, State: string(m.State), Payload: string(m.Payload),
		Properties: props, CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, DeliveredAt: opt(m.DeliveredAt),
		CompletedAt: opt(m.CompletedAt), ExpiredAt: opt(m.ExpiredAt), DeliveryCount: m.DeliveryCount, Unreadable: m.Unreadable}
}

func (a *API) sendC2D(w http.ResponseWriter, r *http.Request) {
	var req apiv1.C2DSend
	if !decode(w, r, &req) {
		return
	}
	if req.Payload == nil {
		writeError(w, http.StatusBadRequest, `payload is required: a JSON string (sent as its text) or any other JSON value (sent as JSON)`)
		return
	}
	// A JSON string is sent as its text; anything else as JSON.
	payload := []byte(compactJSON(req.Payload))
	var text string
	if json.Unmarshal(req.Payload, &text) == nil {
		payload = []byte(text)
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	m, err := a.c2d.Send(r.Context(), hub.Outgoing{TenantID: d.TenantID, DeviceID: d.ID, MessageID: req.MessageID,
		CorrelationID: req.CorrelationID, Properties: req.Properties, Payload: payload, TTLSeconds: req.TTLSeconds,
		Caller: principal(r.Context()).ActorID})
	if err != nil {
		a.hubError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, c2dView(m))
}

func (a *API) listC2D(w http.ResponseWriter, r *http.Request) {
	limit := defaultC2DListLen
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxC2DListLen {
			writeError(w, http.StatusBadRequest, "limit must be from 1 to %d", maxC2DListLen)
			return
		}
		limit = n
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	ms, err := a.stores.Hub.ListC2D(r.Context(), d.TenantID, d.ID, a.now(), limit)
	if err != nil {
		a.hubError(w, err)
		return
	}
	out := make([]apiv1.C2DMessage, len(ms))
	for i, m := range ms {
		out[i] = c2dView(m)
	}
	writeJSON(w, http.StatusOK, apiv1.C2DMessageList{Messages: out})
}
