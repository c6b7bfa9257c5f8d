package store

import (
	"encoding/json"

	"github.com/warden-iot/warden/internal/provision"
)

// The device provisioning service's state is package provision's; these
// names keep code that still speaks of the store compiling.
type (
	// ProvisioningStore is provision.Store.
	ProvisioningStore = provision.Store
	// EnrollmentGroup is provision.EnrollmentGroup.
	EnrollmentGroup = provision.EnrollmentGroup
	// Enrollment is provision.Enrollment.
	Enrollment = provision.Enrollment
	// EnrollmentUpdate is provision.EnrollmentUpdate.
	EnrollmentUpdate = provision.EnrollmentUpdate
	// EnrollmentKind is provision.EnrollmentKind.
	EnrollmentKind = provision.EnrollmentKind
	// Registration is provision.Registration.
	Registration = provision.Registration
	// Assignment is provision.Assignment.
	Assignment = provision.Assignment
	// AssignResult is provision.AssignResult.
	AssignResult = provision.AssignResult
)

// ErrLimit is provision.ErrLimit.
var ErrLimit = provision.ErrLimit

// Provisioning constants, as package provision defines them.
const (
	MaxEnrollmentGroups = provision.MaxEnrollmentGroups

	EnrollmentGroupKind      = provision.EnrollmentGroupKind
	EnrollmentIndividualKind = provision.EnrollmentIndividualKind

	RegistrationAssigned       = provision.RegistrationAssigned
	SubstatusInitialAssignment = provision.SubstatusInitialAssignment
	SubstatusDeviceDataReset   = provision.SubstatusDeviceDataReset
)

// InitialTwinParts is provision.InitialTwinParts.
func InitialTwinParts(doc []byte) (tags, desired json.RawMessage, err error) {
	return provision.InitialTwinParts(doc)
}
