package broker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sas"
)

// authHook authenticates a device the way IoT Hub does: client id = device
// id, user name "{host}/{deviceId}/?api-version=…", password = a SAS token
// for "{host}/devices/{deviceId}" signed with either of the device's keys.
// It also authenticates provisioning (DPS) clients, whose user name is
// "{idScope}/registrations/{registrationId}/api-version=…" (see
// authenticateDPS).
type authHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *authHook) ID() string { return "warden-device-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnConnectAuthenticate
}

// refusal is why a connection was refused, with the CONNACK codes to send.
type refusal struct {
	reason string       // metric label and log message
	v3     packets.Code // mapped by mochi to a 3.1.1 return code
	v5     packets.Code
	err    error
}

func (r *refusal) Error() string { return r.reason + ": " + r.err.Error() }

func refuse(reason string, v3, v5 packets.Code, err error) *refusal {
	return &refusal{reason: reason, v3: v3, v5: v5, err: err}
}

// notAuthorized: 3.1.1 return code 5; MQTT 5 0x87 (or 0x86 for bad credentials).
func notAuthorized(reason string, err error) *refusal {
	return refuse(reason, packets.ErrBadUsernameOrPassword, packets.ErrNotAuthorized, err)
}

// OnConnect does the authentication, so that it can choose the CONNACK code;
// mochi's OnConnectAuthenticate only knows yes or no.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if r := checkConnect(cl, pk); r != nil { // protocol.go
		return h.refuse(cl, r)
	}
	if scope, regID, ok, err := parseDPSUsername(string(pk.Connect.Username)); ok {
		if err != nil {
			return h.refuse(cl, refuse("bad-username", packets.ErrMalformedUsername, packets.ErrBadUsernameOrPassword, err))
		}
		c, expiry, r := h.authenticateDPS(cl, pk, scope, regID)
		if r != nil {
			return h.refuse(cl, r)
		}
		h.b.dps.attach(cl, c, expiry)
		h.b.log.Debug("provisioning client connected", "registration", regID, "tenant", c.s.tenantID,
			"enrollment", string(c.kind)+"/"+c.enrollmentID, "remote", cl.Net.Remote)
		return nil
	}
	dev, expiry, r := h.authenticate(cl, pk)
	var staff string
	if r == nil {
		var release func()
		staff, release, r = h.authorizeStaff(cl, pk, dev)
		defer release()
	}
	if r != nil {
		return h.refuse(cl, r)
	}
	modelID, err := modelIDFromUsername(string(pk.Connect.Username))
	if err != nil {
		return h.refuse(cl, refuse("bad-model-id", packets.ErrMalformedUsername, packets.ErrBadUsernameOrPassword, err))
	}
	if modelID != "" {
		h.b.recordModelID(dev, modelID)
	}
	h.b.attach(cl, dev, expiry, staff)
	h.b.log.Debug("device connected", "device", dev.ID, "remote", cl.Net.Remote, "mqtt", cl.Properties.ProtocolVersion)
	return nil
}

// refuse counts and logs a refused connection and sends its CONNACK.
func (h *authHook) refuse(cl *mqtt.Client, r *refusal) error {
	h.b.refused.WithLabelValues(r.reason).Inc()
	h.b.log.Info("device connection refused", "client", cl.ID, "remote", cl.Net.Remote, "reason", r.Error())
	code := r.v3
	if cl.Properties.ProtocolVersion >= 5 {
		code = r.v5
	}
	if err := h.b.mqtt.SendConnack(cl, code, false, nil); err != nil {
		return fmt.Errorf("refuse %q: %w", cl.ID, err)
	}
	return r
}

// OnConnectAuthenticate lets through what OnConnect accepted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool { return true }

