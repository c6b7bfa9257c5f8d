package e2e

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	bin "encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Markers of the plaintext rows an old database holds.
const (
	upTags     = "zqx-up-tags-91"
	upDesired  = "zqx-up-desired-92"
	upReported = "zqx-up-reported-93"
	upC2D      = "zqx-up-c2d-94"
	upC2DProp  = "zqx-up-c2dprop-95"
	upMessage  = "zqx-up-alarm-message-96"
	upAck      = "zqx-up-ack-97"
	upPayload  = "zqx-up-delivery-98"
	upError    = "zqx-up-error-99"
	upPlan     = "zqxupplan90"
	upEvalMark = "zqx-up-evaluator-model-89"
	upMaintMk  = "zqx-up-maint-trend-88"
	upDPSPay   = "zqx-up-dps-payload-87"
	upDPSTwin  = "zqx-up-dps-twin-86"
	upGrpTwin  = "zqx-up-group-twin-85"
	upEnrTwin  = "zqx-up-enrollment-twin-84"
	upRejTopic = "devices/up-dev/messages/events/zqx-up-rej-topic-83"
	upRejWhy   = "zqx-up-rej-reason-82"
	upRejTail  = "zqx-up-rej-tail-81"
	upValue    = 6143.375
)

func upgradeMarkers() map[string][]byte {
	m := map[string][]byte{}
	for _, s := range []string{upTags, upDesired, upReported, upC2D, upC2DProp, upMessage, upAck, upPayload, upError,
		upPlan, upEvalMark, upMaintMk, upDPSPay, upDPSTwin, upGrpTwin, upEnrTwin, upRejTopic, upRejWhy, upRejTail} {
		m[s] = []byte(s)
	}
	m["value as float64 (big endian)"] = bin.BigEndian.AppendUint64(nil, math.Float64bits(upValue))
	m["value as float64 (little endian)"] = bin.LittleEndian.AppendUint64(nil, math.Float64bits(upValue))
	m["value as text"] = []byte("6143.375")
	return m
}

