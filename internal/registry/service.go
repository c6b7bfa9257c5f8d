package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/tenancy"
)

// ErrInvalid is wrapped by the errors that refuse a request as invalid: a
// bad device id, metadata, status or key choice. Their text says what is
// wrong, for the caller.
var ErrInvalid = errors.New("invalid")

// invalid is an error wrapping ErrInvalid whose text is only its message.
type invalid struct{ msg string }

func (e invalid) Error() string        { return e.msg }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return invalid{fmt.Sprintf(format, args...)} }

// MaxDeviceIDLen is IoT Hub's limit.
const MaxDeviceIDLen = 128

// MaxInfoLen is the most characters a metadata field may have.
const MaxInfoLen = 200

// ValidDeviceID reports whether id can be a device id: 1–128 ASCII letters,
// digits and "-._:@". MQTT's "/", "+" and "#" are never allowed. The error
// wraps ErrInvalid.
func ValidDeviceID(id string) error {
	if id == "" || len(id) > MaxDeviceIDLen {
		return invalidf("device id must be 1 to %d characters", MaxDeviceIDLen)
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '@':
		default:
			return invalidf("device id %q: character %q not allowed (letters, digits and - . _ : @)", id, c)
		}
	}
	return nil
}

// Sites finds sites: a device's site must be one of its tenant's.
type Sites interface {
	GetSite(ctx context.Context, id string) (tenancy.Site, error)
}

// Service registers and manages devices: it checks what is asked, keeps it
// in the Store, logs it and publishes the facts (event.DeviceCreated,
// DeviceChanged, DeviceDeleted, DeviceRekeyed, FactoryAccessClosed) for the
// parts that react to them. Who may ask is the caller's business.
type Service struct {
	st     Store
	sites  Sites
	events event.Publisher
	clock  clock.Clock
	log    *slog.Logger
}

// NewService makes the service on st, checking sites with sites and
// publishing on events, at the time of clk (nil: the wall clock).
func NewService(st Store, sites Sites, events event.Publisher, clk clock.Clock, log *slog.Logger) *Service {
	return &Service{st: st, sites: sites, events: events, clock: clock.OrReal(clk), log: log}
}

// publish hands a committed fact to its subscribers. A reaction that did
// not finish is logged by the bus; the fact stands.
func (s *Service) publish(ctx context.Context, ev event.Event) {
	_ = s.events.Publish(ctx, ev)
}

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// CheckInfo checks metadata for a device of tenantID: every field at most
// MaxInfoLen characters, and the site, if any, one of the tenant's. A
// refusal wraps ErrInvalid.
func (s *Service) CheckInfo(ctx context.Context, tenantID string, i DeviceInfo) error {
	for _, f := range []struct{ name, v string }{{"name", i.Name}, {"serialNumber", i.SerialNumber},
		{"meterNumber", i.MeterNumber}, {"measurementLocation", i.MeasurementLocation},
		{"installationPlace", i.InstallationPlace}, {"model", i.Model}, {"firmwareVersion", i.FirmwareVersion},
		{"siteId", i.SiteID}} {
		if len(f.v) > MaxInfoLen {
			return invalidf("%s: at most %d characters", f.name, MaxInfoLen)
		}
	}
	if i.SiteID == "" {
		return nil
	}
	site, err := s.sites.GetSite(ctx, i.SiteID)
	if errors.Is(err, database.ErrNotFound) || (err == nil && site.TenantID != tenantID) {
		return invalidf("siteId: no site %q in the device's tenant %q", i.SiteID, tenantID)
	}
	if err != nil {
		return fmt.Errorf("check site %s: %w", i.SiteID, err)
	}
	return nil
}

// NewDevice is what registering a device takes.
type NewDevice struct {
	ID       string
	TenantID string
	Info     DeviceInfo
}

// Create registers an enabled device with two new keys and publishes
// event.DeviceCreated. Bad metadata or id wrap ErrInvalid, a taken id
// database.ErrConflict.
func (s *Service) Create(ctx context.Context, n NewDevice) (Device, error) {
	if err := s.CheckInfo(ctx, n.TenantID, n.Info); err != nil {
		return Device{}, err
	}
	if err := ValidDeviceID(n.ID); err != nil {
		return Device{}, err
	}
	primary, err1 := sas.NewKey()
	secondary, err2 := sas.NewKey()
	if err := errors.Join(err1, err2); err != nil {
		return Device{}, fmt.Errorf("generate keys of device %s: %w", n.ID, err)
	}
	d := Device{ID: n.ID, TenantID: n.TenantID, Status: DeviceEnabled, Info: n.Info,
		PrimaryKey: primary, SecondaryKey: secondary, CreatedAt: s.now().Truncate(time.Millisecond)}
	if err := s.st.CreateDevice(ctx, d); err != nil {
		return Device{}, fmt.Errorf("create device %s: %w", d.ID, err)
	}
	s.log.Info("device created", "device", d.ID, "tenant", d.TenantID)
	s.publish(ctx, event.DeviceCreated{TenantID: d.TenantID, DeviceID: d.ID, At: d.CreatedAt})
	return d, nil
}

// InfoPatch changes some metadata fields; a field left nil stays, and a
// new value is trimmed of surrounding space.
type InfoPatch struct {
	SiteID              *string
	Name                *string
	SerialNumber        *string
	MeterNumber         *string
	MeasurementLocation *string
	InstallationPlace   *string
	Model               *string
	FirmwareVersion     *string
}

