package tsdb

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

var now0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type testEngine struct {
	*Engine
	st    store.Store
	keys  *keyring.Keyring
	clock *clocktest.Fake
}

func newTestEngine(t testing.TB, cfg Config) *testEngine {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newTestEngineOn(t, cfg, st)
}

// newTestEngineOn makes a test engine on an open store.
func newTestEngineOn(t testing.TB, cfg Config, st store.Store) *testEngine {
	t.Helper()
	var err error
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	te := &testEngine{st: st, clock: clocktest.New(now0)}
	if te.keys, err = keyring.New(t.Context(), bytes.Repeat([]byte{9}, keyring.KeySize), st, te.clock.Now); err != nil {
		t.Fatal(err)
	}
	te.Engine = New(cfg, st, te.keys, slog.New(slog.DiscardHandler), te.clock)
	return te
}

func (te *testEngine) device(t testing.TB, tenant, id string) {
	t.Helper()
	err := te.st.CreateDevice(t.Context(), registry.Device{ID: id, TenantID: tenant, Status: registry.DeviceEnabled,
		PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: now0})
	if err != nil {
		t.Fatal(err)
	}
}

// write sends one message per point of metric m for device dev.
func (te *testEngine) write(t testing.TB, dev string, pts []tv, metric string) {
	t.Helper()
	var msgs []telemetry.Message
	for _, p := range pts {
		msgs = append(msgs, telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: dev, ReceivedAt: te.clock.Now(),
			Points: []telemetry.Point{{Metric: metric, TS: time.UnixMilli(p.ts), Value: p.v}}})
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 500)
		if _, err := te.Write(t.Context(), msgs[:n]); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

func (te *testEngine) rangeAll(t testing.TB, dev, metric string) []tv {
	t.Helper()
	var out []tv
	err := te.Range(t.Context(), tenancy.RootTenantID, dev, metric, time.UnixMilli(0), now0.Add(365*24*time.Hour), 0, func(s tsdbstore.Sample) bool {
		out = append(out, tv{s.TS.UnixMilli(), s.Value})
		return true
	})
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	return out
}

// walkSeries makes n points every step from start: a random walk with 2
// decimals.
func walkSeries(seed uint64, start time.Time, step time.Duration, n int) []tv {
	r := rand.New(rand.NewPCG(seed, 1))
	v := 50.0
	out := make([]tv, n)
	for i := range out {
		v += float64(r.IntN(101)-50) / 100
		out[i] = tv{start.Add(time.Duration(i) * step).UnixMilli(), math.Round(v*100) / 100}
	}
	return out
}

