package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
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
func (c *Client) Login(ctx context.Context, email, password, totp string) (*Client, apiv1.Session, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, apiv1.Session{}, fmt.Errorf("login: %w", err)
	}
	sc := &Client{base: c.base, http: &http.Client{Transport: c.http.Transport, Timeout: c.http.Timeout, Jar: jar}}
	var s apiv1.Session
	body := apiv1.Login{Email: email, Password: password, TOTP: totp}
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

// Activate sets the first password with an activation link's token.
func (c *Client) Activate(ctx context.Context, token, password string) (apiv1.User, error) {
	var u apiv1.User
	err := c.Do(ctx, http.MethodPost, "/api/v1/auth/activate", nil, apiv1.PasswordLink{Token: token, Password: password}, &u)
	return u, err
}

// CreateTenant makes a tenant.
func (c *Client) CreateTenant(ctx context.Context, t apiv1.NewTenant) (apiv1.Tenant, error) {
	var out apiv1.Tenant
	err := c.Do(ctx, http.MethodPost, "/api/v1/tenants", nil, t, &out)
	return out, err
}

// CreateSite makes a site.
func (c *Client) CreateSite(ctx context.Context, tenantID, name string) (apiv1.Site, error) {
	var out apiv1.Site
	err := c.Do(ctx, http.MethodPost, "/api/v1/sites", nil, apiv1.NewSite{TenantID: tenantID, SitePatch: apiv1.SitePatch{Name: &name}}, &out)
	return out, err
}

// SetFactoryAccess flips a site's factory service access switch.
func (c *Client) SetFactoryAccess(ctx context.Context, siteID string, on bool) (apiv1.Site, error) {
	var out apiv1.Site
	err := c.Do(ctx, http.MethodPut, "/api/v1/sites/"+url.PathEscape(siteID)+"/factory-access", nil, apiv1.FactoryAccess{Enabled: &on}, &out)
	return out, err
}

// CreateUser makes an account; without a mail server the answer carries
// the activation link.
func (c *Client) CreateUser(ctx context.Context, u apiv1.NewUser) (apiv1.User, error) {
	var out apiv1.User
	err := c.Do(ctx, http.MethodPost, "/api/v1/users", nil, u, &out)
	return out, err
}

// CreateToken makes an API token for the signed-in user.
func (c *Client) CreateToken(ctx context.Context, name string, scopes []string, ttl string) (apiv1.Token, error) {
	var out apiv1.Token
	body := apiv1.NewToken{Name: name, Scopes: scopes, TTL: ttl}
	err := c.Do(ctx, http.MethodPost, "/api/v1/tokens", nil, body, &out)
	return out, err
}

// Grant gives a supporter access to a site or device (one of siteID,
// deviceID); expiresAt is RFC 3339 or empty.
func (c *Client) Grant(ctx context.Context, supporterID, siteID, deviceID, expiresAt string) (apiv1.Grant, error) {
	body := apiv1.NewGrant{SupporterID: supporterID, SiteID: siteID, DeviceID: deviceID}
	if expiresAt != "" {
		t, err := time.Parse(time.RFC3339, expiresAt)
		if err != nil {
			return apiv1.Grant{}, fmt.Errorf("expiresAt: %w", err)
		}
		body.ExpiresAt = &t
	}
	return c.CreateGrant(ctx, body)
}

// CreateGrant gives a supporter access to a site or device.
func (c *Client) CreateGrant(ctx context.Context, body apiv1.NewGrant) (apiv1.Grant, error) {
	var out apiv1.Grant
	err := c.Do(ctx, http.MethodPost, "/api/v1/grants", nil, body, &out)
	return out, err
}

// RevokeGrant ends a grant.
func (c *Client) RevokeGrant(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/grants/"+url.PathEscape(id), nil, nil, nil)
}

// NewAnonymous makes a client without credentials for the server at base
// (an https URL) that trusts the CA certificate in caFile (empty: the
// system roots): for signing in and the one-time links.
func NewAnonymous(base, caFile string) (*Client, error) {
	c, err := New(base, "anonymous", caFile)
	if err != nil {
		return nil, err
	}
	return c.Anonymous(), nil
}

// Logout ends the session of a session client.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/session", nil, nil, nil)
}

func tenantQuery(tenant string) url.Values {
	q := url.Values{}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	return q
}

// Tenant returns one tenant; id "" is the caller's own.
func (c *Client) Tenant(ctx context.Context, id string) (apiv1.Tenant, error) {
	var out apiv1.Tenant
	path := "/api/v1/tenant"
	if id != "" {
		path = "/api/v1/tenants/" + url.PathEscape(id)
	}
	err := c.Do(ctx, http.MethodGet, path, nil, nil, &out)
	return out, err
}

// Tenants lists the tenants the caller can see: under ("" for the
// caller's tenant) and the tenants below it.
func (c *Client) Tenants(ctx context.Context, under string) ([]apiv1.Tenant, error) {
	var out apiv1.TenantList
	err := c.Do(ctx, http.MethodGet, "/api/v1/tenants", tenantQuery(under), nil, &out)
	return out.Tenants, err
}

