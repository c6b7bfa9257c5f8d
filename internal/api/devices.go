package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sas"
)

// deviceError answers a refusal or failure of the devices service.
func (a *API) deviceError(w http.ResponseWriter, err error) {
	if errors.Is(err, registry.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.storeError(w, err)
}

func (a *API) view(d registry.Device, withKeys bool) apiv1.Device {
	v := apiv1.Device{ID: d.ID, TenantID: d.TenantID, Status: string(d.Status), CreatedAt: d.CreatedAt,
		Connected: a.endpoint.Connected(d.ID), LastIP: d.LastIP, DeviceInfo: apiv1.DeviceInfo(d.Info)}
	seen := d.LastSeen
	if at, ip, ok := a.endpoint.LastSeen(d.ID); ok && at.After(seen) {
		seen, v.LastIP = at, ip
	}
	if !seen.IsZero() {
		v.LastSeen = &seen
	}
	if withKeys {
		v.PrimaryKey = base64.StdEncoding.EncodeToString(d.PrimaryKey)
		v.SecondaryKey = base64.StdEncoding.EncodeToString(d.SecondaryKey)
		v.ConnectionString = sas.ConnectionString{HostName: a.cfg.HubHost, DeviceID: d.ID, SharedAccessKey: d.PrimaryKey}.String()
	}
	return v
}

// listDevices lists the devices the caller may see, optionally of one
// tenant (and its sub-tenants), site or model.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := registry.DeviceFilter{Model: q.Get("model")}
	if s := q.Get("site"); s != "" {
		f.SiteIDs = []string{s}
	}
	ds, ok := a.visibleDevices(w, r, f, access.DeviceRead)
	if !ok {
		return
	}
	out := make([]apiv1.Device, len(ds))
	for i, d := range ds {
		out[i] = a.view(d, false)
	}
	writeJSON(w, http.StatusOK, apiv1.DeviceList{Devices: out})
}

// MaxDeviceIDLen is IoT Hub's limit.
const MaxDeviceIDLen = registry.MaxDeviceIDLen

// ValidDeviceID reports whether id can be a device id (registry.ValidDeviceID).
func ValidDeviceID(id string) error { return registry.ValidDeviceID(id) }

func (a *API) createDevice(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewDevice
	if !decode(w, r, &req) {
		return
	}
	tenantID, _, ok := a.inTenant(w, r, req.TenantID, access.KindDevice, access.DeviceManage)
	if !ok {
		return
	}
	d, err := a.cfg.Devices.Create(r.Context(), registry.NewDevice{ID: req.ID, TenantID: tenantID, Info: registry.DeviceInfo(req.DeviceInfo)})
	if err != nil {
		a.deviceError(w, err)
		return
	}
	res, err := a.deviceResource(r.Context(), d)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.view(d, a.allowed(r.Context(), access.DeviceKeys, res)))
}

// device is the device the route's policy check loaded.
func (a *API) device(_ http.ResponseWriter, r *http.Request) (registry.Device, bool) {
	return loaded[registry.Device](r.Context()), true
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.device(w, r); ok {
		writeJSON(w, http.StatusOK, a.view(d, a.allowed(r.Context(), access.DeviceKeys, resourceOf(r.Context()))))
	}
}

