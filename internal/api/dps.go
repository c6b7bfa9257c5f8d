package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/sas"
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

// enrollmentsChanged publishes that a tenant's enrollments changed: the
// device endpoint, which caches them for authentication, refuses a
// disabled or re-keyed enrollment from the next connection on.
func (a *API) enrollmentsChanged(ctx context.Context, tenantID string) {
	a.publish(ctx, event.EnrollmentsChanged{TenantID: tenantID, At: a.now().UTC()})
}

// dpsStoreError answers a store failure of a provisioning endpoint.
func (a *API) dpsStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, provision.ErrLimit) {
		writeError(w, http.StatusConflict, "%s", err.Error())
		return
	}
	a.storeError(w, err)
}

// keyFields are the key members of a create or update request: base64
// keys to import (for example the group key of an existing Azure DPS
// enrollment, whose devices already hold keys derived from it).
type keyFields struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// decodeKey decodes an imported key: 16 to 64 bytes (Azure's are 64).
func decodeKey(name, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) < 16 || len(k) > 64 {
		return nil, fmt.Errorf("%s must be 16 to 64 bytes in base64", name)
	}
	return k, nil
}

// keys returns the imported keys, or new random ones for those not given.
func (k keyFields) keys() (primary, secondary []byte, err error) {
	if primary, err = decodeKey("primaryKey", k.PrimaryKey); err != nil {
		return nil, nil, err
	}
	if secondary, err = decodeKey("secondaryKey", k.SecondaryKey); err != nil {
		return nil, nil, err
	}
	if primary == nil {
		if primary, err = sas.NewKey(); err != nil {
			return nil, nil, err
		}
	}
	if secondary == nil {
		if secondary, err = sas.NewKey(); err != nil {
			return nil, nil, err
		}
	}
	return primary, secondary, nil
}

// checkInitialTwin validates an initial twin and returns it compacted (nil
// for none or null): {"tags":{…},"properties":{"desired":{…}}}, with the
// rules of device twins.
func checkInitialTwin(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	tags, desired, err := provision.InitialTwinParts(raw)
	if err != nil {
		return nil, err
	}
	tw := hub.NewTwin("", "", time.Now())
	if err := tw.ApplyInitial(tags, desired, time.Now()); err != nil {
		return nil, fmt.Errorf("initial twin: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("initial twin: %w", err)
	}
	return buf.Bytes(), nil
}

// enrollmentUpdate turns the PATCH of either kind of enrollment into a
// store update, or says what is wrong. InitialTwin replaces the initial
// twin; null removes it; absent leaves it.
func enrollmentUpdate(p apiv1.EnrollmentPatch, now time.Time) (provision.EnrollmentUpdate, error) {
	u := provision.EnrollmentUpdate{Enabled: p.Enabled, UpdatedAt: now}
	if p.InitialTwin != nil {
		twin, err := checkInitialTwin(p.InitialTwin)
		if err != nil {
			return u, err
		}
		u.SetInitialTwin, u.InitialTwin = true, twin
	}
	var err error
	if u.PrimaryKey, err = decodeKey("primaryKey", p.PrimaryKey); err != nil {
		return u, err
	}
	if u.SecondaryKey, err = decodeKey("secondaryKey", p.SecondaryKey); err != nil {
		return u, err
	}
	var newPrimary, newSecondary bool
	switch p.RegenerateKey {
	case "":
	case "primary":
		newPrimary = true
	case "secondary":
		newSecondary = true
	case "both":
		newPrimary, newSecondary = true, true
	default:
		return u, errors.New(`regenerateKey must be "primary", "secondary" or "both"`)
	}
	if (newPrimary && u.PrimaryKey != nil) || (newSecondary && u.SecondaryKey != nil) {
		return u, errors.New("a key cannot be both regenerated and given")
	}
	if newPrimary {
		if u.PrimaryKey, err = sas.NewKey(); err != nil {
			return u, err
		}
	}
	if newSecondary {
		if u.SecondaryKey, err = sas.NewKey(); err != nil {
			return u, err
		}
	}
	return u, nil
}

func (a *API) stamp() time.Time { return a.now().UTC().Truncate(time.Millisecond) }

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
	if err := ValidDeviceID(req.ID); err != nil { // the same characters make a fine group id
		writeError(w, http.StatusBadRequest, "enrollment group id: %v", err)
		return
	}
	twin, err := checkInitialTwin(req.InitialTwin)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	primary, secondary, err := keyFields{req.PrimaryKey, req.SecondaryKey}.keys()
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	now := a.stamp()
	g := provision.EnrollmentGroup{ID: req.ID, TenantID: scopeTenantID(r.Context()), Enabled: req.Enabled == nil || *req.Enabled,
		PrimaryKey: primary, SecondaryKey: secondary, InitialTwin: twin, CreatedAt: now, UpdatedAt: now}
	if err := a.stores.Provision.CreateEnrollmentGroup(r.Context(), g); err != nil {
		a.dpsStoreError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), g.TenantID)
	a.log.Info("enrollment group created", "group", g.ID, "tenant", g.TenantID)
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
	u, err := enrollmentUpdate(req, a.stamp())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	g, err := a.stores.Provision.UpdateEnrollmentGroup(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"), u)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), g.TenantID)
	a.log.Info("enrollment group changed", "group", g.ID, "tenant", g.TenantID, "enabled", g.Enabled,
		"newKeys", u.PrimaryKey != nil || u.SecondaryKey != nil, "newInitialTwin", u.SetInitialTwin)
	writeJSON(w, http.StatusOK, groupView(g, true))
}

