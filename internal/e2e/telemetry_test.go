package e2e

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/tsdb"
)

func TestTelemetryRoundTripSQLite(t *testing.T) {
	t.Parallel()
	roundTrip(t, start(t))
}

func TestTelemetryRoundTripPostgres(t *testing.T) {
	t.Parallel()
	roundTrip(t, start(t, withDatabase(pgtest.URL(t))))
}

// roundTrip: a device connects over TLS with a SAS token, publishes every
// documented payload shape at QoS 1, and the values come back through the
// API: latest, raw history and downsampled history.
func roundTrip(t *testing.T, e *env) {
	key := e.device("pump-1")
	dev := e.deviceConn("pump-1", key)

	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	dev.mustPublish(t, events("pump-1", "%24.mid=flat-1&%24.ct=application%2Fjson&%24.ce=utf-8"),
		`{"temperature": 71.5, "inletPressure": 0.12}`)
	dev.mustPublish(t, events("pump-1", "$.mid=ts-1"),
		`{"ts": "`+t0.Format(time.RFC3339)+`", "values": {"temperature": 70.0, "motorCurrent": 4.25}}`)
	var buf []string
	for i := 1; i <= 5; i++ {
		ts := t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		buf = append(buf, `{"ts":"`+ts+`","values":{"temperature":`+strings.Repeat("7", 1)+`0.`+string(rune('0'+i))+`}}`)
	}
	dev.mustPublish(t, events("pump-1", "%24.mid=buffer-1"), "["+strings.Join(buf, ",")+"]")

	latest, err := e.api.Latest(e.ctx(), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range latest {
		got[m.Name] = m.Value
		if m.TS.IsZero() {
			t.Errorf("metric %s has no timestamp", m.Name)
		}
	}
	want := map[string]float64{"temperature": 71.5, "inletPressure": 0.12, "motorCurrent": 4.25}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("latest %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}

	q := url.Values{"from": {t0.Format(time.RFC3339)}, "to": {t0.Add(10 * time.Minute).Format(time.RFC3339)}}
	h, err := e.api.History(e.ctx(), "pump-1", "temperature", q)
	if err != nil {
		t.Fatal(err)
	}
	wantRaw := []float64{70, 70.1, 70.2, 70.3, 70.4, 70.5}
	if len(h.Points) != len(wantRaw) {
		t.Fatalf("raw history = %+v, want values %v", h.Points, wantRaw)
	}
	for i, p := range h.Points {
		if p.Value != wantRaw[i] || !p.TS.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("point %d = %+v, want %v at %v", i, p, wantRaw[i], t0.Add(time.Duration(i)*time.Minute))
		}
	}

	q.Set("bucket", "3m")
	h, err = e.api.History(e.ctx(), "pump-1", "temperature", q)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Buckets) != 2 {
		t.Fatalf("downsampled = %+v, want 2 buckets", h.Buckets)
	}
	b := h.Buckets[0]
	if b.Count != 3 || b.Min != 70 || b.Max != 70.2 || b.First != 70 || b.Last != 70.2 || b.Avg != 70.1 || !b.Start.Equal(t0) {
		t.Errorf("bucket 0 = %+v", b)
	}
	q.Del("bucket")
	q.Set("buckets", "2")
	if h, err = e.api.History(e.ctx(), "pump-1", "temperature", q); err != nil || len(h.Buckets) != 2 || h.Buckets[1].Count != 1 {
		t.Errorf("buckets=2 over 10 minutes: %+v, %v; want [0,5m) with 5 points and [5m,10m) with 1", h.Buckets, err)
	}

	devs, err := e.api.Devices(e.ctx())
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices = %+v, %v", devs, err)
	}
	if d := devs[0]; !d.Connected || d.LastSeen == nil || d.LastIP != "127.0.0.1" || d.Status != "enabled" {
		t.Errorf("device listing = %+v; want connected, last seen, last IP 127.0.0.1", d)
	}
	if n := e.metricValue("warden_points_stored_total"); n != 9 {
		t.Errorf("warden_points_stored_total = %v, want 9", n)
	}
	if n := e.metricValue("warden_devices_connected"); n != 1 {
		t.Errorf("warden_devices_connected = %v, want 1", n)
	}
}

func TestDuplicateMessageIDStoredOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("heater-P0042")
	dev := e.deviceConn("heater-P0042", key)
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	body := `{"ts":"` + ts + `","values":{"flueGasTemperature":142.5}}`
	dev.mustPublish(t, events("heater-P0042", "%24.mid=abc"), body)
	// The same id again, even with other values: acknowledged, not stored.
	dev.mustPublish(t, events("heater-P0042", "%24.mid=abc"), `{"flueGasTemperature":999}`)
	// An id may also come in the body.
	dev.mustPublish(t, events("heater-P0042", ""), `{"mid":"body-id","boilerTemperature":60}`)
	dev.mustPublish(t, events("heater-P0042", ""), `{"mid":"body-id","boilerTemperature":61}`)

	h, err := e.api.History(e.ctx(), "heater-P0042", "flueGasTemperature", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Points) != 1 || h.Points[0].Value != 142.5 {
		t.Fatalf("points = %+v, want only the first copy", h.Points)
	}
	if h, _ := e.api.History(e.ctx(), "heater-P0042", "boilerTemperature", url.Values{}); len(h.Points) != 1 || h.Points[0].Value != 60 {
		t.Fatalf("body-id points = %+v, want one (60)", h.Points)
	}
	if n := e.metricValue("warden_messages_duplicate_total"); n != 2 {
		t.Errorf("warden_messages_duplicate_total = %v, want 2", n)
	}
	dev.stillUp(t)
}

func TestMalformedPayloadIsKeptAndConnectionStaysUp(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("coffee-7")
	dev := e.deviceConn("coffee-7", key)
	bad := []struct{ bag, body, reason string }{
		{"%24.mid=bad-1", `{"boilerTemperature": 94.`, "not JSON"},
		{"%24.mid=bad-2", `{"boilerTemperature": "hot"}`, "want a number"},
		{"%24.mid=bad-3&%24.ct=text%2Fplain", `94.1`, "not JSON"},
	}
	for _, b := range bad {
		dev.mustPublish(t, events("coffee-7", b.bag), b.body)
	}
	dev.mustPublish(t, events("coffee-7", "%24.mid=good"), `{"brewCount": 1200}`)
	dev.stillUp(t)

	rs, err := e.api.Rejected(e.ctx(), "coffee-7", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(bad) {
		t.Fatalf("rejected = %+v, want %d", rs, len(bad))
	}
	for i, b := range bad {
		r := rs[len(bad)-1-i] // newest first
		if r.MessageID != strings.TrimPrefix(strings.Split(b.bag, "&")[0], "%24.mid=") ||
			r.Payload != b.body || !strings.Contains(r.Reason, b.reason) {
			t.Errorf("rejected[%d] = %+v, want payload %q and a reason with %q", i, r, b.body, b.reason)
		}
	}
	if n := e.metricValue("warden_messages_rejected_total"); n != 3 {
		t.Errorf("warden_messages_rejected_total = %v, want 3", n)
	}
	if l, err := e.api.Latest(e.ctx(), "coffee-7"); err != nil || len(l) != 1 || l[0].Value != 1200 {
		t.Errorf("latest = %+v, %v; want only the good message", l, err)
	}
}

func TestFleetLatestSeveralMetricsAndRetention(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, id := range []string{"m-1", "m-2", "m-3"} {
		key := e.device(id)
		dev := e.deviceConn(id, key)
		dev.mustPublish(t, events(id, "%24.mid=1"), `{"consumption": 10.5, "battery": 3.61}`)
	}
	var fleet struct {
		Devices []struct {
			DeviceID string `json:"deviceId"`
			Metrics  []struct {
				Name  string  `json:"name"`
				Value float64 `json:"value"`
			} `json:"metrics"`
		} `json:"devices"`
		Next string `json:"next"`
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/telemetry/latest", url.Values{"limit": {"2"}}, nil, &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Devices) != 2 || fleet.Devices[0].DeviceID != "m-1" || len(fleet.Devices[0].Metrics) != 2 || fleet.Next != "m-2" {
		t.Fatalf("fleet page = %+v", fleet)
	}
	fleet.Next = ""
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/telemetry/latest", url.Values{"after": {"m-2"}}, nil, &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Devices) != 1 || fleet.Devices[0].DeviceID != "m-3" || fleet.Next != "" {
		t.Fatalf("second fleet page = %+v", fleet)
	}

	var many struct {
		Series []struct {
			Metric string `json:"metric"`
			Points []struct {
				Value float64 `json:"value"`
			} `json:"points"`
		} `json:"series"`
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/devices/m-1/telemetry", url.Values{"metrics": {"battery,consumption"}}, nil, &many); err != nil {
		t.Fatal(err)
	}
	if len(many.Series) != 2 || many.Series[0].Metric != "battery" || len(many.Series[0].Points) != 1 ||
		many.Series[0].Points[0].Value != 3.61 || many.Series[1].Points[0].Value != 10.5 {
		t.Fatalf("several metrics = %+v", many)
	}

	var tenant struct {
		ID   string `json:"id"`
		Days int    `json:"telemetryRetentionDays"`
	}
	if err := e.api.Do(e.ctx(), "PATCH", "/api/v1/tenant", nil, map[string]int{"telemetryRetentionDays": 400}, &tenant); err != nil {
		t.Fatal(err)
	}
	if tenant.Days != 400 {
		t.Fatalf("tenant after PATCH = %+v", tenant)
	}
	if err := e.api.Do(e.ctx(), "PATCH", "/api/v1/tenant", nil, map[string]int{"telemetryRetentionDays": -1}, nil); err == nil {
		t.Fatal("negative retention accepted")
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/tenant", nil, nil, &tenant); err != nil || tenant.Days != 400 {
		t.Fatalf("GET tenant = %+v, %v", tenant, err)
	}
}

