package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store"
)

// authHook authenticates a device the way IoT Hub does: client id = device
// id, user name "{host}/{deviceId}/?api-version=…", password = a SAS token
// for "{host}/devices/{deviceId}" signed with either of the device's keys.
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
	dev, expiry, r := h.authenticate(cl, pk)
	if r != nil {
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
	h.b.attach(cl, dev, expiry)
	h.b.log.Debug("device connected", "device", dev.ID, "remote", cl.Net.Remote, "mqtt", cl.Properties.ProtocolVersion)
	return nil
}

// OnConnectAuthenticate lets through what OnConnect accepted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool { return true }

func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) (store.Device, time.Time, *refusal) {
	host, userDevice, err := parseUsername(string(pk.Connect.Username))
	if err != nil {
		return store.Device{}, time.Time{}, refuse("bad-username", packets.ErrMalformedUsername, packets.ErrBadUsernameOrPassword, err)
	}
	if userDevice != cl.ID {
		return store.Device{}, time.Time{}, refuse("client-id-mismatch", packets.ErrClientIdentifierNotValid, packets.ErrClientIdentifierNotValid,
			fmt.Errorf("user name is for device %q, client id is %q", userDevice, cl.ID))
	}
	tok, err := sas.Parse(string(pk.Connect.Password))
	if err != nil {
		return store.Device{}, time.Time{}, refuse("bad-password", packets.ErrMalformedPassword, packets.ErrBadUsernameOrPassword, err)
	}
	res, err := tok.DecodedResource()
	if err != nil {
		return store.Device{}, time.Time{}, notAuthorized("bad-resource", err)
	}
	tokHost, tokDevice, err := sas.DeviceFromResource(res)
	if err != nil {
		return store.Device{}, time.Time{}, notAuthorized("bad-resource", err)
	}
	if tokDevice != cl.ID || !strings.EqualFold(tokHost, host) {
		return store.Device{}, time.Time{}, notAuthorized("wrong-resource",
			fmt.Errorf("token is for %q, connection is %q", res, host+"/devices/"+cl.ID))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, err := h.b.store.GetDevice(ctx, cl.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, time.Time{}, notAuthorized("unknown-device", err)
	}
	if err != nil {
		return store.Device{}, time.Time{}, refuse("store-error", packets.ErrServerUnavailable, packets.ErrServerUnavailable, err)
	}
	if err := sas.Verify(tok, h.b.now(), dev.PrimaryKey, dev.SecondaryKey); err != nil {
		reason := "bad-signature"
		if errors.Is(err, sas.ErrExpired) {
			reason = "expired-token"
		}
		return store.Device{}, time.Time{}, notAuthorized(reason, err)
	}
	if dev.Status != store.DeviceEnabled {
		return store.Device{}, time.Time{}, notAuthorized("device-disabled", fmt.Errorf("device %q is %s", dev.ID, dev.Status))
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
