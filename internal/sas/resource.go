package sas

import (
	"errors"
	"fmt"
	"strings"
)

// ErrModuleUnsupported reports a module identity resource
// ({host}/devices/{deviceId}/modules/{moduleId}); Warden does not support
// module identities yet.
var ErrModuleUnsupported = errors.New("sas: module identities are not supported")

// DeviceResource returns the logical (unencoded) resource of a hub device
// token: "{host}/devices/{deviceID}". host is the hub host name as the
// device uses it, including ":port" if it has one.
func DeviceResource(host, deviceID string) string {
	return host + "/devices/" + deviceID
}

// DeviceFromResource splits a decoded hub device resource
// "{host}/devices/{deviceId}" into its parts. host may carry a ":port". The
// "devices" segment is matched case-insensitively; host and deviceID are
// returned as they appear, for the caller to compare with its own policy.
// A module resource returns an error wrapping ErrModuleUnsupported.
func DeviceFromResource(res string) (host, deviceID string, err error) {
	host, path, ok := strings.Cut(res, "/")
	if !ok || host == "" {
		return "", "", errors.New("sas: resource has no host")
	}
	seg, deviceID, ok := strings.Cut(path, "/")
	if !ok || !strings.EqualFold(seg, "devices") {
		return "", "", errors.New("sas: resource is not of the form {host}/devices/{deviceId}")
	}
	deviceID, rest, hasRest := strings.Cut(deviceID, "/")
	if deviceID == "" {
		return "", "", errors.New("sas: resource has an empty device id")
	}
	if hasRest {
		seg, module, _ := strings.Cut(rest, "/")
		if strings.EqualFold(seg, "modules") && module != "" && !strings.Contains(module, "/") {
			return "", "", fmt.Errorf("%w (device %q)", ErrModuleUnsupported, deviceID)
		}
		return "", "", errors.New("sas: resource has segments after the device id")
	}
	return host, deviceID, nil
}

// Escape percent-encodes s exactly as the Azure IoT Node SDK does
// (encodeUriComponentStrict in azure-iot-common): every UTF-8 byte except
// A-Z a-z 0-9 - _ . ~ is encoded, with upper-case hex, except that the
// characters ! ' ( ) * which JavaScript's encodeURIComponent leaves alone
// are encoded with lower-case hex ("%2a" for '*'). So "/" becomes "%2F" and
// ":" becomes "%3A". Bytes that are not valid UTF-8 are encoded one by one.
func Escape(s string) string {
	const upper, lower = "0123456789ABCDEF", "0123456789abcdef"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			b = append(b, c)
		case c == '!' || c == '\'' || c == '(' || c == ')' || c == '*':
			// JavaScript's c.charCodeAt(0).toString(16): lower-case hex.
			b = append(b, '%', lower[c>>4], lower[c&15])
		default:
			b = append(b, '%', upper[c>>4], upper[c&15])
		}
	}
	return string(b)
}

// unreserved reports whether c is left alone by Escape.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}