// Apply returns i with the patch applied, and whether the patch set any
// field.
func (p InfoPatch) Apply(i DeviceInfo) (DeviceInfo, bool) {
	changed := false
	for _, f := range []struct {
		src *string
		dst *string
	}{{p.SiteID, &i.SiteID}, {p.Name, &i.Name}, {p.SerialNumber, &i.SerialNumber}, {p.MeterNumber, &i.MeterNumber},
		{p.MeasurementLocation, &i.MeasurementLocation}, {p.InstallationPlace, &i.InstallationPlace},
		{p.Model, &i.Model}, {p.FirmwareVersion, &i.FirmwareVersion}} {
		if f.src != nil {
			*f.dst, changed = strings.TrimSpace(*f.src), true
		}
	}
	return i, changed
}

// Change is what Update changes of a device: its metadata, its status, or
// both (nil: unchanged).
type Change struct {
	Info   *DeviceInfo
	Status *DeviceStatus
}

// Update changes d as ch says and returns it as it is then. New metadata is
// checked (CheckInfo), stored, and published as event.DeviceChanged, with
// event.FactoryAccessClosed when the device left a site; then a new status
// is stored and published as event.DeviceChanged. A bad status or
// metadata wraps ErrInvalid, and nothing is changed; a device that is gone
// is database.ErrNotFound.
func (s *Service) Update(ctx context.Context, d Device, ch Change) (Device, error) {
	if ch.Status != nil && *ch.Status != DeviceEnabled && *ch.Status != DeviceDisabled {
		return d, invalidf(`status must be "enabled" or "disabled"`)
	}
	if ch.Info != nil {
		if err := s.CheckInfo(ctx, d.TenantID, *ch.Info); err != nil {
			return d, err
		}
		oldSite := d.Info.SiteID
		if err := s.st.SetDeviceInfo(ctx, d.TenantID, d.ID, *ch.Info); err != nil {
			return d, fmt.Errorf("change device %s: %w", d.ID, err)
		}
		d.Info = *ch.Info
		at := s.now()
		s.publish(ctx, changed(d, oldSite, at))
		if oldSite != "" && d.Info.SiteID != oldSite {
			s.publish(ctx, event.FactoryAccessClosed{TenantID: d.TenantID, DeviceID: d.ID, At: at})
		}
	}
	if ch.Status != nil {
		if err := s.st.SetDeviceStatus(ctx, d.TenantID, d.ID, *ch.Status); err != nil {
			return d, fmt.Errorf("set status of device %s: %w", d.ID, err)
		}
		d.Status = *ch.Status
		s.publish(ctx, changed(d, d.Info.SiteID, s.now()))
		s.log.Info("device status changed", "device", d.ID, "status", d.Status)
	}
	return d, nil
}

// changed is the fact of d as it is now, at oldSite before.
func changed(d Device, oldSite string, at time.Time) event.DeviceChanged {
	return event.DeviceChanged{TenantID: d.TenantID, DeviceID: d.ID, SiteID: d.Info.SiteID, PreviousSiteID: oldSite,
		Model: d.Info.Model, Status: string(d.Status), At: at}
}

// Delete removes d with its data and publishes event.DeviceDeleted. When
// the deletion is done but not purged from the database files, the fact is
// published all the same and the error wraps database.ErrNotPurged.
func (s *Service) Delete(ctx context.Context, d Device) error {
	err := s.st.DeleteDevice(ctx, d.TenantID, d.ID)
	if err != nil && !errors.Is(err, database.ErrNotPurged) {
		return fmt.Errorf("delete device %s: %w", d.ID, err)
	}
	s.log.Info("device deleted", "device", d.ID)
	s.publish(ctx, event.DeviceDeleted{TenantID: d.TenantID, DeviceID: d.ID, At: s.now()})
	if err != nil {
		return fmt.Errorf("delete device %s: %w", d.ID, err)
	}
	return nil
}

// The keys RegenerateKeys replaces.
const (
	KeyPrimary   = "primary"
	KeySecondary = "secondary"
	KeyBoth      = "both"
)

// RegenerateKeys replaces d's KeyPrimary, KeySecondary or KeyBoth keys,
// publishes event.DeviceRekeyed and returns the device with its new keys.
// Another choice wraps ErrInvalid.
func (s *Service) RegenerateKeys(ctx context.Context, d Device, which string) (Device, error) {
	var err error
	switch which {
	case KeyPrimary:
		d.PrimaryKey, err = sas.NewKey()
	case KeySecondary:
		d.SecondaryKey, err = sas.NewKey()
	case KeyBoth:
		var err2 error
		d.PrimaryKey, err = sas.NewKey()
		d.SecondaryKey, err2 = sas.NewKey()
		err = errors.Join(err, err2)
	default:
		return d, invalidf(`key must be "primary", "secondary" or "both"`)
	}
	if err != nil {
		return d, fmt.Errorf("generate keys of device %s: %w", d.ID, err)
	}
	if err := s.st.SetDeviceKeys(ctx, d.TenantID, d.ID, d.PrimaryKey, d.SecondaryKey); err != nil {
		return d, fmt.Errorf("replace keys of device %s: %w", d.ID, err)
	}
	s.log.Info("device keys regenerated", "device", d.ID, "key", which)
	s.publish(ctx, event.DeviceRekeyed{TenantID: d.TenantID, DeviceID: d.ID, Keys: which, At: s.now()})
	return d, nil
}
