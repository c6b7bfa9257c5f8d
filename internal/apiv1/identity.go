package apiv1

import (
	"time"
)

// Session is the answer of a sign-in and of GET /api/v1/session.
type Session struct {
	User      User      `json:"user"`
	CSRFToken string    `json:"csrfToken,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// SessionInfo is one of a user's sessions.
type SessionInfo struct {
	ID         string    `json:"id"`
	Current    bool      `json:"current"`
	CreatedAt  time.Time `json:"createdAt"`
	LastSeenAt time.Time `json:"lastSeenAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
}

// Token is the API view of an API token.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	// Token is the secret, shown once when the token is made.
	Token string `json:"token,omitempty"`
}

// User is the API view of an account. Secrets (password hash, TOTP
// secret) never leave the server.
type User struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenantId"`
	Email       string     `json:"email"`
	FirstName   string     `json:"firstName"`
	LastName    string     `json:"lastName"`
	Phone       string     `json:"phone,omitempty"`
	Company     string     `json:"company,omitempty"`
	Address     Address    `json:"address,omitzero"`
	Role        string     `json:"role"` // see the Role constants
	SupporterID string     `json:"supporterId,omitempty"`
	Status      string     `json:"status"`
	TOTPEnabled bool       `json:"totpEnabled"`
	LockedUntil *time.Time `json:"lockedUntil,omitempty"`
	LastLoginAt *time.Time `json:"lastLoginAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	// ActivationLink is returned once, to the admin who made the account,
	// when no mail server is configured.
	ActivationLink string `json:"activationLink,omitempty"`
	// ActivationMailed says the activation link went out by e-mail.
	ActivationMailed bool `json:"activationMailed,omitempty"`
}

// TOTPSetup is the answer of POST /api/v1/me/totp: the new secret, and as
// an otpauth:// URL for authenticator apps.
type TOTPSetup struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
}

// Supporter is the answer of GET /api/v1/supporters/{supporterId}: who a
// supporter id belongs to, for owners to check before granting.
type Supporter struct {
	Company     string `json:"company"`
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	SupporterID string `json:"supporterId"`
}

// ActivationSent is the answer of POST /api/v1/users/{id}/activation: the
// new activation link went out by e-mail (ActivationMailed), or here is
// the link to hand over (no mail server).
type ActivationSent struct {
	ActivationLink   string `json:"activationLink"`
	ActivationMailed bool   `json:"activationMailed"`
}