func (a *API) updateDevice(w http.ResponseWriter, r *http.Request) {
	var req apiv1.DevicePatch
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	var ch registry.Change
	info, changed := registry.InfoPatch{SiteID: req.SiteID, Name: req.Name, SerialNumber: req.SerialNumber,
		MeterNumber: req.MeterNumber, MeasurementLocation: req.MeasurementLocation,
		InstallationPlace: req.InstallationPlace, Model: req.Model, FirmwareVersion: req.FirmwareVersion}.Apply(d.Info)
	if changed {
		if err := a.cfg.Devices.CheckInfo(r.Context(), d.TenantID, info); err != nil {
			a.deviceError(w, err)
			return
		}
		if info.SiteID != d.Info.SiteID && !a.mayMove(w, r, d, info.SiteID) {
			return
		}
		ch.Info = &info
	}
	if req.Status != nil {
		st := registry.DeviceStatus(*req.Status)
		ch.Status = &st
	}
	d, err := a.cfg.Devices.Update(r.Context(), d, ch)
	if err != nil {
		a.deviceError(w, err)
		return
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok && ch.Status != nil && !changed {
		call.action = "device." + strings.TrimSuffix(string(d.Status), "d") // device.enable, device.disable
	}
	writeJSON(w, http.StatusOK, a.view(d, false))
}

// mayMove refuses a change of a device's site that would open the device's
// machine data to the caller: moving a customer's machine into a site whose
// factory service access is on is the owner's decision, not the operator's.
func (a *API) mayMove(w http.ResponseWriter, r *http.Request, d registry.Device, siteID string) bool {
	ctx := r.Context()
	before := resourceOf(ctx)
	after := d
	after.Info.SiteID = siteID
	res, err := a.deviceResource(ctx, after)
	if err != nil {
		a.storeError(w, err)
		return false
	}
	if a.allowed(ctx, access.DeviceData, res) && !a.allowed(ctx, access.DeviceData, before) {
		writeError(w, http.StatusForbidden, "%v: moving the device to site %q would open its machine data to you; "+
			"that is the owner's factory service access switch", access.ErrDenied, siteID)
		return false
	}
	return true
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	if err := a.cfg.Devices.Delete(r.Context(), d); errors.Is(err, database.ErrNotPurged) {
		a.notPurged(w, "device "+d.ID, err)
		return
	} else if err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) regenerateKeys(w http.ResponseWriter, r *http.Request) {
	var req apiv1.KeyRegeneration
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	d, err := a.cfg.Devices.RegenerateKeys(r.Context(), d, req.Key)
	if err != nil {
		a.deviceError(w, err)
		return
	}
	// The operator's admins may replace a customer's keys (to lock out a
	// stolen box) but never learn them.
	writeJSON(w, http.StatusOK, a.view(d, a.allowed(r.Context(), access.DeviceKeys, resourceOf(r.Context()))))
}

// MaxTokenTTL bounds the lifetime of a SAS token made by the API.
const MaxTokenTTL = 365 * 24 * time.Hour

func (a *API) deviceToken(w http.ResponseWriter, r *http.Request) {
	var req apiv1.DeviceTokenRequest
	if !decodeOptional(w, r, &req) {
		return
	}
	ttl := time.Hour
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 || ttl > MaxTokenTTL {
			writeError(w, http.StatusBadRequest, "ttl must be a positive duration up to %s, like 1h or 30m", MaxTokenTTL)
			return
		}
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	key := d.PrimaryKey
	switch req.Key {
	case "", "primary":
	case "secondary":
		key = d.SecondaryKey
	default:
		writeError(w, http.StatusBadRequest, `key must be "primary" or "secondary"`)
		return
	}
	expiry := a.now().Add(ttl).Truncate(time.Second)
	resource := sas.DeviceResource(a.cfg.HubHost, d.ID)
	ans := apiv1.DeviceToken{ExpiresAt: expiry.UTC(), HostName: a.cfg.HubHost}
	if a.underSwitch(r.Context(), access.DeviceToken, resourceOf(r.Context())) {
		// Allowed only by the owner's switch: a staff credential, recorded,
		// that stops working when the switch goes off.
		cred, err := a.staffCredential(r, d, expiry)
		if err != nil {
			a.storeError(w, err)
			return
		}
		skn := factory.KeyName(cred.ID)
		ans.Token = sas.SignRaw(factory.DeriveKey(key, skn), sas.Escape(resource), skn, expiry)
		ans.CredentialID = cred.ID
		if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
			call.target = d.ID + "/" + cred.ID
		}
		a.log.Info("staff credential made", "device", d.ID, "credential", cred.ID, "by", principal(r.Context()).ActorID, "until", expiry)
	} else {
		ans.Token = sas.Sign(key, resource, expiry)
	}
	writeJSON(w, http.StatusOK, ans)
}

// underSwitch says whether the caller may take act on res only because the
// owner's factory service access switch of its site is on.
func (a *API) underSwitch(ctx context.Context, act access.Action, res access.Resource) bool {
	if !res.FactoryAccess || !a.allowed(ctx, act, res) {
		return false
	}
	res.FactoryAccess = false
	return !a.allowed(ctx, act, res)
}

// staffCredential records a device credential made under the owner's
// switch, until expiry.
func (a *API) staffCredential(r *http.Request, d registry.Device, expiry time.Time) (factory.StaffCredential, error) {
	c := principal(r.Context())
	id, err := identity.NewID("stf")
	if err != nil {
		return factory.StaffCredential{}, err
	}
	cred := factory.StaffCredential{ID: id, TenantID: d.TenantID, DeviceID: d.ID, SiteID: d.Info.SiteID,
		ActorUserID: c.UserID, ActorID: c.ActorID, ActorName: c.Name, ActorTenantID: c.TenantID,
		CreatedAt: a.now().UTC().Truncate(time.Millisecond), ExpiresAt: expiry.UTC()}
	if err := a.stores.Factory.CreateStaffCredential(r.Context(), cred); err != nil {
		return factory.StaffCredential{}, err
	}
	return cred, nil
}
