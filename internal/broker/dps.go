package broker

// The device provisioning service (DPS) speaks MQTT on the broker's own
// listeners. A provisioning client connects with the user name
// "{idScope}/registrations/{registrationId}/api-version=…" (auth.go), then:
//
//	SUBSCRIBE $dps/registrations/res/#
//	PUBLISH   $dps/registrations/PUT/iotdps-register/?$rid={rid}          {"registrationId":…,"payload":…}
//	  ← PUBACK, then $dps/registrations/res/202/?$rid={rid}&retry-after=1  {"operationId":…,"status":"assigning"}
//	PUBLISH   $dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid2}&operationId={op}
//	  ← PUBACK, then $dps/registrations/res/200/?$rid={rid2}              {"operationId":…,"status":"assigned","registrationState":{…}}
//	UNSUBSCRIBE, DISCONNECT
//
// Answers are written to the requesting connection only (every
// provisioning client subscribes to the same filter, so mochi's fan-out
// would hand them to all). The assignment is done right after the 202 is
// sent, before the connection's next packet is read, so the first poll finds
// it finished. Assignments of all connections are committed together
// (group commit: one transaction, one fsync, for all that arrive while the
// previous batch is being written).
//
// A provisioning connection is not a device connection: it is renamed
// "$dps/{registrationId}/{n}" in mochi (a name no device can have, unique to
// the connection), so that it neither takes over nor wipes the session of
// the device of the same id, nor another provisioning connection of the same
// registration id; its state lives here, not in Broker.sessions. It may
// subscribe to the response filter and publish requests, nothing else;
// devices may not use $dps topics.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/provision"
)

const (
	// dpsClientPrefix starts the mochi client id of every provisioning
	// connection. Device ids cannot hold '$' or '/'.
	dpsClientPrefix = "$dps/"
	// dpsResponseFilter is the one subscription a provisioning client may
	// hold.
	dpsResponseFilter = "$dps/registrations/res/#"

	dpsRegisterTopic = "$dps/registrations/PUT/iotdps-register/"
	dpsStatusTopic   = "$dps/registrations/GET/iotdps-get-operationstatus/"

	// dpsAssignTimeout bounds one assignment attempt. A request waits at
	// most this long behind the previous one on its connection, and is
	// then answered within another such period: well inside the 30 s the
	// SDK waits for an answer.
	dpsAssignTimeout = 10 * time.Second
	// dpsMaxLifetime closes a provisioning connection after an hour, or
	// when its token expires if that is sooner: registering takes seconds.
	dpsMaxLifetime = time.Hour
	// dpsMaxOps is how many operations of a connection are remembered.
	dpsMaxOps = 8
	// dpsMaxPayload bounds the custom payload of a request.
	dpsMaxPayload = 16 << 10
	// dpsMaxBatch bounds one group commit.
	dpsMaxBatch = 256
)

var (
	errNotProvisioning = errors.New("provisioning connection: only $dps requests are allowed")
	errDPSExpired      = errors.New("provisioning connection: token expired or lifetime over")
)

// dpsState is the broker's state for provisioning.
type dpsState struct {
	b *Broker

	mu      sync.Mutex
	conns   map[*mqtt.Client]*dpsConn
	connSeq atomic.Uint64 // numbers the mochi client ids of provisioning connections

	// scopes caches ID scope (upper case) → scopeEntry. A scope never
	// changes tenant; entries still expire, after enrollmentTTL, so that
	// the scope of a deleted tenant is forgotten.
	scopes sync.Map

	enrollments enrollmentCache
	commits     groupCommit
}

func newDPSState(b *Broker) *dpsState {
	d := &dpsState{b: b, conns: map[*mqtt.Client]*dpsConn{}}
	d.commits.store = b.store
	d.enrollments = enrollmentCache{store: b.store, now: b.now, tenants: map[string]*tenantEnrollments{}}
	return d
}

