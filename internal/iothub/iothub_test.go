package iothub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/iothub"
)

func TestTelemetryBag(t *testing.T) {
	for _, tc := range []struct {
		topic, device string
		wantBag       string
		wantOK        bool
	}{
		{"devices/d1/messages/events/", "d1", "", true},
		{"devices/d1/messages/events", "d1", "", true},
		{"devices/d1/messages/events/" + nodeSDKBag, "d1", nodeSDKBag, true},
		{"devices/d1/messages/events/$.mid=1&$.on=out/", "d1", "$.mid=1&$.on=out", true},
		{"devices/d1/messages/events//", "d1", "", true},
		{"devices/smoke-device-01/messages/events/a=1", "smoke-device-01", "a=1", true},
		{"devices/d2/messages/events/", "d1", "", false},
		{"devices/d10/messages/events/", "d1", "", false},
		{"devices/d10/messages/events", "d1", "", false},
		{"devices/d1/messages/events/", "d10", "", false},
		{"devices/d1x/messages/events/a=1", "d1", "", false},
		{"devices/d1/modules/m/messages/events/", "d1", "", false},
		{"devices/d1/modules/m/messages/events", "d1", "", false},
		{"devices/d1/messages/devicebound/", "d1", "", false},
		{"devices/d1/messages/eventsx", "d1", "", false},
		{"devices/d1/messages/event/", "d1", "", false},
		{"devices/d1", "d1", "", false},
		{"devices/d1/", "d1", "", false},
		{"Devices/d1/messages/events/", "d1", "", false},
		{"/devices/d1/messages/events/", "d1", "", false},
		{"$iothub/twin/PATCH/properties/reported/?$rid=1", "d1", "", false},
		{"", "d1", "", false},
	} {
		bag, ok := iothub.TelemetryBag(tc.topic, tc.device)
		if bag != tc.wantBag || ok != tc.wantOK {
			t.Errorf("TelemetryBag(%q, %q) = %q, %v; want %q, %v", tc.topic, tc.device, bag, ok, tc.wantBag, tc.wantOK)
		}
	}
}

func TestMessage(t *testing.T) {
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pub := iothub.Publish{
		TenantID: "root", DeviceID: "d1", Topic: "devices/d1/messages/events/" + nodeSDKBag + "&$.ctime=2026-03-01T11%3A00%3A00Z",
		Bag: nodeSDKBag + "&$.ctime=2026-03-01T11%3A00%3A00Z", Body: []byte(`{"t": 1}`), ReceivedAt: received,
	}
	msg := iothub.Message(pub)
	if msg.Invalid != nil {
		t.Fatalf("Invalid: %v", msg.Invalid)
	}
	if msg.TenantID != "root" || msg.DeviceID != "d1" || msg.Topic != pub.Topic || !msg.ReceivedAt.Equal(received) ||
		msg.Protocol != iothub.Protocol || string(msg.Payload) != `{"t": 1}` || len(msg.Points) != 0 {
		t.Errorf("message = %+v", msg)
	}
	if msg.MessageID != "msg-0001" || msg.ContentType != "application/json" || msg.ContentEncoding != "utf-8" ||
		!msg.CreatedAt.Equal(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("message id %q, content %q %q, created %v", msg.MessageID, msg.ContentType, msg.ContentEncoding, msg.CreatedAt)
	}
	if msg.System["mid"] != "msg-0001" || msg.App["alert"] != "false" || msg.App["unit name"] != "C/°" {
		t.Errorf("properties %q %q", msg.System, msg.App)
	}

	for _, bag := range []string{"$.mid=m1&a=%zz", "$.mid=m1&$.ctime=soon"} {
		pub.Bag = bag
		msg = iothub.Message(pub)
		if msg.Invalid == nil || !strings.Contains(msg.Invalid.Error(), "property bag") {
			t.Errorf("bag %q: Invalid = %v; want a property bag error", bag, msg.Invalid)
		}
		if msg.MessageID != "" || msg.Topic != pub.Topic || string(msg.Payload) != `{"t": 1}` {
			t.Errorf("bag %q: message = %+v", bag, msg)
		}
	}
}
