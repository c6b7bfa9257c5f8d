// Package tenancy owns Warden's tenants and sites: the tenant hierarchy
// (operator → customers → …) with each tenant's details and telemetry
// retention, the sites (installations) that hold a tenant's devices with
// their factory-service-access switch, and the ids of deleted tenants that
// must never be used again.
//
// Store is what keeps them; package tenancysql implements it on both
// database engines. Service makes the changes the API asks for and
// publishes the facts they commit (event.TenantDeleted,
// event.FactoryAccessClosed).
package tenancy

import (
	"context"
	"time"
)

// RootTenantID is the operator's tenant, created by the schema migration.
// Every other tenant descends from it.
const RootTenantID = "root"

// Tenant is a node of the tenant hierarchy (operator → customers → …).
type Tenant struct {
	ID        string
	ParentID  string // empty for the root tenant
	Name      string
	CreatedAt time.Time
	// RetentionDays is how long the tenant's telemetry is kept; 0 keeps it
	// forever.
	RetentionDays int
	// Path is the ids from the root down to this tenant joined by "/",
	// e.g. "root/acme/acme-north"; the store sets it from ParentID.
	Path     string
	Address  Address
	Contact  Contact
	Contract Contract
}

// Address is a postal address.
type Address struct {
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	City       string `json:"city,omitempty"`
	Country    string `json:"country,omitempty"`
}

// Contact is a tenant's contact person.
type Contact struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Contract is a customer's contract and billing data: financial and
// contract data that supporters and the service desk never see.
type Contract struct {
	Number           string    `json:"number,omitempty"`
	Start            time.Time `json:"start,omitzero"`
	End              time.Time `json:"end,omitzero"`
	NoticeDays       int       `json:"noticeDays,omitempty"`
	BillingReference string    `json:"billingReference,omitempty"`
	Notes            string    `json:"notes,omitempty"`
}

// Site is an installation: a building or place with an address that
// holds devices. FactoryAccess is the owner's switch that lets the
// operator's service desk see the site's machines.
type Site struct {
	ID                     string
	TenantID               string
	Name                   string
	Address                Address
	FactoryAccess          bool
	FactoryAccessChangedAt time.Time // zero if never switched
	CreatedAt              time.Time
}

// SiteFilter selects sites. Zero fields do not filter; the result is the
// intersection of the non-zero ones, in id order.
type SiteFilter struct {
	TenantIDs     []string // sites of these tenants
	Under         string   // sites of this tenant and the tenants below it
	IDs           []string
	FactoryAccess bool // only sites with the switch on
}

// Store keeps tenants, sites and retired ids. Every method is safe for
// concurrent use. Errors wrap database.ErrNotFound or database.ErrConflict
// where the documentation says so.
type Store interface {
	// CreateTenant adds a tenant below t.ParentID (which must exist,
	// otherwise ErrNotFound) and sets its Path; a taken id is
	// ErrConflict, an empty id or one with a "/" is refused.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns one tenant (ErrNotFound if there is none).
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// ListTenants returns every tenant in id order.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant replaces a tenant's name, address, contact and contract.
	UpdateTenant(ctx context.Context, t Tenant) error
	// TenantsUnder returns the tenant and all its descendants, in path order.
	TenantsUnder(ctx context.Context, id string) ([]Tenant, error)
	// SetTenantRetention sets how many days a tenant's telemetry is kept.
	SetTenantRetention(ctx context.Context, id string, days int) error
	// DeleteTenant removes a tenant (not the root) with its devices,
	// telemetry, tokens and keys; its sites, users (with their sessions,
	// tokens and grants) and grants go with it. A tenant with sub-tenants
	// is not deleted (ErrConflict).
	DeleteTenant(ctx context.Context, id string) error

	// CreateSite adds a site to its tenant (ErrNotFound if the tenant does
	// not exist, ErrConflict if the id is taken).
	CreateSite(ctx context.Context, s Site) error
	// GetSite returns one site (ErrNotFound if there is none).
	GetSite(ctx context.Context, id string) (Site, error)
	// ListSites returns the sites matching f in id order; never nil.
	ListSites(ctx context.Context, f SiteFilter) ([]Site, error)
	// UpdateSite replaces name and address.
	UpdateSite(ctx context.Context, s Site) error
	// SetFactoryAccess switches the service desk's access to a site's
	// machines; the time of the switch is recorded only if the setting
	// changes.
	SetFactoryAccess(ctx context.Context, id string, on bool, at time.Time) error
	// DeleteSite removes a site; its devices stay, unassigned, and grants
	// on it are revoked (RevokedBy "site.delete").
	DeleteSite(ctx context.Context, id string, at time.Time) error

	// RetireID records that an id of a kind ("tenant") was used and its
	// owner deleted: it must never name anything new, so that nothing
	// keyed by it (the access log) passes to a newcomer.
	RetireID(ctx context.Context, kind, id string, at time.Time) error
	// IDRetired says whether RetireID was called for kind and id.
	IDRetired(ctx context.Context, kind, id string) (bool, error)
}
