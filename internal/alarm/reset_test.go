package alarm

import (
	"testing"
	"time"
)

// A rule reset by hand while its condition holds raises a new alarm at the
// next sample that still meets it; one whose condition has ended does not.
func TestResetAfterManualClear(t *testing.T) {
	v := 90.0
	r := Rule{ID: "hot", TenantID: "root", Name: "hot", Severity: Critical, Scope: Scope{Model: "m"}, Enabled: true,
		Threshold: &Threshold{Metric: "temp", Op: Above, Value: &v, Hysteresis: 5}}
	e, err := New([]Rule{r})
	if err != nil {
		t.Fatal(err)
	}
	dev := DeviceFacts{ID: "d", TenantPath: "root", Model: "m"}
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	if tr := e.Observe(dev, at(0), map[string]float64{"temp": 95}); len(tr) != 1 || tr[0].Kind != Raised {
		t.Fatalf("raise: %+v", tr)
	}
	e.Reset("hot", "d", at(1))
	if tr := e.Observe(dev, at(2), map[string]float64{"temp": 96}); len(tr) != 1 || tr[0].Kind != Raised || !tr[0].At.Equal(at(2)) {
		t.Fatalf("after a manual clear with the fault still there: %+v, want a new raise", tr)
	}
	e.Reset("hot", "d", at(3))
	if tr := e.Observe(dev, at(4), map[string]float64{"temp": 80}); len(tr) != 0 {
		t.Fatalf("after a manual clear with the fault gone: %+v, want nothing", tr)
	}
	e.Reset("nope", "d", at(5))
	e.Reset("hot", "ghost", at(5))
}
