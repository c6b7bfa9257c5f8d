package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
)

// ErrInvalid is wrapped by every refusal of a grant request's content (an
// unknown supporter, an expiry in the past). The error's text is the whole
// explanation, fit to show to the caller.
var ErrInvalid = errors.New("invalid request")

// invalid is an ErrInvalid whose text is msg alone.
type invalid struct{ msg string }

func (e invalid) Error() string        { return e.msg }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

// Supporters finds supporters' accounts by their supporter id.
type Supporters interface {
	UserBySupporterID(ctx context.Context, supporterID string) (identity.User, error)
}

// Grants gives and revokes supporters' grants and publishes the facts
// (event.GrantCreated, event.GrantRevoked). Whether the caller may is
// Decide's (GrantCreate, GrantManage), asked before.
type Grants struct {
	store      GrantStore
	supporters Supporters
	events     event.Publisher
	clock      clock.Clock
	log        *slog.Logger
}

// NewGrants makes the grants service (clk nil: the wall clock).
func NewGrants(st GrantStore, sup Supporters, events event.Publisher, clk clock.Clock, log *slog.Logger) *Grants {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Grants{store: st, supporters: sup, events: events, clock: clock.OrReal(clk), log: log}
}

// NewGrant is a grant to give: the owner tenant's site or device (exactly
// one) opened to a supporter.
type NewGrant struct {
	TenantID    string // the owner: the site's or device's tenant
	SupporterID string // as typed; normalised here
	SiteID      string
	DeviceID    string
	ExpiresAt   *time.Time // nil: until revoked; else in the future
	CreatedBy   string     // the audit trail's actor id
}

// Create gives a grant and returns it with the supporter's account. An
// unknown, disabled or non-supporter account, or an expiry not in the
// future, is ErrInvalid.
func (g *Grants) Create(ctx context.Context, n NewGrant) (Grant, identity.User, error) {
	sup, err := g.supporters.UserBySupporterID(ctx, identity.NormalizeSupporterID(n.SupporterID))
	if errors.Is(err, database.ErrNotFound) || (err == nil && (sup.Role != identity.RoleSupporter || sup.Status == identity.UserDisabled)) {
		return Grant{}, identity.User{}, invalid{fmt.Sprintf("supporterId: no supporter %q", n.SupporterID)}
	}
	if err != nil {
		return Grant{}, identity.User{}, err
	}
	now := g.clock.Now().UTC().Truncate(time.Millisecond)
	id, err := identity.NewID("grt")
	if err != nil {
		return Grant{}, identity.User{}, err
	}
	gr := Grant{ID: id, TenantID: n.TenantID, SupporterUserID: sup.ID, SiteID: n.SiteID, DeviceID: n.DeviceID,
		CreatedBy: n.CreatedBy, CreatedAt: now}
	if n.ExpiresAt != nil {
		if !n.ExpiresAt.After(now) {
			return Grant{}, identity.User{}, invalid{"expiresAt: must be in the future"}
		}
		gr.ExpiresAt = n.ExpiresAt.UTC().Truncate(time.Millisecond)
	}
	if err := g.store.CreateGrant(ctx, gr); err != nil {
		return Grant{}, identity.User{}, err
	}
	g.log.Info("access granted", "grant", gr.ID, "tenant", gr.TenantID, "supporter", sup.ID, "site", gr.SiteID, "device", gr.DeviceID)
	g.publish(ctx, event.GrantCreated{TenantID: gr.TenantID, GrantID: gr.ID, SupporterUserID: gr.SupporterUserID,
		SiteID: gr.SiteID, DeviceID: gr.DeviceID, ExpiresAt: gr.ExpiresAt, At: now})
	return gr, sup, nil
}

// Revoke ends a grant (as loaded), by the actor id by. A grant revoked
// before is ErrConflict.
func (g *Grants) Revoke(ctx context.Context, gr Grant, by string) error {
	at := g.clock.Now().UTC().Truncate(time.Millisecond)
	if err := g.store.RevokeGrant(ctx, gr.ID, by, at); err != nil {
		return err
	}
	g.log.Info("access revoked", "grant", gr.ID, "tenant", gr.TenantID)
	g.publish(ctx, event.GrantRevoked{TenantID: gr.TenantID, GrantID: gr.ID, SupporterUserID: gr.SupporterUserID,
		SiteID: gr.SiteID, DeviceID: gr.DeviceID, At: at})
	return nil
}

// publish tells the subscribers of a fact. A reaction that failed is
// logged by the bus; the fact stands.
func (g *Grants) publish(ctx context.Context, ev event.Event) {
	_ = g.events.Publish(ctx, ev)
}
