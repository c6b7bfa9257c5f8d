package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
)

// The $iothub topics (see docs/hub.md). Every device subscribes to the same
// $iothub filters, so the server never publishes on them through mochi's
// fan-out: it writes each answer to the one connection it is meant for.
const (
	twinResFilter     = "$iothub/twin/res/#"
	twinDesiredFilter = "$iothub/twin/PATCH/properties/desired/#"
	methodsFilter     = "$iothub/methods/POST/#"

	twinGetTopic      = "$iothub/twin/GET/"
	twinReportedTopic = "$iothub/twin/PATCH/properties/reported/"
	methodResTopic    = "$iothub/methods/res/"
)

// hubState is the broker's state for twins, methods and C2D.
type hubState struct {
	b *Broker

	mu    sync.Mutex
	conns map[*mqtt.Client]*hubConn // C2D messages in flight, by connection
	calls map[string]*methodCall    // direct methods awaiting an answer, by $rid
	pumps map[string]*c2dPump       // C2D deliveries running, by device id
	locks map[string]*deviceLock    // serialises desired-property updates, by device id

	rid uint64 // last $rid handed out (under mu)
}

func newHubState(b *Broker) *hubState {
	return &hubState{b: b,
		conns: map[*mqtt.Client]*hubConn{},
		calls: map[string]*methodCall{},
		pumps: map[string]*c2dPump{},
		locks: map[string]*deviceLock{},
	}
}

// hubPublish handles a device's publish on a $iothub/ topic: twin GET,
// reported-properties PATCH, direct-method replies. It runs in the
// device's read loop, so one device's requests are handled in order.
func (b *Broker) hubPublish(cl *mqtt.Client, s *session, pk packets.Packet) {
	if pk.FixedHeader.Qos > 0 {
		b.send(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
	if s.registration != "" {
		return // a provisioning client is not a device
	}
	b.touch(cl.ID, s.ip)
	path, query := splitTopicQuery(pk.TopicName)
	switch {
	case path == twinGetTopic || path+"/" == twinGetTopic:
		b.twinGet(cl, s, query)
	case path == twinReportedTopic || path+"/" == twinReportedTopic:
		b.twinReported(cl, s, query, pk.Payload)
	case strings.HasPrefix(path, methodResTopic):
		b.methodResponse(cl, path, query, pk.Payload)
	default:
		b.log.Debug("ignored $iothub publish", "device", cl.ID, "topic", pk.TopicName)
	}
}

// hubMayPublish says whether a device may publish on a $iothub/ topic.
func hubMayPublish(cl *mqtt.Client, topic string) bool {
	return strings.HasPrefix(topic, twinGetTopic) || strings.HasPrefix(topic, twinReportedTopic) ||
		strings.HasPrefix(topic, methodResTopic) ||
		strings.HasPrefix(topic, strings.TrimSuffix(twinGetTopic, "/")+"?") ||
		strings.HasPrefix(topic, strings.TrimSuffix(twinReportedTopic, "/")+"?")
}

// splitTopicQuery splits "a/b/?k=v&k2=v2" into "a/b/" and its parameters.
// Values are kept as sent (a $rid is echoed verbatim).
func splitTopicQuery(topic string) (string, map[string]string) {
	path, rawQuery, _ := strings.Cut(topic, "?")
	q := map[string]string{}
	for kv := range strings.SplitSeq(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		q[k] = v
	}
	return path, q
}

// subscribed reports whether a connection holds exactly this filter (the
// ACL allows no other form of the $iothub filters).
func subscribed(cl *mqtt.Client, filter string) (packets.Subscription, bool) {
	return cl.State.Subscriptions.Get(filter)
}

// errNotSent: a packet for a client that is gone, or does not read.
var errNotSent = errors.New("connection closed or not reading")

// publishTo queues a QoS 0 PUBLISH for one connection (outbox.go).
func (b *Broker) publishTo(cl *mqtt.Client, topic string, body []byte) error {
	if !b.send(cl, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   topic,
		Payload:     body,
	}) {
		return errNotSent
	}
	return nil
}

// deviceSession returns the live connection of a device (not of a
// provisioning client).
func (b *Broker) deviceSession(deviceID string) (*session, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[deviceID]
	if !ok || s.registration != "" || s.client.Closed() {
		return nil, false
	}
	return s, true
}

// twinError is the body IoT Hub sends with a failed twin request; the SDK
// raises Error(message) when it sees errorCode.
type twinError struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
}

