package ingest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/iothub"
	"github.com/warden-iot/warden/internal/telemetry"
)

// The bag the Azure IoT Node SDK sends (docs/azure-iot-mqtt.md §3.4), as in
// package iothub's tests.
const nodeSDKBag = `%24.mid=msg-0001&%24.ct=application%2Fjson&%24.ce=utf-8&alert=false&unit%20name=C%2F%C2%B0`

func TestDecode(t *testing.T) {
	received := now.Add(-time.Second)
	raw := func(bag, body string) telemetry.Message {
		return iothub.Message(iothub.Publish{TenantID: "root", DeviceID: "d1", Topic: "devices/d1/messages/events/" + bag,
			Bag: bag, Body: []byte(body), ReceivedAt: received})
	}

	t.Run("flat object stamped with the received time", func(t *testing.T) {
		msg, err := ingest.Decode(raw("", `{"t": 1}`), now)
		if err != nil {
			t.Fatal(err)
		}
		if msg.TenantID != "root" || msg.DeviceID != "d1" || !msg.ReceivedAt.Equal(received) || msg.MessageID != "" {
			t.Errorf("message = %+v", msg)
		}
		checkPoints(t, msg.Points, []telemetry.Point{pt("t", received, 1)})
	})
	t.Run("flat object stamped with the device's creation time", func(t *testing.T) {
		for _, bag := range []string{"$.ctime=2026-03-01T11:00:00Z", "iothub-creation-time-utc=2026-03-01T11%3A00%3A00Z"} {
			msg, err := ingest.Decode(raw(bag, `{"t": 1}`), now)
			if err != nil {
				t.Fatal(err)
			}
			checkPoints(t, msg.Points, []telemetry.Point{pt("t", t1100, 1)})
		}
	})
	t.Run("message id from the bag", func(t *testing.T) {
		msg, err := ingest.Decode(raw(nodeSDKBag, `{"mid": "body-id", "t": 1}`), now)
		if err != nil {
			t.Fatal(err)
		}
		if msg.MessageID != "msg-0001" {
			t.Errorf("MessageID = %q; want the bag's msg-0001", msg.MessageID)
		}
	})
	t.Run("message id from the body when the bag has none", func(t *testing.T) {
		msg, err := ingest.Decode(raw("alert=true", `{"mid": "body-id", "t": 1}`), now)
		if err != nil {
			t.Fatal(err)
		}
		if msg.MessageID != "body-id" {
			t.Errorf("MessageID = %q; want body-id", msg.MessageID)
		}
	})
	t.Run("a rejected message keeps its id", func(t *testing.T) {
		for _, tc := range []struct{ bag, body, wantID string }{
			{"$.mid=bag-id", `{"t": "hot"}`, "bag-id"},
			{"$.mid=bag-id&$.ct=text%2Fplain", `{"t": 1}`, "bag-id"},
			{"", `{"mid": "body-id", "t": "hot"}`, "body-id"},
			{"$.mid=%zz", `{"mid": "body-id", "t": 1}`, ""},
		} {
			msg, err := ingest.Decode(raw(tc.bag, tc.body), now)
			if err == nil {
				t.Fatalf("Parse(%q, %s) succeeded", tc.bag, tc.body)
			}
			if msg.MessageID != tc.wantID {
				t.Errorf("Parse(%q, %s): MessageID = %q; want %q", tc.bag, tc.body, msg.MessageID, tc.wantID)
			}
		}
	})
	t.Run("bag errors name the property bag", func(t *testing.T) {
		_, err := ingest.Decode(raw("a=%zz", `{"t": 1}`), now)
		if err == nil || !strings.Contains(err.Error(), "property bag") {
			t.Errorf("error %v; want it to mention the property bag", err)
		}
	})
	t.Run("a bad creation time rejects the message", func(t *testing.T) {
		if _, err := ingest.Decode(raw("$.ctime=soon", `{"t": 1}`), now); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("a creation time in 1970 rejects a flat object", func(t *testing.T) {
		if _, err := ingest.Decode(raw("$.ctime=1970-01-01T00:00:00Z", `{"t": 1}`), now); err == nil || !strings.Contains(err.Error(), "before 2000") {
			t.Errorf("error %v; want before 2000", err)
		}
	})
}

// Warden reads JSON in UTF-8 only; the content type and encoding system
// properties are checked by Decode before the body.
func TestDecodeContentTypeAndEncoding(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		bag     string
		wantErr string // empty: accepted
	}{
		{"", ""},
		{"$.ct=application%2Fjson", ""},
		{"$.ct=application/json", ""},
		{"$.ct=APPLICATION%2FJSON", ""},
		{"$.ct=application%2Fjson%3B%20charset%3Dutf-8", ""},
		{"$.ct=application/json; charset=utf-8", ""},
		{`$.ct=application/json;charset="UTF-8"`, ""},
		{"$.ct=application/json; charset=utf-8; foo=bar", ""},
		{"$.ct=application/json; foo=bar", ""},
		{"$.ct=application%2Fvnd.x%2Bjson", ""},
		{"$.ct=application/vnd.x+json", ""},
		{"$.ce=utf-8", ""},
		{"$.ce=UTF-8", ""},
		{"$.ce=utf8", ""},
		{nodeSDKBag, ""},
		{"$.ct=text%2Fplain", "not JSON"},
		{"$.ct=application%2Foctet-stream", "not JSON"},
		{"$.ct=application%2Fjsonx", "not JSON"},
		{"$.ct=application%2Fjson%3B%20charset%3Dutf-16", "only utf-8"},
		{"$.ct=application/json; foo=bar; charset=latin1", "only utf-8"},
		{"$.ce=utf-16", "only utf-8"},
		{"$.ce=gzip", "only utf-8"},
	} {
		t.Run(tc.bag, func(t *testing.T) {
			msg, err := ingest.Decode(iothub.Message(iothub.Publish{
				TenantID: "root", DeviceID: "d1", Bag: tc.bag,
				Body: []byte(`{"t": 1}`), ReceivedAt: now,
			}), now)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse with bag %q: %v", tc.bag, err)
			case tc.wantErr == "" && len(msg.Points) != 1:
				t.Fatalf("Parse with bag %q: points %v; want one", tc.bag, msg.Points)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Parse with bag %q succeeded; want an error containing %q", tc.bag, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Parse with bag %q: error %q; want it to contain %q", tc.bag, err, tc.wantErr)
			}
		})
	}
}

