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
	fields := make(map[string]string, 3)
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
		switch name {
		case "HostName", "DeviceId", "SharedAccessKey":
		case "ModuleId":
			return ConnectionString{}, fmt.Errorf("sas: connection string: %w", ErrModuleUnsupported)
		default:
			continue
		}
		if _, dup := fields[name]; dup {
			return ConnectionString{}, fmt.Errorf("sas: connection string: duplicate %s", name)
		}
		fields[name] = value
	}
	for _, name := range []string{"HostName", "DeviceId", "SharedAccessKey"} {
		if fields[name] == "" {
			return ConnectionString{}, fmt.Errorf("sas: connection string: missing %s", name)
		}
	}
	host, device, key := fields["HostName"], fields["DeviceId"], fields["SharedAccessKey"]
	if strings.Contains(host, "/") {
		return ConnectionString{}, errors.New("sas: connection string: HostName contains '/'")
	}
	if strings.Contains(device, "/") {
		return ConnectionString{}, errors.New("sas: connection string: DeviceId contains '/'")
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		// base64.CorruptInputError names only an offset, never key bytes.
		return ConnectionString{}, fmt.Errorf("sas: connection string: SharedAccessKey is not valid base64: %w", err)
	}
	return ConnectionString{HostName: host, DeviceID: device, SharedAccessKey: raw}, nil
}
