package alarm

import (
	"math"
	"strconv"
	"strings"
)

// message is the human-readable text of a transition, such as
// "outlet_temp 92.4 above 90 for 5m0s". why, if set, replaces the text of a
// clear.
func (c *compiled) message(k TransitionKind, st *state, v float64, why string) string {
	if k == Cleared && why != "" {
		return why
	}
	var b strings.Builder
	switch c.kind {
	case kindThreshold:
		b.WriteString(c.metric + " " + num(v) + " ")
		switch k {
		case Raised, Retriggered:
			b.WriteString(c.limitText())
		case Cleared:
			b.WriteString(c.clearText())
		}
	case kindRate:
		b.WriteString(c.metric + " ")
		switch {
		case v > 0:
			b.WriteString("rising ")
		case v < 0:
			b.WriteString("falling ")
		default:
			b.WriteString("steady ")
		}
		b.WriteString(num3(math.Abs(v)) + "/min")
		if k == Cleared {
			b.WriteString(", back within " + num3(c.maxRate-c.hyst) + "/min")
		} else {
			b.WriteString(", faster than " + num3(c.maxRate) + "/min")
		}
	case kindExpr:
		b.WriteString(c.rule.Expression.Expr)
		if k == Cleared {
			b.WriteString(" no longer true")
		} else {
			b.WriteString(" true")
		}
	case kindStale:
		if k == Cleared {
			return c.metric + " " + num(v) + " received again"
		}
		return "no " + c.metric + " value for " + c.after.String()
	case kindOffline:
		return "offline for " + c.after.String() + ": no connection and no message"
	}
	if k == Raised && c.minDur > 0 {
		b.WriteString(" for " + c.minDur.String())
	}
	if k == Retriggered {
		b.WriteString(" again (retrigger " + strconv.Itoa(st.retriggers) + ")")
	}
	if c.kind == kindExpr {
		b.WriteString(" (")
		for i, m := range c.refs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m + "=" + num(st.vars[m]))
		}
		b.WriteString(")")
	}
	return b.String()
}

func (c *compiled) limitText() string {
	switch c.op {
	case Above:
		return "above " + num(c.limit)
	case Below:
		return "below " + num(c.limit)
	case Outside:
		return "outside " + num(c.low) + "…" + num(c.hi)
	default:
		return "inside " + num(c.low) + "…" + num(c.hi)
	}
}

func (c *compiled) clearText() string {
	var s string
	switch c.op {
	case Above:
		s = "back at or below " + num(c.clearHi)
	case Below:
		s = "back at or above " + num(c.clearLo)
	case Outside:
		s = "back inside " + num(c.clearLo) + "…" + num(c.clearHi)
	default:
		s = "back outside " + num(c.clearLo) + "…" + num(c.clearHi)
	}
	if c.hyst > 0 {
		s += " (" + c.limitText() + ", hysteresis " + num(c.hyst) + ")"
	}
	return s
}

func num(v float64) string  { return strconv.FormatFloat(v, 'g', -1, 64) }
func num3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
