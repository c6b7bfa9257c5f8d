// Package audit keeps Warden's tamper-evident audit trail: every entry is
// hash-chained to the one before it, so an edited, deleted or reordered
// entry is detected by Verify.
//
// hash(n) = SHA-256(hash(n-1) || canonical(entry n)), with hash(0) empty.
// canonical is a version tag followed by every field of the entry (except
// the hashes) in a fixed order, each as an 8-byte big-endian length and
// the field's bytes; numbers are written in decimal, the time as Unix
// milliseconds. The length prefixes make the encoding unambiguous: no two
// different entries encode to the same bytes.
package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/mileusna/useragent"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Denied  = "denied"
	Failed  = "failed"
)

// Anonymous is the actor of a request without a valid credential.
const Anonymous = "anonymous"

// Encoding tags: v2 adds the owner tenant at the end; an entry without
// one is encoded as v1, so chains written before v2 still verify.
const (
	encodingTagV1 = "warden-audit-v1"
	encodingTagV2 = "warden-audit-v2"
)

// Canonical is the encoding of e that is hashed.
func Canonical(e Entry) []byte {
	var b bytes.Buffer
	tag := encodingTagV1
	if e.OwnerTenantID != "" {
		tag = encodingTagV2
	}
	fields := []string{
		tag,
		strconv.FormatInt(e.Seq, 10),
		strconv.FormatInt(e.At.UnixMilli(), 10),
		e.TenantID, e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome,
		strconv.Itoa(e.Status),
		e.IP, e.UserAgent, e.Browser, e.BrowserVersion, e.OS,
	}
	if tag == encodingTagV2 {
		fields = append(fields, e.OwnerTenantID)
	}
	for _, f := range fields {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		b.Write(n[:])
		b.WriteString(f)
	}
	return b.Bytes()
}

// Hash is the chain hash of e following prev.
func Hash(prev []byte, e Entry) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(Canonical(e))
	return h.Sum(nil)
}

// Seal sets e.Hash from e.PrevHash and the entry; it is the seal function
// for Store.AppendAudit.
func Seal(e *Entry) error {
	e.Hash = Hash(e.PrevHash, *e)
	return nil
}

// ParseUserAgent returns the browser name and version and the operating
// system (name and version) of a User-Agent header.
func ParseUserAgent(ua string) (browser, version, os string) {
	if ua == "" {
		return "", "", ""
	}
	p := useragent.Parse(ua)
	return p.Name, p.Version, strings.TrimSpace(p.OS + " " + p.OSVersion)
}

// Event is what happened, as the API saw it.
type Event struct {
	TenantID  string
	ActorID   string
	ActorName string
	Action    string
	Target    string
	// OwnerTenantID is the tenant whose data the action touched.
	OwnerTenantID string
	Status        int // HTTP status; the outcome follows from it
	// Outcome, if set, overrides the outcome the status implies (a
	// refusal answered 404 so as not to reveal the resource is "denied").
	Outcome   string
	IP        string
	UserAgent string
}

// OutcomeOf maps an HTTP status to an outcome.
func OutcomeOf(status int) string {
	switch {
	case status == 401 || status == 403:
		return Denied
	case status >= 400:
		return Failed
	default:
		return Success
	}
}

// Recorder appends events to the trail.
type Recorder struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// NewRecorder makes a recorder writing to st.
func NewRecorder(st Store, log *slog.Logger, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: st, log: log, now: now}
}

// Record appends ev to the chain and returns the stored entry.
func (r *Recorder) Record(ctx context.Context, ev Event) (Entry, error) {
	if len(ev.UserAgent) > 512 {
		ev.UserAgent = ev.UserAgent[:512]
	}
	browser, version, os := ParseUserAgent(ev.UserAgent)
	e := Entry{
		At:             r.now().UTC().Truncate(time.Millisecond),
		TenantID:       ev.TenantID,
		ActorID:        ev.ActorID,
		ActorName:      ev.ActorName,
		Action:         ev.Action,
		Target:         ev.Target,
		OwnerTenantID:  ev.OwnerTenantID,
		Outcome:        cmp.Or(ev.Outcome, OutcomeOf(ev.Status)),
		Status:         ev.Status,
		IP:             ev.IP,
		UserAgent:      ev.UserAgent,
		Browser:        browser,
		BrowserVersion: version,
		OS:             os,
	}
	stored, err := r.store.AppendAudit(ctx, e, Seal)
	if err != nil {
		if r.log != nil {
			r.log.Error("audit: cannot record", "action", ev.Action, "actor", ev.ActorID, "err", err)
		}
		return stored, err
	}
	return stored, nil
}

