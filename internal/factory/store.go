package factory

import (
	"context"
	"time"
)

// StaffCredential records a device credential that one of the operator's
// staff made for a customer's device while the owner's switch was on (see
// the package documentation): a SAS token that names this record. The
// token itself is never stored; it is bound to the record by its
// signature. Records go with their device.
type StaffCredential struct {
	ID       string
	TenantID string // the device's tenant: the owner
	DeviceID string
	// SiteID is the device's site when the credential was made: the site
	// whose switch it depends on.
	SiteID string
	// Who made it: ActorUserID is the account ("" for the operator's
	// bootstrap token), ActorID the audit trail's actor id.
	ActorUserID   string
	ActorID       string
	ActorName     string
	ActorTenantID string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// Store keeps the credentials operator staff made for customers' devices.
// Package factorysql implements it on both database engines.
type Store interface {
	CreateStaffCredential(ctx context.Context, c StaffCredential) error
	// GetStaffCredential returns ErrNotFound for an unknown id (or one
	// whose device is gone).
	GetStaffCredential(ctx context.Context, id string) (StaffCredential, error)
}