func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) (registry.Device, time.Time, *refusal) {
	host, userDevice, err := parseUsername(string(pk.Connect.Username))
	if err != nil {
		return registry.Device{}, time.Time{}, refuse("bad-username", packets.ErrMalformedUsername, packets.ErrBadUsernameOrPassword, err)
	}
	if userDevice != cl.ID {
		return registry.Device{}, time.Time{}, refuse("client-id-mismatch", packets.ErrClientIdentifierNotValid, packets.ErrClientIdentifierNotValid,
			fmt.Errorf("user name is for device %q, client id is %q", userDevice, cl.ID))
	}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return registry.Device{}, time.Time{}, refuse("bad-password", packets.ErrMalformedPassword, packets.ErrBadUsernameOrPassword, err)
	}
	res, err := tok.DecodedResource()
	if err != nil {
		return registry.Device{}, time.Time{}, notAuthorized("bad-resource", err)
	}
	tokHost, tokDevice, err := sas.DeviceFromResource(res)
	if err != nil {
		return registry.Device{}, time.Time{}, notAuthorized("bad-resource", err)
	}
	if tokDevice != cl.ID || !strings.EqualFold(tokHost, host) {
		return registry.Device{}, time.Time{}, notAuthorized("wrong-resource",
			fmt.Errorf("token is for %q, connection is %q", res, host+"/devices/"+cl.ID))
	}
	// A token signed for another hub (the device's key may be known
	// there too) is not for this one, even with a user name to match.
	if !h.b.isHubName(tokHost) {
		return registry.Device{}, time.Time{}, notAuthorized("foreign-hub",
			fmt.Errorf("token is for hub %q, this hub is %q", tokHost, h.b.hubHost))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, err := h.b.store.GetDevice(ctx, cl.ID)
	if errors.Is(err, database.ErrNotFound) {
		return registry.Device{}, time.Time{}, notAuthorized("unknown-device", err)
	}
	if err != nil {
		return registry.Device{}, time.Time{}, refuse("store-error", packets.ErrServerUnavailable, packets.ErrServerUnavailable, err)
	}
	if err := sas.Verify(tok, h.b.now(), deviceKeys(dev, tok.KeyName)...); err != nil {
		reason := "bad-signature"
		if errors.Is(err, sas.ErrExpired) {
			reason = "expired-token"
		}
		return registry.Device{}, time.Time{}, notAuthorized(reason, err)
	}
	if dev.Status != registry.DeviceEnabled {
		return registry.Device{}, time.Time{}, notAuthorized("device-disabled", fmt.Errorf("device %q is %s", dev.ID, dev.Status))
	}
	return dev, tok.Expiry, nil
}

// parseUsername splits "{host}/{deviceId}/?api-version=…&…" into host and
// device id. The query is not parsed with net/url: SDKs put unencoded ';'
// and ':' in it. Only what comes before the query carries meaning here.
func parseUsername(u string) (host, deviceID string, err error) {
	path, _, _ := strings.Cut(u, "?")
	path = strings.TrimSuffix(path, "/")
	host, deviceID, ok := strings.Cut(path, "/")
	if !ok || host == "" || deviceID == "" {
		return "", "", errors.New(`user name is not "{host}/{deviceId}/?api-version=…"`)
	}
	if strings.Contains(deviceID, "/") {
		return "", "", errors.New("module identities are not supported")
	}
	return host, deviceID, nil
}

// parseDPSUsername recognises a provisioning client's user name,
// "{idScope}/registrations/{registrationId}/api-version=…&ClientVersion=…"
// (no '?' before the parameters, unlike the hub's; "/?api-version" is
// accepted too). ok says whether u is meant for DPS at all: a hub user name
// of a device called "registrations" ("{host}/registrations/?api-version=…")
// is not. err is set for a DPS user name that cannot be used.
func parseDPSUsername(u string) (scope, regID string, ok bool, err error) {
	scope, rest, _ := strings.Cut(u, "/")
	rest, ok = strings.CutPrefix(rest, "registrations/")
	if !ok || strings.HasPrefix(rest, "?") {
		return "", "", false, nil
	}
	regID, params, found := strings.Cut(rest, "/")
	switch {
	case scope == "" || regID == "" || !found:
		return "", "", true, errors.New(`user name is not "{idScope}/registrations/{registrationId}/api-version=…"`)
	case !strings.HasPrefix(strings.TrimPrefix(params, "?"), "api-version="):
		return "", "", true, errors.New("user name has no api-version")
	case !validRegistrationID(regID):
		return "", "", true, fmt.Errorf("registration id %q: want 1 to 128 letters, digits and - . _ :", regID)
	}
	return scope, regID, true, nil
}

