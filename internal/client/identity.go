package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"

	"github.com/warden-iot/warden/internal/api"
)

// StatusOf is the HTTP status of an API error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// WithToken returns a client of the same server that uses another token.
func (c *Client) WithToken(token string) *Client {
	return &Client{base: c.base, token: token, http: c.http}
}

// Anonymous returns a client without credentials, for signing in and the
// one-time links.
func (c *Client) Anonymous() *Client { return c.WithToken("") }

// Login signs in with e-mail and password (and a TOTP code if the account
// has two-factor sign-in) and returns a client that sends the session
// cookie and CSRF token, as a browser would.
func (c *Client) Login(ctx context.Context, email, password, totp string) (*Client, api.Session, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, api.Session{}, fmt.Errorf("login: %w", err)
	}
	sc := &Client{base: c.base, http: &http.Client{Transport: c.http.Transport, Timeout: c.http.Timeout, Jar: jar}}
	var s api.Session
	body := map[string]string{"email": email, "password": password}
	if totp != "" {
		body["totp"] = totp
	}
	if err := sc.Do(ctx, http.MethodPost, "/api/v1/auth/login", nil, body, &s); err != nil {
		return nil, s, err
	}
	sc.csrf = s.CSRFToken
	return sc, s, nil
}

// WithoutCSRF returns the session client without its CSRF token (to test
// the protection).
func (c *Client) WithoutCSRF() *Client {
	cp := *c
	cp.csrf = ""
	return &cp
}

// Cookies are the client's cookies for the server (session clients).
func (c *Client) Cookies() []*http.Cookie {
	if c.http.Jar == nil {
		return nil
	}
	return c.http.Jar.Cookies(c.base)
}

// Activate sets the first password with an activation link's token.
func (c *Client) Activate(ctx context.Context, token, password string) (api.User, error) {
	var u api.User
	err := c.Do(ctx, http.MethodPost, "/api/v1/auth/activate", nil, map[string]string{"token": token, "password": password}, &u)
	return u, err
}

// CreateTenant makes a tenant below parent ("" for the caller's).
func (c *Client) CreateTenant(ctx context.Context, t map[string]any) (api.Tenant, error) {
	var out api.Tenant
	err := c.Do(ctx, http.MethodPost, "/api/v1/tenants", nil, t, &out)
	return out, err
}

// CreateSite makes a site.
func (c *Client) CreateSite(ctx context.Context, tenantID, name string) (api.Site, error) {
	var out api.Site
	err := c.Do(ctx, http.MethodPost, "/api/v1/sites", nil, map[string]any{"tenantId": tenantID, "name": name}, &out)
	return out, err
}

// SetFactoryAccess flips a site's factory service access switch.
func (c *Client) SetFactoryAccess(ctx context.Context, siteID string, on bool) (api.Site, error) {
	var out api.Site
	err := c.Do(ctx, http.MethodPut, "/api/v1/sites/"+url.PathEscape(siteID)+"/factory-access", nil, map[string]bool{"enabled": on}, &out)
	return out, err
}

// CreateUser makes an account; without a mail server the answer carries
// the activation link.
func (c *Client) CreateUser(ctx context.Context, u map[string]any) (api.User, error) {
	var out api.User
	err := c.Do(ctx, http.MethodPost, "/api/v1/users", nil, u, &out)
	return out, err
}

// CreateToken makes an API token for the signed-in user.
func (c *Client) CreateToken(ctx context.Context, name string, scopes []string, ttl string) (api.Token, error) {
	var out api.Token
	body := map[string]any{"name": name}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	if ttl != "" {
		body["ttl"] = ttl
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/tokens", nil, body, &out)
	return out, err
}

// Grant gives a supporter access to a site or device (one of siteID,
// deviceID); expiresAt is RFC 3339 or empty.
func (c *Client) Grant(ctx context.Context, supporterID, siteID, deviceID, expiresAt string) (api.Grant, error) {
	body := map[string]any{"supporterId": supporterID}
	if siteID != "" {
		body["siteId"] = siteID
	}
	if deviceID != "" {
		body["deviceId"] = deviceID
	}
	if expiresAt != "" {
		body["expiresAt"] = expiresAt
	}
	var out api.Grant
	err := c.Do(ctx, http.MethodPost, "/api/v1/grants", nil, body, &out)
	return out, err
}

// RevokeGrant ends a grant.
func (c *Client) RevokeGrant(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/grants/"+url.PathEscape(id), nil, nil, nil)
}
