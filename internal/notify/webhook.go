package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/notify/notifystore"
)

// The headers of a webhook call.
const (
	HeaderEvent     = "X-Warden-Event"
	HeaderDelivery  = "X-Warden-Delivery"
	HeaderTimestamp = "X-Warden-Timestamp"
	HeaderSignature = "X-Warden-Signature"
)

// Payload is the JSON body of a webhook call. Its field names are stable.
type Payload struct {
	// ID is the delivery's id, as in X-Warden-Delivery; a retry repeats
	// it. (It is absent from the copy stored at enqueue time.)
	ID     int64        `json:"id,omitzero"`
	Event  string       `json:"event"`
	Alarm  PayloadAlarm `json:"alarm"`
	SentAt time.Time    `json:"sentAt"` // when the event was emitted; a retry repeats it
}

// PayloadAlarm is the alarm in a Payload, as it was at the event. The
// acknowledgement and clearing fields are absent until set.
type PayloadAlarm struct {
	ID         int64     `json:"id"`
	TenantID   string    `json:"tenantId"`
	RuleID     string    `json:"ruleId"`
	DeviceID   string    `json:"deviceId"`
	SiteID     string    `json:"siteId"`
	Kind       string    `json:"kind"`
	Severity   string    `json:"severity"`
	Message    string    `json:"message"`
	Value      float64   `json:"value"`
	State      string    `json:"state"`
	RaisedAt   time.Time `json:"raisedAt"`
	LastAt     time.Time `json:"lastAt"`
	Retriggers int       `json:"retriggers"`
	AckedAt    time.Time `json:"ackedAt,omitzero"`
	AckedBy    string    `json:"ackedBy,omitempty"`
	ClearedAt  time.Time `json:"clearedAt,omitzero"`
	ClearedBy  string    `json:"clearedBy,omitempty"`
}

// webhookPayload is the stored payload of a webhook delivery: the body
// without the delivery id.
func webhookPayload(a alarm.Record, event string, now time.Time) ([]byte, error) {
	p := Payload{
		Event: event,
		Alarm: PayloadAlarm{
			ID: a.ID, TenantID: a.TenantID, RuleID: a.RuleID, DeviceID: a.DeviceID, SiteID: a.SiteID,
			Kind: a.Kind, Severity: a.Severity, Message: a.Message, Value: a.Value, State: a.State,
			RaisedAt: utc(a.RaisedAt), LastAt: utc(a.LastAt), Retriggers: a.Retriggers,
			AckedAt: utc(a.AckedAt), AckedBy: a.AckedBy, ClearedAt: utc(a.ClearedAt), ClearedBy: a.ClearedBy,
		},
		SentAt: utc(now),
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook payload: %w", err)
	}
	return b, nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Sign is the X-Warden-Signature of a body sent at timestamp (Unix
// seconds): "sha256=" and the hex HMAC-SHA256, keyed with secret, of the
// timestamp's decimal digits, ".", and the body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return sign(secret, strconv.FormatInt(timestamp, 10), body)
}

// sign is Sign over the timestamp as sent.
func sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// defaultMaxAge is Verify's maxAge when none is given.
const defaultMaxAge = 5 * time.Minute

// Verify checks a webhook call as a receiver: signature is the
// X-Warden-Signature header, timestamp the X-Warden-Timestamp header and
// body the raw body. It fails if the signature does not match, or if the
// timestamp is more than maxAge (zero or negative: 5 minutes) before or
// after now, which turns away replayed requests.
func Verify(secret []byte, timestamp string, body []byte, signature string, now time.Time, maxAge time.Duration) error {
	if maxAge <= 0 {
		maxAge = defaultMaxAge
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("notify: webhook timestamp is not a Unix time in seconds")
	}
	if !hmac.Equal([]byte(sign(secret, timestamp, body)), []byte(signature)) {
		return errors.New("notify: webhook signature does not match")
	}
	switch age := now.Sub(time.Unix(ts, 0)); {
	case age > maxAge:
		return fmt.Errorf("notify: webhook timestamp is %s old, more than %s", age.Truncate(time.Second), maxAge)
	case -age > maxAge:
		return fmt.Errorf("notify: webhook timestamp is %s ahead, more than %s", (-age).Truncate(time.Second), maxAge)
	}
	return nil
}

// newHTTPClient is the client for webhook calls: bounded by timeout, and
// not following redirects (a redirect counts as a failure).
func newHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		// Checked on the address actually dialled, after DNS, so a name
		// that resolves (or re-resolves) to an inside address is refused
		// too: a tenant's webhook must not reach the operator's network.
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: publicOnly}
		tr.DialContext = d.DialContext
		tr.Proxy = nil // a proxy would dial for us, unchecked
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// maxResponse is how much of a webhook's answer is read (and discarded),
// so that the connection can be reused.
const maxResponse = 64 << 10

// post delivers a webhook delivery to h. Its errors are short and hold
// neither the URL (which may carry a token) nor the secret.
func (n *Notifier) post(ctx context.Context, d notifystore.Delivery, h notifystore.Webhook) error {
	var p Payload
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return permanent("stored payload unreadable")
	}
	p.ID = d.ID
	body, err := json.Marshal(p)
	if err != nil {
		return permanent("stored payload unreadable")
	}
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return permanent("webhook URL is not an http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return permanent("webhook URL is not an http or https URL")
	}
	ts := n.clock.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Warden-Webhook/1")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(h.Secret, ts, body))
	resp, err := n.client.Do(req)
	if err != nil {
		return errors.New(transportError(err, n.cfg.HTTPTimeout))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// transportError describes a failed webhook call without its URL, e.g.
// "dial tcp: connection refused" or "timeout after 10s".
func transportError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Sprintf("timeout after %s", timeout)
		}
		err = ue.Err
	}
	var (
		dns *net.DNSError
		op  *net.OpError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "lookup: no such host"
		}
		return "lookup: " + dns.Err
	case errors.As(err, &op):
		inner := op.Err
		var sys *os.SyscallError
		if errors.As(inner, &sys) {
			inner = sys.Err
		}
		return truncate(op.Op+" "+op.Net+": "+inner.Error(), maxErrorLen)
	}
	return truncate(err.Error(), maxErrorLen)
}

// ErrPrivateTarget is the error of a webhook call to an address that is
// not public.
var ErrPrivateTarget = errors.New("webhook target is not a public address")

// publicOnly refuses to connect to loopback, private, link-local,
// unspecified and multicast addresses (and other non-global ones).
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrPrivateTarget, host)
	}
	if !PublicAddr(ip) {
		return fmt.Errorf("%w: %s", ErrPrivateTarget, ip)
	}
	return nil
}

// PublicAddr says whether ip is a global unicast address outside the
// private, shared (100.64/10), documentation and benchmarking ranges.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach inside IPv4
}
