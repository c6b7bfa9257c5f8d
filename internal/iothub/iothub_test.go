package iothub_test

import (
	"testing"

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
