package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/alarm/alarmsvc"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tenancy"
)

// ruleView decodes a stored rule; the row's id, tenant, name and enabled
// flag win over the spec's (as monitor.RuleOf). A spec that no longer
// decodes shows as the row alone.
func ruleView(row alarm.StoredRule) apiv1.Rule {
	var r alarm.Rule
	_ = json.Unmarshal(row.Spec, &r) // written by createRule/updateRule; a broken one shows the row's fields
	r.ID, r.TenantID, r.Name, r.Enabled = row.ID, row.TenantID, row.Name, row.Enabled
	return apiv1.Rule{RuleSpec: ruleSpecView(r), CreatedBy: row.CreatedBy, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
}

// writeRuleInvalid answers 400 with Validate's problems.
func writeRuleInvalid(w http.ResponseWriter, err error) {
	writeInvalid(w, "invalid rule", err, func(e error) (apiv1.FieldProblem, bool) {
		var fe *alarm.FieldError
		if errors.As(e, &fe) {
			return apiv1.FieldProblem{Field: fe.Field, Problem: fe.Problem}, true
		}
		return apiv1.FieldProblem{}, false
	})
}

// writeInvalid answers 400 with every problem of err (a joined error or a
// single one), and by field those that fieldOf recognises.
func writeInvalid(w http.ResponseWriter, what string, err error, fieldOf func(error) (apiv1.FieldProblem, bool)) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var fields []apiv1.FieldProblem
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Error())
		if f, ok := fieldOf(e); ok {
			fields = append(fields, f)
		}
	}
	writeJSON(w, http.StatusBadRequest, apiv1.ValidationError{
		ErrorBody: apiv1.ErrorBody{Error: what + ": " + strings.Join(msgs, "; "), Status: http.StatusBadRequest},
		Fields:    fields,
	})
}

// ruleResource describes a rule of a tenant for Decide.
func ruleResource(id string, t tenancy.Tenant) access.Resource {
	return access.Resource{Kind: access.KindRule, ID: id, TenantID: t.ID, TenantPath: t.Path}
}

