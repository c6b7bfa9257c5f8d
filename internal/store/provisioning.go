package store

// ProvisioningStore holds the device provisioning service's state: ID
// scopes, enrollment groups, individual enrollments and registrations.
type ProvisioningStore interface {
}
