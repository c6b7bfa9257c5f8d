package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/maintenance"
)

// Maintenance
//
// A tenant's maintenance plan for a device model (maintenance.Plan) applies
// to every device of that model in the tenant and below it; a plan of a
// tenant nearer the device wins. For each such device the device's shard
// keeps, next to its alarm rules: the run counter fed by the plan's run
// metric (operating hours and on→off cycles), the time of the last service
// (until one is recorded: when the monitor first saw the device) and the
// operating hours since, the recent usage, a window of bucket averages per
// trend metric and an EWMA per anomaly metric. From these come maintenance
// warnings, stored as alarms of kind alarm.KindMaintenance, severity
// warning, with rule id "maintenance:<kind>:<metric>":
//
//   - "maintenance:service:<run metric>" ("…:calendar" without a run
//     metric): the next service is due within the plan's service.warnDays or
//     overdue. It stays until a service is recorded (RecordService) or the
//     plan changes.
//   - "maintenance:trend:<metric>": the wear measure is at or beyond its
//     limit, or forecast to reach it within warnDays; cleared when that no
//     longer holds. Trends are forecast at most once an hour per device
//     (Theil–Sen costs O(n log n)), once their points span a quarter of the
//     window.
//   - "maintenance:anomaly:<metric>": a reading scored at least the
//     threshold; cleared when a score falls below half of it.
//
// Recording a service restarts the trends and the anomaly detectors (the
// wear and the signal levels change with a service) and clears their
// warnings. The state is saved with the evaluator's, under its own key, so
// counters survive a restart.

// ErrNoPlan is returned for a device whose model has no maintenance plan
// in its tenant or above.
var ErrNoPlan = errors.New("no maintenance plan for the device's model")

// Maintenance timing.
const (
	maintCheckEvery  = time.Hour           // service-due checks, and trend forecasts at most
	usageWindow      = 28 * 24 * time.Hour // the usage rate is taken over whole weeks
	usageEvery       = 3 * time.Hour       // a usage point is kept this often
	trendPoints      = 360                 // buckets in a trend's window, at most
	minTrendBucket   = 10 * time.Minute
	maintAlarmPrefix = "maintenance:"
)

// mplan is a stored plan, parsed.
type mplan struct {
	tenant      string
	plan        maintenance.Plan
	fp          string // the plan's canonical JSON
	serviceRule string
}

// planIndex is the plans by tenant and model. It is never changed once
// built, so shards share it.
type planIndex map[string]map[string]*mplan

// lookup finds the plan of the device's model in the nearest tenant of its
// path.
func (ix planIndex) lookup(f alarm.DeviceFacts) *mplan {
	if f.Model == "" || len(ix) == 0 {
		return nil
	}
	path := f.TenantPath
	for path != "" {
		seg := path
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			seg, path = path[i+1:], path[:i]
		} else {
			path = ""
		}
		if p := ix[seg][f.Model]; p != nil {
			return p
		}
	}
	return nil
}

// loadPlans reads every tenant's maintenance plans.
func (m *Monitor) loadPlans(ctx context.Context) (planIndex, error) {
	rows, err := m.st.ListMaintenancePlans(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("monitor: load maintenance plans: %w", err)
	}
	ix := planIndex{}
	for _, row := range rows {
		p, err := maintenance.ParsePlan(row.Spec)
		if err != nil {
			m.log.Error("monitor: stored maintenance plan unusable; skipped", "tenant", row.TenantID, "model", row.Model, "err", err)
			continue
		}
		p.Model = row.Model
		fp, _ := json.Marshal(p)
		mp := &mplan{tenant: row.TenantID, plan: p, fp: string(fp), serviceRule: maintAlarmPrefix + "service:calendar"}
		if p.Run != nil {
			mp.serviceRule = maintAlarmPrefix + "service:" + p.Run.Metric
		}
		if ix[row.TenantID] == nil {
			ix[row.TenantID] = map[string]*mplan{}
		}
		ix[row.TenantID][row.Model] = mp
	}
	return ix, nil
}

// PlansChanged reloads every maintenance plan. Devices whose plan changed
// keep what still applies (the run counter if the run source is the same,
// trends and anomaly detectors of the same metric and settings); warnings
// the new plan no longer has are cleared.
func (m *Monitor) PlansChanged(ctx context.Context) error {
	plans, err := m.loadPlans(ctx)
	if err != nil {
		return err
	}
	return m.broadcast(ctx, event{kind: evCall, call: func(s *shard) error {
		s.maint.maintSetPlans(plans, m.clock.Now())
		return nil
	}})
}

