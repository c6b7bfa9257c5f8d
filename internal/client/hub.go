package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/warden-iot/warden/internal/api"
)

// Twin returns a device's full twin.
func (c *Client) Twin(ctx context.Context, id string) (api.Twin, error) {
	var tw api.Twin
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
func (c *Client) UpdateTwin(ctx context.Context, id string, p TwinPatch) (api.Twin, error) {
	body := map[string]any{}
	if p.Desired != nil {
		body["properties"] = map[string]any{"desired": p.Desired}
	}
	if p.Tags != nil {
		body["tags"] = p.Tags
	}
	var tw api.Twin
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
func (c *Client) InvokeMethod(ctx context.Context, id, method string, payload json.RawMessage, timeout time.Duration) (api.MethodResponse, error) {
	body := map[string]any{}
	if payload != nil {
		body["payload"] = payload
	}
	wait := api.DefaultMethodTimeout
	if timeout > 0 {
		body["timeoutSeconds"] = timeout.Seconds()
		wait = timeout
	}
	var out api.MethodResponse
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
func (c *Client) SendC2D(ctx context.Context, id string, m C2DSend) (api.C2DMessage, error) {
	body := map[string]any{"payload": m.Payload}
	if len(m.Properties) > 0 {
		body["properties"] = m.Properties
	}
	if m.TTL > 0 {
		body["ttlSeconds"] = int64(m.TTL.Round(time.Second) / time.Second)
	}
	if m.MessageID != "" {
		body["messageId"] = m.MessageID
	}
	if m.CorrelationID != "" {
		body["correlationId"] = m.CorrelationID
	}
	var out api.C2DMessage
	err := c.Do(ctx, http.MethodPost, devicePath(id, "/c2d"), nil, body, &out)
	return out, err
}

// C2DMessages lists a device's cloud-to-device messages, newest first
// (limit 0: the server's default).
func (c *Client) C2DMessages(ctx context.Context, id string, limit int) ([]api.C2DMessage, error) {
	var out struct {
		Messages []api.C2DMessage `json:"messages"`
	}
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
