package api

import (
	"strconv"
	"testing"

	"github.com/warden-iot/warden/internal/identity"
)

// An unknown e-mail is checked against dummyHash so that it takes as long
// as a wrong password: the hash must be a valid one with today's cost.
func TestDummyHashIsARealHash(t *testing.T) {
	if ok, err := identity.VerifyPassword("anything", dummyHash); err != nil || ok {
		t.Fatalf("VerifyPassword(dummyHash) = %v, %v", ok, err)
	}
	p := identity.DefaultParams()
	want := "$argon2id$v=19$m=" + strconv.Itoa(int(p.Memory)) + ",t=" + strconv.Itoa(int(p.Time)) + ",p=" + strconv.Itoa(int(p.Threads)) + "$"
	if dummyHash[:len(want)] != want {
		t.Errorf("dummyHash %q does not use the default parameters %q", dummyHash, want)
	}
}