// MaintenanceStatus is what the monitor knows about a device's maintenance.
type MaintenanceStatus struct {
	DeviceID     string `json:"deviceId"`
	Model        string `json:"model"`
	PlanTenantID string `json:"planTenantId"` // whose plan applies
	// Running is the run metric's latest verdict; RunHours and Cycles are
	// counted since the monitor first saw the device (Cycles only for run
	// kinds "onoff" and "threshold").
	Running  bool    `json:"running"`
	RunHours float64 `json:"runHours"`
	Cycles   int64   `json:"cycles"`
	// HoursPerDay is the recent usage (the last four weeks, so that
	// weekends weigh what they do), 0 if not known yet.
	HoursPerDay float64 `json:"hoursPerDay"`
	// LastService is the last recorded service, or when the monitor first
	// saw the device.
	LastService          time.Time `json:"lastService,omitzero"`
	RunHoursSinceService float64   `json:"runHoursSinceService"`
	// NextDue is the forecast of the next service (maintenance.DueByRunHours
	// or DueByMonths in DueReason); zero without a service interval or
	// while it cannot be told.
	NextDue    time.Time       `json:"nextDue,omitzero"`
	DueReason  string          `json:"dueReason,omitempty"`
	LastSample time.Time       `json:"lastSample,omitzero"`
	Trends     []TrendStatus   `json:"trends"`
	Anomalies  []AnomalyStatus `json:"anomalies"`
	// Warnings are the rule ids of the device's active maintenance
	// warnings.
	Warnings []string `json:"warnings"`
}

// TrendStatus is a wear trend's forecast, made when asked.
type TrendStatus struct {
	Metric    string  `json:"metric"`
	Limit     float64 `json:"limit"`
	Direction string  `json:"direction"`
	Points    int     `json:"points"` // bucket averages in the window
	// OK is false until the points span a quarter of the window.
	OK          bool    `json:"ok"`
	SlopePerDay float64 `json:"slopePerDay"`
	Value       float64 `json:"value"` // the fitted value now
	// CrossAt is when the line reaches the limit; zero if it moves away
	// from it. In the past if the fitted value is already beyond.
	CrossAt time.Time `json:"crossAt,omitzero"`
	Warning bool      `json:"warning"` // the trend warning is active
}

// AnomalyStatus is an anomaly watch's latest score.
type AnomalyStatus struct {
	Metric    string    `json:"metric"`
	Score     float64   `json:"score"`
	Threshold float64   `json:"threshold"`
	Ready     bool      `json:"ready"` // warm-up over
	At        time.Time `json:"at,omitzero"`
	Warning   bool      `json:"warning"`
}

// Maintenance reports a device's maintenance status; ErrNoPlan if its
// model has no plan, database.ErrNotFound if there is no such device.
func (m *Monitor) Maintenance(ctx context.Context, deviceID string) (MaintenanceStatus, error) {
	facts, err := m.maintFacts(ctx, deviceID)
	if err != nil {
		return MaintenanceStatus{}, err
	}
	var st MaintenanceStatus
	err = m.call(ctx, deviceID, func(s *shard) error {
		var err error
		st, err = s.maint.maintStatus(facts, m.clock.Now())
		return err
	})
	return st, err
}

// RecordService records that a device was serviced at at: the run hours
// since the service restart from there, the service-due warning clears,
// and trends and anomaly detectors start afresh. The state is saved at
// once. ErrNoPlan if the model has no plan.
func (m *Monitor) RecordService(ctx context.Context, deviceID string, at time.Time) error {
	facts, err := m.maintFacts(ctx, deviceID)
	if err != nil {
		return err
	}
	if err := m.call(ctx, deviceID, func(s *shard) error { return s.maint.maintService(facts, at, m.clock.Now()) }); err != nil {
		return err
	}
	return m.shards[m.shardOf(deviceID)].save(ctx)
}

