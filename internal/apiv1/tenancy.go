package apiv1

import (
	"time"
)

// Site is the API view of a site (an installation, a building).
type Site struct {
	ID                     string     `json:"id"`
	TenantID               string     `json:"tenantId"`
	Name                   string     `json:"name"`
	Address                Address    `json:"address,omitzero"`
	FactoryAccess          bool       `json:"factoryAccess"`
	FactoryAccessChangedAt *time.Time `json:"factoryAccessChangedAt,omitempty"`
	CreatedAt              time.Time  `json:"createdAt"`
}

// Tenant is the API view of a tenant. Contract is left out for callers
// who may not see contract data (supporters, the service desk).
type Tenant struct {
	ID                     string    `json:"id"`
	ParentID               string    `json:"parentId,omitempty"`
	Path                   string    `json:"path"`
	Name                   string    `json:"name"`
	Address                Address   `json:"address,omitzero"`
	Contact                Contact   `json:"contact,omitzero"`
	Contract               *Contract `json:"contract,omitempty"`
	CreatedAt              time.Time `json:"createdAt"`
	TelemetryRetentionDays int       `json:"telemetryRetentionDays"` // 0: kept until deleted
}

// Address is a postal address (of a tenant, a site or a person).
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

// Contract is a customer's contract and billing data, shown only to those
// who may see contract data.
type Contract struct {
	Number           string    `json:"number,omitempty"`
	Start            time.Time `json:"start,omitzero"`
	End              time.Time `json:"end,omitzero"`
	NoticeDays       int       `json:"noticeDays,omitempty"`
	BillingReference string    `json:"billingReference,omitempty"`
	Notes            string    `json:"notes,omitempty"`
}
