package sqlite

import (
	"github.com/warden-iot/warden/internal/access/accesssql"
	"github.com/warden-iot/warden/internal/audit/auditsql"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/factory/factorysql"
	"github.com/warden-iot/warden/internal/tenancy/tenancysql"
)

// The domain stores the engine embeds; each alias names its embedded
// field (they are all called Store in their packages).
type (
	tenancyStore = tenancysql.Store
	grantStore   = accesssql.Store
	auditStore   = auditsql.Store
	factoryStore = factorysql.Store
)

// domainStores are the stores of the domains that own their storage, on
// the engine's database: the engine has their methods as its own.
type domainStores struct {
	*tenancyStore
	*grantStore
	*auditStore
	*factoryStore
}

func newDomainStores(db database.DB) domainStores {
	return domainStores{
		tenancyStore: tenancysql.New(db),
		grantStore:   accesssql.New(db),
		auditStore:   auditsql.New(db),
		factoryStore: factorysql.New(db),
	}
}
