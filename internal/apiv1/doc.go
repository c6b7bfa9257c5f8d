// Package apiv1 is the vocabulary of Warden's HTTP API under /api/v1: the
// request and response bodies, the error shape and the protocol constants
// that the server's handlers, the Go client, the command line and other
// clients share. It imports only the standard library, so that a client
// (an edge agent, a portal) can use it without pulling in the server.
//
// Times are RFC 3339 in UTC; ids are strings except those of alarms,
// deliveries and audit entries, which are sequence numbers.
package apiv1

import "time"

// Sessions.
const (
	// SessionCookie is the only cookie Warden sets: a functional session
	// cookie, HttpOnly, Secure, SameSite=Strict, without an expiry date.
	SessionCookie = "warden_session"
	// CSRFHeader carries the session's CSRF token on every state-changing
	// request made with the session cookie.
	CSRFHeader = "X-CSRF-Token"
)

// The roles of an account (User.Role).
const (
	RoleOperatorAdmin   = "operator-admin"
	RoleOperatorService = "operator-service" // the maker's central service desk
	RoleCustomerAdmin   = "customer-admin"
	RoleCustomerUser    = "customer-user" // read and acknowledge
	RoleSupporter       = "supporter"     // installer, technician, subcontractor
)

// Direct-method limits (those of IoT Hub).
const (
	MinMethodTimeout     = 5 * time.Second
	MaxMethodTimeout     = 300 * time.Second
	DefaultMethodTimeout = 30 * time.Second
	MaxMethodPayload     = 128 * 1024 // bytes
)
