package tsdb

import (
	"bytes"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// addOldRejected stores a rejected message as versions before sizes were
// recorded did: the whole payload sealed, topic and reason in clear.
func (te *testEngine) addOldRejected(t *testing.T, tenant, dev, topic, reason string, payload []byte) {
	t.Helper()
	blob, err := te.keys.Seal(t.Context(), tenant, payload, rejectedAAD(dev))
	if err != nil {
		t.Fatal(err)
	}
	if err := te.st.AddRejected(t.Context(), tsdbstore.Rejected{TenantID: tenant, DeviceID: dev, Topic: topic, Reason: reason,
		Payload: blob, Size: tsdbstore.RejectedOld, ReceivedAt: now0}); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeRejected: rejected messages kept in the old form are rewritten
// like new ones (size, hash, first KiB, topic and reason sealed, nothing in
// clear); those of a tenant whose keys were destroyed, or corrupt, are
// marked unreadable and not tried again; a second run changes nothing.
func TestUpgradeRejected(t *testing.T) {
	te := newTestEngine(t, Config{})
	ctx := t.Context()
	if err := te.st.CreateTenant(ctx, tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME", CreatedAt: now0}); err != nil {
		t.Fatal(err)
	}
	te.device(t, tenancy.RootTenantID, "own")
	te.device(t, "acme", "acme-pump")
	big := append(bytes.Repeat([]byte("a"), tsdbstore.RejectedPrefixBytes+100), []byte("zqx-tail-beyond-first-kib")...)
	te.addOldRejected(t, tenancy.RootTenantID, "own", "topic-big", "reason-big", big)
	te.addOldRejected(t, tenancy.RootTenantID, "own", "topic-small", "reason-small", []byte("small"))
	te.addOldRejected(t, "acme", "acme-pump", "topic-shredded", "reason-shredded", big)
	te.device(t, tenancy.RootTenantID, "many")
	for i := range 2*upgradeBatch + 10 { // more than one batch
		te.addOldRejected(t, tenancy.RootTenantID, "many", "t", "r", []byte(strconv.Itoa(i)))
	}
	if err := te.st.AddRejected(ctx, tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "own", Topic: "topic-corrupt",
		Reason: "reason-corrupt", Payload: []byte("not a sealed blob at all"), Size: tsdbstore.RejectedOld, ReceivedAt: now0}); err != nil {
		t.Fatal(err)
	}
	if err := te.AddRejected(ctx, tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "own", Topic: "topic-new",
		Reason: "reason-new", Payload: []byte("new"), ReceivedAt: now0}); err != nil {
		t.Fatal(err)
	}
	stale, err := te.st.OldRejected(ctx, 0, 1000, 1<<30)
	if err != nil || len(stale) != 4+2*upgradeBatch+10 {
		t.Fatalf("old rejected before the upgrade: %d, %v; want %d", len(stale), err, 4+2*upgradeBatch+10)
	}
	if err := te.keys.Shred(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	n, err := te.UpgradeRejected(ctx)
	if err != nil || n != int64(len(stale)) {
		t.Fatalf("UpgradeRejected = %d, %v; want %d", n, err, len(stale))
	}
	if _, err := te.st.GetMeta(ctx, "sealed_compact_pending"); err != nil {
		t.Errorf("compaction not noted as pending: %v", err)
	}
	if left, err := te.st.OldRejected(ctx, 0, 10, 1<<30); err != nil || len(left) != 0 {
		t.Errorf("old rejected after the upgrade: %d, %v", len(left), err)
	}
	if n, err := te.UpgradeRejected(ctx); err != nil || n != 0 {
		t.Errorf("second UpgradeRejected = %d, %v; want 0", n, err)
	}
	// A batch read before another node upgraded the rows replaces nothing.
	if n, err := te.st.UpgradeRejected(ctx, stale); err != nil || n != 0 {
		t.Errorf("stale batch replaced %d rows (%v)", n, err)
	}

	// Stored: nothing in clear, the payload cut.
	for _, dev := range []struct{ tenant, id string }{{tenancy.RootTenantID, "own"}, {"acme", "acme-pump"}, {tenancy.RootTenantID, "many"}} {
		raw, err := te.st.ListRejected(ctx, dev.tenant, dev.id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range raw {
			if r.Topic != "" || r.Reason != "" || len(r.Payload) > tsdbstore.RejectedPrefixBytes+64 || r.Size < 0 && r.Size != tsdbstore.RejectedUnreadable {
				t.Errorf("stored row %d: topic %q, reason %q, payload of %d bytes", r.ID, r.Topic, r.Reason, len(r.Payload))
			}
		}
	}

	got, err := te.ListRejected(ctx, tenancy.RootTenantID, "own", 10)
	if err != nil {
		t.Fatal(err)
	}
	byTopic := map[string]tsdbstore.Rejected{}
	for _, r := range got {
		byTopic[r.Topic] = r
	}
	sum := sha256.Sum256(big)
	if r := byTopic["topic-big"]; r.Reason != "reason-big" || r.Size != int64(len(big)) || !bytes.Equal(r.SHA256, sum[:]) ||
		!bytes.Equal(r.Payload, big[:tsdbstore.RejectedPrefixBytes]) || !r.Truncated() || r.Unreadable {
		t.Errorf("upgraded big entry: %+v", r)
	}
	small := sha256.Sum256([]byte("small"))
	if r := byTopic["topic-small"]; r.Reason != "reason-small" || r.Size != 5 || !bytes.Equal(r.SHA256, small[:]) ||
		string(r.Payload) != "small" || r.Truncated() {
		t.Errorf("upgraded small entry: %+v", r)
	}
	if r := byTopic["topic-corrupt"]; r.Reason != "reason-corrupt" || !r.Unreadable || r.Payload != nil {
		t.Errorf("upgraded corrupt entry: %+v", r)
	}
	if r := byTopic["topic-new"]; r.Reason != "reason-new" || string(r.Payload) != "new" {
		t.Errorf("new entry after the upgrade: %+v", r)
	}
	shredded, err := te.ListRejected(ctx, "acme", "acme-pump", 10)
	if err != nil || len(shredded) != 1 {
		t.Fatalf("entries of the shredded tenant: %+v, %v", shredded, err)
	}
	if r := shredded[0]; !r.Unreadable || r.Topic != "" || r.Reason != "" || r.Payload != nil ||
		strings.Contains(r.Topic+r.Reason, "shredded") {
		t.Errorf("entry of the shredded tenant: %+v", r)
	}
	// The shredded tenant got no new key from the upgrade.
	if _, err := te.st.ActiveTenantKey(ctx, "acme"); err == nil {
		t.Error("the upgrade made a new key for a tenant whose keys were destroyed")
	}
}