// byRule resolves the rule named by the "rule" path value. A rule the
// caller may not read is not found; the resource it returns has no ID, so
// that a reader refused a change is told 403 (readAction knows no read of
// rules).
func byRule(a *API, r *http.Request) (access.Resource, any, error) {
	ctx := r.Context()
	row, err := a.stores.Alarms.GetAlarmRule(ctx, r.PathValue("rule"))
	if err != nil {
		return access.Resource{}, nil, err
	}
	t, err := a.stores.Tenancy.GetTenant(ctx, row.TenantID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	res := ruleResource(row.ID, t)
	if !a.allowed(ctx, access.RuleRead, res) {
		return access.Resource{}, nil, fmt.Errorf("alarm rule %q: %w", row.ID, database.ErrNotFound)
	}
	res.ID = ""
	return res, row, nil
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := a.listTenant(w, r)
	if !ok {
		return
	}
	rows, err := a.stores.Alarms.ListAlarmRulesUnder(ctx, id)
	if err != nil {
		a.storeError(w, err)
		return
	}
	cache := a.newResolverCache()
	out := []apiv1.Rule{}
	for _, row := range rows {
		t, err := cache.tenant(ctx, row.TenantID)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if a.allowed(ctx, access.RuleRead, ruleResource(row.ID, t)) {
			out = append(out, ruleView(row))
		}
	}
	writeJSON(w, http.StatusOK, apiv1.RuleList{Rules: out})
}

// ruleScopeCheck checks a rule's scope for tenant t: a scope device or
// site in t's tree whose alarms the caller may read (operator staff: only
// while the owner's switch is on).
func (a *API) ruleScopeCheck(t tenancy.Tenant) alarmsvc.ScopeCheck {
	return func(ctx context.Context, rule alarm.Rule) error {
		switch {
		case rule.Scope.DeviceID != "":
			d, err := a.stores.Registry.GetDevice(ctx, rule.Scope.DeviceID)
			var res access.Resource
			if err == nil {
				res, err = a.deviceResource(ctx, d)
			}
			if errors.Is(err, database.ErrNotFound) || (err == nil && (!access.Within(res.TenantPath, t.Path) || !a.allowed(ctx, access.AlarmRead, res))) {
				return &alarm.FieldError{Field: "scope.deviceId", Problem: fmt.Sprintf("no device %q in tenant %q or below", rule.Scope.DeviceID, t.ID)}
			}
			return err
		case rule.Scope.SiteID != "":
			s, err := a.stores.Tenancy.GetSite(ctx, rule.Scope.SiteID)
			var st tenancy.Tenant
			if err == nil {
				st, err = a.stores.Tenancy.GetTenant(ctx, s.TenantID)
			}
			if errors.Is(err, database.ErrNotFound) || (err == nil && (!access.Within(st.Path, t.Path) || !a.allowed(ctx, access.AlarmRead, siteResource(s, st)))) {
				return &alarm.FieldError{Field: "scope.siteId", Problem: fmt.Sprintf("no site %q in tenant %q or below", rule.Scope.SiteID, t.ID)}
			}
			return err
		}
		return nil
	}
}

// ruleError answers a failure of the rules service.
func (a *API) ruleError(w http.ResponseWriter, err error) {
	var ie *alarmsvc.InvalidError
	if errors.As(err, &ie) {
		writeRuleInvalid(w, ie.Err)
		return
	}
	a.storeError(w, err)
}

// ruleOf is the rule a request body describes; enabled defaults to true.
func ruleOf(req apiv1.RuleRequest) alarm.Rule {
	v := req.RuleSpec
	r := alarm.Rule{ID: v.ID, TenantID: v.TenantID, Name: v.Name, Severity: alarm.Severity(v.Severity),
		Scope: alarm.Scope(v.Scope), Enabled: req.Enabled == nil || *req.Enabled}
	if t := v.Threshold; t != nil {
		r.Threshold = &alarm.Threshold{Metric: t.Metric, Op: alarm.Op(t.Op), Value: t.Value, Low: t.Low, High: t.High,
			Hysteresis: t.Hysteresis, MinDuration: alarm.Duration(t.MinDuration)}
	}
	if c := v.RateOfChange; c != nil {
		r.RateOfChange = &alarm.RateOfChange{Metric: c.Metric, MaxRatePerMinute: c.MaxRatePerMinute,
			Direction: alarm.Direction(c.Direction), Hysteresis: c.Hysteresis, MinDuration: alarm.Duration(c.MinDuration)}
	}
	if e := v.Expression; e != nil {
		r.Expression = &alarm.Expression{Expr: e.Expr, MinDuration: alarm.Duration(e.MinDuration)}
	}
	if s := v.Stale; s != nil {
		r.Stale = &alarm.Stale{Metric: s.Metric, After: alarm.Duration(s.After)}
	}
	if o := v.Offline; o != nil {
		r.Offline = &alarm.Offline{After: alarm.Duration(o.After)}
	}
	return r
}

func (a *API) createRule(w http.ResponseWriter, r *http.Request) {
	var req apiv1.RuleRequest
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	c := principal(ctx)
	if req.ID != "" {
		writeRuleInvalid(w, &alarm.FieldError{Field: "id", Problem: "set by the server; leave it out"})
		return
	}
	if req.TenantID == "" {
		req.TenantID = c.TenantID
	}
	t, err := a.stores.Tenancy.GetTenant(ctx, req.TenantID)
	if errors.Is(err, database.ErrNotFound) {
		writeRuleInvalid(w, &alarm.FieldError{Field: "tenantId", Problem: fmt.Sprintf("no tenant %q", req.TenantID)})
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	if !a.allow(w, r, access.RuleManage, ruleResource("", t)) {
		return
	}
	if call, ok := ctx.Value(auditCallKey{}).(*auditCall); ok {
		call.owner = t.ID
	}
	row, err := a.alarms.CreateRule(ctx, t.ID, c.ActorID, ruleOf(req), a.ruleScopeCheck(t))
	if err != nil {
		a.ruleError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ruleView(row))
}

func (a *API) getRule(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ruleView(loaded[alarm.StoredRule](r.Context())))
}

// updateRule replaces a rule's definition; its id, tenant and alarms stay.
func (a *API) updateRule(w http.ResponseWriter, r *http.Request) {
	var req apiv1.RuleRequest
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	row := loaded[alarm.StoredRule](ctx)
	if req.ID != "" && req.ID != row.ID {
		writeRuleInvalid(w, &alarm.FieldError{Field: "id", Problem: fmt.Sprintf("%q is not this rule's id %q", req.ID, row.ID)})
		return
	}
	if req.TenantID != "" && req.TenantID != row.TenantID {
		writeRuleInvalid(w, &alarm.FieldError{Field: "tenantId", Problem: "a rule cannot move to another tenant"})
		return
	}
	t, err := a.stores.Tenancy.GetTenant(ctx, row.TenantID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	row, err = a.alarms.UpdateRule(ctx, row, ruleOf(req), a.ruleScopeCheck(t))
	if err != nil {
		a.ruleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ruleView(row))
}

// deleteRule removes a rule; its alarms stay (the monitor clears those
// still active).
func (a *API) deleteRule(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := a.alarms.DeleteRule(ctx, loaded[alarm.StoredRule](ctx)); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
