package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/broker"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	return doc
}

// publicExtras are the routes the server has besides routes() and
// publicRoutes(): api.go, pages.go, openapi.go, and the broker's WebSocket
// endpoint, which internal/server mounts on the same HTTPS server.
var publicExtras = []string{
	"GET /healthz",
	"GET /metrics",
	"GET " + OpenAPIPath,
	"GET /activate",
	"POST /activate",
	"GET /reset-password",
	"POST /reset-password",
	"GET " + broker.WebSocketPath,
}

// docPath turns a ServeMux pattern's path into an OpenAPI path template.
// Both write a wildcard as {name}; a "{name...}" or "{$}" wildcard would
// need translating, so the test refuses them until someone does.
func docPath(t *testing.T, pattern string) (method, path string) {
	t.Helper()
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		t.Fatalf("route pattern %q has no method", pattern)
	}
	if strings.Contains(path, "...}") || strings.Contains(path, "{$}") {
		t.Fatalf("route pattern %q: teach docPath about this wildcard", pattern)
	}
	return method, path
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	a := &API{}

	// What the server has: "METHOD /path" -> the route (nil for extras).
	want := map[string]*route{}
	add := func(pattern string, rt *route) {
		m, p := docPath(t, pattern)
		key := m + " " + p
		if _, dup := want[key]; dup {
			t.Errorf("route %s is registered twice", key)
		}
		want[key] = rt
	}
	for _, rt := range a.routes() {
		add(rt.pattern, &rt)
	}
	for _, rt := range a.publicRoutes() {
		add(rt.pattern, &rt)
	}
	for _, p := range publicExtras {
		add(p, nil)
	}

	// What the document has.
	have := map[string]*openapi3.Operation{}
	opIDs := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			have[key] = op
			if op.OperationID != "" {
				if prev, dup := opIDs[op.OperationID]; dup {
					t.Errorf("operationId %q is used by %s and %s", op.OperationID, prev, key)
				}
				opIDs[op.OperationID] = key
			}
		}
	}

	var missing, extra []string
	for k := range want {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		t.Errorf("route %s is not in openapi.yaml", k)
	}
	for _, k := range extra {
		t.Errorf("openapi.yaml describes %s, which the server does not have", k)
	}

	for key, op := range have {
		rt, known := want[key]
		if !known {
			continue
		}
		if op.OperationID == "" {
			t.Errorf("%s: no operationId", key)
		}
		if strings.TrimSpace(op.Summary) == "" {
			t.Errorf("%s: no summary", key)
		}
		if !hasSuccess(op) {
			t.Errorf("%s: no 2xx response", key)
		}

		// Credentials: public routes say so with "security: []"; the
		// others inherit the document's bearer token or session cookie.
		public := (rt == nil && key != "GET /metrics") || (rt != nil && rt.action == "")
		switch {
		case public && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s is public: want security: []", key)
		case !public && op.Security != nil:
			t.Errorf("%s needs credentials: it must not override the document's security", key)
		}

		// The summary and the access action are those of routes.go.
		if rt == nil {
			continue
		}
		if op.Summary != rt.summary {
			t.Errorf("%s: summary %q, routes.go says %q", key, op.Summary, rt.summary)
		}
		act, _ := op.Extensions["x-warden-action"].(string)
		if act != string(rt.action) {
			t.Errorf("%s: x-warden-action %q, routes.go says %q", key, act, rt.action)
		}
		if rt.action != "" && !strings.Contains(op.Description, "`"+string(rt.action)+"`") {
			t.Errorf("%s: the description does not name the action %s", key, rt.action)
		}
	}

	if len(doc.Security) == 0 {
		t.Error("the document has no default security requirement")
	}
	for _, name := range []string{"bearerAuth", "sessionCookie"} {
		if doc.Components == nil || doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s is missing", name)
		}
	}
	if s := doc.Components.SecuritySchemes["sessionCookie"]; s != nil && s.Value != nil {
		if s.Value.In != "cookie" || s.Value.Name != apiv1.SessionCookie {
			t.Errorf("sessionCookie scheme: in %q name %q, want cookie %q", s.Value.In, s.Value.Name, apiv1.SessionCookie)
		}
		if !strings.Contains(s.Value.Description, apiv1.CSRFHeader) {
			t.Errorf("sessionCookie scheme does not mention the %s header", apiv1.CSRFHeader)
		}
	}
}

// hasSuccess says whether op has a 2xx answer (or 101, the WebSocket
// upgrade).
func hasSuccess(op *openapi3.Operation) bool {
	if op.Responses == nil {
		return false
	}
	for code := range op.Responses.Map() {
		if (len(code) == 3 && code[0] == '2') || code == "2XX" || code == "101" {
			return true
		}
	}
	return false
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

func TestOpenAPIPathParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	for path, item := range doc.Paths.Map() {
		var inTemplate []string
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			inTemplate = append(inTemplate, m[1])
		}
		for method, op := range item.Operations() {
			declared := map[string]bool{}
			for _, ps := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, p := range ps {
					if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
						declared[p.Value.Name] = true
						if !p.Value.Required {
							t.Errorf("%s %s: path parameter %s must be required", method, path, p.Value.Name)
						}
						if !slices.Contains(inTemplate, p.Value.Name) {
							t.Errorf("%s %s: path parameter %s is not in the path", method, path, p.Value.Name)
						}
					}
				}
			}
			for _, name := range inTemplate {
				if !declared[name] {
					t.Errorf("%s %s: path parameter {%s} is not declared", method, path, name)
				}
			}
		}
	}
}

// TestOpenAPIRequestBodiesAreStrict checks that JSON request bodies say
// what decode does: unknown fields are refused.
func TestOpenAPIRequestBodiesAreStrict(t *testing.T) {
	doc := loadOpenAPI(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get("application/json")
			if mt == nil {
				continue
			}
			s := mt.Schema
			if s == nil || s.Value == nil {
				t.Errorf("%s %s: JSON request body without a schema", method, path)
				continue
			}
			if ap := s.Value.AdditionalProperties.Has; ap == nil || *ap {
				t.Errorf("%s %s: JSON request body schema %s must have additionalProperties: false", method, path, s.Ref)
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	a := New(Config{}, Stores{}, nil, nil, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", OpenAPIPath, res.Status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", ct)
	}
	if string(body) != string(openAPI) {
		t.Error("the served document is not the embedded one")
	}
	if _, err := openapi3.NewLoader().LoadFromData(body); err != nil {
		t.Errorf("the served document does not load: %v", err)
	}
}
