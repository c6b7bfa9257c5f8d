package tsdbpg_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
	"github.com/warden-iot/warden/internal/tsdb/tsdbtest"
)

// openEngine opens a fresh, migrated PostgreSQL engine (see package
// enginetest; skipped without a server). Its telemetry store is tsdbpg's,
// on the engine's pgx pool.
func openEngine(t *testing.T) store.Store {
	t.Helper()
	return enginetest.Postgres(t)
}

// TestStore runs the telemetry suite, each test on a fresh database.
func TestStore(t *testing.T) {
	tsdbtest.Run(t, func(t *testing.T) (store.Store, tsdbstore.Store) {
		s := openEngine(t)
		return s, s
	})
}

// countMerge is a LatestMerge whose blob counts the records merged into it.
// It fails on an empty old blob: a device without a blob gets nil.
func countMerge(_, deviceID string, old []byte, accepted []int) ([]byte, error) {
	n := 0
	if old != nil {
		var err error
		if n, err = strconv.Atoi(string(old)); err != nil {
			return nil, fmt.Errorf("old blob %q of %s: %v", old, deviceID, err)
		}
	}
	return strconv.AppendInt(nil, int64(n+len(accepted)), 10), nil
}

func createDevices(t *testing.T, s store.Store, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprint("d", i)
		if err := s.CreateDevice(t.Context(), registry.Device{ID: id, TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
			PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// checkHeadStats checks, through DevicesToSeal, that the head statistics of
// a device match its head: its row count and oldest arrival time.
func checkHeadStats(t *testing.T, s store.Store, device string) {
	t.Helper()
	head, err := s.HeadRecords(t.Context(), device)
	if err != nil {
		t.Fatal(err)
	}
	due := func(minRows int, before time.Time) bool {
		t.Helper()
		refs, err := s.DevicesToSeal(t.Context(), minRows, before, -1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(refs, tsdbstore.DeviceRef{TenantID: tenancy.RootTenantID, DeviceID: device})
	}
	never, always := time.UnixMilli(0), time.UnixMilli(1<<50)
	if len(head) == 0 {
		if due(1, always) {
			t.Errorf("%s: head empty but due for sealing", device)
		}
		return
	}
	oldest := head[0].ReceivedAt
	for _, r := range head {
		if r.ReceivedAt.Before(oldest) {
			oldest = r.ReceivedAt
		}
	}
	if !due(len(head), never) || due(len(head)+1, never) {
		t.Errorf("%s: head stats do not count %d records", device, len(head))
	}
	if !due(math.MaxInt32, oldest.Add(time.Millisecond)) || due(math.MaxInt32, oldest) {
		t.Errorf("%s: head stats do not say the oldest record arrived at %v", device, oldest)
	}
}

// Batches that overlap, with their devices in different orders, neither
// deadlock, nor accept a message twice, nor lose an update of a latest blob.
// Batches share some message ids, which makes the later ones wait for the
// earlier ones, and records without ids, which do not.
func TestOverlappingBatches(t *testing.T) {
	s := openEngine(t)
	devices := createDevices(t, s, 5)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const writers, msgs, rounds = 4, 200, 10
	batches := make([][][]tsdbstore.HeadRecord, writers)
	want := map[string]int{} // head records by device
	ids := map[string]bool{} // device/message ids
	for w := range batches {
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		for r := range rounds {
			var batch []tsdbstore.HeadRecord
			for _, i := range rng.Perm(msgs)[:msgs/50] {
				batch = append(batch, tsdbstore.HeadRecord{DeviceID: devices[i%len(devices)], MessageID: fmt.Sprint(r, "-", i)})
			}
			for _, d := range devices {
				batch = append(batch, tsdbstore.HeadRecord{DeviceID: d})
			}
			rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			for i := range batch {
				rec := &batch[i]
				rec.TenantID, rec.ReceivedAt, rec.MinTS, rec.MaxTS, rec.Blob = tenancy.RootTenantID, t0.Add(time.Duration(i)*time.Millisecond), int64(i), int64(i), []byte{byte(i)}
				if k := rec.DeviceID + "/" + rec.MessageID; rec.MessageID == "" || !ids[k] {
					ids[k] = true
					want[rec.DeviceID]++
				}
			}
			batches[w] = append(batches[w], batch)
		}
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for _, batch := range batches[w] {
				res, err := s.WriteHead(t.Context(), batch, countMerge, tsdbstore.LogMark{})
				if err != nil {
					errc <- err
					return
				}
				for _, x := range res {
					if !x.Duplicate {
						accepted.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := 0
	for _, d := range devices {
		total += want[d]
		head, err := s.HeadRecords(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := s.LatestBlob(t.Context(), tenancy.RootTenantID, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(head) != want[d] || string(blob) != fmt.Sprint(want[d]) {
			t.Errorf("%s: %d head records, latest blob %q; want %d and %q", d, len(head), blob, want[d], fmt.Sprint(want[d]))
		}
		checkHeadStats(t, s, d)
	}
	if got := accepted.Load(); got != int64(total) {
		t.Fatalf("%d records accepted, want %d", got, total)
	}
}

// Writers that race to write the first records of devices, which have no
// latest blob yet to lock, do not lose an update either.
func TestFirstWriters(t *testing.T) {
	s := openEngine(t)
	devices := createDevices(t, s, 50)
	const writers = 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			<-start
			for _, i := range rand.New(rand.NewPCG(uint64(w), 3)).Perm(len(devices)) {
				r := tsdbstore.HeadRecord{TenantID: tenancy.RootTenantID, DeviceID: devices[i], ReceivedAt: time.Now(), Blob: []byte{1}}
				if _, err := s.WriteHead(t.Context(), []tsdbstore.HeadRecord{r}, countMerge, tsdbstore.LogMark{}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for _, d := range devices {
		if blob, err := s.LatestBlob(t.Context(), tenancy.RootTenantID, d); err != nil || string(blob) != fmt.Sprint(writers) {
			t.Errorf("%s: latest blob %q, %v; want %q", d, blob, err, fmt.Sprint(writers))
		}
	}
}

// Writers neither fail nor deadlock while the latest rows they lock are
// deleted under them (by SetLatestBlob and DeleteDevice).
func TestWriteWhileDeleting(t *testing.T) {
	s := openEngine(t)
	devices := createDevices(t, s, 3)
	const writers, batches = 4, 100
	var stop atomic.Bool
	var wg, delWG sync.WaitGroup
	errc := make(chan error, writers+2)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 4))
			for range batches {
				var batch []tsdbstore.HeadRecord
				for _, i := range rng.Perm(len(devices)) {
					batch = append(batch, tsdbstore.HeadRecord{TenantID: tenancy.RootTenantID, DeviceID: devices[i], ReceivedAt: time.Now(), Blob: []byte{1}})
				}
				if _, err := s.WriteHead(t.Context(), batch, countMerge, tsdbstore.LogMark{}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	delWG.Go(func() {
		for !stop.Load() {
			for _, d := range devices {
				if err := s.SetLatestBlob(t.Context(), d, nil); err != nil {
					errc <- err
					return
				}
			}
		}
	})
	delWG.Go(func() {
		for !stop.Load() {
			d := devices[0]
			if err := s.DeleteDevice(t.Context(), tenancy.RootTenantID, d); err != nil {
				errc <- err
				return
			}
			if err := s.CreateDevice(t.Context(), registry.Device{ID: d, TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
				PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: time.Now()}); err != nil {
				errc <- err
				return
			}
		}
	})
	wg.Wait()
	stop.Store(true)
	delWG.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// Sealers running while writers add to the same heads leave head
// statistics that match the heads.
func TestSealWhileWriting(t *testing.T) {
	s := openEngine(t)
	devices := createDevices(t, s, 3)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const writers, batches, sealers = 3, 40, 3
	var stop atomic.Bool
	var seq atomic.Int64
	var wg, sealWG sync.WaitGroup
	errc := make(chan error, writers+sealers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for range batches {
				var batch []tsdbstore.HeadRecord
				for range 1 + rng.IntN(5) {
					i := seq.Add(1)
					batch = append(batch, tsdbstore.HeadRecord{TenantID: tenancy.RootTenantID, DeviceID: devices[rng.IntN(len(devices))],
						MessageID: fmt.Sprint(i), ReceivedAt: t0.Add(time.Duration(i) * time.Millisecond), MinTS: i, MaxTS: i, Blob: []byte{1}})
				}
				if _, err := s.WriteHead(t.Context(), batch, countMerge, tsdbstore.LogMark{}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for i := range sealers {
		sealWG.Go(func() {
			for n := 0; !stop.Load(); n++ {
				d := devices[(i+n)%len(devices)]
				head, err := s.HeadRecords(t.Context(), d)
				if err != nil {
					errc <- err
					return
				}
				if len(head) == 0 {
					continue
				}
				ids := make([]int64, len(head))
				for j, r := range head {
					ids[j] = r.ID
				}
				c := tsdbstore.ChunkRecord{TenantID: tenancy.RootTenantID, DeviceID: d, Metric: "x", StartTS: head[0].MinTS,
					EndTS: head[0].MaxTS, Count: len(head), Blob: []byte{2}}
				if err := s.SealHead(t.Context(), d, ids, nil, []tsdbstore.ChunkRecord{c}); err != nil && !errors.Is(err, database.ErrConflict) {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	sealWG.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for _, d := range devices {
		checkHeadStats(t, s, d)
	}
}
