// Package provision holds the device provisioning service's state: ID
// scopes, enrollment groups, individual enrollments and the registration
// records of the devices they assigned, with the narrow Store interface
// that keeps them (implemented by package provisionsql on either engine),
// and Enrollments, the service that manages enrollments and publishes
// their fact.
package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store holds the device provisioning service's state: ID
// scopes, enrollment groups, individual enrollments and registrations.
//
// Every tenant has one ID scope, which devices put in their DPS user name and
// token; it leads the broker from a connection to the tenant before anything
// else is known. Registration ids are unique within a scope (that is, a
// tenant): an individual enrollment and a group registration cannot share one.
type Store interface {
	// IDScope returns the tenant's ID scope, creating one ("0ne" and 8
	// random upper-case hex digits, see NewIDScope) on first use.
	IDScope(ctx context.Context, tenantID string) (string, error)
	// TenantByIDScope finds the tenant of an ID scope (compared
	// case-insensitively); database.ErrNotFound if there is none.
	TenantByIDScope(ctx context.Context, idScope string) (string, error)

	// CreateEnrollmentGroup adds a group: database.ErrConflict if the tenant has
	// one of that id, ErrLimit if it already has MaxEnrollmentGroups.
	CreateEnrollmentGroup(ctx context.Context, g EnrollmentGroup) error
	GetEnrollmentGroup(ctx context.Context, tenantID, id string) (EnrollmentGroup, error)
	// ListEnrollmentGroups returns a tenant's groups in id order.
	ListEnrollmentGroups(ctx context.Context, tenantID string) ([]EnrollmentGroup, error)
	// UpdateEnrollmentGroup applies u atomically and returns the result.
	UpdateEnrollmentGroup(ctx context.Context, tenantID, id string, u EnrollmentUpdate) (EnrollmentGroup, error)
	// DeleteEnrollmentGroup removes a group. Its registrations and devices
	// stay.
	DeleteEnrollmentGroup(ctx context.Context, tenantID, id string) error

	// CreateEnrollment adds an individual enrollment: database.ErrConflict if the
	// tenant has one for that registration id.
	CreateEnrollment(ctx context.Context, e Enrollment) error
	GetEnrollment(ctx context.Context, tenantID, registrationID string) (Enrollment, error)
	// ListEnrollments returns a tenant's individual enrollments in
	// registration id order.
	ListEnrollments(ctx context.Context, tenantID string) ([]Enrollment, error)
	UpdateEnrollment(ctx context.Context, tenantID, registrationID string, u EnrollmentUpdate) (Enrollment, error)
	// DeleteEnrollment removes an individual enrollment. Its registration
	// and device stay.
	DeleteEnrollment(ctx context.Context, tenantID, registrationID string) error

	// AssignRegistrations carries out a batch of device assignments in one
	// transaction (group commit); results are in batch order. For each
	// assignment:
	//
	//   - if no device has the id, one is created, enabled, with the keys;
	//   - if the tenant's device of that id was assigned by the same
	//     enrollment (the registration record says so), its keys are
	//     replaced and its status is kept (re-registration);
	//   - otherwise (the id belongs to another tenant, to a device made by
	//     hand, or to another enrollment or registration) the result's Err
	//     wraps database.ErrConflict and nothing changes for that assignment.
	//
	// On success the registration record is created or replaced: status
	// assigned, substatus initialAssignment for a new record or
	// deviceDataReset when one existed, CreatedAt kept from an earlier
	// record. The returned error is for the batch as a whole (nothing was
	// written).
	AssignRegistrations(ctx context.Context, as []Assignment) ([]AssignResult, error)
	GetRegistration(ctx context.Context, tenantID, registrationID string) (Registration, error)
	// ListRegistrations returns up to limit registrations of a tenant with
	// registration id > after, in id order.
	ListRegistrations(ctx context.Context, tenantID, after string, limit int) ([]Registration, error)
	// DeleteRegistration removes a registration record; the device stays.
	DeleteRegistration(ctx context.Context, tenantID, registrationID string) error
}

// ErrLimit reports that a per-tenant limit has been reached.
var ErrLimit = errors.New("limit reached")

// MaxEnrollmentGroups bounds the enrollment groups of one tenant: a device
// of a group is authenticated by trying the keys of every group of its
// tenant, so this bounds the work of one connection.
const MaxEnrollmentGroups = 100

