package cli

// How commands print: lists as tables with a header (a line on stderr when
// empty), single objects as aligned "field  value" lines, both as JSON with
// --json; actions as one line on stderr, or the created id alone on
// stdout.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

func printJSON(env *Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, columns aligned.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	return t
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// printList prints items: JSON (an array, [] when empty) with --json, else
// a table with header, one row per item, or the line empty on stderr when
// there is none.
func printList[T any](in *invocation, items []T, empty string, header []string, row func(T) []any) error {
	if in.json {
		if items == nil {
			items = []T{}
		}
		return printJSON(in.env, items)
	}
	if len(items) == 0 {
		fmt.Fprintln(in.env.Stderr, empty)
		return nil
	}
	t := newTable(in.env.Stdout, header...)
	for _, it := range items {
		t.row(row(it)...)
	}
	return t.flush()
}

// printObject prints v: JSON with --json, else one aligned "field  value"
// line per JSON field of v (nested objects as "parent.field"; empty ones
// and zero times left out).
func printObject(in *invocation, v any) error {
	if in.json {
		return printJSON(in.env, v)
	}
	fields, err := objectFields(v)
	if err != nil {
		return err
	}
	return printFields(in.env.Stdout, fields)
}

// field is one line of a show command.
type field struct{ name, value string }

func printFields(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// objectFields flattens the JSON of v into fields, keeping the order of
// its keys.
func objectFields(v any) ([]field, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("print: %w", err)
	}
	var out []field
	if err := flatten(json.RawMessage(b), "", &out); err != nil {
		return nil, fmt.Errorf("print: %w", err)
	}
	return out, nil
}

func flatten(raw json.RawMessage, prefix string, out *[]field) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		*out = append(*out, field{strings.TrimSuffix(prefix, "."), scalar(raw)})
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return err
		}
		name := prefix + k.(string)
		switch t := bytes.TrimSpace(val); {
		case string(t) == "null", string(t) == `""`, string(t) == "{}", string(t) == "[]", string(t) == `"0001-01-01T00:00:00Z"`:
		case t[0] == '{' && prefix == "":
			if err := flatten(val, name+".", out); err != nil {
				return err
			}
		default:
			*out = append(*out, field{name, scalar(val)})
		}
	}
	return nil
}

// scalar writes a JSON value as text: strings unquoted, arrays of strings
// comma-separated, anything else compact JSON.
func scalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		return strings.Join(ss, ", ")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// shorten cuts s to at most n characters on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func localTimePtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return localTime(*t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanSeconds writes seconds as "3d 4h", "4h 12m", "12m 3s" or "3s".
func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	switch {
	case d >= day:
		return fmt.Sprintf("%dd %dh", d/day, d%day/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func humanSecondsPtr(s *float64) string {
	if s == nil {
		return "-"
	}
	return humanSeconds(*s)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

func percentPtr(f *float64) string {
	if f == nil {
		return "-"
	}
	return percent(*f)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printWarnings tells the user, on stderr, what the server said will not
// work as they might expect (a setting that needs a mail server, say).
func printWarnings(env *Env, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(env.Stderr, "warning:", w)
	}
}
