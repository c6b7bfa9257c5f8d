package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store"
)

// storeInfo is the stored form of a device's metadata.
func storeInfo(i apiv1.DeviceInfo) registry.DeviceInfo { return registry.DeviceInfo(i) }

// deviceInfoPatch changes some metadata fields; a field left out stays.
type deviceInfoPatch struct {
	SiteID              *string `json:"siteId"`
	Name                *string `json:"name"`
	SerialNumber        *string `json:"serialNumber"`
	MeterNumber         *string `json:"meterNumber"`
	MeasurementLocation *string `json:"measurementLocation"`
	InstallationPlace   *string `json:"installationPlace"`
	Model               *string `json:"model"`
	FirmwareVersion     *string `json:"firmwareVersion"`
}

func (p deviceInfoPatch) apply(i registry.DeviceInfo) (registry.DeviceInfo, bool) {
	changed := false
	for _, f := range []struct {
		src *string
		dst *string
	}{{p.SiteID, &i.SiteID}, {p.Name, &i.Name}, {p.SerialNumber, &i.SerialNumber}, {p.MeterNumber, &i.MeterNumber},
		{p.MeasurementLocation, &i.MeasurementLocation}, {p.InstallationPlace, &i.InstallationPlace},
		{p.Model, &i.Model}, {p.FirmwareVersion, &i.FirmwareVersion}} {
		if f.src != nil {
			*f.dst, changed = strings.TrimSpace(*f.src), true
		}
	}
	return i, changed
}

// checkInfo validates metadata: lengths, and a site of the device's tenant.
func (a *API) checkInfo(w http.ResponseWriter, r *http.Request, tenantID string, i registry.DeviceInfo) bool {
	for name, v := range map[string]string{"name": i.Name, "serialNumber": i.SerialNumber, "meterNumber": i.MeterNumber,
		"measurementLocation": i.MeasurementLocation, "installationPlace": i.InstallationPlace, "model": i.Model,
		"firmwareVersion": i.FirmwareVersion, "siteId": i.SiteID} {
		if len(v) > 200 {
			writeError(w, http.StatusBadRequest, "%s: at most 200 characters", name)
			return false
		}
	}
	if i.SiteID == "" {
		return true
	}
	s, err := a.store.GetSite(r.Context(), i.SiteID)
	if errors.Is(err, database.ErrNotFound) || (err == nil && s.TenantID != tenantID) {
		writeError(w, http.StatusBadRequest, "siteId: no site %q in the device's tenant %q", i.SiteID, tenantID)
		return false
	}
	if err != nil {
		a.storeError(w, err)
		return false
	}
	return true
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
const MaxDeviceIDLen = 128

// ValidDeviceID reports whether id can be a device id: 1–128 ASCII letters,
// digits and "-._:@". MQTT's "/", "+" and "#" are never allowed.
func ValidDeviceID(id string) error {
	if id == "" || len(id) > MaxDeviceIDLen {
		return fmt.Errorf("device id must be 1 to %d characters", MaxDeviceIDLen)
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '@':
		default:
			return fmt.Errorf("device id %q: character %q not allowed (letters, digits and - . _ : @)", id, c)
		}
	}
	return nil
}

