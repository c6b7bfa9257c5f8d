// Package client is a Go client of Warden's HTTP API, used by the warden
// command's client subcommands, the simulator and the benchmarks.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

// Client calls one Warden server.
type Client struct {
	base  *url.URL
	token string // empty: a session client or an anonymous one
	csrf  string // the session's CSRF token
	http  *http.Client
}

// New makes a client for the server at base (an https URL) that trusts the
// CA certificate in caFile (empty: the system roots).
func New(base, token, caFile string) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want a URL like https://localhost:8443", base)
	}
	if token == "" {
		return nil, errors.New("no API token: set WARDEN_TOKEN or --token (printed on the server's first start)")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadCA(caFile)
		if err != nil {
			return nil, err
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 64
	return &Client{base: u, token: token, http: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

// LoadCA reads a PEM file of CA certificates into a pool.
func LoadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// IsNotFound reports whether err is an API 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports whether err is an API 409.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// Do sends a request with a JSON body (nil: none) and decodes a JSON answer
// into out (nil: discard).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" && method != http.MethodGet && method != http.MethodHead {
		req.Header.Set(apiv1.CSRFHeader, c.csrf)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e apiv1.ErrorBody
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func devicePath(id string, rest ...string) string {
	return "/api/v1/devices/" + url.PathEscape(id) + strings.Join(rest, "")
}

// CreateDevice registers a device; the answer holds its keys and
// connection string.
func (c *Client) CreateDevice(ctx context.Context, id string) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodPost, "/api/v1/devices", nil, apiv1.NewDevice{ID: id}, &d)
	return d, err
}

// CreateDeviceWith registers a device described by body: its id, and
// optionally its tenant and metadata.
func (c *Client) CreateDeviceWith(ctx context.Context, body apiv1.NewDevice) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodPost, "/api/v1/devices", nil, body, &d)
	return d, err
}

// UpdateDevice changes what patch says of a device's metadata (a pointer
// to "" clears a field) or its status.
func (c *Client) UpdateDevice(ctx context.Context, id string, patch apiv1.DevicePatch) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodPatch, devicePath(id), nil, patch, &d)
	return d, err
}

// Device returns one device, with its keys.
func (c *Client) Device(ctx context.Context, id string) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodGet, devicePath(id), nil, nil, &d)
	return d, err
}

// Devices lists the devices of the caller's tenant.
func (c *Client) Devices(ctx context.Context) ([]apiv1.Device, error) {
	var out apiv1.DeviceList
	err := c.Do(ctx, http.MethodGet, "/api/v1/devices", nil, nil, &out)
	return out.Devices, err
}

// SetDeviceStatus enables or disables a device.
func (c *Client) SetDeviceStatus(ctx context.Context, id, status string) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodPatch, devicePath(id), nil, apiv1.DevicePatch{Status: &status}, &d)
	return d, err
}

// DeleteDevice removes a device and its data.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, devicePath(id), nil, nil, nil)
}

// RegenerateKeys replaces the "primary", "secondary" or "both" keys.
func (c *Client) RegenerateKeys(ctx context.Context, id, which string) (apiv1.Device, error) {
	var d apiv1.Device
	err := c.Do(ctx, http.MethodPost, devicePath(id, "/keys/regenerate"), nil, apiv1.KeyRegeneration{Key: which}, &d)
	return d, err
}

// DeviceToken asks the server for a SAS token of a device.
func (c *Client) DeviceToken(ctx context.Context, id string, ttl time.Duration) (string, error) {
	var out apiv1.DeviceToken
	err := c.Do(ctx, http.MethodPost, devicePath(id, "/token"), nil, apiv1.DeviceTokenRequest{TTL: ttl.String()}, &out)
	return out.Token, err
}

// DeviceCredential asks the server for a SAS token of a device and the hub
// host name devices connect to.
func (c *Client) DeviceCredential(ctx context.Context, id string, ttl time.Duration) (apiv1.DeviceToken, error) {
	var out apiv1.DeviceToken
	err := c.Do(ctx, http.MethodPost, devicePath(id, "/token"), nil, apiv1.DeviceTokenRequest{TTL: ttl.String()}, &out)
	return out, err
}

// Latest returns the newest value of each metric of a device.
func (c *Client) Latest(ctx context.Context, id string) ([]apiv1.Metric, error) {
	var out apiv1.DeviceMetrics
	err := c.Do(ctx, http.MethodGet, devicePath(id, "/telemetry/latest"), nil, nil, &out)
	return out.Metrics, err
}

// History is the answer of a history query: Points for raw queries,
// Buckets for downsampled ones.
type History struct {
	DeviceID  string         `json:"deviceId"`
	Metric    string         `json:"metric"`
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Points    []apiv1.Sample `json:"points"`
	Truncated bool           `json:"truncated"`
	Bucket    string         `json:"bucket"`
	Buckets   []apiv1.Bucket `json:"buckets"`
}

// History queries one metric; q may hold from, to, bucket, buckets, limit.
func (c *Client) History(ctx context.Context, id, metric string, q url.Values) (History, error) {
	var h History
	err := c.Do(ctx, http.MethodGet, devicePath(id, "/telemetry/", url.PathEscape(metric)), q, nil, &h)
	return h, err
}

// Rejected lists a device's rejected messages, newest first.
func (c *Client) Rejected(ctx context.Context, id string, limit int) ([]apiv1.Rejected, error) {
	var out apiv1.RejectedList
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	err := c.Do(ctx, http.MethodGet, devicePath(id, "/rejected"), q, nil, &out)
	return out.Rejected, err
}

// Metrics fetches the server's Prometheus text (no token needed).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	u := *c.base
	u.Path += "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	return string(b), nil
}