// EnrollmentsChanged tells the broker that a tenant's enrollments changed,
// so that connections from now on are authenticated against the new ones.
// (The API calls it; other nodes sharing a database see a change within
// enrollmentTTL.)
func (b *Broker) EnrollmentsChanged(tenantID string) { b.dps.enrollments.invalidate(tenantID) }

// enrollmentTTL is how long the broker trusts the enrollments it has read
// of a tenant. Changes made through this node's API apply at once.
const enrollmentTTL = 2 * time.Second

// enrollmentCache holds each tenant's enrollments for authentication, which
// every provisioning connection needs: reading them takes two queries, a
// good part of a connection's cost when devices register by the thousand.
type enrollmentCache struct {
	store provision.Store
	now   func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantEnrollments
}

type tenantEnrollments struct {
	gen  atomic.Uint64 // bumped by invalidate
	mu   sync.Mutex    // held while loading: one load at a time
	snap *enrollmentSnapshot
}

// enrollmentSnapshot is what was read of a tenant, at a generation.
type enrollmentSnapshot struct {
	gen        uint64
	at         time.Time
	groups     []provision.EnrollmentGroup
	individual map[string]provision.Enrollment // by registration id
}

func (c *enrollmentCache) entry(tenantID string) *tenantEnrollments {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tenants[tenantID]
	if !ok {
		t = &tenantEnrollments{}
		c.tenants[tenantID] = t
	}
	return t
}

func (c *enrollmentCache) invalidate(tenantID string) { c.entry(tenantID).gen.Add(1) }

// get returns the tenant's enrollments, read again if they are older than
// enrollmentTTL or were invalidated since. A change invalidated while they
// are being read makes the next get read again.
func (c *enrollmentCache) get(ctx context.Context, tenantID string) (*enrollmentSnapshot, error) {
	t := c.entry(tenantID)
	t.mu.Lock()
	defer t.mu.Unlock()
	gen := t.gen.Load()
	if s := t.snap; s != nil && s.gen == gen && c.now().Sub(s.at) < enrollmentTTL {
		return s, nil
	}
	at := c.now()
	groups, err := c.store.ListEnrollmentGroups(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	es, err := c.store.ListEnrollments(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	s := &enrollmentSnapshot{gen: gen, at: at, groups: groups, individual: make(map[string]provision.Enrollment, len(es))}
	for _, e := range es {
		s.individual[e.RegistrationID] = e
	}
	t.snap = s
	return s, nil
}

// dpsConn is one authenticated provisioning connection. Only the client's
// own goroutine (mochi reads and handles one client's packets in order)
// touches it after attach.
type dpsConn struct {
	s *session // registration, tenant, expiry

	kind         provision.EnrollmentKind
	enrollmentID string
	deviceID     string
	primary      []byte // the device's keys: derived from the group's, or the enrollment's own
	secondary    []byte
	initialTwin  []byte

	ops []*dpsOp // oldest first
}

// dpsOp is one registration request of a connection.
type dpsOp struct {
	id      string
	payload []byte
	done    bool                   // the assignment was carried out or refused
	reg     provision.Registration // if done without failure
	failure error                  // if done: why the device was not assigned
	// twinPending: the device is assigned, its initial twin not yet set.
	twinPending bool
}

// attach records an authenticated provisioning connection, renames its
// mochi client (see the top of the file), and arms its expiry.
func (d *dpsState) attach(cl *mqtt.Client, c *dpsConn, tokenExpiry time.Time) {
	cl.ID = dpsClientPrefix + c.s.registration + "/" + strconv.FormatUint(d.connSeq.Add(1), 10)
	life := min(tokenExpiry.Sub(d.b.now()), dpsMaxLifetime)
	c.s.expiry = d.b.clock.AfterFunc(life, func() {
		cl.Stop(errDPSExpired)
		d.detach(cl) // in case mochi never reports the disconnection
	})
	d.mu.Lock()
	d.conns[cl] = c
	d.mu.Unlock()
}

func (d *dpsState) detach(cl *mqtt.Client) {
	d.mu.Lock()
	c, ok := d.conns[cl]
	delete(d.conns, cl)
	d.mu.Unlock()
	if ok {
		c.s.expiry.Stop()
	}
}

func (d *dpsState) conn(cl *mqtt.Client) *dpsConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[cl]
}

type scopeEntry struct {
	tenantID string
	at       time.Time
}

// tenantOf finds the tenant of an ID scope.
func (d *dpsState) tenantOf(ctx context.Context, scope string) (string, error) {
	scope = strings.ToUpper(scope)
	now := d.b.now()
	if e, ok := d.scopes.Load(scope); ok && now.Sub(e.(scopeEntry).at) < enrollmentTTL {
		return e.(scopeEntry).tenantID, nil
	}
	t, err := d.b.store.TenantByIDScope(ctx, scope)
	if err != nil {
		d.scopes.Delete(scope)
		return "", err
	}
	d.scopes.Store(scope, scopeEntry{tenantID: t, at: now})
	return t, nil
}

func isDPSClient(cl *mqtt.Client) bool { return strings.HasPrefix(cl.ID, dpsClientPrefix) }

// dpsHook keeps provisioning connections to provisioning: it handles their
// publishes before the telemetry hook would, refuses their subscriptions
// other than the response filter, and forgets them when they end.
type dpsHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *dpsHook) ID() string { return "warden-dps" }