// validRegistrationID: a registration id becomes a device id, so it follows
// the same rule (api.ValidDeviceID), without '@', which DPS does not allow.
func validRegistrationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

// authenticateDPS authenticates a provisioning client: the token
// (skn=registration) must be for "{idScope}/registrations/{registrationId}",
// sent unencoded (the Node SDK) or percent-encoded (the Python SDK and the
// docs), and signed with the key of an individual enrollment of that
// registration id in the scope's tenant, or else with a key derived from an
// enrollment group's key: every group of the tenant is tried (at most
// provision.MaxEnrollmentGroups), with its primary and secondary key. The
// enrollments come from the broker's cache (enrollmentCache).
func (h *authHook) authenticateDPS(cl *mqtt.Client, pk packets.Packet, scope, regID string) (*dpsConn, time.Time, *refusal) {
	if regID != cl.ID {
		return nil, time.Time{}, refuse("client-id-mismatch", packets.ErrClientIdentifierNotValid, packets.ErrClientIdentifierNotValid,
			fmt.Errorf("user name is for registration %q, client id is %q", regID, cl.ID))
	}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return nil, time.Time{}, refuse("bad-password", packets.ErrMalformedPassword, packets.ErrBadUsernameOrPassword, err)
	}
	if tok.KeyName != "registration" {
		return nil, time.Time{}, notAuthorized("wrong-key-name", fmt.Errorf(`token key name is %q, want "registration"`, tok.KeyName))
	}
	if res := scope + "/registrations/" + regID; !tok.MatchesResource(res) {
		return nil, time.Time{}, notAuthorized("wrong-resource", fmt.Errorf("token is for %q, connection is %q", tok.Resource, res))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unavailable := func(err error) *refusal {
		return refuse("store-error", packets.ErrServerUnavailable, packets.ErrServerUnavailable, err)
	}
	tenant, err := h.b.dps.tenantOf(ctx, scope)
	if errors.Is(err, database.ErrNotFound) {
		return nil, time.Time{}, notAuthorized("unknown-id-scope", err)
	}
	if err != nil {
		return nil, time.Time{}, unavailable(err)
	}
	now := h.b.now()
	c := &dpsConn{s: &session{registration: regID, client: cl, tenantID: tenant, ip: remoteIP(cl.Net.Remote), since: now}}

	snap, err := h.b.dps.enrollments.get(ctx, tenant)
	if err != nil {
		return nil, time.Time{}, unavailable(err)
	}
	// An individual enrollment of the id takes precedence over the groups.
	if e, ok := snap.individual[regID]; ok {
		if err := sas.Verify(tok, now, e.PrimaryKey, e.SecondaryKey); err != nil {
			return nil, time.Time{}, notAuthorized(verifyReason(err), err)
		}
		if !e.Enabled {
			return nil, time.Time{}, notAuthorized("enrollment-disabled", fmt.Errorf("individual enrollment %q is disabled", regID))
		}
		c.kind, c.enrollmentID, c.deviceID = provision.EnrollmentIndividualKind, regID, e.DeviceID
		c.primary, c.secondary, c.initialTwin = e.PrimaryKey, e.SecondaryKey, e.InitialTwin
		return c, tok.Expiry, nil
	}

	groups := snap.groups
	var match, disabled *provision.EnrollmentGroup
	var matchErr error
	for i := range groups[:min(len(groups), provision.MaxEnrollmentGroups)] {
		g := &groups[i]
		primary, secondary := sas.DeriveDeviceKey(g.PrimaryKey, regID), sas.DeriveDeviceKey(g.SecondaryKey, regID)
		err := sas.Verify(tok, now, primary, secondary)
		if errors.Is(err, sas.ErrBadSignature) {
			continue
		}
		if !g.Enabled {
			disabled = g
			continue
		}
		match, matchErr = g, err
		c.primary, c.secondary = primary, secondary
		break
	}
	switch {
	case match != nil && matchErr != nil:
		return nil, time.Time{}, notAuthorized(verifyReason(matchErr), matchErr)
	case match == nil && disabled != nil:
		return nil, time.Time{}, notAuthorized("enrollment-disabled", fmt.Errorf("enrollment group %q is disabled", disabled.ID))
	case match == nil:
		return nil, time.Time{}, notAuthorized("bad-signature",
			fmt.Errorf("no enrollment of registration %q in scope %s: %w", regID, scope, sas.ErrBadSignature))
	}
	c.kind, c.enrollmentID, c.deviceID, c.initialTwin = provision.EnrollmentGroupKind, match.ID, regID, match.InitialTwin
	return c, tok.Expiry, nil
}

