package tenancy

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
)

// ErrInvalid is wrapped by every refusal of a request's content (a name
// too long, a contract ending before it starts). The error's text is the
// whole explanation, fit to show to the caller.
var ErrInvalid = errors.New("invalid request")

// ErrUnfinished is wrapped when a change is committed but a reaction to it
// (shredding a deleted tenant's keys, purging the database files) did not
// finish: the caller must know that, say, erasure is incomplete.
var ErrUnfinished = errors.New("committed, but a reaction did not finish")

// invalid is an ErrInvalid whose text is msg alone.
type invalid struct{ msg string }

func (e invalid) Error() string        { return e.msg }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return invalid{fmt.Sprintf(format, args...)} }

// Devices is what the Service needs to know about devices: those of a
// tenant, for the TenantDeleted event.
type Devices interface {
	// TenantDeviceIDs returns the ids of the devices of a tenant.
	TenantDeviceIDs(ctx context.Context, tenantID string) ([]string, error)
}

// ServiceDeps are what a Service works with.
type ServiceDeps struct {
	Store   Store
	Devices Devices
	// Events takes the facts the service commits.
	Events event.Publisher
	Clock  clock.Clock // nil: the wall clock
	Log    *slog.Logger
	// NewID makes a fresh id with a prefix ("cus", "site"), e.g.
	// identity.NewID.
	NewID func(prefix string) (string, error)
	// NormalizeEmail checks a contact's e-mail address and returns its
	// normal form, e.g. identity.NormalizeEmail.
	NormalizeEmail func(string) (string, error)
}

// Service changes tenants and sites and publishes the facts it commits
// (event.TenantDeleted, event.FactoryAccessClosed). Who may make a change
// is the caller's to decide (package access) before calling it.
type Service struct {
	d ServiceDeps
}

// NewService makes a Service on d.
func NewService(d ServiceDeps) *Service {
	d.Clock = clock.OrReal(d.Clock)
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{d: d}
}

// now is the service's time, in UTC to the millisecond (what the store
// keeps).
func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Millisecond) }

// MaxRetentionDays is a hundred years: "forever" is 0.
const MaxRetentionDays = 36500

// MaxTenantIDLen is the longest tenant id.
const MaxTenantIDLen = 128

// TenantPatch is a change of a tenant's details; nil fields stay as they
// are. An address or contact replaces the whole one.
type TenantPatch struct {
	Name          *string
	Address       *Address
	Contact       *Contact
	Contract      *Contract
	RetentionDays *int
}

// CheckAddress refuses an address with a part longer than 200 characters.
func CheckAddress(a Address) error {
	for name, v := range map[string]string{"street": a.Street, "postalCode": a.PostalCode, "city": a.City, "country": a.Country} {
		if len(v) > 200 {
			return invalidf("address.%s: at most 200 characters", name)
		}
	}
	return nil
}

// apply checks p and applies it to t, except the retention (which the
// store keeps apart).
func (s *Service) apply(p TenantPatch, t *Tenant) error {
	if p.Name != nil {
		t.Name = strings.TrimSpace(*p.Name)
	}
	if t.Name == "" || len(t.Name) > 200 {
		return invalidf("name: 1 to 200 characters")
	}
	if p.Address != nil {
		if err := CheckAddress(*p.Address); err != nil {
			return err
		}
		t.Address = *p.Address
	}
	if p.Contact != nil {
		c := *p.Contact
		if c.Email != "" {
			e, err := s.d.NormalizeEmail(c.Email)
			if err != nil {
				return invalidf("contact.email: %v", err)
			}
			c.Email = e
		}
		if len(c.Name) > 200 || len(c.Phone) > 50 {
			return invalidf("contact: name at most 200, phone at most 50 characters")
		}
		t.Contact = c
	}
	if p.Contract != nil {
		c := *p.Contract
		if !c.Start.IsZero() && !c.End.IsZero() && c.End.Before(c.Start) {
			return invalidf("contract: end before start")
		}
		if c.NoticeDays < 0 || c.NoticeDays > 3650 {
			return invalidf("contract.noticeDays: 0 to 3650")
		}
		if len(c.Number) > 100 || len(c.BillingReference) > 200 || len(c.Notes) > 2000 {
			return invalidf("contract: number at most 100, billingReference 200, notes 2000 characters")
		}
		t.Contract = c
	}
	if d := p.RetentionDays; d != nil {
		if *d < 0 || *d > MaxRetentionDays {
			return invalidf("telemetryRetentionDays must be between 0 (keep) and %d", MaxRetentionDays)
		}
	}
	return nil
}

