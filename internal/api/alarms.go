package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/alarm/alarmsvc"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func alarmView(al alarm.Record, ruleName string) apiv1.Alarm {
	return apiv1.Alarm{ID: al.ID, TenantID: al.TenantID, RuleID: al.RuleID, RuleName: ruleName, DeviceID: al.DeviceID,
		SiteID: al.SiteID, Kind: al.Kind, Severity: al.Severity, Message: al.Message, Value: al.Value, State: al.State,
		RaisedAt: al.RaisedAt, LastAt: al.LastAt, Retriggers: al.Retriggers, AckedAt: timePtr(al.AckedAt),
		AckedBy: al.AckedBy, AckComment: al.AckComment, Unreadable: al.Unreadable, ClearedAt: timePtr(al.ClearedAt),
		ClearedBy: al.ClearedBy}
}

// ruleNames looks up rule names once per rule; rules that are gone (and
// maintenance warnings, which have no rule) have none.
type ruleNames struct {
	a     *API
	names map[string]string
}

func (n *ruleNames) name(ctx context.Context, id string) (string, error) {
	if name, ok := n.names[id]; ok {
		return name, nil
	}
	var name string
	if !strings.HasPrefix(id, alarm.KindMaintenance+":") {
		row, err := n.a.stores.Alarms.GetAlarmRule(ctx, id)
		switch {
		case err == nil:
			name = row.Name
		case !errors.Is(err, database.ErrNotFound):
			return "", err
		}
	}
	n.names[id] = name
	return name, nil
}

func (a *API) alarmView(ctx context.Context, al alarm.Record) (apiv1.Alarm, error) {
	name, err := (&ruleNames{a: a, names: map[string]string{}}).name(ctx, al.RuleID)
	return alarmView(al, name), err
}

// byAlarm resolves the alarm named by the "alarm" path value. Its resource
// is its device's: alarms are machine data. An alarm whose device is gone,
// or that the caller may not even know the device of, is not found.
func byAlarm(a *API, r *http.Request) (access.Resource, any, error) {
	ctx := r.Context()
	s := r.PathValue("alarm")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return access.Resource{}, nil, fmt.Errorf("alarm %q: %w", s, database.ErrNotFound)
	}
	al, err := a.stores.Alarms.GetAlarm(ctx, id)
	if err != nil {
		return access.Resource{}, nil, err
	}
	d, err := a.stores.Registry.GetDevice(ctx, al.DeviceID)
	if errors.Is(err, database.ErrNotFound) {
		return access.Resource{}, nil, fmt.Errorf("alarm %d: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return access.Resource{}, nil, err
	}
	res, err := a.deviceResource(ctx, d)
	if err != nil {
		return res, nil, err
	}
	if !a.allowed(ctx, access.DeviceRead, res) {
		return access.Resource{}, nil, fmt.Errorf("alarm %d: %w", id, database.ErrNotFound)
	}
	return res, al, nil
}

// alarmQuery reads the filters of GET /api/v1/alarms.
func alarmQuery(w http.ResponseWriter, r *http.Request) (alarm.Filter, bool) {
	q := r.URL.Query()
	f := alarm.Filter{Limit: 100}
	switch s := q.Get("state"); s {
	case "", alarm.StateActive, alarm.StateCleared:
		f.State = s
	default:
		writeError(w, http.StatusBadRequest, "state: want %s or %s", alarm.StateActive, alarm.StateCleared)
		return f, false
	}
	if s := q.Get("severity"); s != "" {
		if !validSeverity(s) {
			writeError(w, http.StatusBadRequest, "severity: want warning or critical")
			return f, false
		}
		f.Severity = s
	}
	if s := q.Get("site"); s != "" {
		f.SiteIDs = []string{s}
	}
	for _, x := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(x.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeError(w, http.StatusBadRequest, "%s: %q is not an RFC 3339 time", x.name, s)
				return f, false
			}
			*x.dst = t
		}
	}
	switch s := q.Get("unacked"); s {
	case "", "false":
	case "true":
		f.Unacked = true
	default:
		writeError(w, http.StatusBadRequest, "unacked: want true or false")
		return f, false
	}
	var ok bool
	f.After, f.Limit, ok = pageQuery(w, q, "an alarm id", f.Limit)
	return f, ok
}