// TestMessagePropertiesKept: system and application properties from the
// topic's property bag are kept with the message.
func TestMessagePropertiesKept(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-p")
	dev := e.deviceConn("pump-p", key)
	dev.mustPublish(t, events("pump-p", "%24.mid=msg-0001&%24.cid=corr-7&%24.ct=application%2Fjson&%24.ce=utf-8"+
		"&alert=false&unit%20name=C%2F%C2%B0&iothub-creation-time-utc=2026-01-01T00%3A00%3A00Z"), `{"temperature": 71.5}`)
	var out struct {
		Messages []struct {
			MessageID string            `json:"messageId"`
			System    map[string]string `json:"systemProperties"`
			App       map[string]string `json:"properties"`
			Values    []struct {
				Name string    `json:"name"`
				TS   time.Time `json:"ts"`
			} `json:"values"`
		} `json:"messages"`
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/devices/pump-p/messages", nil, nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("messages = %+v", out)
	}
	m := out.Messages[0]
	if m.MessageID != "msg-0001" || m.System["cid"] != "corr-7" || m.System["ct"] != "application/json" || m.System["ce"] != "utf-8" ||
		m.App["alert"] != "false" || m.App["unit name"] != "C/°" || len(m.Values) != 1 ||
		!m.Values[0].TS.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("message = %+v; want its properties, stamped with the creation time", m)
	}
}

// TestMessagesListedAfterSealing: right after the sealer has folded a busy
// device's head into chunks, GET /devices/{id}/messages still lists its
// newest 240 messages with their properties, as docs/telemetry.md promises,
// and history still has every point.
func TestMessagesListedAfterSealing(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Engine = tsdb.Config{SealEvery: 50 * time.Millisecond} })
	key := e.device("pump-s")
	dev := e.deviceConn("pump-s", key)
	const sent = 500 // a head of 480 is due
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var toks []pahomqtt.Token
	for i := range sent {
		toks = append(toks, dev.c.Publish(events("pump-s", fmt.Sprintf("$.mid=m%d&seq=%d", i, i)), 1, false,
			fmt.Sprintf(`{"ts": %q, "values": {"flow": %d}}`, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i)))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// Acknowledged means in the commit log: fewer than 500 listed must
	// mean sealed, not yet applied.
	if err := e.srv.CaughtUp(e.ctx()); err != nil {
		t.Fatal(err)
	}
	type listed struct {
		Messages []struct {
			MessageID string            `json:"messageId"`
			App       map[string]string `json:"properties"`
			Values    []apiv1.Metric    `json:"values"`
		} `json:"messages"`
	}
	var out listed
	deadline := time.Now().Add(15 * time.Second)
	for {
		out = listed{}
		if err := e.api.Do(e.ctx(), "GET", "/api/v1/devices/pump-s/messages", url.Values{"limit": {"1000"}}, nil, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) < sent {
			break // sealed
		}
		if time.Now().After(deadline) {
			t.Fatalf("the head of %d messages was not sealed", sent)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The sealer may fold the head while the last messages are still
	// being committed: those stay in the head, listed on top of the 240
	// that sealing keeps.
	if len(out.Messages) < 240 || len(out.Messages) >= sent {
		t.Fatalf("%d messages listed right after sealing, want the newest 240 and any committed since", len(out.Messages))
	}
	for j, m := range out.Messages {
		i := sent - 1 - j
		if m.MessageID != fmt.Sprintf("m%d", i) || m.App["seq"] != strconv.Itoa(i) || len(m.Values) != 1 || m.Values[0].Value != float64(i) {
			t.Fatalf("message %d = %+v, want m%d with its properties and value", j, m, i)
		}
	}
	q := url.Values{"from": {t0.Format(time.RFC3339)}, "to": {t0.Add(sent * time.Second).Format(time.RFC3339)}}
	h, err := e.api.History(e.ctx(), "pump-s", "flow", q)
	if err != nil || len(h.Points) != sent {
		t.Fatalf("history after sealing: %d points, %v; want %d", len(h.Points), err, sent)
	}
}
