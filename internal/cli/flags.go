package cli

// Flag types and groups shared by several commands.

import (
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
)

// addressFlags are the flags of a postal address.
type addressFlags struct{ street, postalCode, city, country string }

func (f *addressFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.street, "street", "", "street and number")
	fs.StringVar(&f.postalCode, "postal-code", "", "postal code")
	fs.StringVar(&f.city, "city", "", "city")
	fs.StringVar(&f.country, "country", "", "country")
}

// merge overlays the given address flags on cur; ok says whether any was
// given.
func (f *addressFlags) merge(in *invocation, cur apiv1.Address) (a apiv1.Address, ok bool) {
	for _, x := range []struct {
		flag string
		v    string
		dst  *string
	}{{"street", f.street, &cur.Street}, {"postal-code", f.postalCode, &cur.PostalCode},
		{"city", f.city, &cur.City}, {"country", f.country, &cur.Country}} {
		if in.given[x.flag] {
			*x.dst, ok = x.v, true
		}
	}
	return cur, ok
}

// contactFlags are the flags of a tenant's contact person.
type contactFlags struct{ name, email, phone string }

func (f *contactFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "contact-name", "", "contact person's name")
	fs.StringVar(&f.email, "contact-email", "", "contact person's e-mail address")
	fs.StringVar(&f.phone, "contact-phone", "", "contact person's phone number")
}

func (f *contactFlags) merge(in *invocation, cur apiv1.Contact) (c apiv1.Contact, ok bool) {
	for _, x := range []struct {
		flag string
		v    string
		dst  *string
	}{{"contact-name", f.name, &cur.Name}, {"contact-email", f.email, &cur.Email}, {"contact-phone", f.phone, &cur.Phone}} {
		if in.given[x.flag] {
			*x.dst, ok = x.v, true
		}
	}
	return cur, ok
}

// propsFlag collects repeated --prop key=value flags.
type propsFlag map[string]string

func (p propsFlag) String() string {
	var parts []string
	for k, v := range p {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (p propsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	p[k] = v
	return nil
}

// jsonFlag checks the JSON of a flag; empty is nil.
func jsonFlag(name, value string) (json.RawMessage, error) {
	if value == "" {
		return nil, nil
	}
	if !json.Valid([]byte(value)) {
		return nil, fmt.Errorf("--%s is not valid JSON: %s", name, value)
	}
	return json.RawMessage(value), nil
}

// onOffArg reads on or off.
func onOffArg(s string) (on, ok bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "enable":
		return true, true
	case "off", "false", "no", "disable":
		return false, true
	}
	return false, false
}
