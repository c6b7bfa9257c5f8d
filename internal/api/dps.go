package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/provision"
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func groupView(g provision.EnrollmentGroup, withKeys bool) apiv1.EnrollmentGroup {
	v := apiv1.EnrollmentGroup{ID: g.ID, TenantID: g.TenantID, Enabled: g.Enabled, InitialTwin: g.InitialTwin,
		CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, Unreadable: g.Unreadable}
	if withKeys {
		v.PrimaryKey, v.SecondaryKey = b64(g.PrimaryKey), b64(g.SecondaryKey)
	}
	return v
}

func enrollmentView(e provision.Enrollment, withKeys bool) apiv1.Enrollment {
	v := apiv1.Enrollment{RegistrationID: e.RegistrationID, DeviceID: e.DeviceID, TenantID: e.TenantID, Enabled: e.Enabled,
		InitialTwin: e.InitialTwin, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Unreadable: e.Unreadable}
	if withKeys {
		v.PrimaryKey, v.SecondaryKey = b64(e.PrimaryKey), b64(e.SecondaryKey)
	}
	return v
}

// registrationView shows a registration; the payload the device sent and
// the twin it was given are machine data, shown only with withData (to
// those who manage the tenant's enrollments: not to operator staff in a
// customer's tenant).
func (a *API) registrationView(r provision.Registration, withData bool) apiv1.Registration {
	v := apiv1.Registration{RegistrationID: r.RegistrationID, DeviceID: r.DeviceID, TenantID: r.TenantID,
		EnrollmentType: string(r.EnrollmentKind), EnrollmentID: r.EnrollmentID, Status: r.Status, Substatus: r.Substatus,
		AssignedHub: a.cfg.HubHost, OperationID: r.OperationID, ETag: r.ETag, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Unreadable: r.Unreadable}
	if withData {
		v.Payload, v.InitialTwin = r.Payload, r.InitialTwin
	}
	return v
}

func (a *API) dpsInfo(w http.ResponseWriter, r *http.Request) {
	scope, err := a.stores.Provision.IDScope(r.Context(), scopeTenantID(r.Context()))
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.DPSInfo{IDScope: scope, ProvisioningHost: a.cfg.HubHost})
}

// dpsStoreError answers a failure of a provisioning endpoint: a refused
// request, a limit reached, or the store's.
func (a *API) dpsStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, provision.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if errors.Is(err, provision.ErrLimit) {
		writeError(w, http.StatusConflict, "%s", err.Error())
		return
	}
	a.storeError(w, err)
}

// enrollmentPatch is the service's patch of a PATCH request on either kind
// of enrollment.
func enrollmentPatch(p apiv1.EnrollmentPatch) provision.Patch {
	return provision.Patch{Enabled: p.Enabled, InitialTwin: p.InitialTwin, PrimaryKey: p.PrimaryKey,
		SecondaryKey: p.SecondaryKey, RegenerateKey: p.RegenerateKey}
}

func (a *API) listEnrollmentGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := a.stores.Provision.ListEnrollmentGroups(r.Context(), scopeTenantID(r.Context()))
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.EnrollmentGroup, len(gs))
	for i, g := range gs {
		out[i] = groupView(g, false)
	}
	writeJSON(w, http.StatusOK, apiv1.EnrollmentGroupList{EnrollmentGroups: out})
}

func (a *API) createEnrollmentGroup(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewEnrollmentGroup
	if !decode(w, r, &req) {
		return
	}
	g, err := a.enrollments.CreateGroup(r.Context(), provision.NewGroup{ID: req.ID, TenantID: scopeTenantID(r.Context()),
		Enabled: req.Enabled, InitialTwin: req.InitialTwin, PrimaryKey: req.PrimaryKey, SecondaryKey: req.SecondaryKey})
	if err != nil {
		a.dpsStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, groupView(g, true))
}

func (a *API) getEnrollmentGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.stores.Provision.GetEnrollmentGroup(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, groupView(g, a.allowed(r.Context(), access.EnrollmentManage, resourceOf(r.Context()))))
}