// oldRows writes, with plain SQL, the rows a database from before sealing
// holds in clear: placeholder turns a 1-based index into the engine's.
func oldRows(t *testing.T, exec func(query string, args ...any) error, placeholder func(int) string) {
	t.Helper()
	now := time.Now().UnixMilli()
	q := func(query string, n int) string {
		for i := n; i >= 1; i-- {
			query = strings.ReplaceAll(query, fmt.Sprintf("$%d", i), placeholder(i))
		}
		return query
	}
	meta := `{"$lastUpdated":"2026-01-01T00:00:00Z"}`
	steps := []struct {
		query string
		args  []any
	}{
		{`INSERT INTO device_twins (device_id, tenant_id, version, tags, desired, desired_version, desired_meta, reported,
			reported_version, reported_meta, updated_at) VALUES ($1, $2, 3, $3, $4, 2, $5, $6, 2, $7, $8)`,
			[]any{"up-dev", tenancy.RootTenantID, `{"owner":"` + upTags + `"}`, `{"note":"` + upDesired + `"}`, meta,
				`{"fw":"` + upReported + `"}`, meta, now}},
		{`INSERT INTO c2d_messages (tenant_id, device_id, message_id, correlation_id, properties, payload, state, created_at,
			expires_at) VALUES ($1, $2, 'm1', '', $3, $4, 'queued', $5, $6)`,
			[]any{tenancy.RootTenantID, "up-dev", `{"k":"` + upC2DProp + `"}`, []byte(upC2D), now, now + 3600_000}},
		{`INSERT INTO alarms (tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state, raised_at, last_at,
			acked_at, acked_by, ack_comment, cleared_at, cleared_by) VALUES ($1, 'old-rule', $2, '', 'rule', 'critical', $3, $4,
			'cleared', $5, $5, $5, 'someone', $6, $5, 'auto')`,
			[]any{tenancy.RootTenantID, "up-dev", upMessage + " 6143.375", upValue, now, upAck}},
		{`INSERT INTO deliveries (tenant_id, alarm_id, channel, target, event, payload, state, attempts, next_at, last_error,
			created_at, sent_at) SELECT $1, id, 'webhook', 'hook', 'raised', $2, 'failed', 3, 0, $3, $4, 0 FROM alarms`,
			[]any{tenancy.RootTenantID, `{"message":"` + upPayload + `"}`, "500: " + upError, now}},
		{`INSERT INTO maintenance_plans (tenant_id, model, spec, updated_at) VALUES ($1, 'up-model', $2, $3)`,
			[]any{tenancy.RootTenantID, `{"model":"up-model","trends":[{"metric":"` + upPlan + `","limit":3.3,"window":"1d"}]}`, now}},
		{`INSERT INTO monitor_state (key, state) VALUES ('alarm-evaluator', $1)`,
			[]any{[]byte(`{"devices":[{"device":{"id":"up-dev","tenantPath":"root","model":"` + upEvalMark + `"}}]}`)}},
		{`INSERT INTO monitor_state (key, state) VALUES ('maintenance', $1)`,
			[]any{[]byte(`[[{"device":{"id":"up-dev","tenantPath":"root"},"planTenant":"root","trends":[{"metric":"` + upMaintMk + `"}]}]]`)}},
		{`INSERT INTO enrollment_groups (tenant_id, id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at)
			VALUES ($1, 'up-group', $2, $3, $3, $4, $5, $5)`,
			[]any{tenancy.RootTenantID, true, bytes.Repeat([]byte{3}, 32), `{"tags":{"site":"` + upGrpTwin + `"}}`, now}},
		{`INSERT INTO enrollment_groups (tenant_id, id, enabled, primary_key, secondary_key, initial_twin, created_at, updated_at)
			VALUES ($1, 'up-group-bare', $2, $3, $3, NULL, $4, $4)`,
			[]any{tenancy.RootTenantID, true, bytes.Repeat([]byte{4}, 32), now}},
		{`INSERT INTO enrollments (tenant_id, registration_id, device_id, enabled, primary_key, secondary_key, initial_twin,
			created_at, updated_at) VALUES ($1, 'up-ind', 'up-ind', $2, $3, $3, $4, $5, $5)`,
			[]any{tenancy.RootTenantID, true, bytes.Repeat([]byte{5}, 32), `{"properties":{"desired":{"note":"` + upEnrTwin + `"}}}`, now}},
		{`INSERT INTO registrations (tenant_id, registration_id, device_id, enrollment_kind, enrollment_id, status, substatus,
			operation_id, etag, payload, initial_twin, created_at, updated_at)
			VALUES ($1, 'up-reg', 'up-reg', 'group', 'up-group', 'assigned', 'initialAssignment', 'op.1', 'etag1', $2, $3, $4, $4)`,
			[]any{tenancy.RootTenantID, `{"serial":"` + upDPSPay + `"}`, `{"tags":{"site":"` + upDPSTwin + `"}}`, now}},
		{`INSERT INTO registrations (tenant_id, registration_id, device_id, enrollment_kind, enrollment_id, status, substatus,
			operation_id, etag, payload, initial_twin, created_at, updated_at)
			VALUES ($1, 'up-reg-bare', 'up-reg-bare', 'group', 'up-group-bare', 'assigned', 'initialAssignment', 'op.2', 'etag2',
			NULL, NULL, $2, $2)`,
			[]any{tenancy.RootTenantID, now}},
	}
	for _, st := range steps {
		if err := exec(q(st.query, len(st.args)), st.args...); err != nil {
			t.Fatalf("%s: %v", st.query, err)
		}
	}
}

// oldRejected is a rejected message as versions before sizes were recorded
// kept it: the whole payload (3 KiB, upRejTail beyond its first KiB),
// sealed with the tenant's key, topic and reason in clear.
type oldRejected struct {
	payload []byte
	blob    []byte
}

