package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestReplayIsExactlyOnce: a pipeline started again on the same commit log
// and database replays from the mark its last write recorded, so messages
// without an id (which nothing else deduplicates) are not stored twice;
// records the database never got are written by the next start.
func TestReplayIsExactlyOnce(t *testing.T) {
	st := newSQLite(t)
	dir := t.TempDir()
	open := func() *commitlog.Log {
		l, err := commitlog.Open(dir, commitlog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	p := newPipeline(t, st, Config{CommitLog: l, LogID: l.ID()})
	go p.Run(context.Background())
	const n = 50
	for k := range n {
		ts := serverNow.Add(-time.Duration(k+1) * time.Second).Format(time.RFC3339)
		if _, err := submit(t, p, rawMsg("d1", "", fmt.Sprintf(`{"ts": %q, "values": {"t": %d}}`, ts, k))).wait(t); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	l.Close()
	if got := samples(t, st, "d1", "t"); len(got) != n {
		t.Fatalf("%d samples, want %d", len(got), n)
	}
	for round := range 2 {
		l := open()
		p := newPipeline(t, st, Config{CommitLog: l, LogID: l.ID()})
		go p.Run(context.Background())
		caughtUp(t, p)
		p.Close()
		l.Close()
		if got := samples(t, st, "d1", "t"); len(got) != n {
			t.Fatalf("restart %d: %d samples, want %d (replayed twice?)", round, len(got), n)
		}
		if got := counter(t, p.metrics.messages); got != 0 {
			t.Fatalf("restart %d: %v messages written again", round, got)
		}
	}
}

// TestCommitLogHoldsNothingInClear: the commit log's files hold neither
// the device, its message id nor its values in clear; the tenant's id is
// the only name in them.
func TestCommitLogHoldsNothingInClear(t *testing.T) {
	st := &memStore{}
	dir := t.TempDir()
	l, err := commitlog.Open(dir, commitlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := newPipeline(t, st, Config{CommitLog: l, LogID: l.ID()})
	go p.Run(context.Background())
	defer p.Close()
	if _, err := submit(t, p, rawMsg("pump-in-the-cellar", "$.mid=secret-mid-4711", `{"marker_metric_xyz": 123456.789}`)).wait(t); err != nil {
		t.Fatal(err)
	}
	if err := p.Presence(t.Context(), tenancy.RootTenantID, "heater-in-the-attic", true, serverNow); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p)
	var all []byte
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, clear := range []string{"pump-in-the-cellar", "heater-in-the-attic", "secret-mid-4711", "marker_metric_xyz", "123456.789"} {
		if bytes.Contains(all, []byte(clear)) {
			t.Errorf("the commit log holds %q in clear", clear)
		}
	}
	if !bytes.Contains(all, []byte(tenancy.RootTenantID)) {
		t.Errorf("the commit log does not name the tenant: is it the log of this test?")
	}
}

func FuzzDecodeLogMessage(f *testing.F) {
	f.Add(appendMessage(nil, &telemetry.Message{DeviceID: "d", MessageID: "m", ReceivedAt: serverNow,
		Points: []telemetry.Point{{Metric: "t", TS: serverNow, Value: 1.5}}, System: map[string]string{"ct": "x"}}))
	f.Add(appendMessage(nil, &telemetry.Message{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b, "t")
		if err != nil {
			return
		}
		again := appendMessage(nil, &m)
		m2, err := decodeMessage(again, "t")
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !bytes.Equal(appendMessage(nil, &m2), again) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzDecodeLogRecord(f *testing.F) {
	f.Add(encodeRecord(recordMessage, "root", []byte("sealed")))
	f.Add(encodeRecord(recordPresence, "", nil))
	f.Add(appendPresence(nil, "d", true, serverNow))
	f.Fuzz(func(t *testing.T, b []byte) {
		if kind, tenant, sealed, err := decodeRecord(b); err == nil {
			k2, t2, s2, err := decodeRecord(encodeRecord(kind, tenant, sealed))
			if err != nil || k2 != kind || t2 != tenant || !bytes.Equal(s2, sealed) {
				t.Fatalf("record does not survive re-encoding: %v", err)
			}
		}
		decodePresence(b)
	})
}
