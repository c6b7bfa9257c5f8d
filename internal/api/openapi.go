package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the whole REST API. openapi_test.go
// checks that it describes exactly the routes the server has.
//
//go:embed openapi.yaml
var openAPI []byte

// OpenAPIPath is where the document is served, without credentials.
const OpenAPIPath = "/api/openapi.yaml"

func (a *API) openAPIDoc(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI)
}