func (b *Broker) twinReply(cl *mqtt.Client, status int, rid string, version int64, body []byte) {
	if _, ok := subscribed(cl, twinResFilter); !ok {
		b.log.Debug("twin response not sent: device not subscribed to "+twinResFilter, "device", cl.ID)
		return
	}
	topic := "$iothub/twin/res/" + strconv.Itoa(status) + "/?$rid=" + rid
	if version > 0 {
		topic += "&$version=" + strconv.FormatInt(version, 10)
	}
	if err := b.publishTo(cl, topic, body); err != nil {
		b.log.Debug("twin response not sent", "device", cl.ID, "err", err)
	}
}

func (b *Broker) twinFail(cl *mqtt.Client, rid string, err error) {
	status, code, msg := 500, 500001, "internal error"
	switch {
	case errors.Is(err, hub.ErrInvalidTwin):
		status, code, msg = 400, 400004, err.Error()
	case errors.Is(err, database.ErrNotFound):
		status, code, msg = 404, 404001, "device not found"
	default:
		b.log.Error("twin request failed", "device", cl.ID, "err", err)
	}
	body, _ := json.Marshal(twinError{ErrorCode: code, Message: msg})
	b.twinReply(cl, status, rid, 0, body)
}

func (b *Broker) twinGet(cl *mqtt.Client, s *session, query map[string]string) {
	rid := query["$rid"]
	if rid == "" {
		b.log.Debug("twin GET without $rid ignored", "device", cl.ID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tw, err := b.store.GetTwin(ctx, s.tenantID, cl.ID)
	if err != nil {
		b.twinFail(cl, rid, err)
		return
	}
	body, err := json.Marshal(struct {
		Desired  json.RawMessage `json:"desired"`
		Reported json.RawMessage `json:"reported"`
	}{tw.Desired.WithVersion(false), tw.Reported.WithVersion(false)})
	if err != nil {
		b.twinFail(cl, rid, err)
		return
	}
	b.twinReply(cl, 200, rid, 0, body)
}

func (b *Broker) twinReported(cl *mqtt.Client, s *session, query map[string]string, payload []byte) {
	rid := query["$rid"]
	if rid == "" {
		b.log.Debug("reported properties without $rid ignored", "device", cl.ID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tw, err := b.store.UpdateReported(ctx, s.tenantID, cl.ID, payload, b.now())
	if err != nil {
		b.twinFail(cl, rid, err)
		return
	}
	b.twinReply(cl, 204, rid, tw.Reported.Version, nil)
}

// UpdateTwin applies an operator's change of a twin and sends the
// desired-properties patch, with its new $version, to the device if it is
// connected here and subscribed to desired updates. Updates of one device
// are serialised so that the device gets its patches in version order.
func (b *Broker) UpdateTwin(ctx context.Context, tenantID, deviceID string, u hub.TwinUpdate) (hub.Twin, error) {
	unlock := b.hub.lockDevice(deviceID)
	defer unlock()
	tw, err := b.store.UpdateTwin(ctx, tenantID, deviceID, u, b.now())
	if err != nil {
		return tw, err
	}
	if len(u.Desired) == 0 || isEmptyObject(u.Desired) {
		return tw, nil
	}
	s, ok := b.deviceSession(deviceID)
	if !ok {
		return tw, nil
	}
	if _, ok := subscribed(s.client, twinDesiredFilter); !ok {
		return tw, nil
	}
	body, err := hub.PatchWithVersion(u.Desired, tw.Desired.Version)
	if err != nil {
		b.log.Error("desired patch not sent", "device", deviceID, "err", err)
		return tw, nil
	}
	topic := "$iothub/twin/PATCH/properties/desired/?$version=" + strconv.FormatInt(tw.Desired.Version, 10)
	if err := b.publishTo(s.client, topic, body); err != nil {
		b.log.Debug("desired patch not sent", "device", deviceID, "err", err)
	}
	return tw, nil
}

func isEmptyObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) == 0
}

// deviceLock is a mutex of one device, kept while someone holds or waits
// for it.
type deviceLock struct {
	mu   sync.Mutex
	refs int
}

func (h *hubState) lockDevice(deviceID string) (unlock func()) {
	h.mu.Lock()
	l, ok := h.locks[deviceID]
	if !ok {
		l = &deviceLock{}
		h.locks[deviceID] = l
	}
	l.refs++
	h.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		h.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(h.locks, deviceID)
		}
		h.mu.Unlock()
	}
}

// encodeURIComponent percent-encodes as JavaScript's function of that name
// does, which is how the SDK decodes property bags (decodeURIComponent: a
// '+' stays a '+').
func encodeURIComponent(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '!', c == '~', c == '*', c == '\'', c == '(', c == ')':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}
