package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// webhookSink is an HTTP receiver that checks every call's signature.
type webhookSink struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	events []string // "event:alarm-state"
	bad    int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secret == nil {
		w.WriteHeader(http.StatusServiceUnavailable) // not set up yet: Warden retries
		return
	}
	if err := notify.Verify(s.secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), time.Minute); err != nil {
		s.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		Event string `json:"event"`
		Alarm struct {
			State string `json:"state"`
		} `json:"alarm"`
	}
	_ = json.Unmarshal(body, &p)
	s.events = append(s.events, p.Event+":"+p.Alarm.State)
}

func (s *webhookSink) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

type alarmView struct {
	ID         int64   `json:"id"`
	RuleID     string  `json:"ruleId"`
	DeviceID   string  `json:"deviceId"`
	Severity   string  `json:"severity"`
	State      string  `json:"state"`
	Value      float64 `json:"value"`
	AckedBy    string  `json:"ackedBy"`
	ClearedBy  string  `json:"clearedBy"`
	Retriggers int     `json:"retriggers"`
}

func (e *env) alarms(q url.Values) []alarmView {
	e.t.Helper()
	var page struct {
		Alarms []alarmView `json:"alarms"`
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/alarms", q, nil, &page); err != nil {
		e.t.Fatalf("list alarms: %v", err)
	}
	return page.Alarms
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlarmLifecycleEndToEnd: a rule made through the API, a device over
// MQTT crossing it, the alarm in the API, a signed webhook for each step,
// acknowledgement, automatic clearing, and an offline alarm.
func TestAlarmLifecycleEndToEnd(t *testing.T) {
	t.Parallel()
	alarmLifecycle(t, start(t, withWebhooksInside()))
}

// TestAlarmLifecyclePostgres is the same on PostgreSQL.
func TestAlarmLifecyclePostgres(t *testing.T) {
	t.Parallel()
	alarmLifecycle(t, start(t, withWebhooksInside(), withDatabase(pgtest.URL(t))))
}

func alarmLifecycle(t *testing.T, e *env) {
	ctx := e.ctx()
	sink := &webhookSink{t: t}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)

	key := e.device("boiler-1")
	if err := e.api.Do(ctx, "PATCH", "/api/v1/devices/boiler-1", nil, map[string]any{"model": "pellet-heater"}, nil); err != nil {
		t.Fatal(err)
	}
	// Validation names the field.
	err := e.api.Do(ctx, "POST", "/api/v1/rules", nil, map[string]any{"name": "bad", "severity": "critical", "enabled": true,
		"scope": map[string]string{"model": "pellet-heater"}, "threshold": map[string]any{"metric": "flue_temp", "op": "above",
			"value": 200, "hysteresis": -1}}, nil)
	if err == nil || !strings.Contains(err.Error(), "hysteresis") {
		t.Fatalf("invalid rule: %v", err)
	}
	var rule struct {
		ID string `json:"id"`
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/rules", nil, map[string]any{"name": "flue gas too hot", "severity": "critical",
		"enabled": true, "scope": map[string]string{"model": "pellet-heater"},
		"threshold": map[string]any{"metric": "flue_temp", "op": "above", "value": 200, "hysteresis": 10}}, &rule); err != nil {
		t.Fatal(err)
	}
	var offline struct {
		ID string `json:"id"`
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/rules", nil, map[string]any{"name": "heater offline", "severity": "warning",
		"enabled": true, "scope": map[string]string{"deviceId": "boiler-1"}, "offline": map[string]any{"after": "2s"}}, &offline); err != nil {
		t.Fatal(err)
	}
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/webhooks", nil, map[string]any{"url": hs.URL + "/warden"}, &hook); err != nil {
		t.Fatal(err)
	}
	if hook.Secret == "" {
		t.Fatal("webhook secret not shown on creation")
	}
	sink.mu.Lock()
	sink.secret = []byte(hook.Secret)
	sink.mu.Unlock()

	c := e.deviceConn("boiler-1", key)
	topic := events("boiler-1", "")
	c.mustPublish(t, topic, `{"flue_temp": 150}`)
	c.mustPublish(t, topic, `{"flue_temp": 215}`)
	var a alarmView
	waitFor(t, "the alarm in the API", 5*time.Second, func() bool {
		for _, x := range e.alarms(url.Values{"device": {"boiler-1"}, "state": {"active"}}) {
			if x.RuleID == rule.ID {
				a = x
				return true
			}
		}
		return false
	})
	if a.Severity != "critical" || a.Value != 215 {
		t.Errorf("alarm %+v", a)
	}
	// Within the hysteresis band the alarm stays; above again it retriggers.
	c.mustPublish(t, topic, `{"flue_temp": 195}`)
	c.mustPublish(t, topic, `{"flue_temp": 230}`)
	if err := e.api.Do(ctx, "POST", "/api/v1/alarms/"+itoa(a.ID)+"/ack", nil, map[string]string{"comment": "technician on the way"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/alarms/"+itoa(a.ID)+"/ack", nil, map[string]string{}, nil); err == nil {
		t.Error("acknowledged twice")
	}
	c.mustPublish(t, topic, `{"flue_temp": 185}`) // below 200 − 10: cleared
	waitFor(t, "the alarm to clear", 5*time.Second, func() bool {
		var got alarmView
		if err := e.api.Do(ctx, "GET", "/api/v1/alarms/"+itoa(a.ID), nil, nil, &got); err != nil {
			t.Fatal(err)
		}
		a = got
		return got.State == "cleared"
	})
	if a.Retriggers != 1 || a.ClearedBy != "auto" || a.AckedBy == "" {
		t.Errorf("cleared alarm %+v: want one retrigger, cleared automatically, acknowledged", a)
	}
	waitFor(t, "webhooks raised, retriggered, acknowledged, cleared", 10*time.Second, func() bool {
		got := map[string]bool{}
		for _, ev := range sink.seen() {
			got[ev] = true
		}
		return got["raised:active"] && got["retriggered:active"] && got["acknowledged:active"] && got["cleared:cleared"]
	})
	if sink.bad != 0 {
		t.Errorf("%d webhook calls with a bad signature", sink.bad)
	}

	// Cleared by hand while the fault is still there: the next reading
	// that still meets the rule raises a new alarm.
	c.mustPublish(t, topic, `{"flue_temp": 240}`)
	var again alarmView
	waitFor(t, "a new alarm", 5*time.Second, func() bool {
		for _, x := range e.alarms(url.Values{"device": {"boiler-1"}, "state": {"active"}}) {
			if x.RuleID == rule.ID {
				again = x
				return true
			}
		}
		return false
	})
	if err := e.api.Do(ctx, "POST", "/api/v1/alarms/"+itoa(again.ID)+"/clear", nil, map[string]string{"comment": "reset"}, nil); err != nil {
		t.Fatal(err)
	}
	c.mustPublish(t, topic, `{"flue_temp": 241}`)
	waitFor(t, "the fault to raise again after a manual clear", 5*time.Second, func() bool {
		for _, x := range e.alarms(url.Values{"device": {"boiler-1"}, "state": {"active"}}) {
			if x.RuleID == rule.ID && x.ID != again.ID {
				return true
			}
		}
		return false
	})
	c.mustPublish(t, topic, `{"flue_temp": 150}`)

	// Offline: the device goes away; two seconds later the alarm is up.
	c.c.Disconnect(100)
	waitFor(t, "the offline alarm", 8*time.Second, func() bool {
		for _, x := range e.alarms(url.Values{"device": {"boiler-1"}, "state": {"active"}}) {
			if x.RuleID == offline.ID {
				return true
			}
		}
		return false
	})
	// It clears when the device is back.
	c = e.deviceConn("boiler-1", key)
	waitFor(t, "the offline alarm to clear", 5*time.Second, func() bool {
		for _, x := range e.alarms(url.Values{"device": {"boiler-1"}, "state": {"active"}}) {
			if x.RuleID == offline.ID {
				return false
			}
		}
		return true
	})
	_ = c
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
