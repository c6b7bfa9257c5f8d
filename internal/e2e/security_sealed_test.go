package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	bin "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// The markers of each class of machine data. None may appear in the
// database's bytes; the control marker is stored in clear on purpose (a
// device's name is not machine data) and must be found, which proves the
// scan can see what it looks for.
const (
	markDesired  = "zqx-desired-marker-71"
	markReported = "zqx-reported-marker-72"
	markTags     = "zqx-tags-marker-73"
	markC2D      = "zqx-c2d-payload-marker-74"
	markC2DProp  = "zqx-c2d-property-marker-75"
	markAck      = "zqx-ack-comment-marker-76"
	markTrend    = "zqxtrendmarker77" // a maintenance plan's trend metric: also in the maintenance state
	markControl  = "zqx-control-device-name-79"
	// Provisioning: the payloads two devices send when they register, the
	// initial twins of an enrollment group and of an individual enrollment
	// (each also copied into the registration record, and into the twin).
	markDPSPayload   = "zqx-dps-payload-marker-81"
	markDPSPayloadIn = "zqx-dps-payload-individual-82"
	markGroupTwin    = "zqx-group-twin-marker-83"
	markEnrollTwin   = "zqx-enrollment-twin-marker-84"
	// markValue is the alarm's value: in its message, its value, the
	// webhook delivery's payload and the evaluator's state.
	markValue = 8317.625
)

func sealedMarkers() map[string][]byte {
	m := map[string][]byte{}
	for _, s := range []string{markDesired, markReported, markTags, markC2D, markC2DProp, markAck, markTrend,
		markDPSPayload, markDPSPayloadIn, markGroupTwin, markEnrollTwin} {
		m[s] = []byte(s)
	}
	m["value as text"] = []byte("8317.625")
	m["value as float64 (big endian)"] = bin.BigEndian.AppendUint64(nil, math.Float64bits(markValue))
	m["value as float64 (little endian)"] = bin.LittleEndian.AppendUint64(nil, math.Float64bits(markValue))
	return m
}

// startStoppable starts a server the test shuts down itself (to make the
// alarm evaluator save its state) before it reads the database.
func startStoppable(t *testing.T, database string) (*env, func()) {
	t.Helper()
	return startStoppableIn(t, t.TempDir(), database)
}

func startStoppableIn(t *testing.T, dataDir, database string) (*env, func()) {
	t.Helper()
	cfg := server.Config{DataDir: dataDir, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		AdminToken: adminToken, Out: io.Discard, Database: database, WebhookAllowPrivate: true}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	api, err := client.New("https://"+srv.HTTPAddr(), adminToken, srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.MQTTAddr())
	return &env{t: t, srv: srv, api: api, roots: roots, hubHost: "localhost:" + port, dataDir: cfg.DataDir}, stop
}

