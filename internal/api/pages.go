package api

import (
	"html/template"
	"net/http"

	"github.com/warden-iot/warden/internal/identity"
)

// The activation and reset links of the account e-mails open these two
// small server-rendered pages: a form that sets the password. They work
// without JavaScript and without the portal.

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Warden</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:1rem 0 .3rem}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem}.err{color:#a00}.ok{color:#060}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{if .Done}}<p class="ok">Your password is set. You can sign in now.</p>
{{else if .Token}}<form method="post" action="{{.Action}}">
<input type="hidden" name="token" value="{{.Token}}">
<label for="pw">New password (at least 12 characters)</label>
<input id="pw" name="password" type="password" autocomplete="new-password" minlength="12" required>
<label for="pw2">Repeat it</label>
<input id="pw2" name="password2" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Set password</button></form>
{{end}}</body></html>`))

type pageData struct {
	Title, Action, Token, Error string
	Done                        bool
}

func (a *API) pageRoutes(mux *http.ServeMux) {
	pages := http.NewServeMux()
	pages.HandleFunc("GET /activate", a.linkPage("Activate your account", "/activate"))
	pages.HandleFunc("POST /activate", a.linkForm("Activate your account", "/activate", identity.PurposeActivate))
	pages.HandleFunc("GET /reset-password", a.linkPage("Choose a new password", "/reset-password"))
	pages.HandleFunc("POST /reset-password", a.linkForm("Choose a new password", "/reset-password", identity.PurposeReset))
	h := a.audited(pages, securePage(pages))
	mux.Handle("/activate", h)
	mux.Handle("/reset-password", h)
}

// securePage sets headers for pages that carry a secret in their URL: no
// referrer (the token must not leak to another site), no caching, no
// framing, nothing loaded from anywhere.
func securePage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d) // the client went away
}

func (a *API) linkPage(title, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Title: title, Action: action, Token: r.URL.Query().Get("token")}
		if d.Token == "" {
			d.Error = "This link has no token. Open the link from the e-mail exactly as it is."
		}
		renderPage(w, http.StatusOK, d)
	}
}

func (a *API) linkForm(title, action, purpose string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			renderPage(w, http.StatusBadRequest, pageData{Title: title, Error: "The form could not be read."})
			return
		}
		d := pageData{Title: title, Action: action, Token: r.PostForm.Get("token")}
		pw := r.PostForm.Get("password")
		if pw != r.PostForm.Get("password2") {
			d.Error = "The two passwords differ."
			renderPage(w, http.StatusBadRequest, d)
			return
		}
		u, err := a.setPasswordWithToken(r.Context(), d.Token, pw, purpose)
		if err != nil {
			status := http.StatusInternalServerError
			d.Error = "Something went wrong; try again later."
			if ae, ok := err.(*authError); ok {
				status, d.Error = ae.status, ae.msg
				if status == http.StatusGone {
					d.Token = ""
				}
			} else {
				a.log.Error("set password from link", "err", err)
			}
			renderPage(w, status, d)
			return
		}
		if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
			call.actAs(u)
			call.target = u.ID
		}
		renderPage(w, http.StatusOK, pageData{Title: title, Done: true})
	}
}