// A message from an adapter other than IoT Hub's: no topic syntax, no
// property bag, only the neutral fields.
func TestDecodeNeutralMessage(t *testing.T) {
	received := now.Add(-time.Second)
	m := telemetry.Message{
		TenantID: "root", DeviceID: "d1", ReceivedAt: received, Protocol: "http",
		ContentType: "application/json; charset=utf-8", App: map[string]string{"fPort": "2"},
		Payload: []byte(`{"mid": "up-1", "t": 1}`),
	}
	msg, err := ingest.Decode(m, now)
	if err != nil {
		t.Fatal(err)
	}
	if msg.MessageID != "up-1" || msg.Protocol != "http" || msg.App["fPort"] != "2" || msg.Payload != nil {
		t.Errorf("message = %+v", msg)
	}
	checkPoints(t, msg.Points, []telemetry.Point{pt("t", received, 1)})

	m.CreatedAt = t1100
	if msg, err = ingest.Decode(m, now); err != nil {
		t.Fatal(err)
	}
	checkPoints(t, msg.Points, []telemetry.Point{pt("t", t1100, 1)})

	m.Invalid = errors.New("bad header")
	m.MessageID = ""
	if _, err := ingest.Decode(m, now); err == nil || err.Error() != "bad header" {
		t.Errorf("Invalid message: error %v; want the adapter's reason", err)
	}
}
