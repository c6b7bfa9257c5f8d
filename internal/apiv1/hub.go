package apiv1

import (
	"encoding/json"
	"time"
)

// Twin is the full twin document, shaped as IoT Hub's.
type Twin struct {
	DeviceID                  string          `json:"deviceId"`
	ETag                      string          `json:"etag"`
	DeviceETag                string          `json:"deviceEtag"`
	Status                    string          `json:"status"`
	StatusUpdateTime          time.Time       `json:"statusUpdateTime"`
	ConnectionState           string          `json:"connectionState"`
	LastActivityTime          time.Time       `json:"lastActivityTime"`
	CloudToDeviceMessageCount int             `json:"cloudToDeviceMessageCount"`
	AuthenticationType        string          `json:"authenticationType"`
	X509Thumbprint            X509Thumbprint  `json:"x509Thumbprint"`
	ModelID                   string          `json:"modelId"`
	Version                   int64           `json:"version"`
	Tags                      json.RawMessage `json:"tags"`
	Properties                TwinProperties  `json:"properties"`
	Capabilities              struct {
		IoTEdge bool `json:"iotEdge"`
	} `json:"capabilities"`
}

// X509Thumbprint is always empty: Warden devices use SAS keys.
type X509Thumbprint struct {
	Primary   *string `json:"primaryThumbprint"`
	Secondary *string `json:"secondaryThumbprint"`
}

// TwinProperties are the desired and reported sections, each with its
// "$metadata" and "$version".
type TwinProperties struct {
	Desired  json.RawMessage `json:"desired"`
	Reported json.RawMessage `json:"reported"`
}

// MethodResponse is the device's answer to a direct method.
type MethodResponse struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// C2DMessage is the API view of a cloud-to-device message.
type C2DMessage struct {
	ID            string            `json:"id"` // the message id ($.mid)
	CorrelationID string            `json:"correlationId,omitempty"`
	State         string            `json:"state"` // queued, delivered, completed or expired
	Payload       string            `json:"payload"`
	Properties    map[string]string `json:"properties"`
	CreatedAt     time.Time         `json:"createdAt"`
	ExpiresAt     time.Time         `json:"expiresAt"`
	DeliveredAt   *time.Time        `json:"deliveredAt,omitempty"`
	CompletedAt   *time.Time        `json:"completedAt,omitempty"`
	ExpiredAt     *time.Time        `json:"expiredAt,omitempty"`
	DeliveryCount int               `json:"deliveryCount"`
	Unreadable    bool              `json:"unreadable,omitempty"` // its tenant's keys were destroyed
}
