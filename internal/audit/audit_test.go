package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/tenancy"
)

// memStore is an in-memory Store whose entries the tests can
// tamper with.
type memStore struct {
	mu      sync.Mutex
	entries []Entry
}

func (m *memStore) AppendAudit(_ context.Context, e Entry, seal func(*Entry) error) (Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.Seq, e.PrevHash = 1, []byte{}
	if n := len(m.entries); n > 0 {
		e.Seq, e.PrevHash = m.entries[n-1].Seq+1, m.entries[n-1].Hash
	}
	if err := seal(&e); err != nil {
		return e, err
	}
	m.entries = append(m.entries, e)
	return e, nil
}

func (m *memStore) ListAudit(_ context.Context, f Filter) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.entries {
		if e.Seq > f.After && len(out) < f.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

const firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"

func filled(t *testing.T, n int) *memStore {
	t.Helper()
	m := &memStore{}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := NewRecorder(m, nil, func() time.Time { at = at.Add(time.Second); return at })
	for i := range n {
		if _, err := r.Record(t.Context(), Event{TenantID: tenancy.RootTenantID, ActorID: "operator", ActorName: "op",
			Action: "device.create", Target: fmt.Sprintf("pump-%d", i), Status: 201, IP: "192.0.2.1", UserAgent: firefox}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func verify(t *testing.T, m *memStore) Result {
	t.Helper()
	res, err := Verify(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerifyIntact(t *testing.T) {
	m := filled(t, 2500) // more than one page
	res := verify(t, m)
	if !res.OK() || res.Entries != 2500 {
		t.Fatalf("Verify = %+v, want OK with 2500 entries", res)
	}
	e := m.entries[0]
	if e.Browser != "Firefox" || !strings.HasPrefix(e.BrowserVersion, "128") || !strings.HasPrefix(e.OS, "Windows") || e.Outcome != Success {
		t.Fatalf("entry = %+v, want Firefox 128 on Windows, success", e)
	}
	if empty := verify(t, &memStore{}); !empty.OK() || empty.Entries != 0 {
		t.Fatalf("Verify(empty) = %+v", empty)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(m *memStore)
		seq    int64
		reason string
	}{
		{"edited action", func(m *memStore) { m.entries[4].Action = "device.read" }, 5, "hash mismatch"},
		{"edited outcome", func(m *memStore) { m.entries[6].Outcome = Denied }, 7, "hash mismatch"},
		{"edited time", func(m *memStore) { m.entries[0].At = m.entries[0].At.Add(time.Millisecond) }, 1, "hash mismatch"},
		{"edited and rehashed", func(m *memStore) {
			m.entries[3].Target = "other"
			m.entries[3].Hash = Hash(m.entries[3].PrevHash, m.entries[3])
		}, 5, "prev_hash"},
		{"deleted", func(m *memStore) { m.entries = append(m.entries[:3], m.entries[4:]...) }, 4, "sequence gap"},
		{"deleted first", func(m *memStore) { m.entries = m.entries[1:] }, 1, "sequence gap"},
		{"deleted and renumbered", func(m *memStore) {
			m.entries = append(m.entries[:3], m.entries[4:]...)
			for i := 3; i < len(m.entries); i++ {
				m.entries[i].Seq--
			}
		}, 4, "prev_hash"},
		{"reordered", func(m *memStore) {
			a, b := m.entries[2], m.entries[5]
			a.Seq, b.Seq = b.Seq, a.Seq
			m.entries[2], m.entries[5] = b, a
		}, 3, "prev_hash"},
		{"reordered contents", func(m *memStore) {
			a, b := m.entries[2], m.entries[5]
			a.Seq, b.Seq = b.Seq, a.Seq
			a.PrevHash, b.PrevHash = b.PrevHash, a.PrevHash
			a.Hash, b.Hash = b.Hash, a.Hash
			m.entries[2], m.entries[5] = b, a
		}, 3, "hash mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := filled(t, 10)
			tc.tamper(m)
			res := verify(t, m)
			if res.OK() || res.BrokenSeq != tc.seq || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("Verify = %+v, want broken at %d (%s)", res, tc.seq, tc.reason)
			}
			if res.Entries != tc.seq-1 {
				t.Fatalf("Entries = %d, want %d", res.Entries, tc.seq-1)
			}
		})
	}
}

func TestCanonicalIsUnambiguous(t *testing.T) {
	a := Entry{Seq: 1, Action: "ab", Target: "c"}
	b := Entry{Seq: 1, Action: "a", Target: "bc"}
	if string(Canonical(a)) == string(Canonical(b)) {
		t.Fatal("moving a byte between fields gives the same encoding")
	}
}

func TestOutcomeOf(t *testing.T) {
	for status, want := range map[int]string{200: Success, 204: Success, 401: Denied, 403: Denied, 404: Failed, 500: Failed} {
		if got := OutcomeOf(status); got != want {
			t.Errorf("OutcomeOf(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestAnchorsCatchTruncationAndRewrites: what the chain alone cannot show, an
// anchor kept outside the database can.
func TestAnchorsCatchTruncationAndRewrites(t *testing.T) {
	m := filled(t, 10)
	res := verify(t, m)
	anchor, err := ParseAnchor(strings.TrimPrefix(strings.Split(res.String(), "\n")[1], "anchor: "))
	if err != nil || anchor.Seq != 10 {
		t.Fatalf("anchor from %q: %+v, %v", res.String(), anchor, err)
	}
	if r, _ := Verify(t.Context(), m, anchor); !r.OK() {
		t.Fatalf("intact chain against its anchor: %v", r)
	}
	// The three newest entries are cut off: the chain alone looks fine.
	cut := &memStore{entries: m.entries[:7]}
	if r := verify(t, cut); !r.OK() {
		t.Fatalf("truncated chain without an anchor: %v", r)
	}
	if r, _ := Verify(t.Context(), cut, anchor); r.OK() || r.BrokenSeq != 10 || !strings.Contains(r.Reason, "cut off") {
		t.Fatalf("truncated chain with the anchor: %v", r)
	}
	// Entry 10 rewritten and the chain rehashed from there: consistent, but not the anchor.
	rewritten := &memStore{entries: append([]Entry(nil), m.entries...)}
	last := &rewritten.entries[9]
	last.Action = "device.read"
	last.Hash = Hash(last.PrevHash, *last)
	if r, _ := Verify(t.Context(), rewritten, anchor); r.OK() || r.BrokenSeq != 10 || !strings.Contains(r.Reason, "anchor mismatch") {
		t.Fatalf("rewritten chain with the anchor: %v", r)
	}
	for _, bad := range []string{"", "10", "x:ab", "0:" + strings.Repeat("a", 64), "3:abcd"} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) accepted", bad)
		}
	}
}
