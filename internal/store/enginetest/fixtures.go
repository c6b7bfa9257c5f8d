package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/storetest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// The fixtures below make what a domain's conformance tests need from
// other domains (a tenant, a site, a device, a user, telemetry) and fail
// the test at once when the engine refuses. Each takes the narrowest store
// that can make it, so that an engine (store.Store), a domain's sql store
// or a test's own environment all serve.

// T0 is the creation time of everything the fixtures make.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// WithKeyring gives a migrated engine a keyring (over a fixed test master
// key) to seal machine data with, as the server does, and returns it. It is
// the keyring of the engines' own suite (package storetest), which cannot
// import this package.
func WithKeyring(t *testing.T, e store.Store) *keyring.Keyring {
	t.Helper()
	return storetest.WithKeyring(t, e)
}

// Key is a 32-byte key (a device key, a hash) of byte b.
func Key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// TenantCreator is what makes a tenant (tenancy.Store, the engine).
type TenantCreator interface {
	CreateTenant(ctx context.Context, t tenancy.Tenant) error
}

// Tenant creates tenant id, named "Tenant id", below parent.
func Tenant(t *testing.T, s TenantCreator, id, parent string) tenancy.Tenant {
	t.Helper()
	tn := tenancy.Tenant{ID: id, ParentID: parent, Name: "Tenant " + id, CreatedAt: T0}
	if err := s.CreateTenant(t.Context(), tn); err != nil {
		t.Fatalf("CreateTenant(%q below %q): %v", id, parent, err)
	}
	return tn
}

// SiteCreator is what makes a site (tenancy.Store, the engine).
type SiteCreator interface {
	CreateSite(ctx context.Context, s tenancy.Site) error
}

// Site creates site id, named "Site id" with an address in Lyon, of tenant.
func Site(t *testing.T, s SiteCreator, id, tenant string) tenancy.Site {
	t.Helper()
	st := tenancy.Site{ID: id, TenantID: tenant, Name: "Site " + id, CreatedAt: T0,
		Address: tenancy.Address{Street: "1 Main St", PostalCode: "69001", City: "Lyon", Country: "FR"}}
	if err := s.CreateSite(t.Context(), st); err != nil {
		t.Fatalf("CreateSite(%q): %v", id, err)
	}
	return st
}

// DeviceCreator is what makes a device (registry.Store, the engine).
type DeviceCreator interface {
	CreateDevice(ctx context.Context, d registry.Device) error
}

// Device creates enabled device id of tenant, with keys Key(1) and Key(2)
// and metadata info.
func Device(t *testing.T, s DeviceCreator, id, tenant string, info registry.DeviceInfo) registry.Device {
	t.Helper()
	d := registry.Device{ID: id, TenantID: tenant, Status: registry.DeviceEnabled, PrimaryKey: Key(1), SecondaryKey: Key(2),
		CreatedAt: T0, Info: info}
	if err := s.CreateDevice(t.Context(), d); err != nil {
		t.Fatalf("CreateDevice(%q): %v", id, err)
	}
	return d
}

// RootDevice creates enabled device id of the root tenant, without
// metadata (Device).
func RootDevice(t *testing.T, s DeviceCreator, id string) registry.Device {
	t.Helper()
	return Device(t, s, id, tenancy.RootTenantID, registry.DeviceInfo{})
}

// NewUser is a pending user id of tenant with role, not yet stored.
func NewUser(id, tenant string, role identity.Role) identity.User {
	return identity.User{ID: id, TenantID: tenant, Email: id + "@example.com", FirstName: "First " + id, LastName: "Last",
		Role: role, Status: identity.UserPending, CreatedBy: "test", CreatedAt: T0}
}

// UserCreator is what makes a user (identity's store, the engine).
type UserCreator interface {
	CreateUser(ctx context.Context, u identity.User) error
}

// User stores u and returns it.
func User(t *testing.T, s UserCreator, u identity.User) identity.User {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.ID, err)
	}
	return u
}

// Supporter creates a supporter user id of tenant with supporter id "S-id".
func Supporter(t *testing.T, s UserCreator, id, tenant string) identity.User {
	t.Helper()
	u := NewUser(id, tenant, identity.RoleSupporter)
	u.SupporterID = "S-" + id
	return User(t, s, u)
}

// HeadRecord is a head record of device dev (of the root tenant) with
// message id mid whose points lie in [minTS, maxTS]; its blob says which
// message it is.
func HeadRecord(dev, mid string, minTS, maxTS int64) tsdbstore.HeadRecord {
	return tsdbstore.HeadRecord{TenantID: tenancy.RootTenantID, DeviceID: dev, MessageID: mid,
		ReceivedAt: T0.Add(time.Duration(maxTS) * time.Millisecond), MinTS: minTS, MaxTS: maxTS,
		Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, mid, minTS, maxTS))}
}

// KeepLatest is a LatestMerge that records, as the new blob, the old blob
// followed by the accepted indexes.
func KeepLatest(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
	return fmt.Appendf(old, "%v;", accepted), nil
}

