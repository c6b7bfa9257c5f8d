package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRefusedPublishLogged: a device publishing to another device's topic
// is refused, and the server log says who, where and why, without the
// payload.
func TestRefusedPublishLogged(t *testing.T) {
	t.Parallel()
	e, logs := startLogged(t)
	key := e.device("pump-1")
	e.device("valve-7")
	m := e.deviceConn("pump-1", key)
	tok := m.c.Publish("devices/valve-7/messages/events/", 0, false, "SECRET-PAYLOAD")
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	logs.waitLog(t, `reason="topic belongs to device valve-7"`, 10*time.Second)
	var line string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, "publish refused") {
			line = l
		}
	}
	for _, want := range []string{"level=WARN", "device=pump-1", "tenant=root", "topic=devices/valve-7/messages/events/"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q: %s", want, line)
		}
	}
	if strings.Contains(logs.String(), "SECRET-PAYLOAD") {
		t.Error("the payload was logged")
	}
}
