package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/simulate"
)

// ConnectionsOptions configure "warden bench connections".
type ConnectionsOptions struct {
	// Client is the API client of the Warden server.
	Client *client.Client
	// Tenant is where the devices are registered (InTenant).
	Tenant *Tenant
	// Levels are the numbers of open connections to measure at, rising.
	Levels []int
	// MQTTAddr is the MQTT TLS address (default: the hub host name).
	MQTTAddr string
	// RootCAs verifies the server certificate.
	RootCAs *x509.CertPool
	// DialConcurrency bounds the connections being made at once (default 64).
	DialConcurrency int
	// Probes is how many QoS 1 messages the probe device sends, one after
	// another, at each level (default 50).
	Probes int
	// Settle is how long the server is left alone at each level before its
	// memory is read (default 3 s).
	Settle time.Duration
	// Progress receives progress notes.
	Progress io.Writer
}

// ConnectionLevel is what one level measured.
type ConnectionLevel struct {
	Connections   int     // open at the level
	Failures      int     // connections refused or failed on the way
	ConnectPerSec float64 // rate at which the level's new connections were made
	ServerRSSMB   float64
	ServerHeapMB  float64 // Go heap in use
	KBPerConn     float64 // RSS above the idle server, per open connection
	HeapKBPerConn float64
	ProbeP50      time.Duration
	ProbeP99      time.Duration
}

// ConnectionsResult is what the run measured.
type ConnectionsResult struct {
	Levels []ConnectionLevel
	// Baseline and After are the server's RSS before the first connection
	// and once all were closed (memory returned: After near Baseline).
	BaselineRSSMB, AfterRSSMB   float64
	BaselineHeapMB, AfterHeapMB float64
}

