package api

import (
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/maintenance"
	"github.com/warden-iot/warden/internal/tenancy"
)

// The conversions from the server's types to their wire shapes in package
// apiv1. Each gives the same JSON as the server's type.

func addressView(a tenancy.Address) apiv1.Address { return apiv1.Address(a) }

func contactView(c tenancy.Contact) apiv1.Contact { return apiv1.Contact(c) }

func contractView(c tenancy.Contract) *apiv1.Contract {
	v := apiv1.Contract(c)
	return &v
}

// ruleSpecView is the wire shape of a rule.
func ruleSpecView(r alarm.Rule) apiv1.RuleSpec {
	v := apiv1.RuleSpec{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Severity: string(r.Severity),
		Scope: apiv1.RuleScope(r.Scope), Enabled: r.Enabled}
	if t := r.Threshold; t != nil {
		v.Threshold = &apiv1.Threshold{Metric: t.Metric, Op: string(t.Op), Value: t.Value, Low: t.Low, High: t.High,
			Hysteresis: t.Hysteresis, MinDuration: apiv1.Duration(t.MinDuration)}
	}
	if c := r.RateOfChange; c != nil {
		v.RateOfChange = &apiv1.RateOfChange{Metric: c.Metric, MaxRatePerMinute: c.MaxRatePerMinute,
			Direction: string(c.Direction), Hysteresis: c.Hysteresis, MinDuration: apiv1.Duration(c.MinDuration)}
	}
	if e := r.Expression; e != nil {
		v.Expression = &apiv1.Expression{Expr: e.Expr, MinDuration: apiv1.Duration(e.MinDuration)}
	}
	if s := r.Stale; s != nil {
		v.Stale = &apiv1.Stale{Metric: s.Metric, After: apiv1.Duration(s.After)}
	}
	if o := r.Offline; o != nil {
		v.Offline = &apiv1.Offline{After: apiv1.Duration(o.After)}
	}
	return v
}

// planDuration writes a plan's duration as the plan does; zero is left out.
func planDuration(d maintenance.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// planSpecView is the wire shape of a maintenance plan.
func planSpecView(p maintenance.Plan) apiv1.Plan {
	v := apiv1.Plan{Model: p.Model}
	if r := p.Run; r != nil {
		v.Run = &apiv1.RunSource{Metric: r.Metric, Kind: r.Kind, Threshold: r.Threshold, MaxGap: planDuration(r.MaxGap)}
	}
	if s := p.Service; s != nil {
		v.Service = &apiv1.ServicePlan{EveryRunHours: s.EveryRunHours, EveryMonths: s.EveryMonths, WarnDays: s.WarnDays}
	}
	for _, t := range p.Trends {
		v.Trends = append(v.Trends, apiv1.TrendWatch{Metric: t.Metric, Limit: t.Limit, Direction: t.Direction,
			Window: planDuration(t.Window), WarnDays: t.WarnDays, WhileRunning: t.WhileRunning})
	}
	for _, a := range p.Anomalies {
		v.Anomalies = append(v.Anomalies, apiv1.AnomalyWatch(a))
	}
	return v
}
