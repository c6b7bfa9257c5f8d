package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/notify/notifystore"
)

// mailMessage is an e-mail delivery's payload: the message as rendered
// when it was enqueued.
type mailMessage struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

// subjectMessageLen bounds the alarm message in a subject, in characters.
const subjectMessageLen = 120

// mailPayload renders the e-mail about an alarm event; esc is the
// escalation for event "escalated".
func (n *Notifier) mailPayload(ctx context.Context, f *alarmFacts, event string, esc *notifystore.Escalation) ([]byte, error) {
	a := f.alarm
	rule := a.RuleID
	if a.Kind == alarm.KindRule {
		switch r, err := n.st.GetAlarmRule(ctx, a.RuleID); {
		case err == nil:
			rule = fmt.Sprintf("%s (%s)", r.Name, r.ID)
		case !errors.Is(err, database.ErrNotFound):
			return nil, fmt.Errorf("rule %s: %w", a.RuleID, err)
		}
	} else if a.Kind == alarm.KindMaintenance {
		rule = "maintenance warning " + strings.TrimPrefix(a.RuleID, "maintenance:")
	}
	var escalatingTenant string
	if esc != nil {
		escalatingTenant = esc.TenantID
		if t, err := n.st.GetTenant(ctx, esc.TenantID); err == nil && t.Name != "" {
			escalatingTenant = t.Name
		}
	}
	m := renderMail(f, rule, event, esc, escalatingTenant, n.cfg.PublicURL)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("e-mail payload: %w", err)
	}
	return b, nil
}

// renderMail writes the e-mail: a subject like
// "[Warden] CRITICAL: <message> — <device id>" and a plain-text body.
func renderMail(f *alarmFacts, rule, event string, esc *notifystore.Escalation, escalatingTenant, publicURL string) mailMessage {
	a := f.alarm
	severity := strings.ToUpper(a.Severity)
	message := oneLine(a.Message)
	if message == "" {
		message = a.RuleID
	}
	prefix := severity
	if event == EventEscalated {
		prefix = "UNACKNOWLEDGED " + severity
	}
	subject := fmt.Sprintf("[Warden] %s: %s — %s", prefix, truncate(message, subjectMessageLen), oneLine(a.DeviceID))

	var b strings.Builder
	if event == EventEscalated {
		fmt.Fprintf(&b, "A %s alarm has not been acknowledged for %s.\n\n", a.Severity, esc.Delay)
	} else {
		fmt.Fprintf(&b, "Warden raised a %s alarm.\n\n", a.Severity)
	}
	fmt.Fprintf(&b, "  %s\n\n", oneLine(a.Message))
	line := func(k, v string) { fmt.Fprintf(&b, "%-9s %s\n", k+":", v) }
	line("Device", named(f.device.Info.Name, a.DeviceID))
	if f.site.ID != "" {
		line("Site", named(f.site.Name, f.site.ID))
	} else {
		line("Site", "none")
	}
	line("Rule", oneLine(rule))
	line("Value", strconv.FormatFloat(a.Value, 'g', -1, 64))
	line("Raised", a.RaisedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	state := a.State
	if a.AckedAt.IsZero() {
		state += ", not acknowledged"
	} else {
		state += ", acknowledged " + a.AckedAt.UTC().Format("2006-01-02 15:04:05 MST")
	}
	line("State", state)
	if publicURL != "" {
		line("Details", fmt.Sprintf("%s/api/v1/alarms/%d", publicURL, a.ID))
	}
	b.WriteString("\n-- \n")
	if event == EventEscalated {
		fmt.Fprintf(&b, "You receive this e-mail as the escalation contact of %s in Warden.\n", oneLine(escalatingTenant))
	} else {
		b.WriteString("You receive this e-mail because of your alarm notification settings in Warden.\n")
	}
	return mailMessage{Subject: subject, Text: b.String()}
}

// named is "name (id)", or id without a name.
func named(name, id string) string {
	if name = oneLine(name); name == "" || name == id {
		return oneLine(id)
	}
	return fmt.Sprintf("%s (%s)", name, oneLine(id))
}

// oneLine replaces control characters (line breaks above all: a subject
// is one header line) with spaces and trims the result.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

// truncate shortens s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// sendMail delivers an e-mail delivery.
func (n *Notifier) sendMail(ctx context.Context, d notifystore.Delivery) error {
	if n.mailer == nil {
		return permanent("no mail server configured")
	}
	var m mailMessage
	if err := json.Unmarshal(d.Payload, &m); err != nil {
		return permanent("stored e-mail unreadable")
	}
	return n.mailer.Send(ctx, mail.Message{To: d.Target, Subject: m.Subject, Text: m.Text})
}