// sealOldRejected seals the payload with the keyring the server will use:
// its master key is made in dir, where the server finds it.
func sealOldRejected(t *testing.T, st store.Store, dir string) oldRejected {
	t.Helper()
	master, _, err := keyring.LoadMaster("", filepath.Join(dir, "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(t.Context(), master, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	payload := append(bytes.Repeat([]byte("p"), 2*tsdbstore.RejectedPrefixBytes), upRejTail...)
	payload = append(payload, bytes.Repeat([]byte("q"), tsdbstore.RejectedPrefixBytes)...)
	blob, err := keys.Seal(t.Context(), tenancy.RootTenantID, payload, []byte("rejected\x00up-dev"))
	if err != nil {
		t.Fatal(err)
	}
	return oldRejected{payload: payload, blob: blob}
}

// tail is a piece of the old sealed payload well beyond its first KiB: it
// stays in the database as long as the whole payload does.
func (o oldRejected) tail() []byte {
	return o.blob[keyring.Overhead+tsdbstore.RejectedPrefixBytes+200 : keyring.Overhead+tsdbstore.RejectedPrefixBytes+264]
}

// insert writes the row with plain SQL, as the old schema had it (its size
// and sealed columns get their defaults: -1, NULL).
func (o oldRejected) insert(t *testing.T, exec func(query string, args ...any) error, placeholder func(int) string) {
	t.Helper()
	query := `INSERT INTO rejected (tenant_id, device_id, message_id, topic, reason, payload, received_at)
		VALUES (` + placeholder(1) + `, 'up-dev', 'rej-1', ` + placeholder(2) + `, ` + placeholder(3) + `, ` + placeholder(4) + `, ` + placeholder(5) + `)`
	if err := exec(query, tenancy.RootTenantID, upRejTopic, "payload is not JSON: "+upRejWhy, o.blob, time.Now().UnixMilli()); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// check reads the upgraded message back through the API: size and hash
// of the whole payload, its first KiB, topic and reason.
func (o oldRejected) check(t *testing.T, e *env) {
	t.Helper()
	var body struct {
		Rejected []struct {
			Topic      string `json:"topic"`
			Reason     string `json:"reason"`
			Payload    string `json:"payload"`
			Truncated  bool   `json:"truncated"`
			Size       int64  `json:"size"`
			SHA256     string `json:"sha256"`
			Unreadable bool   `json:"unreadable"`
		} `json:"rejected"`
	}
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/devices/up-dev/rejected", nil, nil, &body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(o.payload)
	if len(body.Rejected) != 1 {
		t.Fatalf("%d rejected messages after the upgrade, want 1", len(body.Rejected))
	}
	r := body.Rejected[0]
	if r.Topic != upRejTopic || r.Reason != "payload is not JSON: "+upRejWhy || r.Size != int64(len(o.payload)) ||
		r.SHA256 != hex.EncodeToString(sum[:]) || r.Payload != string(o.payload[:tsdbstore.RejectedPrefixBytes]) || !r.Truncated || r.Unreadable {
		t.Errorf("upgraded rejected message: topic %q, reason %q, size %d, sha256 %s, truncated %v, unreadable %v, payload of %d bytes",
			r.Topic, r.Reason, r.Size, r.SHA256, r.Truncated, r.Unreadable, len(r.Payload))
	}
}

// checkUpgraded reads the upgraded data back through the API.
func checkUpgraded(t *testing.T, e *env) {
	tw, err := e.api.Twin(e.ctx(), "up-dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{upTags, upDesired, upReported} {
		if !bytes.Contains(mustJSON(t, tw), []byte(m)) {
			t.Errorf("upgraded twin lacks %s: %s", m, mustJSON(t, tw))
		}
	}
	var c2d rawBody
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/devices/up-dev/c2d", nil, nil, &c2d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(c2d, []byte(upC2DProp)) {
		t.Errorf("upgraded C2D message lacks its property: %s", c2d)
	}
	var alarms rawBody
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/alarms", nil, nil, &alarms); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(alarms, []byte(upMessage)) || !bytes.Contains(alarms, []byte(upAck)) || !bytes.Contains(alarms, []byte("6143.375")) {
		t.Errorf("upgraded alarm lacks its message, comment or value: %s", alarms)
	}
	var plans rawBody
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/maintenance-plans", nil, nil, &plans); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plans, []byte(upPlan)) {
		t.Errorf("upgraded plan lacks its spec: %s", plans)
	}
	if reg, err := e.api.Registration(e.ctx(), "up-reg"); err != nil || reg.Unreadable || reg.EnrollmentID != "up-group" ||
		string(reg.Payload) != `{"serial":"`+upDPSPay+`"}` || string(reg.InitialTwin) != `{"tags":{"site":"`+upDPSTwin+`"}}` {
		t.Errorf("upgraded registration = %+v, %v", reg, err)
	}
	if reg, err := e.api.Registration(e.ctx(), "up-reg-bare"); err != nil || reg.Unreadable || reg.Payload != nil || reg.InitialTwin != nil {
		t.Errorf("upgraded registration without payload or twin = %+v, %v", reg, err)
	}
	if g, err := e.api.EnrollmentGroup(e.ctx(), "up-group"); err != nil || g.Unreadable || string(g.InitialTwin) != `{"tags":{"site":"`+upGrpTwin+`"}}` {
		t.Errorf("upgraded enrollment group = %+v, %v", g, err)
	}
	if g, err := e.api.EnrollmentGroup(e.ctx(), "up-group-bare"); err != nil || g.Unreadable || g.InitialTwin != nil {
		t.Errorf("upgraded enrollment group without initial twin = %+v, %v", g, err)
	}
	if en, err := e.api.Enrollment(e.ctx(), "up-ind"); err != nil || en.Unreadable || !bytes.Contains(en.InitialTwin, []byte(upEnrTwin)) {
		t.Errorf("upgraded enrollment = %+v, %v", en, err)
	}
}

