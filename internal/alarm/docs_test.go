package alarm_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/simulate"
)

// exprIdent finds the names an expression reads: identifiers, with dots
// (a dotted name is one metric).
var exprIdent = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*`)

// exprWords are the expression words that are not metrics: operators,
// literals and the numeric builtins rules may use.
var exprWords = []string{"and", "or", "not", "in", "let", "true", "false", "nil",
	"abs", "ceil", "floor", "round", "int", "float", "min", "max", "mean", "median"}

// TestDocsRuleExamples checks every ```json example of docs/alarms.md: it
// is a rule body the API accepts (no unknown field, no id, valid) and it
// watches a machine kind of the simulator by the metrics that kind sends,
// so that a user who runs `warden simulate` sees the example evaluate.
func TestDocsRuleExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/alarms.md")
	if err != nil {
		t.Fatalf("read the docs: %v", err)
	}
	blocks := jsonBlocks(string(doc))
	if len(blocks) == 0 {
		t.Fatal("docs/alarms.md has no ```json rule example")
	}
	for i, src := range blocks {
		dec := json.NewDecoder(bytes.NewReader([]byte(src)))
		dec.DisallowUnknownFields() // as the API decodes bodies
		var r alarm.Rule
		if err := dec.Decode(&r); err != nil {
			t.Errorf("example %d does not decode: %v\n%s", i+1, err, src)
			continue
		}
		if r.ID != "" {
			t.Errorf("example %d sets an id, which the API refuses", i+1)
		}
		r.ID, r.TenantID = "rule_docs", "root" // set by the API
		if err := r.Validate(); err != nil {
			t.Errorf("example %d is invalid: %v\n%s", i+1, err, src)
			continue
		}
		kind := simulate.Kind(r.Scope.Model)
		if !kind.Valid() {
			t.Errorf("example %d: scope.model %q is not a simulated kind (want one of %v)", i+1, r.Scope.Model, simulate.Kinds())
			continue
		}
		for _, m := range metricsOf(r) {
			if !slices.Contains(kind.Metrics(), m) {
				t.Errorf("example %d: a %s sends no metric %q (it sends %v)", i+1, kind, m, kind.Metrics())
			}
		}
	}
}

// jsonBlocks returns the contents of the ```json fenced blocks of a
// Markdown document.
func jsonBlocks(doc string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(doc, "```json\n")
		if !ok {
			return out
		}
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			return out
		}
		out = append(out, block)
		doc = after
	}
}

// metricsOf names the metrics a rule reads.
func metricsOf(r alarm.Rule) []string {
	switch {
	case r.Threshold != nil:
		return []string{r.Threshold.Metric}
	case r.RateOfChange != nil:
		return []string{r.RateOfChange.Metric}
	case r.Stale != nil:
		return []string{r.Stale.Metric}
	case r.Expression != nil:
		var out []string
		for _, w := range exprIdent.FindAllString(r.Expression.Expr, -1) {
			if !slices.Contains(exprWords, w) {
				out = append(out, w)
			}
		}
		return out
	}
	return nil
}
