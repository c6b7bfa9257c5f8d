package alarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// compiled is a validated rule ready to evaluate.
type compiled struct {
	rule        Rule
	kind        kind
	fingerprint string // identifies the condition; state survives only while it is unchanged

	metric string        // threshold, rate, stale
	minDur time.Duration // threshold, rate, expression
	after  time.Duration // stale, offline

	// threshold
	op               Op
	limit, low, hi   float64
	hyst             float64
	clearLo, clearHi float64 // precomputed clear levels

	// rate of change
	maxRate float64
	dir     Direction

	// expression
	program *vm.Program
	refs    []string // metric names the expression reads, sorted
}

// compile validates r and prepares it for evaluation.
func compile(r Rule) (*compiled, error) {
	r = r.clone()
	var v validator
	v.common(r)
	c := &compiled{rule: r}
	switch {
	case len(r.conditionKinds()) != 1:
		// reported by common
	case r.Threshold != nil:
		t := r.Threshold
		v.threshold(t)
		c.kind, c.metric, c.minDur = kindThreshold, t.Metric, t.MinDuration.D()
		c.op, c.hyst = t.Op, t.Hysteresis
		if t.Value != nil {
			c.limit = *t.Value
		}
		if t.Low != nil && t.High != nil {
			c.low, c.hi = *t.Low, *t.High
		}
		switch c.op {
		case Above:
			c.clearHi = c.limit - c.hyst
		case Below:
			c.clearLo = c.limit + c.hyst
		case Outside:
			c.clearLo, c.clearHi = c.low+c.hyst, c.hi-c.hyst
		case Inside:
			c.clearLo, c.clearHi = c.low-c.hyst, c.hi+c.hyst
		}
	case r.RateOfChange != nil:
		rc := r.RateOfChange
		v.rate(rc)
		c.kind, c.metric, c.minDur = kindRate, rc.Metric, rc.MinDuration.D()
		c.maxRate, c.hyst, c.dir = rc.MaxRatePerMinute, rc.Hysteresis, rc.Direction
		if c.dir == "" {
			c.dir = Either
		}
	case r.Expression != nil:
		e := r.Expression
		c.kind, c.minDur = kindExpr, e.MinDuration.D()
		v.minDuration("expression.minDuration", e.MinDuration)
		switch {
		case e.Expr == "":
			v.add("expression.expr", "required")
		case len(e.Expr) > MaxExprLen:
			v.add("expression.expr", "longer than %d bytes", MaxExprLen)
		default:
			prog, refs, err := compileExpr(e.Expr)
			if err != nil {
				v.add("expression.expr", "%v", err)
			}
			c.program, c.refs = prog, refs
		}
	case r.Stale != nil:
		c.kind, c.metric, c.after = kindStale, r.Stale.Metric, r.Stale.After.D()
		v.metric("stale.metric", r.Stale.Metric)
		v.after("stale.after", r.Stale.After)
	case r.Offline != nil:
		c.kind, c.after = kindOffline, r.Offline.After.D()
		v.after("offline.after", r.Offline.After)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c.fingerprint = fingerprint(r)
	return c, nil
}

// clone copies r deeply, so that the caller may change its rule afterwards.
func (r Rule) clone() Rule {
	if t := r.Threshold; t != nil {
		c := *t
		c.Value, c.Low, c.High = cloneFloat(t.Value), cloneFloat(t.Low), cloneFloat(t.High)
		r.Threshold = &c
	}
	if r.RateOfChange != nil {
		c := *r.RateOfChange
		r.RateOfChange = &c
	}
	if r.Expression != nil {
		c := *r.Expression
		r.Expression = &c
	}
	if r.Stale != nil {
		c := *r.Stale
		r.Stale = &c
	}
	if r.Offline != nil {
		c := *r.Offline
		r.Offline = &c
	}
	return r
}

func cloneFloat(p *float64) *float64 {
	if p == nil {
		return nil
	}
	return new(*p)
}

// fingerprint hashes what a rule's state depends on: its tenant, scope and
// condition, but not its name, severity or Enabled.
func fingerprint(r Rule) string {
	b, err := json.Marshal(struct {
		TenantID     string
		Scope        Scope
		Threshold    *Threshold
		RateOfChange *RateOfChange
		Expression   *Expression
		Stale        *Stale
		Offline      *Offline
	}{r.TenantID, r.Scope, r.Threshold, r.RateOfChange, r.Expression, r.Stale, r.Offline})
	if err != nil { // cannot happen for a validated rule: every number is finite
		return ""
	}
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// compileExpr compiles an expression whose free identifiers are metrics and
// returns the program and the metric names it reads.
func compileExpr(src string) (prog *vm.Program, refs []string, err error) {
	defer func() {
		// expr is third-party code fed with user input: a panic in it must
		// not take the ingest path down.
		if p := recover(); p != nil {
			prog, refs, err = nil, nil, fmt.Errorf("cannot compile: %v", p)
		}
	}()
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, nil, exprError(err)
	}
	var names metricNames
	ast.Walk(&tree.Node, &names)
	if names.err != nil {
		return nil, nil, names.err
	}
	refs = names.list()
	for _, m := range refs {
		if problem := metricNameProblem(m); problem != "" {
			return nil, nil, errors.New(problem)
		}
	}
	env := make(map[string]float64, len(refs))
	for _, m := range refs {
		env[m] = 0
	}
	opts := []expr.Option{
		expr.Env(env),
		expr.AsBool(),
		expr.Patch(&metricNames{}),
		expr.MaxNodes(maxExprNodes),
		expr.DisableAllBuiltins(),
	}
	// Only numeric builtins: the others work on strings, arrays and
	// closures, which metrics never are, and some are not deterministic
	// (now) or can make one evaluation arbitrarily expensive (repeat).
	for _, fn := range [...]string{"abs", "ceil", "floor", "round", "int", "float", "min", "max", "mean", "median"} {
		opts = append(opts, expr.EnableBuiltin(fn))
	}
	prog, err = expr.Compile(src, opts...)
	if err != nil {
		return nil, nil, exprError(err)
	}
	return prog, refs, nil
}

// exprError shortens expr's errors, which carry a multi-line source
// snippet, to one line with the column.
func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) && fe.Message != "" {
		return fmt.Errorf("%s (column %d)", fe.Message, fe.Column+1)
	}
	return err
}