// UpdateTenant changes the fields of a tenant that patch holds (name,
// address, contact, contract, telemetryRetentionDays).
func (c *Client) UpdateTenant(ctx context.Context, id string, patch apiv1.TenantPatch) (apiv1.Tenant, error) {
	var out apiv1.Tenant
	err := c.Do(ctx, http.MethodPatch, "/api/v1/tenants/"+url.PathEscape(id), nil, patch, &out)
	return out, err
}

// DeleteTenant deletes a tenant without sub-tenants, with everything in it.
func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/tenants/"+url.PathEscape(id), nil, nil, nil)
}

// CreateSiteWith makes a site from a request body.
func (c *Client) CreateSiteWith(ctx context.Context, body apiv1.NewSite) (apiv1.Site, error) {
	var out apiv1.Site
	err := c.Do(ctx, http.MethodPost, "/api/v1/sites", nil, body, &out)
	return out, err
}

// Site returns one site.
func (c *Client) Site(ctx context.Context, id string) (apiv1.Site, error) {
	var out apiv1.Site
	err := c.Do(ctx, http.MethodGet, "/api/v1/sites/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Sites lists the sites the caller can see, of tenant and below ("" for
// the caller's tenant).
func (c *Client) Sites(ctx context.Context, tenant string) ([]apiv1.Site, error) {
	var out apiv1.SiteList
	err := c.Do(ctx, http.MethodGet, "/api/v1/sites", tenantQuery(tenant), nil, &out)
	return out.Sites, err
}

// UpdateSite changes a site's name or address.
func (c *Client) UpdateSite(ctx context.Context, id string, patch apiv1.SitePatch) (apiv1.Site, error) {
	var out apiv1.Site
	err := c.Do(ctx, http.MethodPatch, "/api/v1/sites/"+url.PathEscape(id), nil, patch, &out)
	return out, err
}

// DeleteSite deletes a site; its devices stay, unassigned.
func (c *Client) DeleteSite(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/sites/"+url.PathEscape(id), nil, nil, nil)
}

// User returns one account.
func (c *Client) User(ctx context.Context, id string) (apiv1.User, error) {
	var out apiv1.User
	err := c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Users lists the accounts the caller can see, of tenant and below (""
// for the caller's tenant).
func (c *Client) Users(ctx context.Context, tenant string) ([]apiv1.User, error) {
	var out apiv1.UserList
	err := c.Do(ctx, http.MethodGet, "/api/v1/users", tenantQuery(tenant), nil, &out)
	return out.Users, err
}

// UpdateUser changes an account: names, phone, company, address, role,
// status ("active" or "disabled") or unlock (true lifts a sign-in lock).
func (c *Client) UpdateUser(ctx context.Context, id string, patch apiv1.UserPatch) (apiv1.User, error) {
	var out apiv1.User
	err := c.Do(ctx, http.MethodPatch, "/api/v1/users/"+url.PathEscape(id), nil, patch, &out)
	return out, err
}

// DeleteUser deletes an account.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(id), nil, nil, nil)
}

// Activation is the answer of a new activation link: the link itself when
// no mail server is configured, or Mailed.
type Activation struct {
	Link   string `json:"activationLink,omitempty"`
	Mailed bool   `json:"activationMailed"`
}

// ResendActivation makes a new activation link for an account waiting
// for activation.
func (c *Client) ResendActivation(ctx context.Context, id string) (Activation, error) {
	var out Activation
	err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/activation", nil, nil, &out)
	return out, err
}

// GrantFilter selects grants; empty fields select all.
type GrantFilter struct {
	Tenant string // this tenant and below ("" the caller's)
	Site   string
	Device string
	Active bool // only grants in force now
}

// Grants lists the grants the caller can see: as owner, or as supporter
// their own.
func (c *Client) Grants(ctx context.Context, f GrantFilter) ([]apiv1.Grant, error) {
	q := tenantQuery(f.Tenant)
	if f.Site != "" {
		q.Set("site", f.Site)
	}
	if f.Device != "" {
		q.Set("device", f.Device)
	}
	if f.Active {
		q.Set("active", "true")
	}
	var out apiv1.GrantList
	err := c.Do(ctx, http.MethodGet, "/api/v1/grants", q, nil, &out)
	return out.Grants, err
}

// GrantByID returns one grant.
func (c *Client) GrantByID(ctx context.Context, id string) (apiv1.Grant, error) {
	var out apiv1.Grant
	err := c.Do(ctx, http.MethodGet, "/api/v1/grants/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Tokens lists the API tokens of the signed-in user (without secrets).
func (c *Client) Tokens(ctx context.Context) ([]apiv1.Token, error) {
	var out apiv1.TokenList
	err := c.Do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
	return out.Tokens, err
}

// RevokeToken deletes one of the signed-in user's API tokens.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}