// HeadWriter is what writes head records (tsdbstore.Store, the engine).
type HeadWriter interface {
	WriteHead(ctx context.Context, recs []tsdbstore.HeadRecord, merge tsdbstore.LatestMerge, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error)
}

// WriteHead writes recs in one batch with KeepLatest and returns a result
// a record.
func WriteHead(t *testing.T, s HeadWriter, recs ...tsdbstore.HeadRecord) []tsdbstore.WriteResult {
	t.Helper()
	res, err := s.WriteHead(t.Context(), recs, KeepLatest, tsdbstore.LogMark{})
	if err != nil {
		t.Fatalf("WriteHead: %v", err)
	}
	if len(res) != len(recs) {
		t.Fatalf("WriteHead gave %d results for %d records", len(res), len(recs))
	}
	return res
}

// Chunk is a chunk of metric of device dev (of the root tenant) over
// [start, end], a point a millisecond; its blob says which chunk it is.
func Chunk(dev, metric string, start, end int64) tsdbstore.ChunkRecord {
	return tsdbstore.ChunkRecord{TenantID: tenancy.RootTenantID, DeviceID: dev, Metric: metric, StartTS: start, EndTS: end,
		Count: int(end-start) + 1, Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, metric, start, end))}
}

// WantErr reports (without stopping the test) when err is not want.
func WantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}

// DeviceIDs are the ids of ds, in order.
func DeviceIDs(ds []registry.Device) []string {
	return IDs(ds, func(d registry.Device) string { return d.ID })
}

// UserIDs are the ids of us, in order.
func UserIDs(us []identity.User) []string {
	return IDs(us, func(u identity.User) string { return u.ID })
}

// IDs are the ids of xs, in order (never nil).
func IDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// Raised is a change that raises (or keeps raised) the critical alarm of
// rule on device of tenant at at, for value; the device's site is
// "site-device".
func Raised(tenant, rule, device string, at time.Time, value float64) alarm.Change {
	return alarm.Change{Kind: "raised", TenantID: tenant, RuleID: rule, DeviceID: device, SiteID: "site-" + device,
		Alarm: alarm.KindRule, Severity: "critical", Message: fmt.Sprintf("value %g", value), Value: value, At: at}
}

// AlarmApplier is what applies alarm changes (alarm.Store, the engine).
type AlarmApplier interface {
	ApplyAlarmChanges(ctx context.Context, changes []alarm.Change) ([]alarm.Record, error)
}

// Apply applies changes in one batch and returns an alarm a change.
func Apply(t *testing.T, s AlarmApplier, changes ...alarm.Change) []alarm.Record {
	t.Helper()
	got, err := s.ApplyAlarmChanges(t.Context(), changes)
	if err != nil {
		t.Fatalf("ApplyAlarmChanges: %v", err)
	}
	if len(got) != len(changes) {
		t.Fatalf("ApplyAlarmChanges returned %d alarms for %d changes", len(got), len(changes))
	}
	return got
}

// RuleCreator is what makes an alarm rule (alarm.Store, the engine).
type RuleCreator interface {
	CreateAlarmRule(ctx context.Context, r alarm.StoredRule) error
}

// Rule creates enabled alarm rule id, "temp > 80", of tenant.
func Rule(t *testing.T, s RuleCreator, id, tenant string) alarm.StoredRule {
	t.Helper()
	r := alarm.StoredRule{ID: id, TenantID: tenant, Name: "Rule " + id, Enabled: true,
		Spec: json.RawMessage(`{"metric":"temp","op":">","threshold":80}`), CreatedBy: "u1", CreatedAt: T0, UpdatedAt: T0}
	if err := s.CreateAlarmRule(t.Context(), r); err != nil {
		t.Fatalf("CreateAlarmRule(%q): %v", id, err)
	}
	return r
}

// Assignment assigns registration id regID (also the device id) of tenant
// through enrollment group group at at, with keys Key(k) and Key(k+1).
func Assignment(tenant, regID, group string, k byte, at time.Time) provision.Assignment {
	return provision.Assignment{
		Registration: provision.Registration{RegistrationID: regID, TenantID: tenant, DeviceID: regID,
			EnrollmentKind: provision.EnrollmentGroupKind, EnrollmentID: group,
			OperationID: "op." + regID + at.Format("150405"), ETag: "e-" + at.Format("150405"), UpdatedAt: at},
		PrimaryKey: Key(k), SecondaryKey: Key(k + 1),
	}
}

// Assigner is what assigns registrations (provision.Store, the engine).
type Assigner interface {
	AssignRegistrations(ctx context.Context, as []provision.Assignment) ([]provision.AssignResult, error)
}

// Assign assigns as in one batch and returns a result an assignment.
func Assign(t *testing.T, s Assigner, as ...provision.Assignment) []provision.AssignResult {
	t.Helper()
	res, err := s.AssignRegistrations(t.Context(), as)
	if err != nil {
		t.Fatalf("AssignRegistrations: %v", err)
	}
	if len(res) != len(as) {
		t.Fatalf("AssignRegistrations gave %d results for %d assignments", len(res), len(as))
	}
	return res
}