func (a *API) updateEnrollmentGroup(w http.ResponseWriter, r *http.Request) {
	var req apiv1.EnrollmentPatch
	if !decode(w, r, &req) {
		return
	}
	g, err := a.enrollments.UpdateGroup(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"), enrollmentPatch(req))
	if err != nil {
		a.dpsStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, groupView(g, true))
}

func (a *API) deleteEnrollmentGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.enrollments.DeleteGroup(r.Context(), scopeTenantID(r.Context()), r.PathValue("id")); err != nil {
		a.dpsStoreError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listEnrollments(w http.ResponseWriter, r *http.Request) {
	es, err := a.stores.Provision.ListEnrollments(r.Context(), scopeTenantID(r.Context()))
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Enrollment, len(es))
	for i, e := range es {
		out[i] = enrollmentView(e, false)
	}
	writeJSON(w, http.StatusOK, apiv1.EnrollmentList{Enrollments: out})
}

func (a *API) createEnrollment(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewEnrollment
	if !decode(w, r, &req) {
		return
	}
	e, err := a.enrollments.Create(r.Context(), provision.NewIndividual{RegistrationID: req.RegistrationID,
		DeviceID: req.DeviceID, TenantID: scopeTenantID(r.Context()), Enabled: req.Enabled, InitialTwin: req.InitialTwin,
		PrimaryKey: req.PrimaryKey, SecondaryKey: req.SecondaryKey})
	if err != nil {
		a.dpsStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, enrollmentView(e, true))
}

// ValidRegistrationID reports whether id can be a registration id
// (provision.ValidRegistrationID).
func ValidRegistrationID(id string) error { return provision.ValidRegistrationID(id) }

func (a *API) getEnrollment(w http.ResponseWriter, r *http.Request) {
	e, err := a.stores.Provision.GetEnrollment(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, enrollmentView(e, a.allowed(r.Context(), access.EnrollmentManage, resourceOf(r.Context()))))
}

func (a *API) updateEnrollment(w http.ResponseWriter, r *http.Request) {
	var req apiv1.EnrollmentPatch
	if !decode(w, r, &req) {
		return
	}
	e, err := a.enrollments.Update(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"), enrollmentPatch(req))
	if err != nil {
		a.dpsStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, enrollmentView(e, true))
}

func (a *API) deleteEnrollment(w http.ResponseWriter, r *http.Request) {
	if err := a.enrollments.Delete(r.Context(), scopeTenantID(r.Context()), r.PathValue("id")); err != nil {
		a.dpsStoreError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxRegistrationsPage bounds a page of GET /api/v1/dps/registrations.
const maxRegistrationsPage = 1000

// listRegistrations returns a page of registrations in id order:
// ?limit= (default and at most 1000) after ?after=; "next" is the after of
// the next page, absent on the last.
func (a *API) listRegistrations(w http.ResponseWriter, r *http.Request) {
	limit := maxRegistrationsPage
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxRegistrationsPage {
			writeError(w, http.StatusBadRequest, "limit must be 1 to %d", maxRegistrationsPage)
			return
		}
		limit = n
	}
	rs, err := a.stores.Provision.ListRegistrations(r.Context(), scopeTenantID(r.Context()), r.URL.Query().Get("after"), limit+1)
	if err != nil {
		a.storeError(w, err)
		return
	}
	var out apiv1.RegistrationPage
	if len(rs) > limit {
		rs = rs[:limit]
		out.Next = rs[limit-1].RegistrationID
	}
	views := make([]apiv1.Registration, len(rs))
	withData := a.allowed(r.Context(), access.EnrollmentManage, resourceOf(r.Context()))
	for i, reg := range rs {
		views[i] = a.registrationView(reg, withData)
	}
	out.Registrations = views
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getRegistration(w http.ResponseWriter, r *http.Request) {
	reg, err := a.stores.Provision.GetRegistration(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.registrationView(reg, a.allowed(r.Context(), access.EnrollmentManage, resourceOf(r.Context()))))
}

// deleteRegistration removes the registration record only: the device
// stays. A device of the same id then no longer counts as provisioned by
// its enrollment, so registering it again fails until it is deleted too.
func (a *API) deleteRegistration(w http.ResponseWriter, r *http.Request) {
	tenant, id := scopeTenantID(r.Context()), r.PathValue("id")
	if err := a.stores.Provision.DeleteRegistration(r.Context(), tenant, id); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("registration deleted", "registration", id, "tenant", tenant)
	w.WriteHeader(http.StatusNoContent)
}