// TestSealUpgradeSQLite: a database at the schema from before sealing,
// with machine data in clear, is upgraded by starting a server on it; then
// everything reads back, and no byte of the plaintext is left in the
// database file or its WAL.
func TestSealUpgradeSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "warden.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateBeforeSealing(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(t.Context(), registry.Device{ID: "up-dev", TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
		PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rej := sealOldRejected(t, st, dir)
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error { _, err := db.Exec(q, args...); return err }
	placeholder := func(i int) string { return fmt.Sprintf("?%d", i) }
	oldRows(t, exec, placeholder)
	rej.insert(t, exec, placeholder)
	db.Close()
	raw := readFiles(t, dir)
	for _, m := range []string{upTags, upC2D, upMessage, upPlan, upEvalMark, upDPSPay, upGrpTwin, upEnrTwin, upRejTopic, upRejWhy} {
		if !bytes.Contains(raw, []byte(m)) {
			t.Fatalf("the old database does not hold %s in clear: the scan would prove nothing", m)
		}
	}
	if !bytes.Contains(raw, rej.tail()) {
		t.Fatal("the old database does not hold the rejected payload whole: the scan would prove nothing")
	}

	e, stop := startStoppableIn(t, dir, "")
	checkUpgraded(t, e)
	rej.check(t, e)
	stop()
	raw = readFiles(t, dir)
	markers := upgradeMarkers()
	markers["rejected payload beyond its first KiB (sealed)"] = rej.tail()
	for what, m := range markers {
		if i := bytes.Index(raw, m); i >= 0 {
			t.Errorf("%s left in the upgraded database at byte %d: …%q…", what, i, raw[max(0, i-40):min(len(raw), i+len(m)+40)])
		}
	}
}