func (h *dpsHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnSubscribe || b == mqtt.OnDisconnect
}

func (h *dpsHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !isDPSClient(cl) {
		return pk, nil // devices: the telemetry and hub hooks
	}
	c := h.b.dps.conn(cl)
	if c == nil || !strings.HasPrefix(pk.TopicName, "$dps/") {
		cl.Stop(errNotProvisioning)
		return pk, packets.ErrRejectPacket
	}
	h.b.dpsPublish(cl, c.s, pk)
	return pk, packets.ErrRejectPacket // answered by dpsPublish, never fanned out
}

// OnSubscribe turns every filter of a provisioning client but the response
// filter into an invalid one, which mochi refuses (SUBACK 0x80). (The ACL
// hook lets any client subscribe to the $iothub filters.)
func (h *dpsHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !isDPSClient(cl) {
		return pk
	}
	pk.Filters = slices.Clone(pk.Filters)
	for i := range pk.Filters {
		if pk.Filters[i].Filter != dpsResponseFilter {
			pk.Filters[i].Filter = ""
		}
	}
	return pk
}

func (h *dpsHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if isDPSClient(cl) {
		h.b.dps.detach(cl)
	}
}

// dpsPublish handles a provisioning client's publish on a $dps/ topic: it
// acknowledges a QoS 1 request first, then answers it.
func (b *Broker) dpsPublish(cl *mqtt.Client, s *session, pk packets.Packet) {
	c := b.dps.conn(cl)
	if s == nil || s.registration == "" || c == nil { // a device: the ACL hook lets none through
		cl.Stop(errNotProvisioning)
		return
	}
	if pk.FixedHeader.Qos > 0 {
		b.send(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
	path, query, _ := strings.Cut(pk.TopicName, "?")
	rid := queryParam(query, "$rid")
	switch path {
	case dpsRegisterTopic:
		b.dps.register(cl, c, rid, pk.Payload)
	case dpsStatusTopic:
		b.dps.operationStatus(cl, c, rid, queryParam(query, "operationId"))
	default:
		b.dps.replyError(cl, 404, rid, 404001, "unknown request "+path)
	}
}

// dpsMayPublish says whether a provisioning client may publish on topic.
func dpsMayPublish(cl *mqtt.Client, topic string) bool {
	return isDPSClient(cl) && strings.HasPrefix(topic, "$dps/registrations/")
}

// dpsMaySubscribe says whether a provisioning client may subscribe to filter.
func dpsMaySubscribe(cl *mqtt.Client, filter string) bool {
	return isDPSClient(cl) && filter == dpsResponseFilter
}

// queryParam returns the raw value of a parameter of a topic's query
// ("$rid=1&operationId=…"), not decoded: the request id is echoed as it
// came.
func queryParam(query, name string) string {
	for part := range strings.SplitSeq(query, "&") {
		if k, v, _ := strings.Cut(part, "="); k == name {
			return v
		}
	}
	return ""
}

// register handles iotdps-register: it checks the request, answers 202
// with a new operation, and carries out the assignment.
func (d *dpsState) register(cl *mqtt.Client, c *dpsConn, rid string, body []byte) {
	var req struct {
		RegistrationID *string         `json:"registrationId"`
		Payload        json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.RegistrationID == nil {
		d.replyError(cl, 400, rid, 400004, `the request body must be a JSON object {"registrationId":…}`)
		return
	}
	if *req.RegistrationID != c.s.registration {
		d.replyError(cl, 401, rid, 401002, fmt.Sprintf("registration id %q of the request is not %q of the connection",
			*req.RegistrationID, c.s.registration))
		return
	}
	var payload []byte
	if p := strings.TrimSpace(string(req.Payload)); p != "" && p != "null" {
		if len(p) > dpsMaxPayload {
			d.replyError(cl, 400, rid, 400004, fmt.Sprintf("the payload is larger than %d bytes", dpsMaxPayload))
			return
		}
		payload = []byte(p)
	}
	op := &dpsOp{id: newOperationID(), payload: payload}
	if len(c.ops) == dpsMaxOps {
		c.ops = slices.Delete(c.ops, 0, 1)
	}
	c.ops = append(c.ops, op)
	d.reply(cl, 202, rid, "&retry-after=1", dpsOperationStatus{OperationID: op.id, Status: "assigning"})
	d.assign(c, op)
}

// assign carries out op's assignment. A store failure leaves op not done,
// for the next poll to try again.
func (d *dpsState) assign(c *dpsConn, op *dpsOp) {
	a := provision.Assignment{
		Registration: provision.Registration{
			RegistrationID: c.s.registration, TenantID: c.s.tenantID, DeviceID: c.deviceID,
			EnrollmentKind: c.kind, EnrollmentID: c.enrollmentID,
			OperationID: op.id, ETag: newETag(), Payload: op.payload, InitialTwin: c.initialTwin,
			UpdatedAt: d.b.now().UTC(),
		},
		PrimaryKey: c.primary, SecondaryKey: c.secondary,
	}
	res, err := d.commits.do(a)
	if err != nil {
		d.b.log.Error("provisioning: assignment not recorded; the device's next poll tries again",
			"registration", a.Registration.RegistrationID, "tenant", a.Registration.TenantID, "err", err)
		return
	}
	op.done = true
	if res.Err != nil {
		op.failure = res.Err
		d.b.log.Warn("provisioning: device not assigned", "registration", a.Registration.RegistrationID,
			"tenant", a.Registration.TenantID, "enrollment", string(c.kind)+"/"+c.enrollmentID, "reason", res.Err)
		return
	}
	op.reg = res.Registration
	op.twinPending = len(c.initialTwin) > 0
	d.initialTwin(c, op)
	d.b.log.Debug("provisioning: device assigned", "registration", op.reg.RegistrationID, "device", op.reg.DeviceID,
		"tenant", op.reg.TenantID, "substatus", op.reg.Substatus)
}

// initialTwin gives an assigned device the enrollment's initial twin, if it
// has one and the device has no twin yet (a re-registration keeps the twin
// the device and operators made). A store failure leaves it pending for the
// next poll.
func (d *dpsState) initialTwin(c *dpsConn, op *dpsOp) {
	if !op.twinPending {
		return
	}
	tags, desired, err := provision.InitialTwinParts(c.initialTwin)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), dpsAssignTimeout)
		err = d.b.store.SetInitialTwin(ctx, op.reg.TenantID, op.reg.DeviceID, tags, desired, op.reg.UpdatedAt)
		cancel()
	}
	switch {
	case err == nil:
		op.twinPending = false
	case errors.Is(err, hub.ErrInvalidTwin) || errors.Is(err, database.ErrNotFound):
		// The API checks initial twins, and a device deleted meanwhile
		// has no twin to set: nothing to retry.
		op.twinPending = false
		d.b.log.Warn("provisioning: initial twin not applied", "device", op.reg.DeviceID, "err", err)
	default:
		d.b.log.Error("provisioning: initial twin not applied; the device's next poll tries again", "device", op.reg.DeviceID, "err", err)
	}
}

