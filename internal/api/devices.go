package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store"
)

// Device is the API view of a device.
type Device struct {
	ID               string     `json:"id"`
	TenantID         string     `json:"tenantId"`
	Status           string     `json:"status"`
	Connected        bool       `json:"connected"`
	LastSeen         *time.Time `json:"lastSeen,omitempty"`
	LastIP           string     `json:"lastIp,omitempty"`
	CreatedAt        time.Time  `json:"createdAt"`
	PrimaryKey       string     `json:"primaryKey,omitempty"`
	SecondaryKey     string     `json:"secondaryKey,omitempty"`
	ConnectionString string     `json:"connectionString,omitempty"`
}

func (a *API) view(d store.Device, withKeys bool) Device {
	v := Device{ID: d.ID, TenantID: d.TenantID, Status: string(d.Status), CreatedAt: d.CreatedAt,
		Connected: a.endpoint.Connected(d.ID), LastIP: d.LastIP}
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

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := a.store.ListDevices(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]Device, len(ds))
	for i, d := range ds {
		out[i] = a.view(d, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
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
	var req struct {
		ID string `json:"id"`
	}
	if !decode(w, r, &req) {
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
	d := store.Device{ID: req.ID, TenantID: principal(r.Context()).TenantID, Status: store.DeviceEnabled,
		PrimaryKey: primary, SecondaryKey: secondary, CreatedAt: a.now().UTC().Truncate(time.Millisecond)}
	if err := a.store.CreateDevice(r.Context(), d); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("device created", "device", d.ID, "tenant", d.TenantID)
	writeJSON(w, http.StatusCreated, a.view(d, true))
}

// device loads a device of the caller's tenant.
func (a *API) device(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	id := r.PathValue("id")
	d, err := a.store.GetDevice(r.Context(), id)
	if err == nil && d.TenantID != principal(r.Context()).TenantID {
		err = fmt.Errorf("device %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		a.storeError(w, err)
		return store.Device{}, false
	}
	return d, true
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.device(w, r); ok {
		writeJSON(w, http.StatusOK, a.view(d, true))
	}
}

func (a *API) updateDevice(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status *string `json:"status"`
	}
	if !decode(w, r, &req) {
		return
	}
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	if req.Status != nil {
		st := store.DeviceStatus(*req.Status)
		if st != store.DeviceEnabled && st != store.DeviceDisabled {
			writeError(w, http.StatusBadRequest, `status must be "enabled" or "disabled"`)
			return
		}
		if err := a.store.SetDeviceStatus(r.Context(), d.TenantID, d.ID, st); err != nil {
			a.storeError(w, err)
			return
		}
		d.Status = st
		if st == store.DeviceDisabled {
			a.endpoint.Disconnect(d.ID)
		}
		a.log.Info("device status changed", "device", d.ID, "status", st)
	}
	writeJSON(w, http.StatusOK, a.view(d, false))
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	if err := a.store.DeleteDevice(r.Context(), d.TenantID, d.ID); err != nil {
		a.storeError(w, err)
		return
	}
	a.endpoint.Disconnect(d.ID)
	a.log.Info("device deleted", "device", d.ID)
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
	// A connection made with a token of a replaced key must not live on.
	a.endpoint.Disconnect(d.ID)
	a.log.Info("device keys regenerated", "device", d.ID, "key", req.Key)
	writeJSON(w, http.StatusOK, a.view(d, true))
}

// MaxTokenTTL bounds the lifetime of a SAS token made by the API.
const MaxTokenTTL = 365 * 24 * time.Hour

func (a *API) deviceToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TTL string `json:"ttl"` // Go duration, default 1h
		Key string `json:"key"` // primary (default) or secondary
	}
	if !decode(w, r, &req) {
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
	writeJSON(w, http.StatusOK, map[string]any{
		"token":     sas.Sign(key, sas.DeviceResource(a.cfg.HubHost, d.ID), expiry),
		"expiresAt": expiry.UTC(),
		"hostName":  a.cfg.HubHost,
	})
}