// Connections registers the devices of the highest level, then opens idle
// MQTT connections (TLS, SAS token, keep-alive 0) level by level; at each
// it prints the connect rate, the server's memory per connection and the
// PUBACK latency of a probe device. Then it closes them all and reads the
// server's memory again.
func Connections(ctx context.Context, o ConnectionsOptions, out io.Writer) (ConnectionsResult, error) {
	var res ConnectionsResult
	if len(o.Levels) == 0 || !slices.IsSorted(o.Levels) || o.Levels[0] <= 0 {
		return res, errors.New("bench: connection levels must be positive and rising")
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 64
	}
	if o.Probes <= 0 {
		o.Probes = 50
	}
	if o.Settle <= 0 {
		o.Settle = 3 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	most := o.Levels[len(o.Levels)-1]
	width := max(5, len(strconv.Itoa(most)))
	cfgs := make([]simulate.DialConfig, most+1) // the last one is the probe
	for i := range cfgs {
		cfgs[i].DeviceID = fmt.Sprintf("%s-%0*d", o.Tenant.DevicePrefix("conn"), width, i+1)
		cfgs[i].RootCAs = o.RootCAs
	}
	if err := registerAll(ctx, o.Tenant, cfgs, o.MQTTAddr, o.DialConcurrency, o.Progress); err != nil {
		return res, err
	}
	probeCfg := cfgs[most]
	probe, err := simulate.Dial(ctx, probeCfg)
	if err != nil {
		return res, fmt.Errorf("bench: probe device: %w", err)
	}
	defer probe.Close()

	metrics := func() map[string]float64 {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		text, err := o.Client.Metrics(ctx)
		if err != nil {
			fmt.Fprintf(o.Progress, "bench: server metrics: %v\n", err)
			return nil
		}
		return parseMetrics(text)
	}
	sleepCtx(ctx, o.Settle)
	m := metrics()
	res.BaselineRSSMB = metric(m, "process_resident_memory_bytes") / 1e6
	res.BaselineHeapMB = metric(m, "go_memstats_heap_inuse_bytes") / 1e6
	fmt.Fprintf(out, "baseline_rss_mb: %.1f MB\nbaseline_heap_mb: %.1f MB\n", res.BaselineRSSMB, res.BaselineHeapMB)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	failures := 0
	var firstErr error
	for _, level := range o.Levels {
		want := level - len(conns)
		fmt.Fprintf(o.Progress, "bench: opening %d connections (to %d)\n", want, level)
		began := time.Now()
		opened, failed, err := openIdle(ctx, cfgs[len(conns):level], o.DialConcurrency, o.Progress)
		took := time.Since(began)
		conns = append(conns, opened...)
		failures += failed
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		open := 0
		for _, c := range conns {
			if c != nil {
				open++
			}
		}
		sleepCtx(ctx, o.Settle)
		m := metrics()
		lv := ConnectionLevel{Connections: open, Failures: failures,
			ConnectPerSec: float64(want-failed) / took.Seconds(),
			ServerRSSMB:   metric(m, "process_resident_memory_bytes") / 1e6,
			ServerHeapMB:  metric(m, "go_memstats_heap_inuse_bytes") / 1e6}
		if open > 0 {
			lv.KBPerConn = (lv.ServerRSSMB - res.BaselineRSSMB) * 1e3 / float64(open)
			lv.HeapKBPerConn = (lv.ServerHeapMB - res.BaselineHeapMB) * 1e3 / float64(open)
		}
		lv.ProbeP50, lv.ProbeP99 = probeLatency(ctx, probe, o.Probes, level)
		res.Levels = append(res.Levels, lv)
		p := "conn_" + strconv.Itoa(level) + "_"
		fmt.Fprintf(out, "%sopen: %d connections\n%sfailures: %d connections\n%sconnect_per_s: %.0f conn/s\n", p, open, p, failures, p, lv.ConnectPerSec)
		fmt.Fprintf(out, "%sserver_rss_mb: %.1f MB\n%skb_per_conn: %.1f KB\n%sheap_kb_per_conn: %.1f KB\n", p, lv.ServerRSSMB, p, lv.KBPerConn, p, lv.HeapKBPerConn)
		fmt.Fprintf(out, "%sprobe_p50_ms: %.2f ms\n%sprobe_p99_ms: %.2f ms\n", p, ms(lv.ProbeP50), p, ms(lv.ProbeP99))
		if open < level {
			fmt.Fprintf(o.Progress, "warning: %d of %d connections open; first error: %v\n", open, level, firstErr)
			break
		}
	}
	fmt.Fprintf(o.Progress, "bench: closing %d connections\n", len(conns))
	for i, c := range conns {
		if c != nil {
			c.Close()
			conns[i] = nil
		}
	}
	sleepCtx(ctx, 2*o.Settle)
	m = metrics()
	res.AfterRSSMB = metric(m, "process_resident_memory_bytes") / 1e6
	res.AfterHeapMB = metric(m, "go_memstats_heap_inuse_bytes") / 1e6
	fmt.Fprintf(out, "after_close_rss_mb: %.1f MB\nafter_close_heap_mb: %.1f MB\n", res.AfterRSSMB, res.AfterHeapMB)
	return res, nil
}

// openIdle opens an idle device connection for each of cfgs: TLS, CONNECT
// with a SAS token and keep-alive 0, CONNACK; then nothing. A connection
// costs the load generator a socket and a TLS state, not an MQTT client.
func openIdle(ctx context.Context, cfgs []simulate.DialConfig, conc int, progress io.Writer) ([]net.Conn, int, error) {
	conns := make([]net.Conn, len(cfgs))
	var opened atomic.Int64
	stop := ticker(progress, "opening connections", func() string {
		return fmt.Sprintf("%d of %d", opened.Load(), len(cfgs))
	})
	defer stop()
	failures, first := eachLimited(ctx, len(cfgs), conc, func(i int) error {
		c, err := dialIdle(ctx, cfgs[i])
		if err != nil {
			return err
		}
		conns[i] = c
		opened.Add(1)
		return nil
	})
	return conns, failures, first
}

func dialIdle(ctx context.Context, cfg simulate.DialConfig) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	host, _, _ := net.SplitHostPort(cfg.HubHost)
	if host == "" {
		host = cfg.HubHost
	}
	d := tls.Dialer{Config: &tls.Config{RootCAs: cfg.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", cfg.DeviceID, err)
	}
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: cfg.DeviceID,
			UsernameFlag: true, Username: []byte(cfg.HubHost + "/" + cfg.DeviceID + "/?api-version=2021-04-12"),
			PasswordFlag: true, Password: []byte(sas.Sign(cfg.Key, sas.DeviceResource(cfg.HubHost, cfg.DeviceID), time.Now().Add(24*time.Hour)))}}
	if err := pk.ConnectEncode(&buf); err != nil {
		c.Close()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write(buf.Bytes()); err != nil {
		c.Close()
		return nil, fmt.Errorf("device %s: CONNECT: %w", cfg.DeviceID, err)
	}
	var ack [4]byte // CONNACK of MQTT 3.1.1: 0x20 0x02 flags code
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("device %s: CONNACK: %w", cfg.DeviceID, err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("device %s: CONNACK % x", cfg.DeviceID, ack)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// probeLatency sends n QoS 1 messages from the probe device, one at a time,
// and returns the PUBACK latency's median and 99th percentile.
func probeLatency(ctx context.Context, probe *simulate.Device, n, level int) (p50, p99 time.Duration) {
	lat := make([]uint32, 0, n)
	for i := range n {
		began := time.Now()
		body := fmt.Appendf(nil, `{"probe": %d}`, i)
		if err := probe.Publish(ctx, fmt.Sprintf("probe-%d-%d-%d", level, i, began.UnixNano()), body); err != nil {
			return time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
		}
		lat = append(lat, uint32(time.Since(began).Microseconds()))
	}
	return percentile(lat, 0.50), percentile(lat, 0.99)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
