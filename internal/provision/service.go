package provision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sas"
)

// ErrInvalid is wrapped by the errors that refuse a request as invalid: a
// bad id, key, initial twin or key choice. Their text says what is wrong,
// for the caller.
var ErrInvalid = errors.New("invalid")

// invalid is an error wrapping ErrInvalid whose text is only its message.
type invalid struct{ msg string }

func (e invalid) Error() string        { return e.msg }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return invalid{fmt.Sprintf(format, args...)} }

// ValidRegistrationID reports whether id can be a registration id: as a
// device id (it becomes one), without '@', which DPS does not allow. The
// error wraps ErrInvalid.
func ValidRegistrationID(id string) error {
	if err := registry.ValidDeviceID(id); err != nil {
		return invalidf("registration id: %v", err)
	}
	if bytes.IndexByte([]byte(id), '@') >= 0 {
		return invalidf("registration id %q: character '@' not allowed (letters, digits and - . _ :)", id)
	}
	return nil
}

// CheckInitialTwin validates an initial twin and returns it compacted (nil
// for none or null): {"tags":{…},"properties":{"desired":{…}}}, with the
// rules of device twins. The error wraps ErrInvalid.
func CheckInitialTwin(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	tags, desired, err := InitialTwinParts(raw)
	if err != nil {
		return nil, invalid{err.Error()}
	}
	tw := hub.NewTwin("", "", time.Now())
	if err := tw.ApplyInitial(tags, desired, time.Now()); err != nil {
		return nil, invalidf("initial twin: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalidf("initial twin: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeKey decodes an imported base64 key: 16 to 64 bytes (Azure's are
// 64); nil for "".
func decodeKey(name, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) < 16 || len(k) > 64 {
		return nil, invalidf("%s must be 16 to 64 bytes in base64", name)
	}
	return k, nil
}

// keys returns the imported keys, or new random ones for those not given.
func keys(primaryB64, secondaryB64 string) (primary, secondary []byte, err error) {
	if primary, err = decodeKey("primaryKey", primaryB64); err != nil {
		return nil, nil, err
	}
	if secondary, err = decodeKey("secondaryKey", secondaryB64); err != nil {
		return nil, nil, err
	}
	if primary == nil {
		if primary, err = sas.NewKey(); err != nil {
			return nil, nil, fmt.Errorf("new primary key: %w", err)
		}
	}
	if secondary == nil {
		if secondary, err = sas.NewKey(); err != nil {
			return nil, nil, fmt.Errorf("new secondary key: %w", err)
		}
	}
	return primary, secondary, nil
}

// NewGroup is what creating an enrollment group takes. Keys are base64 to
// import (for example the group key of an existing Azure DPS enrollment,
// whose devices already hold keys derived from it); new random keys for
// those empty.
type NewGroup struct {
	ID       string
	TenantID string
	// Enabled: nil enables the group.
	Enabled                  *bool
	InitialTwin              json.RawMessage
	PrimaryKey, SecondaryKey string
}

// NewIndividual is what creating an individual enrollment takes: DeviceID
// defaults to the registration id; the rest as in NewGroup.
type NewIndividual struct {
	RegistrationID           string
	DeviceID                 string
	TenantID                 string
	Enabled                  *bool
	InitialTwin              json.RawMessage
	PrimaryKey, SecondaryKey string
}

// Patch changes an enrollment group or individual enrollment; empty fields
// change nothing. InitialTwin replaces the initial twin, "null" removes it,
// nil leaves it. Keys are base64 to import; RegenerateKey is "primary",
// "secondary" or "both" for new random keys.
type Patch struct {
	Enabled                  *bool
	InitialTwin              json.RawMessage
	PrimaryKey, SecondaryKey string
	RegenerateKey            string
}

// Enrollments manages enrollment groups and individual enrollments: it
// checks what is asked, keeps it in the Store, logs it and publishes
// event.EnrollmentsChanged, on which the device endpoint, which caches
// enrollments for authentication, refuses a disabled or re-keyed
// enrollment from the next connection on. Who may ask is the caller's
// business.
//
// Store errors are returned as the store gave them (database.ErrNotFound,
// ErrConflict, ErrLimit), their text being the caller's answer.
type Enrollments struct {
	st     Store
	events event.Publisher
	clock  clock.Clock
	log    *slog.Logger
}

// NewEnrollments makes the service on st, publishing on events, at the
// time of clk (nil: the wall clock).
func NewEnrollments(st Store, events event.Publisher, clk clock.Clock, log *slog.Logger) *Enrollments {
	return &Enrollments{st: st, events: events, clock: clock.OrReal(clk), log: log}
}

// stamp is the time of a change, to the millisecond as stored.
func (s *Enrollments) stamp() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }

// changed publishes that tenantID's enrollments changed. A reaction that
// did not finish is logged by the bus; the fact stands.
func (s *Enrollments) changed(ctx context.Context, tenantID string) {
	_ = s.events.Publish(ctx, event.EnrollmentsChanged{TenantID: tenantID, At: s.clock.Now().UTC()})
}

// CreateGroup creates an enrollment group. A bad id, key or initial twin
// wraps ErrInvalid; a taken id is database.ErrConflict, a tenant with
// MaxEnrollmentGroups ErrLimit.
func (s *Enrollments) CreateGroup(ctx context.Context, n NewGroup) (EnrollmentGroup, error) {
	if err := registry.ValidDeviceID(n.ID); err != nil { // the same characters make a fine group id
		return EnrollmentGroup{}, invalidf("enrollment group id: %v", err)
	}
	twin, err := CheckInitialTwin(n.InitialTwin)
	if err != nil {
		return EnrollmentGroup{}, err
	}
	primary, secondary, err := keys(n.PrimaryKey, n.SecondaryKey)
	if err != nil {
		return EnrollmentGroup{}, err
	}
	now := s.stamp()
	g := EnrollmentGroup{ID: n.ID, TenantID: n.TenantID, Enabled: n.Enabled == nil || *n.Enabled,
		PrimaryKey: primary, SecondaryKey: secondary, InitialTwin: twin, CreatedAt: now, UpdatedAt: now}
	if err := s.st.CreateEnrollmentGroup(ctx, g); err != nil {
		return EnrollmentGroup{}, err
	}
	s.changed(ctx, g.TenantID)
	s.log.Info("enrollment group created", "group", g.ID, "tenant", g.TenantID)
	return g, nil
}

// UpdateGroup changes tenantID's enrollment group id and returns it. A bad
// patch wraps ErrInvalid.
func (s *Enrollments) UpdateGroup(ctx context.Context, tenantID, id string, p Patch) (EnrollmentGroup, error) {
	u, err := update(p, s.stamp())
	if err != nil {
		return EnrollmentGroup{}, err
	}
	g, err := s.st.UpdateEnrollmentGroup(ctx, tenantID, id, u)
	if err != nil {
		return EnrollmentGroup{}, err
	}
	s.changed(ctx, g.TenantID)
	s.log.Info("enrollment group changed", "group", g.ID, "tenant", g.TenantID, "enabled", g.Enabled,
		"newKeys", u.PrimaryKey != nil || u.SecondaryKey != nil, "newInitialTwin", u.SetInitialTwin)
	return g, nil
}

// DeleteGroup deletes tenantID's enrollment group id. Its registrations
// and devices stay.
func (s *Enrollments) DeleteGroup(ctx context.Context, tenantID, id string) error {
	if err := s.st.DeleteEnrollmentGroup(ctx, tenantID, id); err != nil {
		return err
	}
	s.changed(ctx, tenantID)
	s.log.Info("enrollment group deleted", "group", id, "tenant", tenantID)
	return nil
}

// Create creates an individual enrollment. A bad id, key or initial twin
// wraps ErrInvalid; a taken registration id is database.ErrConflict.
func (s *Enrollments) Create(ctx context.Context, n NewIndividual) (Enrollment, error) {
	if err := ValidRegistrationID(n.RegistrationID); err != nil {
		return Enrollment{}, err
	}
	if n.DeviceID == "" {
		n.DeviceID = n.RegistrationID
	}
	if err := registry.ValidDeviceID(n.DeviceID); err != nil {
		return Enrollment{}, invalid{err.Error()}
	}
	twin, err := CheckInitialTwin(n.InitialTwin)
	if err != nil {
		return Enrollment{}, err
	}
	primary, secondary, err := keys(n.PrimaryKey, n.SecondaryKey)
	if err != nil {
		return Enrollment{}, err
	}
	now := s.stamp()
	e := Enrollment{RegistrationID: n.RegistrationID, TenantID: n.TenantID, DeviceID: n.DeviceID,
		Enabled: n.Enabled == nil || *n.Enabled, PrimaryKey: primary, SecondaryKey: secondary, InitialTwin: twin,
		CreatedAt: now, UpdatedAt: now}
	if err := s.st.CreateEnrollment(ctx, e); err != nil {
		return Enrollment{}, err
	}
	s.changed(ctx, e.TenantID)
	s.log.Info("individual enrollment created", "registration", e.RegistrationID, "device", e.DeviceID, "tenant", e.TenantID)
	return e, nil
}

// Update changes tenantID's individual enrollment of registrationID and
// returns it. A bad patch wraps ErrInvalid.
func (s *Enrollments) Update(ctx context.Context, tenantID, registrationID string, p Patch) (Enrollment, error) {
	u, err := update(p, s.stamp())
	if err != nil {
		return Enrollment{}, err
	}
	e, err := s.st.UpdateEnrollment(ctx, tenantID, registrationID, u)
	if err != nil {
		return Enrollment{}, err
	}
	s.changed(ctx, e.TenantID)
	s.log.Info("individual enrollment changed", "registration", e.RegistrationID, "tenant", e.TenantID, "enabled", e.Enabled,
		"newKeys", u.PrimaryKey != nil || u.SecondaryKey != nil, "newInitialTwin", u.SetInitialTwin)
	return e, nil
}

// Delete deletes tenantID's individual enrollment of registrationID. Its
// registration and device stay.
func (s *Enrollments) Delete(ctx context.Context, tenantID, registrationID string) error {
	if err := s.st.DeleteEnrollment(ctx, tenantID, registrationID); err != nil {
		return err
	}
	s.changed(ctx, tenantID)
	s.log.Info("individual enrollment deleted", "registration", registrationID, "tenant", tenantID)
	return nil
}

// update turns the patch of either kind of enrollment into a store update,
// or says what is wrong (wrapping ErrInvalid).
func update(p Patch, now time.Time) (EnrollmentUpdate, error) {
	u := EnrollmentUpdate{Enabled: p.Enabled, UpdatedAt: now}
	if p.InitialTwin != nil {
		twin, err := CheckInitialTwin(p.InitialTwin)
		if err != nil {
			return u, err
		}
		u.SetInitialTwin, u.InitialTwin = true, twin
	}
	var err error
	if u.PrimaryKey, err = decodeKey("primaryKey", p.PrimaryKey); err != nil {
		return u, err
	}
	if u.SecondaryKey, err = decodeKey("secondaryKey", p.SecondaryKey); err != nil {
		return u, err
	}
	var newPrimary, newSecondary bool
	switch p.RegenerateKey {
	case "":
	case "primary":
		newPrimary = true
	case "secondary":
		newSecondary = true
	case "both":
		newPrimary, newSecondary = true, true
	default:
		return u, invalidf(`regenerateKey must be "primary", "secondary" or "both"`)
	}
	if (newPrimary && u.PrimaryKey != nil) || (newSecondary && u.SecondaryKey != nil) {
		return u, invalidf("a key cannot be both regenerated and given")
	}
	if newPrimary {
		if u.PrimaryKey, err = sas.NewKey(); err != nil {
			return u, fmt.Errorf("new primary key: %w", err)
		}
	}
	if newSecondary {
		if u.SecondaryKey, err = sas.NewKey(); err != nil {
			return u, fmt.Errorf("new secondary key: %w", err)
		}
	}
	return u, nil
}
