package broker

import (
	"context"
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sas"
)

// SetStaffCredentials sets who decides about device connections made with
// a credential the operator's staff made for a customer's device; without
// it, every staff credential is refused. Call it before Start.
func (b *Broker) SetStaffCredentials(c *factory.Credentials) { b.staff = c }

var errStaffClosed = errors.New("the staff credential is no longer valid")

// deviceKeys are the keys a device token with key name skn is checked
// against: the device's keys, or for a staff credential the keys derived
// from them and the name.
func deviceKeys(d registry.Device, skn string) [][]byte {
	if _, ok := factory.CredentialID(skn); ok {
		return [][]byte{factory.DeriveKey(d.PrimaryKey, skn), factory.DeriveKey(d.SecondaryKey, skn)}
	}
	return [][]byte{d.PrimaryKey, d.SecondaryKey}
}

// authorizeStaff checks a connection authenticated with a staff credential
// (the token's signature is already verified): it returns the credential's
// id, or "" for a device's own token. For a staff credential it holds
// staffMu (read) until release is called, after the session is attached,
// so that RecheckStaff sees either the switch still on here or the
// session there.
func (h *authHook) authorizeStaff(cl *mqtt.Client, pk packets.Packet, d registry.Device) (id string, release func(), r *refusal) {
	release = func() {}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return "", release, refuse("bad-password", packets.ErrMalformedPassword, packets.ErrBadUsernameOrPassword, err)
	}
	id, ok := factory.CredentialID(tok.KeyName)
	if !ok {
		return "", release, nil
	}
	if h.b.staff == nil {
		return "", release, notAuthorized("staff-credential", errStaffClosed)
	}
	h.b.staffMu.RLock()
	release = h.b.staffMu.RUnlock
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = h.b.staff.Authorize(ctx, id, d, remoteIP(cl.Net.Remote), true)
	switch {
	case errors.Is(err, factory.ErrClosed):
		return "", release, notAuthorized("staff-credential", err)
	case err != nil:
		return "", release, refuse("store-error", packets.ErrServerUnavailable, packets.ErrServerUnavailable, err)
	}
	h.b.log.Info("device connected with a staff credential", "device", d.ID, "credential", id, "remote", cl.Net.Remote)
	return id, release, nil
}

// RecheckStaff checks every live connection made with a staff credential
// again and closes those no longer allowed: the reaction to
// event.FactoryAccessClosed. A connection whose check fails for a store
// error is closed too.
func (b *Broker) RecheckStaff(ctx context.Context) {
	type conn struct {
		client *mqtt.Client
		staff  string
	}
	b.staffMu.Lock()
	defer b.staffMu.Unlock()
	b.mu.Lock()
	var conns []conn
	for _, s := range b.sessions {
		if s.staff != "" {
			conns = append(conns, conn{s.client, s.staff})
		}
	}
	b.mu.Unlock()
	for _, c := range conns {
		d, err := b.store.GetDevice(ctx, c.client.ID)
		if err == nil {
			if b.staff == nil {
				err = errStaffClosed
			} else {
				err = b.staff.Authorize(ctx, c.staff, d, "", false)
			}
		}
		if err != nil {
			b.log.Info("closing connection made with a staff credential", "device", c.client.ID, "credential", c.staff, "reason", err)
			c.client.Stop(errStaffClosed)
		}
	}
}