// listAlarms lists alarms of the devices whose data the caller may read,
// in id order (oldest first), a page at a time. The alarms are read from
// the store in the caller's scope (alarmScopes) and each one's device
// passes Decide; a page the policy thins is filled from further store
// pages, up to maxListScan alarms read.
func (a *API) listAlarms(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, ok := alarmQuery(w, r)
	if !ok {
		return
	}
	if only := r.URL.Query().Get("device"); only != "" {
		f.DeviceIDs = []string{only}
	}
	limit := f.Limit
	filters, ok := a.alarmScopes(w, r, f)
	if !ok {
		return
	}
	pages := a.alarmPages(filters, f.After, min(max(limit, 100), 1000))
	devs := a.newAlarmDevices(access.AlarmRead)
	var als []alarm.Record
	var last int64 // the last alarm read
	scanned := 0
	for len(als) < limit && scanned < maxListScan {
		al, ok, err := pages.next(ctx)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if !ok {
			last = 0 // the end: no next page
			break
		}
		scanned, last = scanned+1, al.ID
		if ok, err := devs.allowed(ctx, al.DeviceID); err != nil {
			a.storeError(w, err)
			return
		} else if ok {
			als = append(als, al)
		}
	}
	shown := map[string]bool{}
	for _, al := range als {
		shown[al.DeviceID] = true
	}
	noteOutsideList(r, "alarm.list", devs.devices(shown))
	names := &ruleNames{a: a, names: map[string]string{}}
	page := apiv1.AlarmPage{Alarms: make([]apiv1.Alarm, 0, len(als))}
	for _, al := range als {
		name, err := names.name(ctx, al.RuleID)
		if err != nil {
			a.storeError(w, err)
			return
		}
		page.Alarms = append(page.Alarms, alarmView(al, name))
	}
	switch {
	case len(als) == limit:
		page.Next = als[len(als)-1].ID
	case scanned == maxListScan:
		page.Next = last // read as far as allowed: go on from there
	}
	writeJSON(w, http.StatusOK, page)
}

// noteOutsideAlarmRead marks, for the audit trail, a supporter's or the
// operator staff's read of an alarm of a customer's machine (as
// noteOutsideRead does for the device routes).
func noteOutsideAlarmRead(r *http.Request, res access.Resource) {
	switch principal(r.Context()).Role {
	case identity.RoleSupporter, identity.RoleOperatorService, identity.RoleOperatorAdmin:
	default:
		return
	}
	if res.TenantID == tenancy.RootTenantID {
		return
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.outsideRead = "alarm" // recorded as "alarm.read"
	}
}

func (a *API) getAlarm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := a.alarmView(ctx, loaded[alarm.Record](ctx))
	if err != nil {
		a.storeError(w, err)
		return
	}
	noteOutsideAlarmRead(r, resourceOf(ctx))
	writeJSON(w, http.StatusOK, v)
}

// MaxAlarmComment bounds an acknowledgement's comment.
const MaxAlarmComment = 1000

func readAlarmComment(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req apiv1.AlarmComment
	if !decodeOptional(w, r, &req) {
		return "", false
	}
	req.Comment = strings.TrimSpace(req.Comment)
	if len(req.Comment) > MaxAlarmComment || hasControlExceptNewline(req.Comment) {
		writeError(w, http.StatusBadRequest, "comment: at most %d bytes of text", MaxAlarmComment)
		return "", false
	}
	return req.Comment, true
}

func hasControlExceptNewline(s string) bool {
	for _, c := range s {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// actorLabel is who did something, as alarms record it: the account's
// name (its e-mail address, or a token's name) and its id.
func actorLabel(c caller) string {
	if c.Name == "" || c.Name == c.ActorID {
		return c.ActorID
	}
	return c.Name + " (" + c.ActorID + ")"
}

// alarmError answers a failure of the alarms service.
func (a *API) alarmError(w http.ResponseWriter, err error) {
	var ce *alarmsvc.ConflictError
	if errors.As(err, &ce) {
		writeError(w, http.StatusConflict, "%s", ce.Msg)
		return
	}
	a.storeError(w, err)
}

// ackAlarm acknowledges an alarm, active or cleared: who and when are
// recorded with the comment. Twice is 409.
func (a *API) ackAlarm(w http.ResponseWriter, r *http.Request) {
	comment, ok := readAlarmComment(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	acked, err := a.alarms.Acknowledge(ctx, loaded[alarm.Record](ctx), actorLabel(principal(ctx)), comment)
	if err != nil {
		a.alarmError(w, err)
		return
	}
	v, err := a.alarmView(ctx, acked)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// clearAlarm clears an active alarm by hand. If nobody acknowledged it
// yet, clearing acknowledges it too, with the comment. Clearing one that
// is not active is 409.
func (a *API) clearAlarm(w http.ResponseWriter, r *http.Request) {
	comment, ok := readAlarmComment(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	al, err := a.alarms.ClearByHand(ctx, loaded[alarm.Record](ctx), actorLabel(principal(ctx)), comment)
	if err != nil {
		a.alarmError(w, err)
		return
	}
	v, err := a.alarmView(ctx, al)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// validSeverity says whether s is a rule severity.
func validSeverity(s string) bool { return s == "warning" || s == "critical" }
