package store

import (
	"encoding/json"
	"time"

	"github.com/warden-iot/warden/internal/hub"
)

// The IoT Hub device state is package hub's; these names stay so that code
// written against package store compiles unchanged.

// HubStore is hub.Store: twins, cloud-to-device messages, model ids and
// session subscriptions.
type HubStore = hub.Store

// Errors of the hub store (package hub's).
var (
	ErrInvalidTwin = hub.ErrInvalidTwin
	ErrTwinChanged = hub.ErrTwinChanged
	ErrQueueFull   = hub.ErrQueueFull
)

// Twin limits, those of IoT Hub (package hub's).
const (
	MaxTwinDepth     = hub.MaxTwinDepth
	MaxTwinKeyLen    = hub.MaxTwinKeyLen
	MaxTwinPropsSize = hub.MaxTwinPropsSize
	MaxTwinTagsSize  = hub.MaxTwinTagsSize
)

// Twin is hub.Twin.
type Twin = hub.Twin

// TwinProperties is hub.TwinProperties.
type TwinProperties = hub.TwinProperties

// TwinUpdate is hub.TwinUpdate.
type TwinUpdate = hub.TwinUpdate

// NewTwin is hub.NewTwin.
func NewTwin(tenantID, deviceID string, created time.Time) Twin {
	return hub.NewTwin(tenantID, deviceID, created)
}

// TwinETag is hub.TwinETag.
func TwinETag(version int64) string { return hub.TwinETag(version) }

// ParseTwinETag is hub.ParseTwinETag.
func ParseTwinETag(etag string) (int64, error) { return hub.ParseTwinETag(etag) }

// CheckTwinKey is hub.CheckTwinKey.
func CheckTwinKey(k string) error { return hub.CheckTwinKey(k) }

// PatchWithVersion is hub.PatchWithVersion.
func PatchWithVersion(patch json.RawMessage, version int64) (json.RawMessage, error) {
	return hub.PatchWithVersion(patch, version)
}

// C2DState is hub.C2DState.
type C2DState = hub.C2DState

// States of a cloud-to-device message (package hub's).
const (
	C2DQueued    = hub.C2DQueued
	C2DDelivered = hub.C2DDelivered
	C2DCompleted = hub.C2DCompleted
	C2DExpired   = hub.C2DExpired
)

// C2DHistory is hub.C2DHistory.
const C2DHistory = hub.C2DHistory

// C2DMessage is hub.C2DMessage.
type C2DMessage = hub.C2DMessage

// EncodeC2DProperties is hub.EncodeC2DProperties.
func EncodeC2DProperties(p map[string]string) string { return hub.EncodeC2DProperties(p) }

// DecodeC2DProperties is hub.DecodeC2DProperties.
func DecodeC2DProperties(s string) (map[string]string, error) { return hub.DecodeC2DProperties(s) }

// EncodeSubscriptions is hub.EncodeSubscriptions.
func EncodeSubscriptions(subs map[string]byte) string { return hub.EncodeSubscriptions(subs) }

// DecodeSubscriptions is hub.DecodeSubscriptions.
func DecodeSubscriptions(s string) (map[string]byte, error) { return hub.DecodeSubscriptions(s) }
