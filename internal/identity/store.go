package identity

import (
	"context"
	"time"
)

// UserStore keeps people's accounts and their signed-in browsers. Errors
// wrap database.ErrNotFound and database.ErrConflict where documented.
// Package identitysql implements it on SQLite and PostgreSQL.
type UserStore interface {
	// CreateUser adds an account; a taken e-mail or supporter id is
	// ErrConflict.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	UserBySupporterID(ctx context.Context, supporterID string) (User, error)
	ListUsers(ctx context.Context, tenantIDs []string) ([]User, error)
	// ListUsersUnder lists the accounts of a tenant and the tenants below
	// it, in id order.
	ListUsersUnder(ctx context.Context, tenantID string) ([]User, error)
	// UpdateUser replaces names, phone, company, address, role and status.
	UpdateUser(ctx context.Context, u User) error
	// SetPassword stores a new password hash, activates a pending account
	// and clears failed logins and any lock.
	SetPassword(ctx context.Context, userID, hash string) error
	SetTOTP(ctx context.Context, userID string, secret []byte, enabled bool) error
	// UseTOTPStep records that the TOTP code of time step step was used;
	// a step not after the last one used is ErrConflict (a replayed code).
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// LoginSucceeded clears failures and any lock and records the time
	// (also used by an admin to lift a lock).
	LoginSucceeded(ctx context.Context, userID string, at time.Time) error
	// DeleteUser removes the account with its sessions, tokens, one-time
	// tokens and the grants made to it.
	DeleteUser(ctx context.Context, id string) error

	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// TouchSession records activity and moves the expiry.
	TouchSession(ctx context.Context, id string, at, expires time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID string) error
	ListSessions(ctx context.Context, userID string) ([]Session, error)
}

// SignInStore keeps what signing in and the account links use: one-time
// link tokens (activation, password reset) and the count of failed
// sign-ins per address key (a hash of the normalised e-mail address).
type SignInStore interface {
	// CreateUserToken stores a one-time token, replacing any unused token
	// of the same user and purpose (an older link stops working).
	CreateUserToken(ctx context.Context, t UserToken) error
	// ConsumeUserToken deletes and returns the token with this hash and
	// purpose if it has not expired at now; otherwise ErrNotFound.
	ConsumeUserToken(ctx context.Context, hash []byte, purpose string, now time.Time) (UserToken, error)
	// PurgeExpired deletes sessions and one-time tokens that expired
	// before now, and returns how many.
	PurgeExpired(ctx context.Context, now time.Time) (int64, error)

	// SignInFailures returns the count of a key (zero if none).
	SignInFailures(ctx context.Context, key []byte) (SignInFailure, error)
	// AddSignInFailure counts a failed sign-in of key at at. A count whose
	// last failure is window or more before at (and which is not locked)
	// starts again; reaching max locks the key until at+lockFor and starts
	// the count again. Counts quiet for window whose lock is over are
	// dropped, so the table holds only the last window's addresses.
	AddSignInFailure(ctx context.Context, key []byte, at time.Time, window time.Duration, max int, lockFor time.Duration) (SignInFailure, error)
	// ClearSignInFailures forgets a key's count and lock (a success, an
	// admin's unlock, a new password).
	ClearSignInFailures(ctx context.Context, key []byte) error
}

// TokenStore keeps the bearer tokens of the HTTP API.
type TokenStore interface {
	// CreateAPIToken stores a token; its user, if any, must be one of the
	// token's tenant (otherwise ErrNotFound), and a taken id or hash is
	// ErrConflict.
	CreateAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash finds a token by the SHA-256 of its secret.
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	// ListAPITokens returns the tokens acting for a user, oldest first;
	// with userID "", the tokens without a user.
	ListAPITokens(ctx context.Context, userID string) ([]APIToken, error)
	GetAPIToken(ctx context.Context, id string) (APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
	// TouchAPIToken records when a token was last used.
	TouchAPIToken(ctx context.Context, id string, at time.Time) error
}