// validTenantID says whether id is 1 to MaxTenantIDLen letters, digits,
// '-', '.' or '_'.
func validTenantID(id string) bool {
	if id == "" || len(id) > MaxTenantIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_':
		default:
			return false
		}
	}
	return true
}

// NewTenant is a tenant to create.
type NewTenant struct {
	ID       string // empty: made up
	ParentID string // must exist
	TenantPatch
}

// CreateTenant creates a tenant below n.ParentID and returns it as stored.
// A bad id or patch is ErrInvalid; a taken id, or one of a deleted tenant
// (it is never used again: the deleted tenant's history is keyed by it),
// is ErrConflict.
func (s *Service) CreateTenant(ctx context.Context, n NewTenant) (Tenant, error) {
	if n.ID == "" {
		id, err := s.d.NewID("cus")
		if err != nil {
			return Tenant{}, err
		}
		n.ID = id
	} else if !validTenantID(n.ID) {
		return Tenant{}, invalidf("id: 1 to %d letters, digits, '-', '.' or '_'", MaxTenantIDLen)
	}
	t := Tenant{ID: n.ID, ParentID: n.ParentID, CreatedAt: s.now()}
	if err := s.apply(n.TenantPatch, &t); err != nil {
		return Tenant{}, err
	}
	if d := n.RetentionDays; d != nil {
		t.RetentionDays = *d
	}
	retired, err := s.d.Store.IDRetired(ctx, "tenant", t.ID)
	if err == nil && retired {
		err = fmt.Errorf("tenant %q: %w", t.ID, database.ErrConflict)
	}
	if err == nil {
		err = s.d.Store.CreateTenant(ctx, t)
	}
	if err != nil {
		return Tenant{}, err
	}
	if t, err = s.d.Store.GetTenant(ctx, t.ID); err != nil {
		return Tenant{}, err
	}
	s.d.Log.Info("tenant created", "tenant", t.ID, "parent", t.ParentID)
	return t, nil
}

// UpdateTenant applies p to t (as loaded) and returns the tenant as
// changed. A bad patch is ErrInvalid.
func (s *Service) UpdateTenant(ctx context.Context, t Tenant, p TenantPatch) (Tenant, error) {
	if err := s.apply(p, &t); err != nil {
		return Tenant{}, err
	}
	if err := s.d.Store.UpdateTenant(ctx, t); err != nil {
		return Tenant{}, err
	}
	if d := p.RetentionDays; d != nil {
		if err := s.d.Store.SetTenantRetention(ctx, t.ID, *d); err != nil {
			return Tenant{}, err
		}
		t.RetentionDays = *d
		s.d.Log.Info("telemetry retention changed", "tenant", t.ID, "days", *d)
	}
	return t, nil
}

