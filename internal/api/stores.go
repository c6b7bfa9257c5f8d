package api

import (
	"context"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Meta reads and writes server-wide settings.
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// Stores are the domain stores the API reads and writes, each through its
// domain's narrow interface. An engine (store/sqlite, store/postgres)
// provides all of them; StoresOf takes them from one.
type Stores struct {
	Registry  registry.Store
	Hub       hub.Store
	Tenancy   tenancy.Store
	Users     identity.UserStore
	SignIns   identity.SignInStore
	Tokens    identity.TokenStore
	Grants    access.GrantStore
	Alarms    alarm.Store
	Notify    notifystore.Store
	Provision provision.Store
	Audit     audit.Store
	Factory   factory.Store
	Telemetry tsdbstore.Store
	Keys      keyring.Store
	Meta      Meta
}

// Engine is what an engine provides that the API uses: every domain store.
type Engine interface {
	registry.Store
	hub.Store
	tenancy.Store
	identity.UserStore
	identity.SignInStore
	identity.TokenStore
	access.GrantStore
	alarm.Store
	notifystore.Store
	provision.Store
	audit.Store
	factory.Store
	tsdbstore.Store
	keyring.Store
	Meta
}

// StoresOf takes every domain store from one engine.
func StoresOf(e Engine) Stores {
	return Stores{Registry: e, Hub: e, Tenancy: e, Users: e, SignIns: e, Tokens: e, Grants: e, Alarms: e, Notify: e,
		Provision: e, Audit: e, Factory: e, Telemetry: e, Keys: e, Meta: e}
}

// tenantDevices tells the tenancy service the devices of a tenant.
type tenantDevices struct{ st registry.Store }

func (d tenantDevices) TenantDeviceIDs(ctx context.Context, tenantID string) ([]string, error) {
	devs, err := d.st.ListDevices(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(devs))
	for i, dv := range devs {
		ids[i] = dv.ID
	}
	return ids, nil
}
