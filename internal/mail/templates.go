package mail

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// DefaultProduct names the product in account mails when the caller
// passes an empty product name.
const DefaultProduct = "Warden"

// Activation is the mail asking a new user to confirm their address by
// opening link, which works once and until expires.
func Activation(to, name, link string, expires time.Time, product string) Message {
	product = productName(product)
	return accountMail{
		To:      to,
		Name:    name,
		Link:    link,
		Expires: expiry(expires),
		Product: product,
		Subject: fmt.Sprintf("Activate your %s account", product),
		Intro:   fmt.Sprintf("Welcome to %s. To activate your account, confirm your e-mail address by opening this link:", product),
		Action:  "Activate account",
		Ignore:  fmt.Sprintf("If you did not sign up for %s, you can ignore this e-mail; no account will be activated.", product),
	}.message()
}

// PasswordReset is the mail carrying link to choose a new password, which
// works once and until expires.
func PasswordReset(to, name, link string, expires time.Time, product string) Message {
	product = productName(product)
	return accountMail{
		To:      to,
		Name:    name,
		Link:    link,
		Expires: expiry(expires),
		Product: product,
		Subject: fmt.Sprintf("Reset your %s password", product),
		Intro:   fmt.Sprintf("Someone, hopefully you, asked to reset the password of your %s account. To choose a new password, open this link:", product),
		Action:  "Choose a new password",
		Ignore:  "If you did not request a password reset, you can ignore this e-mail; your password stays unchanged.",
	}.message()
}

func productName(p string) string {
	if p = strings.TrimSpace(p); p == "" {
		return DefaultProduct
	}
	return p
}

// expiry formats t unambiguously for readers anywhere: in UTC, with the
// weekday and the month spelled out.
func expiry(t time.Time) string {
	return t.UTC().Format("Monday, 2 January 2006 at 15:04 MST")
}

// accountMail is what the account mails have in common: a greeting, one
// sentence of purpose, a single-use link with its expiry, and what to do
// if the mail was not expected.
type accountMail struct {
	To, Name, Link, Expires, Product string
	Subject, Intro, Action, Ignore   string
}

func (a accountMail) message() Message {
	greeting := "Hello,"
	if a.Name != "" {
		greeting = fmt.Sprintf("Hello %s,", a.Name)
	}
	var text strings.Builder
	// Paragraphs are single lines: mail clients wrap them, and the link
	// must stay whole.
	fmt.Fprintf(&text, "%s\n\n%s\n\n%s\n\n", greeting, a.Intro, a.Link)
	fmt.Fprintf(&text, "The link can be used only once and expires on %s.\n\n", a.Expires)
	fmt.Fprintf(&text, "%s\n\n-- \n%s\n", a.Ignore, a.Product)

	return Message{
		To:      a.To,
		ToName:  a.Name,
		Subject: a.Subject,
		Text:    text.String(),
		HTML:    a.html(),
	}
}

// accountHTML is the HTML alternative of an account mail. html/template
// escapes every field and replaces a link whose scheme is not http, https
// or mailto with "#ZgotmplZ".
const accountHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; line-height: 1.5; color: #222; max-width: 36em;">
<p>Hello{{with .Name}} {{.}}{{end}},</p>
<p>{{.Intro}}</p>
<p><a href="{{.Link}}" style="display: inline-block; padding: 0.6em 1.2em; background: #1f6feb; color: #fff; text-decoration: none; border-radius: 4px;">{{.Action}}</a></p>
<p style="font-size: 0.9em; color: #555;">If the button does not work, copy this link into your browser:<br><span style="word-break: break-all;">{{.Link}}</span></p>
<p>The link can be used only once and expires on {{.Expires}}.</p>
<p>{{.Ignore}}</p>
<p style="color: #555;">{{.Product}}</p>
</body>
</html>
`

func (a accountMail) html() string {
	// Parsed per mail: account mails are rare, and a template kept in a
	// package variable would be shared mutable state.
	t := template.Must(template.New("account").Parse(accountHTML))
	var b strings.Builder
	if err := t.Execute(&b, a); err != nil {
		// Only a broken template fails, with fields that are all
		// strings; the text part is complete on its own.
		return ""
	}
	return b.String()
}
