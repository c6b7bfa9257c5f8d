package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

func userView(u identity.User, full bool) apiv1.User {
	v := apiv1.User{ID: u.ID, TenantID: u.TenantID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Role: string(u.Role), SupporterID: u.SupporterID, Status: string(u.Status), CreatedAt: u.CreatedAt}
	if full {
		v.Phone, v.Company, v.Address, v.TOTPEnabled = u.Phone, u.Company, addressView(u.Address), u.TOTPEnabled
		if !u.LockedUntil.IsZero() {
			v.LockedUntil = &u.LockedUntil
		}
		if !u.LastLoginAt.IsZero() {
			v.LastLoginAt = &u.LastLoginAt
		}
	}
	return v
}

// applyProfile changes the part of an account its owner may change.
func applyProfile(p apiv1.Profile, u *identity.User) error {
	for _, f := range []struct {
		name string
		src  *string
		dst  *string
	}{{"firstName", p.FirstName, &u.FirstName}, {"lastName", p.LastName, &u.LastName},
		{"phone", p.Phone, &u.Phone}, {"company", p.Company, &u.Company}} {
		if f.src == nil {
			continue
		}
		v := strings.TrimSpace(*f.src)
		if len(v) > 200 {
			return fmt.Errorf("%s: at most 200 characters", f.name)
		}
		*f.dst = v
	}
	if p.Address != nil {
		a := tenancy.Address(*p.Address)
		if err := checkAddress(a); err != nil {
			return err
		}
		u.Address = a
	}
	if u.FirstName == "" || u.LastName == "" {
		return errors.New("firstName and lastName are required")
	}
	return nil
}

func checkAddress(a tenancy.Address) error {
	for name, v := range map[string]string{"street": a.Street, "postalCode": a.PostalCode, "city": a.City, "country": a.Country} {
		if len(v) > 200 {
			return fmt.Errorf("address.%s: at most 200 characters", name)
		}
	}
	return nil
}

// listUsers lists the accounts of the caller's tenant (or ?tenant=) and
// below that the caller may see.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	id, ok := a.listTenant(w, r)
	if !ok {
		return
	}
	us, err := a.stores.Users.ListUsersUnder(r.Context(), id)
	if err != nil {
		a.storeError(w, err)
		return
	}
	cache := a.newResolverCache()
	out := []apiv1.User{}
	for _, u := range us {
		t, err := cache.tenant(r.Context(), u.TenantID)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if a.allowed(r.Context(), access.UserRead, access.Resource{Kind: access.KindUser, ID: u.ID, TenantID: u.TenantID, TenantPath: t.Path}) {
			out = append(out, userView(u, false))
		}
	}
	writeJSON(w, http.StatusOK, apiv1.UserList{Users: out})
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewUser
	if !decode(w, r, &req) {
		return
	}
	role := identity.Role(req.Role)
	c := principal(r.Context())
	tenantID, res, ok := a.inTenant(w, r, req.TenantID, access.KindUser, access.UserCreate)
	if !ok {
		return
	}
	req.TenantID = tenantID
	if err := access.CanAssign(c.Subject, role, req.TenantID, res.TenantPath); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, access.ErrDenied) {
			status = http.StatusForbidden
		}
		writeError(w, status, "role: %v", err)
		return
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		writeError(w, http.StatusBadRequest, "email: %v", err)
		return
	}
	u := identity.User{TenantID: req.TenantID, Email: email, Role: role, CreatedBy: c.ActorID}
	if err := applyProfile(req.Profile, &u); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	u, act, err := a.users.Invite(r.Context(), u)
	if errors.Is(err, database.ErrConflict) {
		writeError(w, http.StatusConflict, "an account with e-mail %s exists already", email)
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	v := userView(u, true)
	v.ActivationLink, v.ActivationMailed = act.Link, act.Mailed
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	if err := a.withSignInLock(r.Context(), &u); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, userView(u, a.allowed(r.Context(), access.UserManage, resourceOf(r.Context()))))
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	var req apiv1.UserPatch
	if !decode(w, r, &req) {
		return
	}
	c := principal(r.Context())
	u := loaded[identity.User](r.Context())
	res := resourceOf(r.Context())
	if err := applyProfile(req.Profile, &u); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Role != nil && identity.Role(*req.Role) != u.Role {
		role := identity.Role(*req.Role)
		if u.ID == c.UserID {
			writeError(w, http.StatusForbidden, "role: you cannot change your own role")
			return
		}
		if err := identity.CheckRoleChange(u.Role, role); err != nil {
			writeError(w, http.StatusBadRequest, "role: %v", err)
			return
		}
		if !a.allow(w, r, access.UserEntrust, res) {
			return
		}
		if err := access.CanAssign(c.Subject, role, u.TenantID, res.TenantPath); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, access.ErrDenied) {
				status = http.StatusForbidden
			}
			writeError(w, status, "role: %v", err)
			return
		}
		u.Role = role
	}
	if req.Status != nil {
		switch identity.UserStatus(*req.Status) {
		case identity.UserDisabled:
			if u.ID == c.UserID {
				writeError(w, http.StatusForbidden, "status: you cannot disable yourself")
				return
			}
			u.Status = identity.UserDisabled
		case identity.UserActive:
			if u.Status == identity.UserDisabled {
				if !a.allow(w, r, access.UserEntrust, res) {
					return
				}
				u.Enable()
			}
		default:
			writeError(w, http.StatusBadRequest, `status: "active" or "disabled"`)
			return
		}
	}
	if err := a.users.Update(r.Context(), u, req.Unlock); err != nil {
		a.storeError(w, err)
		return
	}
	if err := a.withSignInLock(r.Context(), &u); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, userView(u, true))
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	if u.ID == principal(r.Context()).UserID {
		writeError(w, http.StatusForbidden, "you cannot delete your own account")
		return
	}
	if err := a.users.Delete(r.Context(), u); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) resendActivation(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	if u.Status != identity.UserPending {
		writeError(w, http.StatusConflict, "the account is %s, not waiting for activation", u.Status)
		return
	}
	link, mailed, err := a.sendLink(r.Context(), u, identity.PurposeActivate)
	if err != nil {
		a.log.Error("send activation", "user", u.ID, "err", err)
		writeError(w, http.StatusBadGateway, "the mail server did not take the message; try again later")
		return
	}
	writeJSON(w, http.StatusOK, apiv1.ActivationSent{ActivationLink: link, ActivationMailed: mailed})
}

// lookupSupporter tells a customer admin whose supporter id this is, so
// they can check before granting.
func (a *API) lookupSupporter(w http.ResponseWriter, r *http.Request) {
	u, err := a.stores.Users.UserBySupporterID(r.Context(), identity.NormalizeSupporterID(r.PathValue("supporterId")))
	if err == nil && (u.Role != identity.RoleSupporter || u.Status == identity.UserDisabled) {
		err = database.ErrNotFound
	}
	if err != nil {
		a.storeError(w, fmt.Errorf("supporter %q: %w", r.PathValue("supporterId"), err))
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Supporter{SupporterID: u.SupporterID, FirstName: u.FirstName,
		LastName: u.LastName, Company: u.Company})
}

// sendLink makes a one-time link for a user and mails it. Without a mail
// server it returns the link so the admin can hand it over.
func (a *API) sendLink(ctx context.Context, u identity.User, purpose string) (link string, mailed bool, err error) {
	return a.users.SendLink(ctx, u, purpose)
}
