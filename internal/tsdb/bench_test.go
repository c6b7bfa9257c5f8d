package tsdb

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// BenchmarkYearDownsample: one metric, a year at one point a minute, into
// 1,000 buckets. `warden bench storage` reports the same as year_downsample_ms.
func BenchmarkYearDownsample(b *testing.B) {
	te := newTestEngine(b, Config{})
	te.device(b, tenancy.RootTenantID, "y")
	end := now0
	start := end.Add(-365 * 24 * time.Hour)
	pts := walkSeries(8, start, time.Minute, 365*24*60)
	for i := 0; i < len(pts); i += 1000 {
		msg := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: "y", ReceivedAt: now0}
		for _, p := range pts[i:min(i+1000, len(pts))] {
			msg.Points = append(msg.Points, telemetry.Point{Metric: "t", TS: time.UnixMilli(p.ts), Value: p.v})
		}
		if _, err := te.Write(b.Context(), []telemetry.Message{msg}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := te.SealDevice(b.Context(), tenancy.RootTenantID, "y"); err != nil {
		b.Fatal(err)
	}
	w, _ := BucketWidth(start, end, 1000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := te.Downsample(b.Context(), tenancy.RootTenantID, "y", "t", start, end, w); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetLatest: the newest ten values of each of 10,000 devices.
func BenchmarkFleetLatest(b *testing.B) {
	te := newTestEngine(b, Config{})
	var msgs []telemetry.Message
	for i := range 10_000 {
		id := fmt.Sprintf("d%05d", i)
		te.device(b, tenancy.RootTenantID, id)
		m := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: id, ReceivedAt: now0}
		for k := range 10 {
			m.Points = append(m.Points, telemetry.Point{Metric: fmt.Sprint("m", k), TS: now0, Value: float64(k)})
		}
		msgs = append(msgs, m)
	}
	if _, err := te.Write(b.Context(), msgs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if page, err := te.FleetLatest(b.Context(), tenancy.RootTenantID, "", 10_000); err != nil || len(page) != 10_000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFleet: one group commit of 1,000 messages from 1,000
// devices, 10 points each — the shape of `warden bench ingest`.
func BenchmarkWriteFleet(b *testing.B) {
	te := newTestEngine(b, Config{})
	const devices = 1000
	for i := range devices {
		te.device(b, tenancy.RootTenantID, fmt.Sprintf("d%04d", i))
	}
	msgs := make([]telemetry.Message, devices)
	seq := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range msgs {
			seq++
			ts := now0.Add(time.Duration(seq) * time.Millisecond)
			m := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: fmt.Sprintf("d%04d", i), MessageID: fmt.Sprint(seq), ReceivedAt: ts}
			for k := range 10 {
				m.Points = append(m.Points, telemetry.Point{Metric: fmt.Sprint("m", k), TS: ts, Value: float64(seq % 100)})
			}
			msgs[i] = m
		}
		if _, err := te.Write(b.Context(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*devices)/b.Elapsed().Seconds(), "msg/s")
}
