package factory

import (
	"context"

	"github.com/warden-iot/warden/internal/store"
)

// StaffCredential records a device credential that one of the operator's
// staff made for a customer's device while the owner's switch was on (see
// the package documentation). Records go with their device.
//
// It is still declared in package store (which will alias it once the
// device and user types have left store, so that factory need not import
// it).
type StaffCredential = store.StaffCredential

// Store keeps the credentials operator staff made for customers' devices.
// Package factorysql implements it on both database engines.
type Store interface {
	CreateStaffCredential(ctx context.Context, c StaffCredential) error
	// GetStaffCredential returns ErrNotFound for an unknown id (or one
	// whose device is gone).
	GetStaffCredential(ctx context.Context, id string) (StaffCredential, error)
}