// operationStatus handles iotdps-get-operationstatus.
func (d *dpsState) operationStatus(cl *mqtt.Client, c *dpsConn, rid, opID string) {
	var op *dpsOp
	for _, o := range c.ops {
		if o.id == opID {
			op = o
		}
	}
	if op == nil {
		// An operation of an earlier connection: the registration record
		// knows its last one.
		ctx, cancel := context.WithTimeout(context.Background(), dpsAssignTimeout)
		defer cancel()
		reg, err := d.b.store.GetRegistration(ctx, c.s.tenantID, c.s.registration)
		switch {
		case err == nil && reg.OperationID == opID && opID != "":
			d.reply(cl, 200, rid, "", d.assigned(opID, reg))
		case err == nil || errors.Is(err, database.ErrNotFound):
			d.replyError(cl, 404, rid, 404002, fmt.Sprintf("no operation %q for registration %q", opID, c.s.registration))
		default:
			d.b.log.Error("provisioning: read registration", "registration", c.s.registration, "err", err)
			d.replyError(cl, 503, rid, 503000, "try again later")
		}
		return
	}
	if !op.done {
		d.assign(c, op)
	} else {
		d.initialTwin(c, op)
	}
	switch {
	case !op.done || op.twinPending: // the store failed again: the SDK retries a 5xx after retry-after
		d.replyError(cl, 503, rid, 503000, "the assignment could not be recorded; try again later")
	case op.failure != nil:
		now := dpsTime(d.b.now())
		d.reply(cl, 200, rid, "", dpsOperationStatus{OperationID: op.id, Status: "failed", RegistrationState: &dpsRegistrationState{
			RegistrationID: c.s.registration, Status: "failed", ErrorCode: 409001,
			ErrorMessage: "device " + c.deviceID + " cannot be assigned: " + conflictReason(op.failure), LastUpdatedDateTimeUtc: now,
		}})
	default:
		d.reply(cl, 200, rid, "", d.assigned(op.id, op.reg))
	}
}