func readFiles(t *testing.T, dir string) []byte {
	t.Helper()
	var raw []byte
	for _, f := range []string{"warden.db", "warden.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	return raw
}

// TestSealUpgradePostgres is TestSealUpgradeSQLite on PostgreSQL: the
// upgraded tables hold no plaintext in any live row, and, rewritten by
// VACUUM FULL, no dead tuple keeps it in their files.
func TestSealUpgradePostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	st, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateBeforeSealing(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(t.Context(), registry.Device{ID: "up-dev", TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
		PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rej := sealOldRejected(t, st, dir)
	st.Close()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error { _, err := conn.Exec(t.Context(), q, args...); return err }
	placeholder := func(i int) string { return fmt.Sprintf("$%d", i) }
	oldRows(t, exec, placeholder)
	rej.insert(t, exec, placeholder)
	if dump := pgDump(t, dbURL); !strings.Contains(dump, upTags) || !strings.Contains(dump, upDPSPay) || !strings.Contains(dump, upGrpTwin) ||
		!strings.Contains(dump, upRejTopic) || !strings.Contains(dump, upRejWhy) || !strings.Contains(dump, hex.EncodeToString(rej.tail())) {
		t.Fatal("the old database does not hold the twin, provisioning and rejected data in clear: the scan would prove nothing")
	}
	// The files too, where this test can read them.
	if files, ok := pgTableFiles(t, conn, "rejected"); ok && (!bytes.Contains(files, rej.tail()) || !bytes.Contains(files, []byte(upRejWhy))) {
		t.Fatal("the files of the old rejected table do not hold its payload and reason: the scan would prove nothing")
	}
	conn.Close(t.Context())

	e, stop := startStoppableIn(t, dir, dbURL)
	checkUpgraded(t, e)
	rej.check(t, e)
	stop()
	dump := pgDump(t, dbURL)
	markers := upgradeMarkers()
	markers["rejected payload beyond its first KiB (sealed)"] = rej.tail()
	for what, m := range markers {
		if strings.Contains(dump, string(m)) || strings.Contains(dump, hex.EncodeToString(m)) {
			t.Errorf("%s left in the upgraded database", what)
		}
	}
	// The dead tuples: the tables' files hold no plaintext either.
	conn, err = pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var pending int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM meta WHERE key = 'sealed_compact_pending'`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("compaction still pending (%d, %v)", pending, err)
	}
	for _, table := range []string{"device_twins", "c2d_messages", "alarms", "deliveries", "maintenance_plans", "monitor_state",
		"registrations", "enrollment_groups", "enrollments", "rejected"} {
		b, ok := pgTableFiles(t, conn, table)
		if !ok {
			t.Skip("cannot read the server's files; live rows were checked")
		}
		for what, m := range markers {
			if bytes.Contains(b, m) {
				t.Errorf("%s left in the files of %s", what, table)
			}
		}
	}
}

// pgTableFiles returns, after a CHECKPOINT, the bytes of a table's file
// and of its TOAST table's (where large values such as a whole payload
// live); ok is false if this test cannot read the server's files.
func pgTableFiles(t *testing.T, conn *pgx.Conn, table string) (b []byte, ok bool) {
	t.Helper()
	var dataDir string
	if err := conn.QueryRow(t.Context(), `SHOW data_directory`).Scan(&dataDir); err != nil {
		t.Logf("cannot read the server's data directory: %v", err)
		return nil, false
	}
	if _, err := conn.Exec(t.Context(), `CHECKPOINT`); err != nil {
		t.Logf("cannot checkpoint: %v", err)
		return nil, false
	}
	var rels []string
	rows, err := conn.Query(t.Context(), `SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = $1::regclass
		UNION ALL SELECT pg_relation_filepath(c.reltoastrelid) FROM pg_class c WHERE c.oid = $1::regclass AND c.reltoastrelid <> 0`, table)
	if err != nil {
		t.Fatal(err)
	}
	if rels, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		f, err := os.ReadFile(filepath.Join(dataDir, rel))
		if err != nil {
			t.Logf("cannot read the server's files: %v", err)
			return nil, false
		}
		b = append(b, f...)
	}
	return b, true
}
