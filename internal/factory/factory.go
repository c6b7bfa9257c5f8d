// Package factory is the owner's factory service access switch beyond the
// HTTP API: the device credentials the operator's staff may make for a
// customer's machine while the switch is on, checked on every connection
// made with them. (That the switch closed travels as
// event.FactoryAccessClosed.)
//
// # Staff credentials
//
// An operator admin may make a SAS token for a customer's device only while
// the switch of its site is on (access.DeviceToken). Such a token is not an
// ordinary device token: it names a StaffCredential record by its key name
// (skn=KeyNamePrefix+id) and is signed with a key derived from the device's
// key and that name, so it cannot be turned into a token without the name,
// and the broker can tell it from the device's own tokens. The record keeps
// who made it, for which device and site, and until when; never the token.
//
// A staff credential connects only while
//
//   - its record exists (it goes with its device) and has not expired;
//   - the device is still at the site it was made for, and that site's
//     switch is on and has not been switched since the credential was made
//     (switched off and on again, it stays dead);
//   - the account that made it is still an active operator admin.
//
// Every connection attempt with one, allowed or refused, is written to the
// audit trail as the staff member's action on the owner's device
// (ActionConnect), so the owner sees it in the access log.
//
// # Access closed
//
// When staff may lose access to some of a customer's machines — the owner
// switched a site off, a site was deleted (the tenancy service), a device
// left a site (the API) — an event.FactoryAccessClosed is published; the server subscribes the
// reactions: the broker re-checks the live connections made with staff
// credentials and closes those no longer allowed, and the notifier stops the
// operator's pending notifications about those machines.
package factory

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// KeyNamePrefix starts the key name (skn) of a token made by staff.
const KeyNamePrefix = "warden-staff."

// ActionConnect is the audit action of a device connection made with a
// staff credential (outcome success or denied).
const ActionConnect = "device.connect.staff-credential"

// KeyName is the key name of the credential's tokens.
func KeyName(credentialID string) string { return KeyNamePrefix + credentialID }

// CredentialID is the credential a token's key name names, if it is one.
func CredentialID(keyName string) (string, bool) {
	id, ok := strings.CutPrefix(keyName, KeyNamePrefix)
	return id, ok && id != ""
}

// DeriveKey is the key a staff token is signed with: HMAC-SHA256 of the key
// name under the device's key. Verify a staff token with the derived keys
// of both device keys.
func DeriveKey(deviceKey []byte, keyName string) []byte {
	if len(deviceKey) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, deviceKey)
	mac.Write([]byte("warden staff credential\x00"))
	mac.Write([]byte(keyName))
	return mac.Sum(nil)
}

// ErrClosed is wrapped by every refusal of a staff credential.
var ErrClosed = errors.New("staff credential not valid")

// Valid says whether credential c may connect device d now, with s the
// device's current site (zero if it has none).
func Valid(c StaffCredential, d registry.Device, s tenancy.Site, now time.Time) error {
	switch {
	case c.DeviceID != d.ID || c.TenantID != d.TenantID:
		return fmt.Errorf("%w: made for another device", ErrClosed)
	case !now.Before(c.ExpiresAt):
		return fmt.Errorf("%w: expired", ErrClosed)
	case d.Info.SiteID == "" || d.Info.SiteID != c.SiteID || s.ID != c.SiteID:
		return fmt.Errorf("%w: the device is no longer at the site it was made for", ErrClosed)
	case !s.FactoryAccess:
		return fmt.Errorf("%w: the owner has switched factory service access off", ErrClosed)
	case s.FactoryAccessChangedAt.After(c.CreatedAt):
		return fmt.Errorf("%w: factory service access was switched since it was made", ErrClosed)
	}
	return nil
}

// Stores is what Credentials reads: the staff credentials, the sites of
// the devices they were made for, and the accounts that made them.
type Stores interface {
	GetStaffCredential(ctx context.Context, id string) (StaffCredential, error)
	GetSite(ctx context.Context, id string) (tenancy.Site, error)
	GetUser(ctx context.Context, id string) (identity.User, error)
}

// Credentials checks staff credentials for the broker and records every use.
type Credentials struct {
	st    Stores
	audit *audit.Recorder
	now   func() time.Time
}

// NewCredentials makes a checker on st recording to rec.
func NewCredentials(st Stores, rec *audit.Recorder, now func() time.Time) *Credentials {
	if now == nil {
		now = time.Now
	}
	return &Credentials{st: st, audit: rec, now: now}
}

// Authorize says whether the staff credential named id may connect device d
// (already authenticated by the token's signature) from ip. record says to
// write the attempt to the audit trail (a first connection, not a re-check).
// An error wrapping ErrClosed is a refusal; any other is a store failure.
func (c *Credentials) Authorize(ctx context.Context, id string, d registry.Device, ip string, record bool) error {
	cred, err := c.st.GetStaffCredential(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		return fmt.Errorf("%w: unknown credential", ErrClosed)
	}
	if err != nil {
		return err
	}
	var site tenancy.Site
	if d.Info.SiteID != "" {
		site, err = c.st.GetSite(ctx, d.Info.SiteID)
		if err != nil && !errors.Is(err, database.ErrNotFound) {
			return err
		}
	}
	verdict := Valid(cred, d, site, c.now())
	if verdict == nil && cred.ActorUserID != "" {
		// It acts for its maker: a disabled or deleted account, or one no
		// longer an operator admin, takes its credentials along.
		u, err := c.st.GetUser(ctx, cred.ActorUserID)
		switch {
		case errors.Is(err, database.ErrNotFound):
			verdict = fmt.Errorf("%w: the account that made it is gone", ErrClosed)
		case err != nil:
			return err
		case u.Status != identity.UserActive || u.Role != identity.RoleOperatorAdmin:
			verdict = fmt.Errorf("%w: the account that made it is %s %s", ErrClosed, u.Status, u.Role)
		}
	}
	if record && c.audit != nil {
		ev := audit.Event{TenantID: cred.ActorTenantID, ActorID: cred.ActorID, ActorName: cred.ActorName,
			Action: ActionConnect, Target: d.ID + "/" + cred.ID, OwnerTenantID: d.TenantID, IP: ip, Outcome: audit.Success}
		if verdict != nil {
			ev.Outcome = audit.Denied
		}
		_, _ = c.audit.Record(ctx, ev) // Record logs its own failure
	}
	return verdict
}
