package store

import (
	"github.com/warden-iot/warden/internal/factory"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Role is identity.Role.
type Role = identity.Role

// The roles (identity's).
const (
	RoleOperatorAdmin   = identity.RoleOperatorAdmin
	RoleOperatorService = identity.RoleOperatorService
	RoleCustomerAdmin   = identity.RoleCustomerAdmin
	RoleCustomerUser    = identity.RoleCustomerUser
	RoleSupporter       = identity.RoleSupporter
)

// Roles lists every role (identity.Roles).
var Roles = identity.Roles

// Address is tenancy.Address.
type Address = tenancy.Address

// Contact is a tenant's contact person (package tenancy).
type Contact = tenancy.Contact

// Contract is a customer's contract and billing data (package tenancy).
type Contract = tenancy.Contract

// Site is an installation that holds devices (package tenancy).
type Site = tenancy.Site

// SiteFilter selects sites (package tenancy).
type SiteFilter = tenancy.SiteFilter

// DeviceInfo is registry.DeviceInfo.
type DeviceInfo = registry.DeviceInfo

// DeviceFilter is registry.DeviceFilter.
type DeviceFilter = registry.DeviceFilter

// UserStatus is identity.UserStatus.
type UserStatus = identity.UserStatus

// The statuses of an account (identity's).
const (
	UserPending  = identity.UserPending
	UserActive   = identity.UserActive
	UserDisabled = identity.UserDisabled
)

// User is identity.User.
type User = identity.User

// Session is identity.Session.
type Session = identity.Session

// Purposes of one-time user tokens (identity's).
const (
	PurposeActivate = identity.PurposeActivate
	PurposeReset    = identity.PurposeReset
)

// UserToken is identity.UserToken.
type UserToken = identity.UserToken

// SignInFailure is identity.SignInFailure.
type SignInFailure = identity.SignInFailure

// StaffCredential is factory.StaffCredential, kept for api/devices.go until
// the devices service takes it over.
type StaffCredential = factory.StaffCredential
