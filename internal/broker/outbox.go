package broker

import (
	"errors"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Everything Warden itself writes to a client (acknowledgements of
// telemetry, twin and provisioning answers, desired-property patches,
// direct-method requests, cloud-to-device messages) goes through the
// client's outbox, never straight to its socket: mochi's WritePacket takes
// the client's lock and writes synchronously, so a client that stops
// reading would block whoever writes to it. The telemetry acknowledgements
// are written by the ingest pipeline's one committer goroutine, the others
// by API requests and delivery runs: one device must not stall them.
//
// An outbox is a bounded queue drained by a writer goroutine of its own,
// started when something is queued and ended when the queue is empty, so
// an idle or closed connection has none. A client whose outbox is full
// (its writes do not proceed) is disconnected: what it was not sent is
// not lost — unacknowledged telemetry is sent again by the device, C2D
// messages go out again on its next connection, twin and method requests
// fail as they do for a device that went away.

// Bounds of one client's outbox. A healthy device reads its PUBACKs as
// fast as they come; the socket buffers alone hold thousands.
const (
	outboxMaxPackets = 1024
	outboxMaxBytes   = 4 << 20
)

var errOutboxFull = errors.New("client does not read what is sent to it: outbox full")

type outbox struct {
	cl *mqtt.Client

	mu      sync.Mutex
	queue   []packets.Packet
	bytes   int
	running bool // a writer goroutine is draining queue
	closed  bool
}

// send queues pk for cl without blocking. It reports false if pk will not
// be written: the client is gone, or its outbox was full (then the client
// is disconnected).
func (b *Broker) send(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Closed() {
		return false
	}
	b.outMu.Lock()
	o, ok := b.outboxes[cl]
	if !ok {
		o = &outbox{cl: cl}
		b.outboxes[cl] = o
	}
	b.outMu.Unlock()
	return o.push(b, pk)
}

func packetBytes(pk packets.Packet) int { return len(pk.TopicName) + len(pk.Payload) + 8 }

func (o *outbox) push(b *Broker, pk packets.Packet) bool {
	size := packetBytes(pk)
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if queued := len(o.queue); queued >= outboxMaxPackets || o.bytes+size > outboxMaxBytes {
		o.mu.Unlock()
		b.slowClients.Inc()
		b.log.Warn("disconnecting a client that does not read: its outbox is full",
			"client", o.cl.ID, "remote", o.cl.Net.Remote, "queued", queued)
		o.cl.Stop(errOutboxFull)
		b.dropOutbox(o.cl)
		return false
	}
	o.queue = append(o.queue, pk)
	o.bytes += size
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
		go o.run(b)
	}
	return true
}

// run writes queued packets in order until the queue is empty.
func (o *outbox) run(b *Broker) {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 || o.closed {
			o.running = false
			o.queue, o.bytes = nil, 0
			o.mu.Unlock()
			return
		}
		pk := o.queue[0]
		o.queue[0] = packets.Packet{}
		o.queue = o.queue[1:]
		o.bytes -= packetBytes(pk)
		o.mu.Unlock()
		if err := o.cl.WritePacket(pk); err != nil {
			b.log.Debug("write to client failed; closing it", "client", o.cl.ID, "err", err)
			o.cl.Stop(err)
			b.dropOutbox(o.cl)
		}
	}
}

// dropOutbox forgets a client's outbox (when it disconnects): what is
// still queued is discarded and its writer ends.
func (b *Broker) dropOutbox(cl *mqtt.Client) {
	b.outMu.Lock()
	o, ok := b.outboxes[cl]
	delete(b.outboxes, cl)
	b.outMu.Unlock()
	if ok {
		o.mu.Lock()
		o.closed = true
		o.mu.Unlock()
	}
}

// outboxHook forgets outboxes of closed connections.
type outboxHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *outboxHook) ID() string { return "warden-outbox" }

func (h *outboxHook) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *outboxHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) { h.b.dropOutbox(cl) }
