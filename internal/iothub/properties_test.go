package iothub_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/iothub"
)

// The bag the Azure IoT Node SDK sends (docs/azure-iot-mqtt.md §3.4) for
// messageId msg-0001, contentType application/json, contentEncoding utf-8
// and the application properties alert=false and "unit name"="C/°".
const nodeSDKBag = `%24.mid=msg-0001&%24.ct=application%2Fjson&%24.ce=utf-8&alert=false&unit%20name=C%2F%C2%B0`

func TestParseProperties(t *testing.T) {
	ctime := time.Date(2026, 3, 1, 11, 0, 0, 500_000_000, time.UTC)
	other := time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, tc := range []struct {
		name string
		bag  string
		want iothub.Properties
	}{
		{
			name: "Node SDK bag: %24 system keys, encoded values and application properties",
			bag:  nodeSDKBag,
			want: iothub.Properties{
				MessageID:       "msg-0001",
				ContentType:     "application/json",
				ContentEncoding: "utf-8",
				System:          map[string]string{"mid": "msg-0001", "ct": "application/json", "ce": "utf-8"},
				App:             map[string]string{"alert": "false", "unit name": "C/°"},
			},
		},
		{
			name: "literal $ in a system key",
			bag:  "$.mid=x",
			want: iothub.Properties{MessageID: "x", System: map[string]string{"mid": "x"}},
		},
		{
			name: "correlation id and other system keys are kept in System",
			bag:  "%24.cid=c-1&%24.on=output1&%24.exp=2026-03-02T00%3A00%3A00Z",
			want: iothub.Properties{
				CorrelationID: "c-1",
				System:        map[string]string{"cid": "c-1", "on": "output1", "exp": "2026-03-02T00:00:00Z"},
			},
		},
		{
			name: "a literal + stays + in keys and values",
			bag:  "a=1+2&b+c=d%2Be",
			want: iothub.Properties{App: map[string]string{"a": "1+2", "b+c": "d+e"}},
		},
		{
			name: "$.ctime sets CreatedAt, in UTC",
			bag:  "$.ctime=2026-03-01T12%3A00%3A00.5%2B01%3A00",
			want: iothub.Properties{CreatedAt: ctime, System: map[string]string{"ctime": "2026-03-01T12:00:00.5+01:00"}},
		},
		{
			name: "iothub-creation-time-utc sets CreatedAt and stays an application property",
			bag:  "iothub-creation-time-utc=2026-03-01T11%3A00%3A00.500Z",
			want: iothub.Properties{CreatedAt: ctime, App: map[string]string{"iothub-creation-time-utc": "2026-03-01T11:00:00.500Z"}},
		},
		{
			name: "$.ctime wins over iothub-creation-time-utc that comes first",
			bag:  "iothub-creation-time-utc=2025-12-31T23:59:59Z&$.ctime=2026-03-01T11:00:00.5Z",
			want: iothub.Properties{
				CreatedAt: ctime,
				System:    map[string]string{"ctime": "2026-03-01T11:00:00.5Z"},
				App:       map[string]string{"iothub-creation-time-utc": other.Format(time.RFC3339)},
			},
		},
		{
			name: "$.ctime wins over iothub-creation-time-utc that comes after",
			bag:  "$.ctime=2026-03-01T11:00:00.5Z&iothub-creation-time-utc=2025-12-31T23:59:59Z",
			want: iothub.Properties{
				CreatedAt: ctime,
				System:    map[string]string{"ctime": "2026-03-01T11:00:00.5Z"},
				App:       map[string]string{"iothub-creation-time-utc": other.Format(time.RFC3339)},
			},
		},
		{
			name: "empty bag",
			bag:  "",
			want: iothub.Properties{},
		},
		{
			name: "empty pairs are skipped",
			bag:  "&&a=1&",
			want: iothub.Properties{App: map[string]string{"a": "1"}},
		},
		{
			name: "a key without = has an empty value",
			bag:  "flag&$.mid",
			want: iothub.Properties{System: map[string]string{"mid": ""}, App: map[string]string{"flag": ""}},
		},
		{
			name: "only the first = separates key and value",
			bag:  "expr=a%3Db=c",
			want: iothub.Properties{App: map[string]string{"expr": "a=b=c"}},
		},
		{
			name: "a bag of exactly 8 KiB is accepted",
			bag:  "k=" + strings.Repeat("v", 8<<10-2),
			want: iothub.Properties{App: map[string]string{"k": strings.Repeat("v", 8<<10-2)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := iothub.ParseProperties(tc.bag)
			if err != nil {
				t.Fatalf("ParseProperties(%q): %v", tc.bag, err)
			}
			checkProperties(t, got, tc.want)
		})
	}
}

func checkProperties(t *testing.T, got, want iothub.Properties) {
	t.Helper()
	if got.MessageID != want.MessageID || got.CorrelationID != want.CorrelationID ||
		got.ContentType != want.ContentType || got.ContentEncoding != want.ContentEncoding {
		t.Errorf("ids and content = %q %q %q %q; want %q %q %q %q",
			got.MessageID, got.CorrelationID, got.ContentType, got.ContentEncoding,
			want.MessageID, want.CorrelationID, want.ContentType, want.ContentEncoding)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v; want %v", got.CreatedAt, want.CreatedAt)
	}
	if !got.CreatedAt.IsZero() && got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt %v is not in UTC", got.CreatedAt)
	}
	if !maps.Equal(got.System, want.System) {
		t.Errorf("System = %q; want %q", got.System, want.System)
	}
	if !maps.Equal(got.App, want.App) {
		t.Errorf("App = %q; want %q", got.App, want.App)
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, bag, wantErr string
	}{
		{"bad escape in a value", "a=%zz", "bad percent escape"},
		{"bad escape in a key", "%zz=1", "bad percent escape"},
		{"trailing % in a value", "a=1%", "bad percent escape"},
		{"trailing % in a key", "a%=1", "bad percent escape"},
		{"half an escape at the end", "a=%4", "bad percent escape"},
		{"escape with one hex digit", "a=%4g", "bad percent escape"},
		{"empty key", "=value", "empty name"},
		{"empty key after decoding", "&=1", "empty name"},
		{"$.ctime that is not a time", "$.ctime=yesterday", "$.ctime"},
		{"$.ctime without a zone", "$.ctime=2026-03-01T12:00:00", "RFC 3339"},
		{"iothub-creation-time-utc that is not a time", "iothub-creation-time-utc=nope", "iothub-creation-time-utc"},
		{"bag over 8 KiB", "k=" + strings.Repeat("v", 8<<10-1), "more than 8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iothub.ParseProperties(tc.bag)
			if err == nil {
				t.Fatalf("ParseProperties(%.40q) succeeded; want an error containing %q", tc.bag, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseProperties(%.40q) error %q; want it to contain %q", tc.bag, err, tc.wantErr)
			}
		})
	}
}