func (m *Monitor) maintFacts(ctx context.Context, deviceID string) (alarm.DeviceFacts, error) {
	if m.shards == nil {
		return alarm.DeviceFacts{}, errors.New("monitor: not started")
	}
	facts, ok := m.deviceFacts(ctx, "", deviceID)
	if !ok {
		return facts, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	return facts, nil
}

// call runs fn on the device's shard, after the records appended before,
// and waits until it ran and the alarm changes it made are stored.
func (m *Monitor) call(ctx context.Context, deviceID string, fn func(*shard) error) error {
	var fnErr error
	done := make(chan error, 1)
	ev := event{kind: evCall, done: done, call: func(s *shard) error {
		fnErr = fn(s)
		return fnErr
	}}
	if err := m.send(ctx, deviceID, ev); err != nil {
		return err
	}
	select {
	case err := <-done:
		if fnErr != nil {
			return fnErr
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- State of a shard ----

// maintEval is a partition's maintenance runtime, its Evaluator; only the
// partition's goroutine touches it, except snap (under mu).
type maintEval struct {
	log     *slog.Logger
	part    int
	plans   planIndex
	devices map[string]*mdev
	changes []alarm.Change // not yet stored

	mu   sync.Mutex
	snap []byte // JSON of the device states at the last snapshot
}

// Observe implements Evaluator.
func (s *maintEval) Observe(dev alarm.DeviceFacts, at time.Time, values map[string]float64) {
	s.maintObserve(dev, at, values)
}

// Presence implements Evaluator: connections do not count for maintenance.
func (s *maintEval) Presence(alarm.DeviceFacts, time.Time, bool) {}

// Forget implements Evaluator.
func (s *maintEval) Forget(deviceID string, at time.Time) { s.maintForget(deviceID, at) }

// Tick implements Evaluator.
func (s *maintEval) Tick(at time.Time) { s.maintTick(at) }

// Changes implements Evaluator.
func (s *maintEval) Changes() []alarm.Change { return s.takeMaintChanges() }

// Snapshot implements Evaluator.
func (s *maintEval) Snapshot() { s.maintSnapshot() }

// mdev is one device's maintenance state.
type mdev struct {
	facts alarm.DeviceFacts
	plan  *mplan

	run        *maintenance.RunCounter // run kinds onoff and threshold
	hours      float64                 // run kind hours: hours counted
	reading    float64                 // run kind hours: the counter's last reading
	hasReading bool
	running    bool

	last           time.Time // latest sample
	firstSeen      time.Time
	lastService    time.Time
	hoursAtService float64
	usage          []maintenance.UsagePoint
	nextCheck      time.Time

	trends    []*mtrend
	anomalies []*manomaly
	active    map[string]time.Time // active warnings by rule id: raised at
}

type mtrend struct {
	w        maintenance.TrendWatch
	rule     string
	bucket   time.Duration
	points   []maintenance.Point
	open     bucketAcc
	nextEval time.Time
}

// bucketAcc accumulates the samples of one bucket.
type bucketAcc struct {
	Start  time.Time `json:"start"`
	N      int       `json:"n"`
	Sum    float64   `json:"sum"`
	SumSec float64   `json:"sumSec"` // of the samples' offsets from Start
}

type manomaly struct {
	w     maintenance.AnomalyWatch
	rule  string
	e     *maintenance.EWMA
	score float64
	at    time.Time
}

func trendBucket(window time.Duration) time.Duration {
	b := (window + trendPoints - 1) / trendPoints
	b = (b + time.Minute - 1) / time.Minute * time.Minute
	return max(b, minTrendBucket)
}

// newMdev makes the state of a device first seen at at.
func newMdev(f alarm.DeviceFacts, p *mplan, at time.Time) *mdev {
	d := &mdev{facts: f, plan: p, firstSeen: at, active: map[string]time.Time{}}
	if r := p.plan.Run; r != nil && r.Kind != maintenance.RunHours {
		d.run, _ = maintenance.NewRunCounter(r.MaxGap.D())
	}
	for _, w := range p.plan.Trends {
		d.trends = append(d.trends, &mtrend{w: w, rule: maintAlarmPrefix + "trend:" + w.Metric, bucket: trendBucket(w.Window.D())})
	}
	for _, w := range p.plan.Anomalies {
		e, _ := maintenance.NewEWMA(w.Alpha, w.Warmup)
		d.anomalies = append(d.anomalies, &manomaly{w: w, rule: maintAlarmPrefix + "anomaly:" + w.Metric, e: e})
	}
	return d
}

// runHoursAt is the operating hours counted up to now.
func (d *mdev) runHoursAt(now time.Time) float64 {
	if d.run != nil {
		return d.run.RunTimeAt(now).Hours()
	}
	return d.hours
}

// runHoursAtPast estimates the operating hours counted up to a time before
// the last sample, from the usage points.
func (d *mdev) runHoursAtPast(at time.Time) float64 {
	if !at.Before(d.last) {
		return d.runHoursAt(at)
	}
	pts := append(slices.Clone(d.usage), maintenance.UsagePoint{At: d.last, RunHours: d.runHoursAt(d.last)})
	i, _ := slices.BinarySearchFunc(pts, at, func(p maintenance.UsagePoint, t time.Time) int { return p.At.Compare(t) })
	switch {
	case i == 0:
		if at.Before(pts[0].At) && (len(d.usage) == 0 || !d.usage[0].At.After(d.firstSeen)) {
			return 0 // before anything was counted
		}
		return pts[0].RunHours
	case i == len(pts):
		return pts[len(pts)-1].RunHours
	}
	a, b := pts[i-1], pts[i]
	f := float64(at.Sub(a.At)) / float64(b.At.Sub(a.At))
	return a.RunHours + f*(b.RunHours-a.RunHours)
}

// serviceBase is the last service, or when the device was first seen.
func (d *mdev) serviceBase() time.Time {
	if d.lastService.IsZero() {
		return d.firstSeen
	}
	return d.lastService
}

// nextDue forecasts the next service at now.
func (d *mdev) nextDue(now time.Time) (due time.Time, reason string, perDay, since float64) {
	since = math.Max(0, d.runHoursAt(now)-d.hoursAtService)
	perDay, ok := maintenance.UsageRate(d.usage, now, usageWindow)
	if !ok {
		perDay = 0
	}
	sp := d.plan.plan.Service
	if sp == nil {
		return time.Time{}, "", perDay, since
	}
	due, reason = sp.NextDue(d.serviceBase(), since, perDay, now)
	return due, reason, perDay, since
}

// forecast fits the trend's window at now; ok is false until the points
// span a quarter of the window.
func (t *mtrend) forecast(now time.Time) (maintenance.Forecast, bool) {
	t.trim(now)
	n := len(t.points)
	if n < 3 || t.points[n-1].At.Sub(t.points[0].At) < t.w.Window.D()/4 {
		return maintenance.Forecast{}, false
	}
	f := maintenance.Trend(t.points, *t.w.Limit, now)
	return f, f.OK
}

// warns says whether a forecast calls for the warning: the fitted value is
// at or beyond the limit, or the line moves towards it and gets there
// within warnDays. crossAt is the crossing if the line moves towards the
// limit.
func (t *mtrend) warns(f maintenance.Forecast, now time.Time) (warn bool, crossAt time.Time) {
	limit, v := *t.w.Limit, f.ValueAt(now)
	towards, beyond := f.SlopePerDay > 0, v >= limit
	if t.w.Direction == maintenance.Falling {
		towards, beyond = f.SlopePerDay < 0, v <= limit
	}
	if towards {
		crossAt = f.CrossAt
	}
	return beyond || (towards && maintenance.WarnAhead(f, now, t.w.WarnDays)), crossAt
}

func (t *mtrend) trim(now time.Time) {
	from := now.Add(-t.w.Window.D())
	i := 0
	for i < len(t.points) && t.points[i].At.Before(from) {
		i++
	}
	if i > 0 {
		t.points = slices.Delete(t.points, 0, i)
	}
}

func (t *mtrend) add(ts time.Time, v float64) {
	start := ts.Truncate(t.bucket)
	if t.open.N > 0 && !start.Equal(t.open.Start) {
		t.close()
	}
	if t.open.N == 0 {
		t.open.Start = start
	}
	t.open.N++
	t.open.Sum += v
	t.open.SumSec += ts.Sub(start).Seconds()
}

func (t *mtrend) close() {
	n := float64(t.open.N)
	at := t.open.Start.Add(time.Duration(t.open.SumSec / n * float64(time.Second)))
	t.points = append(t.points, maintenance.Point{At: at, Value: t.open.Sum / n})
	t.open = bucketAcc{}
	t.trim(at)
}

// ---- Evaluation ----

// mdevice returns the device's state, making or rebinding it when its plan
// is new or changed; nil if its model has no plan.
func (s *maintEval) mdevice(f alarm.DeviceFacts, at time.Time) *mdev {
	d := s.devices[f.ID]
	if d != nil && d.facts == f {
		return d
	}
	p := s.plans.lookup(f)
	if d == nil {
		if p == nil {
			return nil
		}
		if s.devices == nil {
			s.devices = map[string]*mdev{}
		}
		d = newMdev(f, p, at)
		s.devices[f.ID] = d
		return d
	}
	return s.rebind(d, f, p, at)
}

// rebind moves a device to a changed plan (or facts), keeping what still
// applies; nil p drops it.
func (s *maintEval) rebind(d *mdev, f alarm.DeviceFacts, p *mplan, at time.Time) *mdev {
	if p != nil && p.tenant == d.plan.tenant && p.fp == d.plan.fp {
		d.facts, d.plan = f, p
		return d
	}
	st := d.state()
	st.Device = f
	nd := s.restore(st, p, at)
	if nd == nil {
		delete(s.devices, f.ID)
	} else {
		s.devices[f.ID] = nd
	}
	return nd
}

// maintSetPlans takes new plans.
func (s *maintEval) maintSetPlans(plans planIndex, now time.Time) {
	s.plans = plans
	for _, d := range s.devices {
		s.rebind(d, d.facts, plans.lookup(d.facts), now)
	}
}

func (s *maintEval) maintObserve(f alarm.DeviceFacts, ts time.Time, values map[string]float64) {
	d := s.mdevice(f, ts)
	if d == nil || ts.Before(d.last) {
		return
	}
	d.last = ts
	if r := d.plan.plan.Run; r != nil {
		if v, ok := values[r.Metric]; ok && finite(v) {
			switch r.Kind {
			case maintenance.RunOnOff:
				d.running = v >= 0.5
				d.run.Observe(ts, d.running)
			case maintenance.RunThreshold:
				d.running = v > *r.Threshold
				d.run.Observe(ts, d.running)
			case maintenance.RunHours:
				d.running = false
				if d.hasReading && v > d.reading {
					d.hours += v - d.reading
					d.running = true
				}
				d.reading, d.hasReading = v, true
			}
		}
	}
	if n := len(d.usage); n == 0 || ts.Sub(d.usage[n-1].At) >= usageEvery {
		d.usage = append(d.usage, maintenance.UsagePoint{At: ts, RunHours: d.runHoursAt(ts)})
		i := 0
		for i < len(d.usage)-2 && d.usage[i+1].At.Before(ts.Add(-usageWindow)) {
			i++
		}
		if i > 0 {
			d.usage = slices.Delete(d.usage, 0, i)
		}
	}
	for _, t := range d.trends {
		if v, ok := values[t.w.Metric]; ok && finite(v) && (!t.w.WhileRunning || d.running) {
			t.add(ts, v)
		}
	}
	for _, a := range d.anomalies {
		v, ok := values[a.w.Metric]
		if !ok || !finite(v) || (a.w.WhileRunning && !d.running) {
			continue
		}
		expected := a.e.State().Mean
		a.score, a.at = a.e.Update(ts, v), ts
		_, on := d.active[a.rule]
		switch {
		case !on && maintenance.IsAnomaly(a.score, a.w.Threshold):
			s.maintRaise(d, a.rule, ts, a.score, fmt.Sprintf("%s %s is %s standard deviations from the expected %s",
				a.w.Metric, num(v), num3(a.score), num3(expected)))
		case on && math.Abs(a.score) < a.w.Threshold/2:
			s.maintClear(d, a.rule, ts, fmt.Sprintf("%s %s back to normal (score %s)", a.w.Metric, num(v), num3(a.score)))
		}
	}
	s.maintCheck(d, ts)
}

// maintTick runs the time-based checks of every device.
func (s *maintEval) maintTick(now time.Time) {
	for _, d := range s.devices {
		if !now.Before(d.last) {
			s.maintCheck(d, now)
		}
	}
}

// maintCheck runs the service-due check hourly and forecasts each trend
// at most once an hour (once a bucket for long windows).
func (s *maintEval) maintCheck(d *mdev, now time.Time) {
	if !now.Before(d.nextCheck) {
		d.nextCheck = now.Add(maintCheckEvery)
		s.serviceCheck(d, now)
	}
	for _, t := range d.trends {
		if now.Before(t.nextEval) {
			continue
		}
		t.nextEval = now.Add(max(maintCheckEvery, t.bucket))
		f, ok := t.forecast(now)
		warn, crossAt := false, time.Time{}
		if ok {
			warn, crossAt = t.warns(f, now)
		}
		_, on := d.active[t.rule]
		switch {
		case warn && !on:
			msg := fmt.Sprintf("%s %s, limit %s", t.w.Metric, num3(f.ValueAt(now)), num(*t.w.Limit))
			if crossAt.IsZero() || crossAt.After(now) {
				msg = fmt.Sprintf("%s forecast to reach %s on %s (in %s days; %s/day)", t.w.Metric, num(*t.w.Limit),
					crossAt.UTC().Format(time.DateOnly), num3(crossAt.Sub(now).Hours()/24), num3(f.SlopePerDay))
			}
			s.maintRaise(d, t.rule, now, f.ValueAt(now), msg)
		case on && !warn:
			why := t.w.Metric + " no longer forecast to reach " + num(*t.w.Limit) + " within " + num(t.w.WarnDays) + " days"
			s.maintClear(d, t.rule, now, why)
		}
	}
}

func (s *maintEval) serviceCheck(d *mdev, now time.Time) {
	sp := d.plan.plan.Service
	if sp == nil {
		return
	}
	if _, on := d.active[d.plan.serviceRule]; on {
		return
	}
	due, reason, _, since := d.nextDue(now)
	if due.IsZero() || due.After(now.Add(days(sp.WarnDays))) {
		return
	}
	msg := "service due " + due.UTC().Format(time.DateOnly)
	switch reason {
	case maintenance.DueByRunHours:
		msg += fmt.Sprintf(" (run hours): %s of %s run hours since the last service", num3(since), num(sp.EveryRunHours))
	case maintenance.DueByMonths:
		msg += fmt.Sprintf(" (calendar): every %d months", sp.EveryMonths)
	}
	msg += " on " + d.serviceBase().UTC().Format(time.DateOnly)
	s.maintRaise(d, d.plan.serviceRule, now, due.Sub(now).Hours()/24, msg)
}

// maintService records, at now, a service done at at. The warnings it
// ends clear when it is recorded (at the service if that is later): they
// were shown until then.
func (s *maintEval) maintService(f alarm.DeviceFacts, at, now time.Time) error {
	d := s.mdevice(f, at)
	if d == nil {
		return ErrNoPlan
	}
	d.hoursAtService = d.runHoursAtPast(at)
	d.lastService = at
	d.nextCheck = time.Time{}
	when := at.UTC().Format(time.DateOnly)
	clearAt := latest(at, now)
	s.maintClear(d, d.plan.serviceRule, clearAt, "service recorded on "+when)
	for _, t := range d.trends {
		i := 0
		for i < len(t.points) && t.points[i].At.Before(at) {
			i++
		}
		t.points = slices.Delete(t.points, 0, i)
		if t.open.N > 0 && t.open.Start.Before(at) {
			t.open = bucketAcc{}
		}
		t.nextEval = time.Time{}
		s.maintClear(d, t.rule, clearAt, "trend restarted: service recorded on "+when)
	}
	for _, a := range d.anomalies {
		a.e, _ = maintenance.NewEWMA(a.w.Alpha, a.w.Warmup)
		a.score, a.at = 0, time.Time{}
		s.maintClear(d, a.rule, clearAt, "detector restarted: service recorded on "+when)
	}
	s.maintSnapshot()
	return nil
}

// maintForget drops a deleted device, clearing its warnings.
func (s *maintEval) maintForget(deviceID string, at time.Time) {
	d := s.devices[deviceID]
	if d == nil {
		return
	}
	for _, rule := range slices.Sorted(maps.Keys(d.active)) {
		s.maintClear(d, rule, at, "cleared: device forgotten")
	}
	delete(s.devices, deviceID)
}

func (s *maintEval) maintRaise(d *mdev, rule string, at time.Time, v float64, msg string) {
	if _, on := d.active[rule]; on {
		return
	}
	d.active[rule] = at
	s.maintChange(d.facts, d.plan.tenant, "raised", rule, at, v, msg)
}

func (s *maintEval) maintClear(d *mdev, rule string, at time.Time, msg string) {
	raised, on := d.active[rule]
	if !on {
		return
	}
	delete(d.active, rule)
	s.maintChange(d.facts, d.plan.tenant, "cleared", rule, latest(at, raised), 0, msg)
}

func (s *maintEval) maintChange(f alarm.DeviceFacts, planTenant, kind, rule string, at time.Time, v float64, msg string) {
	tenant := tenantOf(f.TenantPath)
	if tenant == "" {
		tenant = planTenant
	}
	s.changes = append(s.changes, alarm.Change{Kind: kind, TenantID: tenant, RuleID: rule, DeviceID: f.ID,
		SiteID: f.SiteID, Alarm: alarm.KindMaintenance, Severity: string(alarm.Warning), Message: msg,
		Value: v, At: at, By: "auto"})
}

// takeMaintChanges hands over the maintenance alarm changes not yet stored.
func (s *maintEval) takeMaintChanges() []alarm.Change {
	c := s.changes
	s.changes = nil
	return c
}

// maintStatus is the status of a device at now.
func (s *maintEval) maintStatus(f alarm.DeviceFacts, now time.Time) (MaintenanceStatus, error) {
	d := s.devices[f.ID]
	if d == nil || d.facts != f {
		p := s.plans.lookup(f)
		if p == nil {
			return MaintenanceStatus{}, ErrNoPlan
		}
		if d == nil {
			d = newMdev(f, p, time.Time{}) // nothing seen yet; not kept
		} else {
			d = s.rebind(d, f, p, now)
		}
	}
	now = latest(now, d.last)
	st := MaintenanceStatus{DeviceID: f.ID, Model: d.plan.plan.Model, PlanTenantID: d.plan.tenant,
		Running: d.running, RunHours: d.runHoursAt(now), LastService: d.serviceBase(), LastSample: d.last,
		Trends: []TrendStatus{}, Anomalies: []AnomalyStatus{}, Warnings: []string{}}
	st.Warnings = append(st.Warnings, slices.Sorted(maps.Keys(d.active))...)
	if d.run != nil {
		st.Cycles = d.run.Cycles()
	}
	if !d.last.IsZero() {
		st.NextDue, st.DueReason, st.HoursPerDay, st.RunHoursSinceService = d.nextDue(now)
	}
	for _, t := range d.trends {
		ts := TrendStatus{Metric: t.w.Metric, Limit: *t.w.Limit, Direction: t.w.Direction, Points: len(t.points)}
		if f, ok := t.forecast(now); ok {
			ts.OK, ts.SlopePerDay, ts.Value = true, f.SlopePerDay, f.ValueAt(now)
			_, ts.CrossAt = t.warns(f, now)
			ts.Points = f.Points
		}
		_, ts.Warning = d.active[t.rule]
		st.Trends = append(st.Trends, ts)
	}
	for _, a := range d.anomalies {
		as := AnomalyStatus{Metric: a.w.Metric, Score: a.score, Threshold: a.w.Threshold, Ready: a.e.Ready(), At: a.at}
		_, as.Warning = d.active[a.rule]
		st.Anomalies = append(st.Anomalies, as)
	}
	return st, nil
}

// ---- Saved state ----

// maintDeviceState is a device's maintenance state as saved.
type maintDeviceState struct {
	Device         alarm.DeviceFacts        `json:"device"`
	PlanTenant     string                   `json:"planTenant"`
	Run            *runState                `json:"run,omitempty"`
	Last           time.Time                `json:"last,omitzero"`
	FirstSeen      time.Time                `json:"firstSeen,omitzero"`
	LastService    time.Time                `json:"lastService,omitzero"`
	HoursAtService float64                  `json:"hoursAtService,omitempty"`
	Usage          []maintenance.UsagePoint `json:"usage,omitempty"`
	NextCheck      time.Time                `json:"nextCheck,omitzero"`
	Trends         []trendState             `json:"trends,omitempty"`
	Anomalies      []anomalyState           `json:"anomalies,omitempty"`
	Active         map[string]time.Time     `json:"active,omitempty"`
}

type runState struct {
	Source     maintenance.RunSource `json:"source"`
	Counter    maintenance.RunState  `json:"counter"`
	Hours      float64               `json:"hours,omitempty"`
	Reading    float64               `json:"reading,omitempty"`
	HasReading bool                  `json:"hasReading,omitempty"`
	Running    bool                  `json:"running,omitempty"`
}

type trendState struct {
	Metric       string              `json:"metric"`
	Bucket       time.Duration       `json:"bucket"`
	WhileRunning bool                `json:"whileRunning,omitempty"`
	Points       []maintenance.Point `json:"points,omitempty"`
	Open         bucketAcc           `json:"open"`
	NextEval     time.Time           `json:"nextEval,omitzero"`
}

type anomalyState struct {
	Watch maintenance.AnomalyWatch `json:"watch"`
	EWMA  maintenance.EWMAState    `json:"ewma"`
	Score float64                  `json:"score,omitempty"`
	At    time.Time                `json:"at,omitzero"`
}

// state exports d; it shares nothing with d.
func (d *mdev) state() maintDeviceState {
	st := maintDeviceState{Device: d.facts, PlanTenant: d.plan.tenant, Last: d.last, FirstSeen: d.firstSeen,
		LastService: d.lastService, HoursAtService: d.hoursAtService, Usage: slices.Clone(d.usage),
		NextCheck: d.nextCheck, Active: map[string]time.Time{}}
	if r := d.plan.plan.Run; r != nil {
		rs := &runState{Source: *r, Hours: d.hours, Reading: d.reading, HasReading: d.hasReading, Running: d.running}
		if d.run != nil {
			rs.Counter = d.run.State()
		}
		st.Run = rs
	}
	for _, t := range d.trends {
		st.Trends = append(st.Trends, trendState{Metric: t.w.Metric, Bucket: t.bucket, WhileRunning: t.w.WhileRunning,
			Points: slices.Clone(t.points), Open: t.open, NextEval: t.nextEval})
	}
	for _, a := range d.anomalies {
		st.Anomalies = append(st.Anomalies, anomalyState{Watch: a.w, EWMA: a.e.State(), Score: a.score, At: a.at})
	}
	for k, v := range d.active {
		st.Active[k] = v
	}
	return st
}

// restore makes a device's state under plan p from a saved state, keeping
// what p still has, and clears (at now) the saved warnings p does not
// have. nil p: the device has no plan any more; every warning clears.
func (s *maintEval) restore(st maintDeviceState, p *mplan, now time.Time) *mdev {
	if p == nil {
		for _, rule := range slices.Sorted(maps.Keys(st.Active)) {
			s.maintChange(st.Device, st.PlanTenant, "cleared", rule, latest(now, st.Active[rule]), 0,
				"cleared: no maintenance plan for the device any more")
		}
		return nil
	}
	d := newMdev(st.Device, p, st.FirstSeen)
	d.last, d.lastService, d.nextCheck = st.Last, st.LastService, st.NextCheck
	if r := p.plan.Run; r != nil && st.Run != nil && sameRun(*r, st.Run.Source) {
		if d.run != nil && d.run.Restore(st.Run.Counter) != nil {
			d.run, _ = maintenance.NewRunCounter(r.MaxGap.D())
		}
		d.hours, d.reading, d.hasReading, d.running = st.Run.Hours, st.Run.Reading, st.Run.HasReading, st.Run.Running
		d.hoursAtService, d.usage = st.HoursAtService, slices.Clone(st.Usage)
	}
	// Otherwise the run source changed: the hours count afresh.
	for _, t := range d.trends {
		for _, ts := range st.Trends {
			if ts.Metric == t.w.Metric && ts.Bucket == t.bucket && ts.WhileRunning == t.w.WhileRunning {
				t.points, t.open = slices.Clone(ts.Points), ts.Open
			}
		}
	}
	for _, a := range d.anomalies {
		for _, as := range st.Anomalies {
			w := as.Watch
			w.Threshold = a.w.Threshold
			if w == a.w && a.e.Restore(as.EWMA) == nil {
				a.score, a.at = as.Score, as.At
			}
		}
	}
	kept := map[string]bool{}
	if p.plan.Service != nil {
		kept[p.serviceRule] = true
	}
	for _, t := range d.trends {
		kept[t.rule] = true
	}
	for _, a := range d.anomalies {
		kept[a.rule] = true
	}
	for _, rule := range slices.Sorted(maps.Keys(st.Active)) {
		at := st.Active[rule]
		if kept[rule] && st.PlanTenant == p.tenant {
			d.active[rule] = at
			continue
		}
		s.maintChange(st.Device, st.PlanTenant, "cleared", rule, latest(now, at), 0, "cleared: maintenance plan changed")
	}
	return d
}

func sameRun(a, b maintenance.RunSource) bool {
	ta, tb := math.NaN(), math.NaN()
	if a.Threshold != nil {
		ta = *a.Threshold
	}
	if b.Threshold != nil {
		tb = *b.Threshold
	}
	return a.Metric == b.Metric && a.Kind == b.Kind && a.MaxGap == b.MaxGap &&
		(ta == tb || (math.IsNaN(ta) && math.IsNaN(tb)))
}

// maintStart sets up a shard's maintenance from the plans and the saved
// device states of the shard.
func (s *maintEval) maintStart(plans planIndex, saved []maintDeviceState, now time.Time) {
	s.plans = plans
	s.devices = map[string]*mdev{}
	for _, st := range saved {
		if st.Device.ID == "" || s.devices[st.Device.ID] != nil {
			continue
		}
		if d := s.restore(st, plans.lookup(st.Device), now); d != nil {
			s.devices[st.Device.ID] = d
		}
	}
}

// maintSnapshot keeps the maintenance state for the next save.
func (s *maintEval) maintSnapshot() {
	states := make([]maintDeviceState, 0, len(s.devices))
	for _, id := range slices.Sorted(maps.Keys(s.devices)) {
		states = append(states, s.devices[id].state())
	}
	blob, err := json.Marshal(states)
	if err != nil {
		s.log.Error("monitor: encode maintenance state", "partition", s.part, "err", err)
		return
	}
	s.mu.Lock()
	s.snap = blob
	s.mu.Unlock()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func days(d float64) time.Duration { return time.Duration(d * float64(24*time.Hour)) }

func num(v float64) string  { return strconv.FormatFloat(v, 'g', -1, 64) }
func num3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