// metricNames is an expr AST visitor that turns member chains on plain
// identifiers (motor.current, $env["inlet-temp"]) into single identifiers
// named after the metric, and records which identifiers are metrics.
// ast.Walk visits children first, so a.b.c folds from the inside out.
type metricNames struct {
	idents  []*ast.IdentifierNode
	callees map[*ast.IdentifierNode]bool
	locals  map[string]bool // let-bound variables
	err     error
}

func (m *metricNames) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || n.Method || n.Optional {
			return
		}
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			if id.Value == "$env" && m.err == nil {
				m.err = errors.New(`$env must be indexed with a constant string such as $env["inlet-temp"]`)
			}
			return
		}
		name := id.Value + "." + prop.Value
		if id.Value == "$env" {
			name = prop.Value
		}
		// The identifier just folded was the last one visited.
		if k := len(m.idents) - 1; k >= 0 && m.idents[k] == id {
			m.idents = m.idents[:k]
		}
		repl := &ast.IdentifierNode{Value: name}
		ast.Patch(node, repl)
		m.idents = append(m.idents, repl)
	case *ast.IdentifierNode:
		m.idents = append(m.idents, n)
	case *ast.BinaryNode:
		if n.Operator == ".." && m.err == nil {
			m.err = errors.New("ranges (..) are not supported")
		}
	case *ast.PredicateNode:
		if m.err == nil {
			m.err = errors.New("predicates ({…}) are not supported")
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			if m.callees == nil {
				m.callees = make(map[*ast.IdentifierNode]bool)
			}
			m.callees[id] = true
		}
	case *ast.VariableDeclaratorNode:
		if m.locals == nil {
			m.locals = make(map[string]bool)
		}
		m.locals[n.Name] = true
	}
}

// list returns the metric names: identifiers that are neither called as
// functions, nor let-bound, nor $env itself.
func (m *metricNames) list() []string {
	var out []string
	for _, id := range m.idents {
		if id.Value == "$env" || m.locals[id.Value] || m.callees[id] {
			continue
		}
		out = append(out, id.Value)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
