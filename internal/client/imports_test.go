package client

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoServerCode: the client, which the command line, an edge
// agent or a portal embed, depends on the standard library and on apiv1,
// the API's vocabulary, alone: no server package of Warden and nothing
// that the server pulls in (the MQTT broker, the time-series engine, the
// database drivers).
func TestImportsNoServerCode(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=ImportPath,Standard", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/warden-iot/warden/internal/client": true,
		"github.com/warden-iot/warden/internal/apiv1":  true,
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		seen++
		if !p.Standard && !allowed[p.ImportPath] {
			t.Errorf("the client depends on %s", p.ImportPath)
		}
	}
	if seen < 10 {
		t.Fatalf("go list listed %d packages: the check saw too little", seen)
	}
}
