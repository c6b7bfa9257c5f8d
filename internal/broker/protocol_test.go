package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// connectBytes encodes an MQTT 5 CONNECT with the given raw properties.
func connectBytes(props []byte) []byte {
	var vh bytes.Buffer
	vh.Write([]byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30})
	vh.WriteByte(byte(len(props))) // < 128 in these tests
	vh.Write(props)
	vh.Write([]byte{0, 1, 'c'}) // client id
	return append([]byte{packets.Connect << 4, byte(vh.Len())}, vh.Bytes()...)
}

func TestScanConnectReceiveMaximum(t *testing.T) {
	user := []byte{0x26, 0, 1, 'k', 0, 2, 'v', 'v'}
	for _, c := range []struct {
		name  string
		props []byte
		zero  bool
	}{
		{"absent", nil, false},
		{"zero", []byte{0x21, 0, 0}, true},
		{"ten", []byte{0x21, 0, 10}, false},
		{"zero after other properties", append(append([]byte{0x11, 0, 0, 0, 60, 0x22, 0, 5, 0x17, 1}, user...), 0x21, 0, 0), true},
		{"one byte then zero", []byte{0x21, 1, 0}, false},
	} {
		b := connectBytes(c.props)
		// Whole, and fed one byte at a time.
		var whole, drip connectScanner
		whole.feed(b)
		for i := range b {
			drip.feed(b[i : i+1])
		}
		if !whole.done || !drip.done || whole.zeroReceiveMax != c.zero || drip.zeroReceiveMax != c.zero {
			t.Errorf("%s: done %v/%v, zero %v/%v; want zero %v", c.name, whole.done, drip.done, whole.zeroReceiveMax, drip.zeroReceiveMax, c.zero)
		}
	}
	// MQTT 3.1.1 and other packets are not scanned further.
	var s connectScanner
	s.feed([]byte{packets.Connect << 4, 10, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30})
	if !s.done || s.zeroReceiveMax {
		t.Errorf("3.1.1 CONNECT: done %v zero %v", s.done, s.zeroReceiveMax)
	}
	s = connectScanner{}
	s.feed([]byte{packets.Publish << 4})
	if !s.done {
		t.Error("PUBLISH first: not done")
	}
}

func FuzzScanConnect(f *testing.F) {
	f.Add(connectBytes([]byte{0x21, 0, 0}))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s connectScanner
		s.feed(b) // must not panic
		if len(s.buf) > maxScannedConnect {
			t.Fatalf("kept %d bytes", len(s.buf))
		}
	})
}

// TestOutboxDoesNotBlockAndEnds: sending to a client that does not read
// never blocks; when its outbox is full it is disconnected, and its writer
// goroutine ends.
func TestOutboxDoesNotBlockAndEnds(t *testing.T) {
	b := &Broker{log: slog.New(slog.NewTextHandler(io.Discard, nil)), outboxes: map[*mqtt.Client]*outbox{},
		slowClients: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
	srv := mqtt.New(&mqtt.Options{Logger: b.log})
	server, peer := net.Pipe() // peer never reads: every write blocks
	defer peer.Close()
	cl := srv.NewClient(server, "t", "mute", false)
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: 1}

	start := time.Now()
	sent := 0
	for b.send(cl, ack) {
		sent++
		if sent > outboxMaxPackets+1 {
			t.Fatal("outbox not bounded")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("sending took %v", d)
	}
	if !cl.Closed() {
		t.Fatal("client with a full outbox not disconnected")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.outMu.Lock()
		n := len(b.outboxes)
		b.outMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("outbox of a closed client kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.send(cl, ack) {
		t.Error("send to a closed client reported success")
	}
}