// conflictReason is the part of a store conflict error the device may see.
func conflictReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return strings.TrimSuffix(msg, ": "+database.ErrConflict.Error())
}

func (d *dpsState) assigned(opID string, r provision.Registration) dpsOperationStatus {
	return dpsOperationStatus{OperationID: opID, Status: "assigned", RegistrationState: &dpsRegistrationState{
		RegistrationID: r.RegistrationID, CreatedDateTimeUtc: dpsTime(r.CreatedAt), AssignedHub: d.b.hubHost,
		DeviceID: r.DeviceID, Status: "assigned", Substatus: r.Substatus, LastUpdatedDateTimeUtc: dpsTime(r.UpdatedAt), ETag: r.ETag,
	}}
}

// dpsOperationStatus is DPS's RegistrationOperationStatus.
type dpsOperationStatus struct {
	OperationID       string                `json:"operationId"`
	Status            string                `json:"status"`
	RegistrationState *dpsRegistrationState `json:"registrationState,omitempty"`
}

// dpsRegistrationState is DPS's DeviceRegistrationResult.
type dpsRegistrationState struct {
	RegistrationID         string `json:"registrationId"`
	CreatedDateTimeUtc     string `json:"createdDateTimeUtc,omitempty"`
	AssignedHub            string `json:"assignedHub,omitempty"`
	DeviceID               string `json:"deviceId,omitempty"`
	Status                 string `json:"status"`
	Substatus              string `json:"substatus,omitempty"`
	ErrorCode              int    `json:"errorCode,omitempty"`
	ErrorMessage           string `json:"errorMessage,omitempty"`
	LastUpdatedDateTimeUtc string `json:"lastUpdatedDateTimeUtc"`
	ETag                   string `json:"etag,omitempty"`
}

