package sas

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// KeySize is the length in bytes of keys made by NewKey.
const KeySize = 32

// NewKey returns a new random symmetric key of KeySize bytes.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("sas: generate key: %w", err)
	}
	return key, nil
}

// DeriveDeviceKey returns the key of the device registrationID in a DPS
// enrollment group with key groupKey: HMAC-SHA256(groupKey, registrationID).
// Devices hold it base64-encoded, and use it both for their DPS token and,
// after assignment, as the hub SharedAccessKey.
func DeriveDeviceKey(groupKey []byte, registrationID string) []byte {
	mac := hmac.New(sha256.New, groupKey)
	mac.Write([]byte(registrationID))
	return mac.Sum(nil)
}