func verifyReason(err error) string {
	if errors.Is(err, sas.ErrExpired) {
		return "expired-token"
	}
	return "bad-signature"
}

// modelIDFromUsername returns the model id an IoT Plug and Play device
// announces in its user name, "…/?api-version=…&model-id=dtmi:…;1" (the
// SDKs percent-encode it, or not), or "" if it announces none.
func modelIDFromUsername(u string) (string, error) {
	_, query, _ := strings.Cut(u, "?")
	for kv := range strings.SplitSeq(query, "&") {
		raw, ok := strings.CutPrefix(kv, "model-id=")
		if !ok {
			continue
		}
		id, err := url.PathUnescape(raw)
		if err != nil {
			return "", fmt.Errorf("model-id %q: %w", truncateForLog(raw), err)
		}
		if !validDTMI(id) {
			return "", fmt.Errorf("model-id %q is not a DTMI (dtmi:segment:segment;version)", truncateForLog(id))
		}
		return id, nil
	}
	return "", nil
}

// validDTMI checks the syntax of a Digital Twin Model Identifier:
// "dtmi:" path segments separated by ':' (each a letter, then letters,
// digits and '_', not ending with '_'), ';' and a version of 1 to 9 digits
// (or a major.minor version), 4096 characters at most.
func validDTMI(id string) bool {
	path, version, ok := strings.Cut(strings.TrimPrefix(id, "dtmi:"), ";")
	if !ok || !strings.HasPrefix(id, "dtmi:") || len(id) > 4096 || path == "" {
		return false
	}
	for seg := range strings.SplitSeq(path, ":") {
		if seg == "" || !isLetter(seg[0]) || seg[len(seg)-1] == '_' {
			return false
		}
		for _, c := range []byte(seg) {
			if !isLetter(c) && !('0' <= c && c <= '9') && c != '_' {
				return false
			}
		}
	}
	major, minor, hasMinor := strings.Cut(version, ".")
	return validVersionPart(major, false) && (!hasMinor || validVersionPart(minor, true))
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func validVersionPart(s string, zero bool) bool {
	if s == "" || len(s) > 9 || (s[0] == '0' && !(zero && s == "0")) {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// recordModelID keeps the model id a device announced, if it changed.
func (b *Broker) recordModelID(d registry.Device, modelID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if old, err := b.store.DeviceModelID(ctx, d.TenantID, d.ID); err == nil && old == modelID {
		return
	}
	if err := b.store.SetDeviceModelID(ctx, d.TenantID, d.ID, modelID); err != nil {
		b.log.Warn("model id not recorded", "device", d.ID, "err", err)
	}
}