// dpsErrorBody is the body of DPS's 4xx and 5xx answers.
type dpsErrorBody struct {
	ErrorCode    int    `json:"errorCode"`
	TrackingID   string `json:"trackingId"`
	Message      string `json:"message"`
	TimestampUtc string `json:"timestampUtc"`
}

// dpsTime formats a time as DPS does: UTC with 7 fractional digits.
func dpsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

func (d *dpsState) replyError(cl *mqtt.Client, status int, rid string, code int, msg string) {
	extra := ""
	if status >= 429 {
		extra = "&retry-after=2"
	}
	d.reply(cl, status, rid, extra, dpsErrorBody{ErrorCode: code, TrackingID: newTrackingID(), Message: msg, TimestampUtc: dpsTime(d.b.now())})
}

// reply writes an answer to the client alone, at QoS 0:
// $dps/registrations/res/{status}/?$rid={rid}{extra}.
func (d *dpsState) reply(cl *mqtt.Client, status int, rid, extra string, body any) {
	payload, err := json.Marshal(body)
	if err != nil { // cannot happen with the types above
		d.b.log.Error("provisioning: encode answer", "err", err)
		return
	}
	topic := "$dps/registrations/res/" + strconv.Itoa(status) + "/?$rid=" + rid + extra
	if !d.b.send(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload}) {
		d.b.log.Debug("provisioning: answer not sent", "client", cl.ID)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// newOperationID looks like the ids of DPS ("4.{16 hex}.{uuid}") and uses
// only characters the SDK may put in a topic unencoded.
func newOperationID() string { return "4." + randomHex(8) + "." + newTrackingID() }

// newTrackingID is a random UUID (version 4).
func newTrackingID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newETag is an opaque version tag in DPS's style: base64 of a quoted hex
// string.
func newETag() string { return base64.StdEncoding.EncodeToString([]byte(`"` + randomHex(4) + `"`)) }

// groupCommit writes the assignments of all connections in batches: the
// first request to arrive while no batch is being written writes, with
// every request that joined meanwhile, and hands the turn to a waiting one
// when it is done. Without a goroutine of its own, it needs no stopping.
type groupCommit struct {
	store   provision.Store
	mu      sync.Mutex
	busy    bool
	pending []*commitReq
}

type commitReq struct {
	a    provision.Assignment
	res  provision.AssignResult
	err  error
	turn chan bool // true: write the pending batch; false: res and err are set
}

func (g *groupCommit) do(a provision.Assignment) (provision.AssignResult, error) {
	r := &commitReq{a: a, turn: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.busy {
		g.mu.Unlock()
		if lead := <-r.turn; !lead {
			return r.res, r.err
		}
		g.mu.Lock()
	}
	g.busy = true
	n := min(len(g.pending), dpsMaxBatch)
	batch := slices.Clone(g.pending[:n])
	g.pending = slices.Delete(g.pending, 0, n)
	g.mu.Unlock()

	as := make([]provision.Assignment, len(batch))
	for i, x := range batch {
		as[i] = x.a
	}
	ctx, cancel := context.WithTimeout(context.Background(), dpsAssignTimeout)
	res, err := g.store.AssignRegistrations(ctx, as)
	cancel()
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("store gave %d results for %d assignments", len(res), len(batch))
	}
	for i, x := range batch {
		if err != nil {
			x.err = err
		} else {
			x.res = res[i]
		}
		if x != r {
			x.turn <- false
		}
	}

	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].turn <- true // it takes the batch, itself included
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return r.res, r.err
}