func sameSeries(t *testing.T, what string, got, want []tv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d points, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: point %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestWriteSealQuery(t *testing.T) {
	te := newTestEngine(t, Config{SealRows: 100, ChunkPoints: 120})
	te.device(t, tenancy.RootTenantID, "pump-1")
	want := walkSeries(1, now0.Add(-10*time.Hour), 10*time.Second, 1000)
	te.write(t, "pump-1", want, "temperature")

	sameSeries(t, "from the head", te.rangeAll(t, "pump-1", "temperature"), want)
	// The sealer leaves the newest SealRows messages in the head.
	n, err := te.SealDue(t.Context())
	if err != nil || n != len(want)-100 {
		t.Fatalf("SealDue = %d, %v; want %d points sealed", n, err, len(want)-100)
	}
	if head, _ := te.st.HeadRecords(t.Context(), "pump-1"); len(head) != 100 {
		t.Fatalf("%d head records left after SealDue, want 100", len(head))
	}
	sameSeries(t, "from chunks and head", te.rangeAll(t, "pump-1", "temperature"), want)
	if n, err := te.SealDevice(t.Context(), tenancy.RootTenantID, "pump-1"); err != nil || n != 100 {
		t.Fatalf("SealDevice = %d, %v; want the last 100 points sealed", n, err)
	}
	if head, _ := te.st.HeadRecords(t.Context(), "pump-1"); len(head) != 0 {
		t.Fatalf("%d head records left after SealDevice", len(head))
	}
	sameSeries(t, "from chunks", te.rangeAll(t, "pump-1", "temperature"), want)
	_, chunks, _ := te.st.ReadSeries(t.Context(), tenancy.RootTenantID, "pump-1", "temperature", 0, math.MaxInt64)
	if len(chunks) != 9 { // 1000 points in chunks of at most 120
		t.Fatalf("%d chunks, want 9", len(chunks))
	}
	for _, c := range chunks {
		if c.Count > 120 || bytes.Contains(c.Blob, []byte("temperature")) {
			t.Fatalf("chunk %+v: too big or not encrypted", c)
		}
	}

	// More points after sealing fill the last chunk before a new one starts.
	more := walkSeries(2, now0.Add(-10*time.Hour+1000*10*time.Second), 10*time.Second, 30)
	te.write(t, "pump-1", more, "temperature")
	if _, err := te.SealDevice(t.Context(), tenancy.RootTenantID, "pump-1"); err != nil {
		t.Fatal(err)
	}
	_, chunks, _ = te.st.ReadSeries(t.Context(), tenancy.RootTenantID, "pump-1", "temperature", 0, math.MaxInt64)
	if len(chunks) != 9 || chunks[8].Count != 70 {
		t.Fatalf("after 30 more points: %d chunks, last holds %d; want 9 and 70", len(chunks), chunks[len(chunks)-1].Count)
	}
	sameSeries(t, "after appending", te.rangeAll(t, "pump-1", "temperature"), append(want, more...))

	// Range limits and early stops.
	var got []tsdbstore.Sample
	te.Range(t.Context(), tenancy.RootTenantID, "pump-1", "temperature", time.UnixMilli(want[10].ts), time.UnixMilli(want[20].ts), 5,
		func(s tsdbstore.Sample) bool { got = append(got, s); return true })
	if len(got) != 5 || got[0].TS.UnixMilli() != want[10].ts {
		t.Fatalf("limited range = %v", got)
	}
}

// TestMessagesListedAfterSealing: the sealer leaves at least the newest
// SealRows messages of the last SealAge in the head, so a device's message
// list still shows them, with their properties, right after sealing.
func TestMessagesListedAfterSealing(t *testing.T) {
	te := newTestEngine(t, Config{}) // the defaults: 240 messages, 2 hours
	te.device(t, tenancy.RootTenantID, "pump-1")
	send := func(from, n int, every time.Duration) {
		t.Helper()
		for i := from; i < from+n; i++ {
			te.clock.Advance(every)
			msg := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: "pump-1", MessageID: fmt.Sprintf("m%d", i),
				ReceivedAt: te.clock.Now(), App: map[string]string{"seq": strconv.Itoa(i)},
				Points: []telemetry.Point{{Metric: "inletPressure", TS: te.clock.Now(), Value: float64(i)}}}
			if _, err := te.Write(t.Context(), []telemetry.Message{msg}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, wantNewest, wantCount int) {
		t.Helper()
		ms, err := te.RecentMessages(t.Context(), "pump-1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != wantCount {
			t.Fatalf("%s: %d messages listed, want %d", what, len(ms), wantCount)
		}
		for j, m := range ms {
			i := wantNewest - j
			if m.MessageID != fmt.Sprintf("m%d", i) || m.App["seq"] != strconv.Itoa(i) ||
				len(m.Points) != 1 || m.Points[0].Value != float64(i) {
				t.Fatalf("%s: message %d = %+v, want m%d with its properties and point", what, j, m, i)
			}
		}
	}

	// A busy device: a message a second. Nothing is due below 480.
	send(0, 479, time.Second)
	if n, err := te.SealDue(t.Context()); err != nil || n != 0 {
		t.Fatalf("SealDue with 479 messages = %d, %v; want nothing sealed", n, err)
	}
	send(479, 121, time.Second)
	if n, err := te.SealDue(t.Context()); err != nil || n != 600-240 {
		t.Fatalf("SealDue with 600 messages = %d, %v; want %d points sealed", n, err, 600-240)
	}
	check("after sealing a busy device", 599, 240)
	// Queries still see every point, from chunks and head.
	var got int
	err := te.Range(t.Context(), tenancy.RootTenantID, "pump-1", "inletPressure", now0, te.clock.Now().Add(time.Second), 0,
		func(tsdbstore.Sample) bool { got++; return true })
	if err != nil || got != 600 {
		t.Fatalf("Range after sealing = %d points, %v; want 600", got, err)
	}

	// Then a slow one: a message every 10 minutes for 5 hours. The head is
	// due once its oldest message is 4 hours old, and keeps the last 2.
	send(600, 30, 10*time.Minute)
	if _, err := te.SealDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after sealing a slow device", 629, 12) // m618 (110 minutes old) is kept, m617 (2 hours) sealed
}

// TestLateAndOutOfOrder: an edge box that was offline uploads days of
// buffered points, newest first or oldest first, over sealed data; queries
// return exactly the points sent, once each.
func TestLateAndOutOfOrder(t *testing.T) {
	for _, order := range []string{"oldest first", "newest first", "shuffled"} {
		t.Run(order, func(t *testing.T) {
			te := newTestEngine(t, Config{SealRows: 50, ChunkPoints: 200})
			te.device(t, tenancy.RootTenantID, "heater-P1")
			all := walkSeries(3, now0.Add(-6*24*time.Hour), time.Minute, 6*24*60)
			// The last day arrived live and was sealed.
			live := all[5*24*60:]
			te.write(t, "heater-P1", live, "flueGasTemperature")
			if _, err := te.SealDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Then five days of buffer, in batches of 100 samples per message.
			buffer := append([]tv(nil), all[:5*24*60]...)
			switch order {
			case "newest first":
				for i, j := 0, len(buffer)-1; i < j; i, j = i+1, j-1 {
					buffer[i], buffer[j] = buffer[j], buffer[i]
				}
			case "shuffled":
				r := rand.New(rand.NewPCG(4, 4))
				r.Shuffle(len(buffer), func(i, j int) { buffer[i], buffer[j] = buffer[j], buffer[i] })
			}
			// Some points are sent twice (a box resending after a lost ack).
			buffer = append(buffer, buffer[:100]...)
			for start := 0; start < len(buffer); start += 100 {
				part := buffer[start:min(start+100, len(buffer))]
				msg := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: "heater-P1", ReceivedAt: te.clock.Now()}
				for _, p := range part {
					msg.Points = append(msg.Points, telemetry.Point{Metric: "flueGasTemperature", TS: time.UnixMilli(p.ts), Value: p.v})
				}
				if _, err := te.Write(t.Context(), []telemetry.Message{msg}); err != nil {
					t.Fatal(err)
				}
				if start%1000 == 0 { // seal now and then, mid-upload
					if _, err := te.SealDue(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
			}
			sameSeries(t, "before final seal", te.rangeAll(t, "heater-P1", "flueGasTemperature"), all)
			if _, err := te.SealDevice(t.Context(), tenancy.RootTenantID, "heater-P1"); err != nil {
				t.Fatal(err)
			}
			sameSeries(t, "sealed", te.rangeAll(t, "heater-P1", "flueGasTemperature"), all)
			_, chunks, _ := te.st.ReadSeries(t.Context(), tenancy.RootTenantID, "heater-P1", "flueGasTemperature", 0, math.MaxInt64)
			for i := 1; i < len(chunks); i++ {
				if chunks[i].StartTS <= chunks[i-1].EndTS {
					t.Fatalf("chunks %d and %d overlap: %+v %+v", i-1, i, chunks[i-1], chunks[i])
				}
			}
			// The latest value is the newest point, not the last one sent.
			l, err := te.Latest(t.Context(), tenancy.RootTenantID, "heater-P1")
			if err != nil || len(l) != 1 || l[0].TS.UnixMilli() != all[len(all)-1].ts || l[0].Value != all[len(all)-1].v {
				t.Fatalf("latest = %+v, %v; want the newest point %v", l, err, all[len(all)-1])
			}
		})
	}
}

func TestSameInstantLaterWins(t *testing.T) {
	te := newTestEngine(t, Config{})
	te.device(t, tenancy.RootTenantID, "d")
	te.write(t, "d", []tv{{1000, 1}, {2000, 2}}, "x")
	if _, err := te.SealDevice(t.Context(), tenancy.RootTenantID, "d"); err != nil {
		t.Fatal(err)
	}
	te.write(t, "d", []tv{{2000, 20}, {3000, 3}, {3000, 30}}, "x")
	want := []tv{{1000, 1}, {2000, 20}, {3000, 30}}
	sameSeries(t, "head over chunk", te.rangeAll(t, "d", "x"), want)
	if _, err := te.SealDevice(t.Context(), tenancy.RootTenantID, "d"); err != nil {
		t.Fatal(err)
	}
	sameSeries(t, "sealed", te.rangeAll(t, "d", "x"), want)
}

// TestDownsampleMatchesPoints compares Downsample, which takes whole chunks
// from their summaries, with folding every raw point.
func TestDownsampleMatchesPoints(t *testing.T) {
	te := newTestEngine(t, Config{SealRows: 100, ChunkPoints: 60})
	te.device(t, tenancy.RootTenantID, "d")
	pts := walkSeries(5, now0.Add(-48*time.Hour), 30*time.Second, 48*120)
	te.write(t, "d", pts[:4000], "x")
	if _, err := te.SealDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	te.write(t, "d", pts[4000:], "x") // the rest stays in the head
	from, to := now0.Add(-47*time.Hour-13*time.Minute), now0.Add(-time.Hour)
	for _, width := range []time.Duration{time.Minute, 17 * time.Minute, 2 * time.Hour, 12 * time.Hour} {
		got, err := te.Downsample(t.Context(), tenancy.RootTenantID, "d", "x", from, to, width)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := NewDownsampler(from, to, width)
		for _, p := range pts {
			ref.Add(time.UnixMilli(p.ts), p.v)
		}
		want := ref.Buckets()
		if len(got) != len(want) {
			t.Fatalf("width %v: %d buckets, want %d", width, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Start != w.Start || g.Count != w.Count || g.Min != w.Min || g.Max != w.Max ||
				g.First != w.First || g.Last != w.Last || math.Abs(g.Sum-w.Sum) > 1e-6 {
				t.Fatalf("width %v bucket %d = %+v, want %+v", width, i, g, w)
			}
		}
	}
}

// TestCryptoShredding: once a tenant's keys are destroyed, its chunks, head
// records, latest values and rejected payloads no longer decrypt — read
// straight from the database, as an attacker with a backup would.
func TestCryptoShredding(t *testing.T) {
	te := newTestEngine(t, Config{SealRows: 10})
	if err := te.st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME", CreatedAt: now0}); err != nil {
		t.Fatal(err)
	}
	te.device(t, "acme", "acme-pump")
	te.device(t, tenancy.RootTenantID, "own-pump")
	pts := walkSeries(6, now0.Add(-time.Hour), time.Minute, 50)
	for _, dev := range []struct{ tenant, id string }{{"acme", "acme-pump"}, {tenancy.RootTenantID, "own-pump"}} {
		var msgs []telemetry.Message
		for _, p := range pts {
			msgs = append(msgs, telemetry.Message{TenantID: dev.tenant, DeviceID: dev.id, ReceivedAt: te.clock.Now(),
				Points: []telemetry.Point{{Metric: "temperature", TS: time.UnixMilli(p.ts), Value: p.v}}})
		}
		if _, err := te.Write(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
		if err := te.AddRejected(t.Context(), tsdbstore.Rejected{TenantID: dev.tenant, DeviceID: dev.id, Reason: "x",
			Payload: []byte(`{"secret": "value"}`), ReceivedAt: te.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := te.SealDevice(t.Context(), "acme", "acme-pump"); err != nil {
		t.Fatal(err)
	}
	// A late message leaves a head record for acme as well.
	if _, err := te.Write(t.Context(), []telemetry.Message{{TenantID: "acme", DeviceID: "acme-pump", ReceivedAt: te.clock.Now(),
		Points: []telemetry.Point{{Metric: "temperature", TS: now0, Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	acmeHead := te.rawHead(t, "acme-pump")
	_, acmeChunks, _ := te.st.ReadSeries(t.Context(), "acme", "acme-pump", "temperature", 0, math.MaxInt64)
	acmeLatest, _ := te.st.LatestBlob(t.Context(), "acme", "acme-pump")
	if len(acmeChunks) == 0 || len(acmeHead) == 0 || acmeLatest == nil {
		t.Fatal("test set-up: acme has no chunks, head or latest")
	}
	// Before: everything opens.
	if _, _, err := te.decodeChunk(t.Context(), acmeChunks[0]); err != nil {
		t.Fatal(err)
	}

	if err := te.keys.Shred(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	// A fresh keyring, as after a restart or on another node: no cached keys.
	master := bytes.Repeat([]byte{9}, keyring.KeySize)
	fresh, err := keyring.New(t.Context(), master, te.st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]struct {
		blob []byte
		aad  []byte
	}{
		"chunk":  {acmeChunks[0].Blob, chunkAAD("acme-pump", "temperature")},
		"head":   {acmeHead[0].Blob, headAAD("acme-pump")},
		"latest": {acmeLatest, latestAAD("acme-pump")},
	} {
		for _, k := range []*keyring.Keyring{te.keys, fresh} {
			if _, err := k.Open(t.Context(), "acme", raw.blob, raw.aad); !errors.Is(err, keyring.ErrShredded) {
				t.Errorf("%s blob after shredding: %v, want ErrShredded", name, err)
			}
		}
	}
	if _, err := te.ListRejected(t.Context(), "acme", "acme-pump", 10); !errors.Is(err, keyring.ErrShredded) {
		t.Errorf("rejected payload after shredding: %v, want ErrShredded", err)
	}
	if err := te.Range(t.Context(), "acme", "acme-pump", "temperature", time.UnixMilli(0), now0, 0, func(tsdbstore.Sample) bool { return true }); !errors.Is(err, keyring.ErrShredded) {
		t.Errorf("Range after shredding: %v, want ErrShredded", err)
	}
	// The other tenant is untouched.
	if got := te.rangeAll(t, "own-pump", "temperature"); len(got) != len(pts) {
		t.Errorf("other tenant lost data: %d points", len(got))
	}
	// Sealing a shredded tenant's head drops what can never be read.
	if _, err := te.SealDevice(t.Context(), "acme", "acme-pump"); err != nil {
		t.Fatalf("sealing after shredding: %v", err)
	}
}

func (te *testEngine) rawHead(t *testing.T, dev string) []tsdbstore.HeadRecord {
	t.Helper()
	h, err := te.st.HeadRecords(t.Context(), dev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRetention(t *testing.T) {
	te := newTestEngine(t, Config{SealRows: 10, ChunkPoints: 500})
	te.device(t, tenancy.RootTenantID, "meter-1")
	// Ten days, one point an hour.
	pts := walkSeries(7, now0.Add(-10*24*time.Hour), time.Hour, 240)
	te.write(t, "meter-1", pts[:200], "consumption")
	if _, err := te.SealDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	te.write(t, "meter-1", pts[200:], "consumption")
	te.write(t, "meter-1", pts[:1], "battery") // a metric that went quiet long ago
	if n, err := te.EnforceRetention(t.Context()); err != nil || n != 0 {
		t.Fatalf("no retention set: deleted %d, %v", n, err)
	}
	if err := te.st.SetTenantRetention(t.Context(), tenancy.RootTenantID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := te.EnforceRetention(t.Context()); err != nil {
		t.Fatal(err)
	}
	cutoff := now0.Add(-3 * 24 * time.Hour).UnixMilli()
	var want []tv
	for _, p := range pts {
		if p.ts >= cutoff {
			want = append(want, p)
		}
	}
	sameSeries(t, "after retention", te.rangeAll(t, "meter-1", "consumption"), want)
	if got := te.rangeAll(t, "meter-1", "battery"); len(got) != 0 {
		t.Fatalf("expired battery points kept: %v", got)
	}
	l, _ := te.Latest(t.Context(), tenancy.RootTenantID, "meter-1")
	if len(l) != 1 || l[0].Metric != "consumption" {
		t.Fatalf("latest after retention = %+v; want only consumption (battery expired)", l)
	}
	// Nothing older than the cutoff is left in the database at all.
	_, chunks, _ := te.st.ReadSeries(t.Context(), tenancy.RootTenantID, "meter-1", "consumption", 0, math.MaxInt64)
	for _, c := range chunks {
		if c.StartTS < cutoff {
			t.Fatalf("chunk %+v starts before the cutoff", c)
		}
	}
}

func TestFleetLatest(t *testing.T) {
	te := newTestEngine(t, Config{})
	for i := range 5 {
		id := fmt.Sprintf("dev-%d", i)
		te.device(t, tenancy.RootTenantID, id)
		if i != 3 {
			te.write(t, id, []tv{{now0.UnixMilli(), float64(i)}}, "v")
		}
	}
	page, err := te.FleetLatest(t.Context(), tenancy.RootTenantID, "dev-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].DeviceID != "dev-2" || page[0].Metrics[0].Value != 2 || page[1].DeviceID != "dev-3" || len(page[1].Metrics) != 0 {
		t.Fatalf("page = %+v", page)
	}
}

func FuzzDecodePoints(f *testing.F) {
	f.Add(appendPoints(nil, []telemetry.Point{{Metric: "temperature", TS: now0, Value: 71.5}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := decodePoints(b, nil)
		if err != nil {
			return
		}
		var in []telemetry.Point
		for _, p := range ps {
			in = append(in, telemetry.Point{Metric: p.metric, TS: time.UnixMilli(p.ts), Value: p.v})
		}
		again, err := decodePoints(appendPoints(nil, in), names{})
		if err != nil || len(again) != len(ps) {
			t.Fatalf("re-encoding %d points failed: %v", len(ps), err)
		}
	})
}

func FuzzSplitChunk(f *testing.F) {
	plain, _, _ := encodeChunk([]int64{1, 2, 3}, []float64{1.5, 2.5, 3.5})
	f.Add(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = splitChunk(b)
	})
}

func FuzzDecodeHead(f *testing.F) {
	f.Add(appendHead(nil, telemetry.Message{Points: []telemetry.Point{{Metric: "t", TS: now0, Value: 1}},
		System: map[string]string{"mid": "1"}, App: map[string]string{"a": "b"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeHead(b)
	})
}
