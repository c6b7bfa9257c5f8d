package iothub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/iothub"
)

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{
		nodeSDKBag,
		"$.mid=x",
		"a=1+2&b+c=d",
		"$.ctime=2026-03-01T11:00:00Z&iothub-creation-time-utc=2026-03-01T11%3A00%3A00Z",
		"%24.mid=a&$.mid=b",
		"a=%zz",
		"a=1%",
		"=1",
		"flag",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bag string) {
		p, err := iothub.ParseProperties(bag)
		if err != nil {
			return
		}
		if len(bag) > 8<<10 {
			t.Fatalf("accepted a bag of %d bytes", len(bag))
		}
		if p.MessageID != p.System["mid"] || p.CorrelationID != p.System["cid"] ||
			p.ContentType != p.System["ct"] || p.ContentEncoding != p.System["ce"] {
			t.Fatalf("fields %q %q %q %q disagree with System %q", p.MessageID, p.CorrelationID, p.ContentType, p.ContentEncoding, p.System)
		}
		if !p.CreatedAt.IsZero() && p.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt %v not UTC", p.CreatedAt)
		}
		for k := range p.App {
			if k == "" || strings.HasPrefix(k, "$.") {
				t.Fatalf("application property %q", k)
			}
		}
	})
}

func FuzzTelemetryBag(f *testing.F) {
	f.Add("devices/d1/messages/events/"+nodeSDKBag, "d1")
	f.Add("devices/d10/messages/events/", "d1")
	f.Add("devices/d1/modules/m/messages/events/", "d1")
	f.Fuzz(func(t *testing.T, topic, device string) {
		bag, ok := iothub.TelemetryBag(topic, device)
		if !ok {
			if bag != "" {
				t.Fatalf("bag %q for a topic that is not telemetry", bag)
			}
			return
		}
		prefix := "devices/" + device + "/messages/events"
		if topic != prefix && topic != prefix+"/"+bag && topic != prefix+"/"+bag+"/" {
			t.Fatalf("TelemetryBag(%q, %q) = %q, true", topic, device, bag)
		}
	})
}