// putMarkers stores a marker in every class of machine data through the
// API and a real device.
func putMarkers(t *testing.T, e *env) {
	ctx := e.ctx()
	hits := make(chan struct{}, 16)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		select {
		case hits <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(hs.Close)

	key := e.device("seal-dev")
	if err := e.api.Do(ctx, "PATCH", "/api/v1/devices/seal-dev", nil, map[string]any{"model": "seal-model", "name": markControl}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.UpdateTwin(ctx, "seal-dev", client.TwinPatch{
		Desired: []byte(`{"note":"` + markDesired + `"}`), Tags: []byte(`{"owner":"` + markTags + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.SendC2D(ctx, "seal-dev", client.C2DSend{Payload: markC2D, Properties: map[string]string{"k": markC2DProp}}); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Do(ctx, "PUT", "/api/v1/maintenance-plans/seal-model", nil, map[string]any{"model": "seal-model",
		"service": map[string]any{"everyMonths": 24, "warnDays": 30},
		"trends":  []any{map[string]any{"metric": markTrend, "limit": 3.3, "window": "1d"}}}, nil); err != nil {
		t.Fatal(err)
	}
	var rule struct {
		ID string `json:"id"`
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/rules", nil, map[string]any{"name": "too hot", "severity": "critical",
		"enabled": true, "scope": map[string]string{"deviceId": "seal-dev"},
		"threshold": map[string]any{"metric": "temp", "op": "above", "value": 1000, "hysteresis": 1}}, &rule); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/webhooks", nil, map[string]any{"url": hs.URL + "/hook"}, nil); err != nil {
		t.Fatal(err)
	}

	d := e.hubConnect("seal-dev", key)
	d.subscribe(t, filterTwinRes)
	d.publish0(t, "$iothub/twin/PATCH/properties/reported/?$rid=r1", `{"fw":"`+markReported+`"}`)
	if m := d.next(t, "$iothub/twin/res/"); !strings.HasPrefix(m.Topic(), "$iothub/twin/res/204/") {
		t.Fatalf("reported answer on %s", m.Topic())
	}
	d.publish0(t, events("seal-dev", ""), fmt.Sprintf(`{"temp": %g, "%s": 3.9}`, markValue, markTrend))
	var alarmID int64
	waitFor(t, "the alarm", 10*time.Second, func() bool {
		for _, a := range e.alarms(url.Values{"device": {"seal-dev"}}) {
			if a.RuleID == rule.ID && a.Value == markValue {
				alarmID = a.ID
				return true
			}
		}
		return false
	})
	if err := e.api.Do(ctx, "POST", "/api/v1/alarms/"+itoa(alarmID)+"/ack", nil, map[string]string{"comment": markAck}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Do(ctx, "POST", "/api/v1/devices/seal-dev/maintenance/service", nil, map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hits:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook was not called")
	}
	// Everything reads back in clear through the API.
	tw, err := e.api.Twin(ctx, "seal-dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{markDesired, markReported, markTags} {
		if !bytes.Contains(mustJSON(t, tw), []byte(m)) {
			t.Errorf("twin read through the API lacks %s", m)
		}
	}
	var c2d rawBody
	if err := e.api.Do(ctx, "GET", "/api/v1/devices/seal-dev/c2d", nil, nil, &c2d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(c2d, []byte(markC2DProp)) {
		t.Errorf("C2D list lacks its property: %s", c2d)
	}
	d.disconnect()
	putDPSMarkers(t, e)
}

// putDPSMarkers provisions two devices over MQTT, as the SDK does, one
// through an enrollment group and one through an individual enrollment,
// each with an initial twin and a custom payload carrying markers; the
// devices get their answers and the API reads everything back as before.
func putDPSMarkers(t *testing.T, e *env) {
	ctx := e.ctx()
	scope := e.idScope()
	groupKey := e.enrollGroup("seal-group", `{"tags":{"site":"`+markGroupTwin+`"}}`)
	en, err := e.api.CreateEnrollment(ctx, apiv1.NewEnrollment{RegistrationID: "seal-ind",
		InitialTwin: json.RawMessage(`{"properties":{"desired":{"note":"` + markEnrollTwin + `"}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	indKey, err := base64.StdEncoding.DecodeString(en.PrimaryKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []struct {
		id, payloadMark, twinMark, enrollment string
		key                                   []byte
	}{
		{"seal-prov", markDPSPayload, markGroupTwin, "group", sas.DeriveDeviceKey(groupKey, "seal-prov")},
		{"seal-ind", markDPSPayloadIn, markEnrollTwin, "individual", indKey},
	} {
		p := e.provisionConn(scope, dev.id, dev.key)
		a := p.register(dev.id, map[string]any{"serial": dev.payloadMark})
		p.finish()
		if a.body["status"] != "assigned" || state(a, "deviceId") != dev.id || state(a, "substatus") != "initialAssignment" ||
			state(a, "assignedHub") != e.hubHost {
			t.Fatalf("registration of %s = %v", dev.id, a.body)
		}
		reg, err := e.api.Registration(ctx, dev.id)
		if err != nil || reg.EnrollmentType != dev.enrollment || reg.Unreadable ||
			string(reg.Payload) != `{"serial":"`+dev.payloadMark+`"}` || !bytes.Contains(reg.InitialTwin, []byte(dev.twinMark)) {
			t.Fatalf("registration record of %s = %+v, %v", dev.id, reg, err)
		}
		tw, err := e.api.Twin(ctx, dev.id)
		if err != nil || !bytes.Contains(mustJSON(t, tw), []byte(dev.twinMark)) {
			t.Fatalf("twin of %s = %s, %v; want the initial twin", dev.id, mustJSON(t, tw), err)
		}
	}
	g, err := e.api.EnrollmentGroup(ctx, "seal-group")
	if err != nil || !bytes.Contains(g.InitialTwin, []byte(markGroupTwin)) {
		t.Fatalf("enrollment group = %+v, %v", g, err)
	}
}

// rawBody keeps a JSON answer as it is.
type rawBody []byte

func (r *rawBody) UnmarshalJSON(b []byte) error { *r = append((*r)[:0], b...); return nil }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealedMachineDataSQLite greps the raw SQLite files (database and
// WAL) for the markers of every class of machine data.
func TestSealedMachineDataSQLite(t *testing.T) {
	t.Parallel()
	e, stop := startStoppable(t, "")
	putMarkers(t, e)
	stop()
	var raw []byte
	for _, f := range []string{"warden.db", "warden.db-wal"} {
		b, err := os.ReadFile(filepath.Join(e.dataDir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	if !bytes.Contains(raw, []byte(markControl)) {
		t.Fatalf("the control marker (a device name, stored in clear) is not in the %d bytes read: the scan sees nothing", len(raw))
	}
	for what, m := range sealedMarkers() {
		if i := bytes.Index(raw, m); i >= 0 {
			t.Errorf("%s found in the database files at byte %d: …%q…", what, i, raw[max(0, i-40):min(len(raw), i+len(m)+40)])
		}
	}
}

// TestSealedMachineDataPostgres reads every column of every table of the
// database as text (byte columns in hex) and looks for the markers.
func TestSealedMachineDataPostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e, stop := startStoppable(t, dbURL)
	putMarkers(t, e)
	stop()
	dump := pgDump(t, dbURL)
	if !strings.Contains(dump, markControl) {
		t.Fatal("the control marker (a device name, stored in clear) is not in the dump: the scan sees nothing")
	}
	for what, m := range sealedMarkers() {
		if strings.Contains(dump, string(m)) || strings.Contains(dump, hex.EncodeToString(m)) {
			t.Errorf("%s found in the database", what)
		}
	}
}

// pgDump returns every row of every table of the public schema as text.
func pgDump(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range tables {
		var s *string
		if err := conn.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM `+pgx.Identifier{tb}.Sanitize()+` t`).Scan(&s); err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		if s != nil {
			b.WriteString(*s)
		}
	}
	return b.String()
}
