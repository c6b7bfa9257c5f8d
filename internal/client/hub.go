package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

// Twin returns a device's full twin.
func (c *Client) Twin(ctx context.Context, id string) (apiv1.Twin, error) {
	var tw apiv1.Twin
	err := c.Do(ctx, http.MethodGet, devicePath(id, "/twin"), nil, nil, &tw)
	return tw, err
}

// TwinPatch is a change of a twin: JSON merge patches of the desired
// properties and of the tags (nil: unchanged).
type TwinPatch struct {
	Desired json.RawMessage
	Tags    json.RawMessage
	// IfMatch, if set, is the etag the twin must still have.
	IfMatch string
}

// UpdateTwin applies a patch to a device's twin and returns the new twin.
func (c *Client) UpdateTwin(ctx context.Context, id string, p TwinPatch) (apiv1.Twin, error) {
	body := apiv1.TwinPatch{Tags: p.Tags}
	if p.Desired != nil {
		body.Properties = &apiv1.PropertiesPatch{Desired: p.Desired}
	}
	var tw apiv1.Twin
	var hdr http.Header
	if p.IfMatch != "" {
		hdr = http.Header{"If-Match": {`"` + p.IfMatch + `"`}}
	}
	err := c.doWithHeader(ctx, http.MethodPatch, devicePath(id, "/twin"), hdr, body, &tw, 0)
	return tw, err
}

// InvokeMethod calls a direct method on a device and waits up to timeout
// (0: the server's default of 30 s) for its answer. payload must be JSON
// (nil: none).
func (c *Client) InvokeMethod(ctx context.Context, id, method string, payload json.RawMessage, timeout time.Duration) (apiv1.MethodResponse, error) {
	body := apiv1.MethodCall{Payload: payload}
	wait := apiv1.DefaultMethodTimeout
	if timeout > 0 {
		body.TimeoutSeconds = apiv1.Ptr(timeout.Seconds())
		wait = timeout
	}
	var out apiv1.MethodResponse
	err := c.doWithHeader(ctx, http.MethodPost, devicePath(id, "/methods/", url.PathEscape(method)), nil, body, &out, wait+30*time.Second)
	return out, err
}

// C2DSend is a cloud-to-device message to send.
type C2DSend struct {
	Payload       string            // sent as text
	Properties    map[string]string // application properties
	TTL           time.Duration     // 0: the server's default (1 h)
	MessageID     string            // empty: the server makes one
	CorrelationID string
}

// SendC2D queues a cloud-to-device message for a device.
func (c *Client) SendC2D(ctx context.Context, id string, m C2DSend) (apiv1.C2DMessage, error) {
	payload, err := json.Marshal(m.Payload)
	if err != nil {
		return apiv1.C2DMessage{}, fmt.Errorf("c2d payload: %w", err)
	}
	body := apiv1.C2DSend{Payload: payload, Properties: m.Properties, MessageID: m.MessageID, CorrelationID: m.CorrelationID}
	if m.TTL > 0 {
		body.TTLSeconds = apiv1.Ptr(int64(m.TTL.Round(time.Second) / time.Second))
	}
	var out apiv1.C2DMessage
	err = c.Do(ctx, http.MethodPost, devicePath(id, "/c2d"), nil, body, &out)
	return out, err
}

// C2DMessages lists a device's cloud-to-device messages, newest first
// (limit 0: the server's default).
func (c *Client) C2DMessages(ctx context.Context, id string, limit int) ([]apiv1.C2DMessage, error) {
	var out apiv1.C2DMessageList
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	err := c.Do(ctx, http.MethodGet, devicePath(id, "/c2d"), q, nil, &out)
	return out.Messages, err
}

// doWithHeader is Do with extra request headers and, if timeout is not 0,
// a longer overall time limit than the client's (for direct methods that
// may wait up to 5 minutes for a device).
func (c *Client) doWithHeader(ctx context.Context, method, path string, hdr http.Header, body, out any, timeout time.Duration) error {
	cc := *c
	hc := *c.http
	if timeout > hc.Timeout {
		hc.Timeout = timeout
	}
	if len(hdr) > 0 {
		hc.Transport = headerTransport{base: hc.Transport, hdr: hdr}
	}
	cc.http = &hc
	return cc.Do(ctx, method, path, nil, body, out)
}

// headerTransport adds headers to every request.
type headerTransport struct {
	base http.RoundTripper
	hdr  http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range t.hdr {
		r.Header[k] = vs
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
