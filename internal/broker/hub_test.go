package broker

import (
	"testing"

	"github.com/warden-iot/warden/internal/hub"
)

func TestEncodeURIComponent(t *testing.T) {
	// Expected values are JavaScript's encodeURIComponent.
	for in, want := range map[string]string{
		"abc-XYZ_0.9!~*'()": "abc-XYZ_0.9!~*'()",
		"unit name":         "unit%20name",
		"C/°":               "C%2F%C2%B0",
		"a+b=c&d?e#f%":      "a%2Bb%3Dc%26d%3Fe%23f%25",
		"$.mid":             "%24.mid",
		"":                  "",
	} {
		if got := encodeURIComponent(in); got != want {
			t.Errorf("encodeURIComponent(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestC2DTopic(t *testing.T) {
	m := hub.C2DMessage{DeviceID: "pump-1", MessageID: "m/1", CorrelationID: "c 1",
		Properties: map[string]string{"z": "last", "iothub-ack": "full", "a&b": "x=y"}}
	want := "devices/pump-1/messages/devicebound/%24.mid=m%2F1&%24.to=%2Fdevices%2Fpump-1%2Fmessages%2FdeviceBound" +
		"&%24.cid=c%201&a%26b=x%3Dy&iothub-ack=full&z=last"
	if got := c2dTopic(m); got != want {
		t.Errorf("c2dTopic =\n%s\nwant\n%s", got, want)
	}
}

func TestSplitTopicQuery(t *testing.T) {
	path, q := splitTopicQuery("$iothub/twin/res/204/?$rid=5ab356ca-1&$version=2")
	if path != "$iothub/twin/res/204/" || q["$rid"] != "5ab356ca-1" || q["$version"] != "2" {
		t.Errorf("got %q %v", path, q)
	}
	path, q = splitTopicQuery("$iothub/twin/GET")
	if path != "$iothub/twin/GET" || len(q) != 0 {
		t.Errorf("got %q %v", path, q)
	}
}

func TestHubMayPublish(t *testing.T) {
	for topic, want := range map[string]bool{
		"$iothub/twin/GET/?$rid=1":                          true,
		"$iothub/twin/GET?$rid=1":                           true,
		"$iothub/twin/PATCH/properties/reported/?$rid=1":    true,
		"$iothub/methods/res/200/?$rid=1":                   true,
		"$iothub/twin/PATCH/properties/desired/?$version=1": false,
		"$iothub/methods/POST/reboot/?$rid=1":               false,
		"$iothub/twin/res/200/?$rid=1":                      false,
	} {
		if got := hubMayPublish(nil, topic); got != want {
			t.Errorf("hubMayPublish(%q) = %v, want %v", topic, got, want)
		}
	}
}

func TestModelIDFromUsername(t *testing.T) {
	for u, want := range map[string]string{
		"h/d/?api-version=2021-04-12":                                                "",
		"h/d/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1":         "dtmi:com:example:Thermostat;1",
		"h/d/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1": "dtmi:com:example:Thermostat;1",
		"h/d/?model-id=dtmi:a_b:C2;12&api-version=2021-04-12&DeviceClientType=x":     "dtmi:a_b:C2;12",
		"h/d/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1.2":       "dtmi:com:example:Thermostat;1.2",
	} {
		if got, err := modelIDFromUsername(u); err != nil || got != want {
			t.Errorf("modelIDFromUsername(%q) = %q, %v; want %q", u, got, err, want)
		}
	}
	for _, bad := range []string{"dtmi:com:example", "dtmi:;1", "dtmi:1abc;1", "dtmi:a_;1", "dtmi:a;0", "dtmi:a;01",
		"urn:a;1", "dtmi:a:;1", "dtmi:a-b;1", "dtmi:a;1;2", "dtmi:a%zz;1", "dtmi:a;1234567890"} {
		if got, err := modelIDFromUsername("h/d/?api-version=1&model-id=" + bad); err == nil {
			t.Errorf("model-id %q accepted as %q", bad, got)
		}
	}
}