func (a *API) deleteEnrollmentGroup(w http.ResponseWriter, r *http.Request) {
	tenant, id := scopeTenantID(r.Context()), r.PathValue("id")
	if err := a.stores.Provision.DeleteEnrollmentGroup(r.Context(), tenant, id); err != nil {
		a.storeError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), tenant)
	a.log.Info("enrollment group deleted", "group", id, "tenant", tenant)
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
	if err := ValidRegistrationID(req.RegistrationID); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.DeviceID == "" {
		req.DeviceID = req.RegistrationID
	}
	if err := ValidDeviceID(req.DeviceID); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	twin, err := checkInitialTwin(req.InitialTwin)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	primary, secondary, err := keyFields{req.PrimaryKey, req.SecondaryKey}.keys()
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	now := a.stamp()
	e := provision.Enrollment{RegistrationID: req.RegistrationID, TenantID: scopeTenantID(r.Context()), DeviceID: req.DeviceID,
		Enabled: req.Enabled == nil || *req.Enabled, PrimaryKey: primary, SecondaryKey: secondary, InitialTwin: twin,
		CreatedAt: now, UpdatedAt: now}
	if err := a.stores.Provision.CreateEnrollment(r.Context(), e); err != nil {
		a.storeError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), e.TenantID)
	a.log.Info("individual enrollment created", "registration", e.RegistrationID, "device", e.DeviceID, "tenant", e.TenantID)
	writeJSON(w, http.StatusCreated, enrollmentView(e, true))
}

// ValidRegistrationID reports whether id can be a registration id: as a
// device id (it becomes one), without '@', which DPS does not allow.
func ValidRegistrationID(id string) error {
	if err := ValidDeviceID(id); err != nil {
		return fmt.Errorf("registration id: %w", err)
	}
	if bytes.IndexByte([]byte(id), '@') >= 0 {
		return fmt.Errorf("registration id %q: character '@' not allowed (letters, digits and - . _ :)", id)
	}
	return nil
}

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
	u, err := enrollmentUpdate(req, a.stamp())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	e, err := a.stores.Provision.UpdateEnrollment(r.Context(), scopeTenantID(r.Context()), r.PathValue("id"), u)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), e.TenantID)
	a.log.Info("individual enrollment changed", "registration", e.RegistrationID, "tenant", e.TenantID, "enabled", e.Enabled,
		"newKeys", u.PrimaryKey != nil || u.SecondaryKey != nil, "newInitialTwin", u.SetInitialTwin)
	writeJSON(w, http.StatusOK, enrollmentView(e, true))
}

func (a *API) deleteEnrollment(w http.ResponseWriter, r *http.Request) {
	tenant, id := scopeTenantID(r.Context()), r.PathValue("id")
	if err := a.stores.Provision.DeleteEnrollment(r.Context(), tenant, id); err != nil {
		a.storeError(w, err)
		return
	}
	a.enrollmentsChanged(r.Context(), tenant)
	a.log.Info("individual enrollment deleted", "registration", id, "tenant", tenant)
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