// Result is the outcome of Verify.
type Result struct {
	Entries   int64  // entries checked
	LastSeq   int64  // sequence number of the last good entry
	LastHash  []byte // its hash: record it elsewhere as an anchor (see Anchor)
	BrokenSeq int64  // 0 if the chain is intact
	Reason    string // why BrokenSeq is broken
}

// OK says whether the chain is intact.
func (r Result) OK() bool { return r.BrokenSeq == 0 }

func (r Result) String() string {
	if r.OK() {
		if r.Entries == 0 {
			return "audit chain OK: 0 entries"
		}
		return fmt.Sprintf("audit chain OK: %d entries\nanchor: %d:%x", r.Entries, r.LastSeq, r.LastHash)
	}
	return fmt.Sprintf("audit chain BROKEN at entry %d: %s (%d entries before it are intact)", r.BrokenSeq, r.Reason, r.Entries)
}

// Verify walks the whole chain in sequence order and reports the first
// broken entry. An error means the store could not be read.
//
// It detects an edited entry (its hash does not match its content), a
// deleted entry (a gap in the sequence, or a prev_hash that does not match
// the entry before) and reordered entries. Removing entries from the very
// end of the log cannot be seen from the chain alone; compare Entries and
// the last hash with a copy kept elsewhere for that.
func Verify(ctx context.Context, st Store, anchors ...Anchor) (Result, error) {
	var res Result
	want := map[int64][]byte{}
	for _, a := range anchors {
		want[a.Seq] = a.Hash
	}
	prev := []byte{}
	after := int64(0)
	for {
		page, err := st.ListAudit(ctx, Filter{After: after, Limit: 1000})
		if err != nil {
			return res, fmt.Errorf("verify audit: %w", err)
		}
		for _, e := range page {
			next := res.LastSeq + 1
			anchor, anchored := want[e.Seq]
			switch {
			case e.Seq != next:
				res.BrokenSeq = next
				res.Reason = fmt.Sprintf("sequence gap: entry %d is missing (next is %d)", next, e.Seq)
			case !bytes.Equal(e.PrevHash, prev):
				res.BrokenSeq = e.Seq
				res.Reason = fmt.Sprintf("prev_hash %s does not match the hash of entry %d (%s)", short(e.PrevHash), res.LastSeq, short(prev))
			case !bytes.Equal(e.Hash, Hash(prev, e)):
				res.BrokenSeq = e.Seq
				res.Reason = fmt.Sprintf("hash mismatch: the entry was changed (stored %s, computed %s)", short(e.Hash), short(Hash(prev, e)))
			case anchored && !bytes.Equal(e.Hash, anchor):
				res.BrokenSeq = e.Seq
				res.Reason = fmt.Sprintf("anchor mismatch: the chain was rewritten up to here (hash %s, anchor %s)", short(e.Hash), short(anchor))
			}
			if !res.OK() {
				return res, nil
			}
			res.Entries++
			res.LastSeq = e.Seq
			prev = e.Hash
			delete(want, e.Seq)
		}
		if len(page) < 1000 {
			res.LastHash = prev
			for seq := range want { // an anchored entry beyond the end: cut off
				if res.OK() || seq < res.BrokenSeq {
					res.BrokenSeq = seq
					res.Reason = fmt.Sprintf("anchor entry %d is gone: the newest entries were cut off (the chain ends at %d)", seq, res.LastSeq)
				}
			}
			return res, nil
		}
		after = page[len(page)-1].Seq
	}
}

// Anchor is an entry's sequence number and hash, written down outside the
// database (a ticket, a log shipped elsewhere, a printout). The chain alone
// cannot show that its newest entries were cut off or that it was rebuilt
// from some entry on; a verify against an anchor can.
type Anchor struct {
	Seq  int64
	Hash []byte
}

// ParseAnchor reads "SEQ:HEXHASH", as `warden audit verify` prints it.
func ParseAnchor(s string) (Anchor, error) {
	seq, h, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH", s)
	}
	hash, err := hex.DecodeString(h)
	if err != nil || len(hash) != sha256.Size {
		return Anchor{}, fmt.Errorf("anchor %q: the hash must be 64 hex digits", s)
	}
	return Anchor{Seq: n, Hash: hash}, nil
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 16 {
		s = s[:16] + "…"
	}
	if s == "" {
		s = "(empty)"
	}
	return s
}
