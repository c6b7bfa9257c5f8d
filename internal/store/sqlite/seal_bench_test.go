package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/sealing"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
)

// clearSealer stores plaintext as it is: the benchmarks' baseline, the
// cost of the same statements without encryption.
type clearSealer struct{}

func (clearSealer) Seal(_ context.Context, _ string, pt, _ []byte) ([]byte, error) {
	return append([]byte{}, pt...), nil
}

func (clearSealer) Open(_ context.Context, _ string, blob, _ []byte) ([]byte, error) {
	return blob, nil
}

func benchStore(b *testing.B, sealed bool) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "warden.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	if sealed {
		kr, err := keyring.New(b.Context(), bytes.Repeat([]byte{3}, keyring.KeySize), s, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		s.SetSealer(kr)
	} else {
		s.SetSealer(clearSealer{})
	}
	if err := s.CreateDevice(b.Context(), registry.Device{ID: "d", TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
		PrimaryKey: make([]byte, 32), SecondaryKey: make([]byte, 32), CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkTwin measures a device's reported-properties update (read,
// merge, write in one transaction) and a twin read, with the documents
// sealed by the keyring and in clear.
func BenchmarkTwin(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "clear", true: "sealed"}[sealed]
		b.Run("UpdateReported/"+name, func(b *testing.B) {
			s := benchStore(b, sealed)
			for i := 0; b.Loop(); i++ {
				patch := json.RawMessage(fmt.Sprintf(`{"temp":%d,"fw":"1.2.3","net":{"rssi":-60,"ip":"192.0.2.1"}}`, i))
				if _, err := s.UpdateReported(b.Context(), tenancy.RootTenantID, "d", patch, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Get/"+name, func(b *testing.B) {
			s := benchStore(b, sealed)
			if _, err := s.UpdateReported(b.Context(), tenancy.RootTenantID, "d", json.RawMessage(`{"fw":"1.2.3"}`), time.Now()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.GetTwin(b.Context(), tenancy.RootTenantID, "d"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAlarms measures a batch of 10 alarm changes (raise or
// retrigger of 10 devices' alarms), sealed and in clear.
func BenchmarkAlarms(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "clear", true: "sealed"}[sealed]
		b.Run("Apply10/"+name, func(b *testing.B) {
			s := benchStore(b, sealed)
			changes := make([]alarm.Change, 10)
			for i := 0; b.Loop(); i++ {
				for j := range changes {
					changes[j] = alarm.Change{Kind: "raised", TenantID: tenancy.RootTenantID, RuleID: "r",
						DeviceID: fmt.Sprintf("d%d", j), Severity: "critical", Message: fmt.Sprintf("temp %d above 80", i), Value: float64(i), At: time.Now()}
				}
				if _, err := s.ApplyAlarmChanges(b.Context(), changes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealTwin measures sealing and opening a twin's documents alone
// (the keyring's data key cached), the CPU the sealing adds to a twin
// change.
func BenchmarkSealTwin(b *testing.B) {
	s := benchStore(b, true)
	tw, err := s.UpdateReported(b.Context(), tenancy.RootTenantID, "d",
		json.RawMessage(`{"temp":21.5,"fw":"1.2.3","net":{"rssi":-60,"ip":"192.0.2.1"}}`), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	kr, err := keyring.New(b.Context(), bytes.Repeat([]byte{3}, keyring.KeySize), s, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		blob, err := sealing.SealTwin(b.Context(), kr, tw)
		if err != nil {
			b.Fatal(err)
		}
		if err := sealing.OpenTwin(b.Context(), kr, &tw, blob); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssignRegistrations measures a batch of 100 provisioning
// assignments (new devices, each with a custom payload and an initial
// twin), sealed and in clear.
func BenchmarkAssignRegistrations(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "clear", true: "sealed"}[sealed]
		b.Run("Batch100/"+name, func(b *testing.B) {
			s := benchStore(b, sealed)
			as := make([]provision.Assignment, 100)
			for i := 0; b.Loop(); i++ {
				now := time.Now()
				for j := range as {
					id := fmt.Sprintf("reg-%d-%d", i, j)
					as[j] = provision.Assignment{Registration: provision.Registration{RegistrationID: id, TenantID: tenancy.RootTenantID,
						DeviceID: id, EnrollmentKind: provision.EnrollmentGroupKind, EnrollmentID: "factory", OperationID: "op." + id,
						ETag: "e", Payload: []byte(`{"model":"X2","serial":"` + id + `"}`),
						InitialTwin: []byte(`{"tags":{"site":"lyon"},"properties":{"desired":{"interval":30}}}`), UpdatedAt: now},
						PrimaryKey: make([]byte, 32), SecondaryKey: make([]byte, 32)}
				}
				res, err := s.AssignRegistrations(b.Context(), as)
				if err != nil || res[0].Err != nil {
					b.Fatal(err, res[0].Err)
				}
			}
		})
	}
}