// NewIDScope returns a random ID scope: "0ne" and 8 upper-case hex digits,
// as Azure DPS scopes look.
func NewIDScope() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "0ne" + strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// EnrollmentGroup admits every device that holds a key derived from the
// group key: HMAC-SHA256(group key, registration id) (sas.DeriveDeviceKey).
type EnrollmentGroup struct {
	ID           string
	TenantID     string
	Enabled      bool
	PrimaryKey   []byte // secret
	SecondaryKey []byte // secret
	// InitialTwin is the twin a device gets when it is assigned, JSON
	// {"tags":{…},"properties":{"desired":{…}}}; nil if none.
	InitialTwin []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Unreadable: the sealed initial twin cannot be opened (the tenant's
	// keys were destroyed); InitialTwin is nil.
	Unreadable bool
}

// Enrollment is an individual enrollment: one registration id with keys of
// its own.
type Enrollment struct {
	RegistrationID string
	TenantID       string
	// DeviceID is the id of the device it is assigned to (usually the
	// registration id).
	DeviceID     string
	Enabled      bool
	PrimaryKey   []byte // secret
	SecondaryKey []byte // secret
	InitialTwin  []byte // as in EnrollmentGroup
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Unreadable   bool // as in EnrollmentGroup
}

// EnrollmentUpdate changes an enrollment group or individual enrollment;
// nil and false fields leave things as they are.
type EnrollmentUpdate struct {
	Enabled      *bool
	PrimaryKey   []byte
	SecondaryKey []byte
	// SetInitialTwin replaces the initial twin with InitialTwin (nil
	// removes it).
	SetInitialTwin bool
	InitialTwin    []byte
	UpdatedAt      time.Time
}

// EnrollmentKind says which kind of enrollment a registration came through.
type EnrollmentKind string

// The kinds of enrollment.
const (
	EnrollmentGroupKind      EnrollmentKind = "group"
	EnrollmentIndividualKind EnrollmentKind = "individual"
)

// Registration statuses and substatuses, as DPS names them.
const (
	RegistrationAssigned = "assigned"

	SubstatusInitialAssignment = "initialAssignment"
	SubstatusDeviceDataReset   = "deviceDataReset"
)

// Registration is the record of a device's registration: which device it
// was assigned, through which enrollment, and when.
type Registration struct {
	RegistrationID string
	TenantID       string
	DeviceID       string
	EnrollmentKind EnrollmentKind
	// EnrollmentID is the group id, or the registration id for an
	// individual enrollment.
	EnrollmentID string
	Status       string
	Substatus    string
	OperationID  string
	ETag         string
	// Payload is the custom JSON the device sent with its request; nil if
	// none.
	Payload []byte
	// InitialTwin is the enrollment's initial twin as it was at the last
	// assignment (nil if none), which the broker gives the device with
	// the hub store's SetInitialTwin unless it has a twin already.
	InitialTwin []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Unreadable: the sealed payload and initial twin cannot be opened
	// (the tenant's keys were destroyed); both are nil.
	Unreadable bool
}

// Assignment asks AssignRegistrations to assign a device. Registration
// gives RegistrationID, TenantID, DeviceID, EnrollmentKind, EnrollmentID,
// OperationID, ETag, Payload, InitialTwin and UpdatedAt (the time of the
// assignment); Status, Substatus and CreatedAt are filled in by the store.
type Assignment struct {
	Registration Registration
	PrimaryKey   []byte
	SecondaryKey []byte
}

// AssignResult is the outcome of one Assignment.
type AssignResult struct {
	Registration Registration
	Err          error // wraps database.ErrConflict
}

// AssignConflict is the rule of AssignRegistrations for a device id that
// already exists, in tenant owner: it says why the assignment r may not take
// the device, or "" if it may. prior is the registration record of r's
// registration id, if hadPrior. AssignRegistrations calls it inside its
// transaction, in either dialect.
func AssignConflict(owner string, hadPrior bool, prior, r Registration) string {
	switch {
	case owner != r.TenantID:
		return "the id is taken in another tenant"
	case !hadPrior:
		return "a device of that id exists and was not provisioned by this registration"
	case prior.DeviceID != r.DeviceID || prior.EnrollmentKind != r.EnrollmentKind || prior.EnrollmentID != r.EnrollmentID:
		return "the device was provisioned through another enrollment"
	}
	return ""
}

// InitialTwinParts splits an initial twin, {"tags":{…},"properties":{"desired":{…}}}
// as DPS writes it, into its tags and desired properties (nil when absent).
// Other members, or members that are not objects, are an error. It checks
// the shape only; the hub twin's ApplyInitial checks the content.
func InitialTwinParts(doc []byte) (tags, desired json.RawMessage, err error) {
	var twin struct {
		Tags       json.RawMessage `json:"tags"`
		Properties *struct {
			Desired json.RawMessage `json:"desired"`
		} `json:"properties"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&twin); err != nil {
		return nil, nil, fmt.Errorf(`initial twin: want {"tags":{…},"properties":{"desired":{…}}}: %w`, err)
	}
	if dec.More() {
		return nil, nil, errors.New("initial twin: data after the object")
	}
	if twin.Properties != nil {
		desired = twin.Properties.Desired
	}
	for what, part := range map[string]json.RawMessage{"tags": twin.Tags, "properties.desired": desired} {
		if p := bytes.TrimSpace(part); len(p) > 0 && string(p) != "null" && p[0] != '{' {
			return nil, nil, fmt.Errorf("initial twin: %s must be an object", what)
		}
	}
	return twin.Tags, desired, nil
}
