package sas

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ConnectionString is a device connection string of the form
//
//	HostName=<host>;DeviceId=<id>;SharedAccessKey=<base64 key>
//
// as used by the Azure IoT device SDKs. Its String form contains the key and
// must not be logged.
type ConnectionString struct {
	// HostName is the hub host name the device dials and signs for; it may
	// carry a ":port".
	HostName string
	// DeviceID is the device identity.
	DeviceID string
	// SharedAccessKey is the device's symmetric key (raw bytes).
	SharedAccessKey []byte
}

// String formats c as a connection string, with the key in standard
// base64. The result is a secret.
func (c ConnectionString) String() string {
	return "HostName=" + c.HostName +
		";DeviceId=" + c.DeviceID +
		";SharedAccessKey=" + base64.StdEncoding.EncodeToString(c.SharedAccessKey)
}

// ParseConnectionString parses a device connection string. Parts are
// separated by ';' and split at the first '='; whitespace around parts,
// names and values is ignored, and so are empty parts. Names are
// case-sensitive as Azure writes them. HostName, DeviceId and
// SharedAccessKey (standard base64) are required and may appear once each;
// other parts, such as GatewayHostName or SharedAccessKeyName, are ignored,
// except ModuleId, since module identities are not supported.
func ParseConnectionString(s string) (ConnectionString, error) {
	var (
		host, device, key          string
		hasHost, hasDevice, hasKey bool
	)
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			// The part itself is not quoted: it might be a mangled key.
			return ConnectionString{}, fmt.Errorf("sas: connection string: part %d has no '='", i+1)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		var dst *string
		var seen *bool
		switch name {
		case "HostName":
			dst, seen = &host, &hasHost
		case "DeviceId":
			dst, seen = &device, &hasDevice
		case "SharedAccessKey":
			dst, seen = &key, &hasKey
		case "ModuleId":
			return ConnectionString{}, fmt.Errorf("sas: connection string: %w", ErrModuleUnsupported)
		default:
			continue
		}
		if *seen {
			return ConnectionString{}, fmt.Errorf("sas: connection string: duplicate %s", name)
		}
		*dst, *seen = value, true
	}

	switch {
	case host == "":
		return ConnectionString{}, errors.New("sas: connection string: missing HostName")
	case device == "":
		return ConnectionString{}, errors.New("sas: connection string: missing DeviceId")
	case key == "":
		return ConnectionString{}, errors.New("sas: connection string: missing SharedAccessKey")
	case strings.Contains(host, "/"):
		return ConnectionString{}, errors.New("sas: connection string: HostName contains '/'")
	case strings.Contains(device, "/"):
		return ConnectionString{}, errors.New("sas: connection string: DeviceId contains '/'")
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		// base64.CorruptInputError names only an offset, never key bytes.
		return ConnectionString{}, fmt.Errorf("sas: connection string: SharedAccessKey is not valid base64: %w", err)
	}
	if len(raw) == 0 {
		return ConnectionString{}, errors.New("sas: connection string: empty SharedAccessKey")
	}
	return ConnectionString{HostName: host, DeviceID: device, SharedAccessKey: raw}, nil
}