func (a *API) createDevice(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewDevice
	if !decode(w, r, &req) {
		return
	}
	tenantID, _, ok := a.inTenant(w, r, req.TenantID, access.KindDevice, access.DeviceManage)
	if !ok {
		return
	}
	req.TenantID = tenantID
	info, _ := deviceInfoPatch{}.apply(storeInfo(req.DeviceInfo))
	if !a.checkInfo(w, r, req.TenantID, info) {
		return
	}
	if err := ValidDeviceID(req.ID); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	primary, err1 := sas.NewKey()
	secondary, err2 := sas.NewKey()
	if err := errors.Join(err1, err2); err != nil {
		a.log.Error("generate device key", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	d := registry.Device{ID: req.ID, TenantID: req.TenantID, Status: registry.DeviceEnabled, Info: info,
		PrimaryKey: primary, SecondaryKey: secondary, CreatedAt: a.now().UTC().Truncate(time.Millisecond)}
	if err := a.store.CreateDevice(r.Context(), d); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("device created", "device", d.ID, "tenant", d.TenantID)
	a.publish(r.Context(), event.DeviceCreated{TenantID: d.TenantID, DeviceID: d.ID, At: d.CreatedAt})
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
	var req struct {
		Status *string `json:"status"`
		deviceInfoPatch
	}
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	oldSite := d.Info.SiteID
	info, changed := req.apply(d.Info)
	if changed {
		if !a.checkInfo(w, r, d.TenantID, info) {
			return
		}
		if info.SiteID != oldSite && !a.mayMove(w, r, d, info.SiteID) {
			return
		}
		if err := a.store.SetDeviceInfo(r.Context(), d.TenantID, d.ID, info); err != nil {
			a.storeError(w, err)
			return
		}
		d.Info = info
		at := a.now().UTC()
		a.publish(r.Context(), a.deviceChanged(d, oldSite, at))
		if oldSite != "" && info.SiteID != oldSite {
			a.publish(r.Context(), event.FactoryAccessClosed{TenantID: d.TenantID, DeviceID: d.ID, At: at})
		}
	}
	if req.Status != nil {
		st := registry.DeviceStatus(*req.Status)
		if st != registry.DeviceEnabled && st != registry.DeviceDisabled {
			writeError(w, http.StatusBadRequest, `status must be "enabled" or "disabled"`)
			return
		}
		if err := a.store.SetDeviceStatus(r.Context(), d.TenantID, d.ID, st); err != nil {
			a.storeError(w, err)
			return
		}
		d.Status = st
		a.publish(r.Context(), a.deviceChanged(d, d.Info.SiteID, a.now().UTC()))
		if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok && !changed {
			call.action = "device." + strings.TrimSuffix(string(st), "d") // device.enable, device.disable
		}
		a.log.Info("device status changed", "device", d.ID, "status", st)
	}
	writeJSON(w, http.StatusOK, a.view(d, false))
}

// deviceChanged is the fact of d as it is now, at oldSite before.
func (a *API) deviceChanged(d registry.Device, oldSite string, at time.Time) event.DeviceChanged {
	return event.DeviceChanged{TenantID: d.TenantID, DeviceID: d.ID, SiteID: d.Info.SiteID, PreviousSiteID: oldSite,
		Model: d.Info.Model, Status: string(d.Status), At: at}
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
	err := a.store.DeleteDevice(r.Context(), d.TenantID, d.ID)
	if err != nil && !errors.Is(err, database.ErrNotPurged) {
		a.storeError(w, err)
		return
	}
	a.log.Info("device deleted", "device", d.ID)
	a.publish(r.Context(), event.DeviceDeleted{TenantID: d.TenantID, DeviceID: d.ID, At: a.now().UTC()})
	if err != nil {
		a.notPurged(w, "device "+d.ID, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) regenerateKeys(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key string `json:"key"` // primary, secondary or both
	}
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	var err error
	switch req.Key {
	case "primary":
		d.PrimaryKey, err = sas.NewKey()
	case "secondary":
		d.SecondaryKey, err = sas.NewKey()
	case "both":
		var err2 error
		d.PrimaryKey, err = sas.NewKey()
		d.SecondaryKey, err2 = sas.NewKey()
		err = errors.Join(err, err2)
	default:
		writeError(w, http.StatusBadRequest, `key must be "primary", "secondary" or "both"`)
		return
	}
	if err != nil {
		a.log.Error("generate device key", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if err := a.store.SetDeviceKeys(r.Context(), d.TenantID, d.ID, d.PrimaryKey, d.SecondaryKey); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("device keys regenerated", "device", d.ID, "key", req.Key)
	a.publish(r.Context(), event.DeviceRekeyed{TenantID: d.TenantID, DeviceID: d.ID, Keys: req.Key, At: a.now().UTC()})
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
func (a *API) staffCredential(r *http.Request, d registry.Device, expiry time.Time) (store.StaffCredential, error) {
	c := principal(r.Context())
	id, err := identity.NewID("stf")
	if err != nil {
		return store.StaffCredential{}, err
	}
	cred := store.StaffCredential{ID: id, TenantID: d.TenantID, DeviceID: d.ID, SiteID: d.Info.SiteID,
		ActorUserID: c.UserID, ActorID: c.ActorID, ActorName: c.Name, ActorTenantID: c.TenantID,
		CreatedAt: a.now().UTC().Truncate(time.Millisecond), ExpiresAt: expiry.UTC()}
	if err := a.store.CreateStaffCredential(r.Context(), cred); err != nil {
		return store.StaffCredential{}, err
	}
	return cred, nil
}