// DeleteTenant deletes a tenant, retiring its id for good, and publishes
// event.TenantDeleted: its devices are disconnected, their rule and
// maintenance state forgotten, and its keys shredded (so that whatever of
// the tenant is left in backups cannot be read, and the database files are
// purged of it). A tenant with sub-tenants is ErrConflict; a reaction that
// did not finish is ErrUnfinished (the tenant is gone all the same).
func (s *Service) DeleteTenant(ctx context.Context, id string) error {
	devs, err := s.d.Devices.TenantDeviceIDs(ctx, id)
	if err != nil {
		return err
	}
	// Retired first: should the deletion fail, the id stays in use anyway.
	if err := s.d.Store.RetireID(ctx, "tenant", id, s.d.Clock.Now().UTC()); err != nil {
		return err
	}
	if err := s.d.Store.DeleteTenant(ctx, id); err != nil {
		return err
	}
	s.d.Log.Info("tenant deleted", "tenant", id, "devices", len(devs))
	if devs == nil {
		devs = []string{}
	}
	if err := s.d.Events.Publish(ctx, event.TenantDeleted{TenantID: id, DeviceIDs: devs, At: s.d.Clock.Now().UTC()}); err != nil {
		return fmt.Errorf("tenant %s: %w: %w", id, ErrUnfinished, err)
	}
	return nil
}

// SitePatch is a change of a site; nil fields stay as they are.
type SitePatch struct {
	Name    *string
	Address *Address
}

func (p SitePatch) apply(s *Site) error {
	if p.Name != nil {
		s.Name = strings.TrimSpace(*p.Name)
	}
	if s.Name == "" || len(s.Name) > 200 {
		return invalidf("name: 1 to 200 characters")
	}
	if p.Address != nil {
		if err := CheckAddress(*p.Address); err != nil {
			return err
		}
		s.Address = *p.Address
	}
	return nil
}

// CreateSite creates a site of a tenant, its factory service access off.
// A bad patch is ErrInvalid.
func (s *Service) CreateSite(ctx context.Context, tenantID string, p SitePatch) (Site, error) {
	id, err := s.d.NewID("site")
	if err != nil {
		return Site{}, err
	}
	site := Site{ID: id, TenantID: tenantID, CreatedAt: s.now()}
	if err := p.apply(&site); err != nil {
		return Site{}, err
	}
	if err := s.d.Store.CreateSite(ctx, site); err != nil {
		return Site{}, err
	}
	return site, nil
}

// UpdateSite applies p to site (as loaded) and returns it as changed. A
// bad patch is ErrInvalid.
func (s *Service) UpdateSite(ctx context.Context, site Site, p SitePatch) (Site, error) {
	if err := p.apply(&site); err != nil {
		return Site{}, err
	}
	if err := s.d.Store.UpdateSite(ctx, site); err != nil {
		return Site{}, err
	}
	return site, nil
}

// DeleteSite deletes a site (as loaded): its devices stay, unassigned, and
// grants on it are revoked. If its factory service access was on, it
// publishes event.FactoryAccessClosed.
func (s *Service) DeleteSite(ctx context.Context, site Site) error {
	if err := s.d.Store.DeleteSite(ctx, site.ID, s.d.Clock.Now().UTC()); err != nil {
		return err
	}
	if site.FactoryAccess {
		s.publish(ctx, event.FactoryAccessClosed{TenantID: site.TenantID, SiteID: site.ID, At: s.d.Clock.Now().UTC()})
	}
	return nil
}

// SetFactoryAccess turns the owner's switch of a site (as loaded): while
// it is on, the operator's service desk sees the site's machines. Turned
// off, it publishes event.FactoryAccessClosed. It returns the site as
// changed.
func (s *Service) SetFactoryAccess(ctx context.Context, site Site, on bool) (Site, error) {
	at := s.now()
	if err := s.d.Store.SetFactoryAccess(ctx, site.ID, on, at); err != nil {
		return Site{}, err
	}
	was := site.FactoryAccess
	site.FactoryAccess, site.FactoryAccessChangedAt = on, at
	s.d.Log.Info("factory service access switched", "site", site.ID, "on", on)
	if was && !on {
		s.publish(ctx, event.FactoryAccessClosed{TenantID: site.TenantID, SiteID: site.ID, At: at})
	}
	return site, nil
}

// publish tells the subscribers of a fact. A reaction that failed is
// logged by the bus; the fact stands.
func (s *Service) publish(ctx context.Context, ev event.Event) {
	_ = s.d.Events.Publish(ctx, ev)
}
