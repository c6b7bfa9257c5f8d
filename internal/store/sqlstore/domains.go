package sqlstore

import (
	"github.com/warden-iot/warden/internal/access/accesssql"
	"github.com/warden-iot/warden/internal/alarm/alarmsql"
	"github.com/warden-iot/warden/internal/audit/auditsql"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/factory/factorysql"
	"github.com/warden-iot/warden/internal/hub/hubsql"
	"github.com/warden-iot/warden/internal/identity/identitysql"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/keyring/keyringsql"
	"github.com/warden-iot/warden/internal/notify/notifysql"
	"github.com/warden-iot/warden/internal/provision/provisionsql"
	"github.com/warden-iot/warden/internal/registry/registrysql"
	"github.com/warden-iot/warden/internal/tenancy/tenancysql"
)

// The domain stores the engines embed; each alias names its embedded field
// apart from the others (they are all called Store in their packages).
type (
	registryStore  = registrysql.Store
	hubStore       = hubsql.Store
	tenancyStore   = tenancysql.Store
	grantStore     = accesssql.Store
	auditStore     = auditsql.Store
	factoryStore   = factorysql.Store
	identityStore  = identitysql.Store
	provisionStore = provisionsql.Store
	keyStore       = keyringsql.Store
	alarmStore     = alarmsql.Store
	notifyStore    = notifysql.Store
)

// Domains are the stores of the domains that own their storage, on one
// database. The engines embed Domains, so that they keep satisfying
// store.Store while its consumers move to the domains' narrow interfaces.
type Domains struct {
	*registryStore  // devices
	*hubStore       // twins, cloud-to-device messages, model ids, sessions
	*tenancyStore   // tenants, sites and retired ids
	*grantStore     // supporters' grants
	*auditStore     // the audit trail
	*factoryStore   // staff credentials of the factory service switch
	*identityStore  // people, sessions, sign-in counts and API tokens
	*provisionStore // the device provisioning service's state
	*keyStore       // the tenants' data keys
	*alarmStore     // alarm rules, alarms, maintenance plans, evaluator state
	*notifyStore    // notification settings, webhooks and the outbox
}

// NewDomains returns the domain stores on db.
func NewDomains(db database.DB) Domains {
	return Domains{
		registryStore:  registrysql.New(db),
		hubStore:       hubsql.New(db),
		tenancyStore:   tenancysql.New(db),
		grantStore:     accesssql.New(db),
		auditStore:     auditsql.New(db),
		factoryStore:   factorysql.New(db),
		identityStore:  identitysql.New(db),
		provisionStore: provisionsql.New(db),
		keyStore:       keyringsql.New(db),
		alarmStore:     alarmsql.New(db),
		notifyStore:    notifysql.New(db),
	}
}

// Keys is the tenant-key store, for what an engine configures of it.
func (d Domains) Keys() *keyringsql.Store { return d.keyStore }

// SetSealer gives the domain stores that seal machine data the sealer.
func (d Domains) SetSealer(sl keyring.Sealer) {
	d.hubStore.SetSealer(sl)
	d.provisionStore.SetSealer(sl)
	d.alarmStore.SetSealer(sl)
	d.notifyStore.SetSealer(sl)
}
