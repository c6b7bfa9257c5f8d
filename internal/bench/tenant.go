package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
)

// TenantOptions say where a benchmark against a running server works.
type TenantOptions struct {
	// Caller is the API client of the person running the benchmark.
	Caller *client.Client
	// Tenant, if set, is an existing tenant to work in instead of a
	// throw-away one.
	Tenant string
	// AllowExistingDevices lets the benchmark run in a tenant that holds
	// devices other than benchmark devices (only without a throw-away
	// tenant).
	AllowExistingDevices bool
	// Progress receives what is made and removed (nil: none).
	Progress io.Writer
}

// Tenant is where a benchmark works: a throw-away tenant it made and
// deletes with everything in it, or an existing one, where it deletes
// what it made one by one.
//
// The throw-away tenant gets an account of its own (a customer-admin,
// activated by the benchmark through the activation link the API hands
// the creator when no mail server is configured), and the benchmark acts
// through that account's token: in its own tenant it may read the keys of
// the devices it registers and the enrollment groups it makes, set up
// rules and call its devices' methods, without any rule about other
// people's tenants being bent (operator staff never see a customer's
// device keys; the benchmark's tenant is no customer's).
type Tenant struct {
	// ID is the tenant.
	ID string
	// API acts in the tenant: the throw-away account's token, or the
	// caller's.
	API *client.Client
	// Caller is the caller's client (server metrics, the deletion).
	Caller *client.Client

	throwAway bool
	scoped    bool // requests name the tenant (an existing one)
	progress  io.Writer

	mu      sync.Mutex
	devices map[string]bool // registered here, deleted at Close (not throw-away)
	rules   []string
	groups  []string
	regs    []string // DPS registration ids
}

// ThrowAway says whether the benchmark made the tenant.
func (t *Tenant) ThrowAway() bool { return t.throwAway }

// InTenant runs fn in a tenant opened with o and cleans up afterwards,
// also when fn fails or ctx is cancelled (the clean-up has a fresh
// context of its own).
func InTenant(ctx context.Context, o TenantOptions, fn func(*Tenant) error) (err error) {
	t, err := OpenTenant(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := t.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	return fn(t)
}

// OpenTenant makes a throw-away tenant, or, with o.Tenant or when the
// caller may not make tenants, checks that the existing tenant holds no
// devices but the benchmarks' own (unless o.AllowExistingDevices).
func OpenTenant(ctx context.Context, o TenantOptions) (*Tenant, error) {
	if o.Caller == nil {
		return nil, errors.New("bench: want a Warden server")
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Tenant == "" {
		t, err := makeThrowAway(ctx, o.Caller, o.Progress)
		if err == nil || ctx.Err() != nil {
			return t, err
		}
		own, oerr := o.Caller.Tenant(ctx, "")
		if oerr != nil {
			return nil, fmt.Errorf("bench: %w; and reading your own tenant: %w", err, oerr)
		}
		fmt.Fprintf(o.Progress, "bench: cannot make a throw-away tenant (%v); working in your own tenant %s\n", err, own.ID)
		o.Tenant = own.ID
	}
	t := &Tenant{ID: o.Tenant, API: o.Caller, Caller: o.Caller, scoped: true, progress: o.Progress, devices: map[string]bool{}}
	var page struct {
		Devices []apiv1.Device `json:"devices"`
	}
	if err := o.Caller.Do(ctx, http.MethodGet, "/api/v1/devices", url.Values{"tenant": {t.ID}}, nil, &page); err != nil {
		return nil, fmt.Errorf("bench: devices of tenant %s: %w", t.ID, err)
	}
	var foreign []string
	for _, d := range page.Devices {
		if !benchDevice(d.ID) {
			foreign = append(foreign, d.ID)
		}
	}
	if len(foreign) > 0 && !o.AllowExistingDevices {
		return nil, fmt.Errorf("bench: tenant %s holds %d devices that are not benchmark devices (%s): "+
			"the benchmark would register and load its own devices among them; use a token that may make tenants "+
			"(the benchmark then works in a throw-away one), or pass --allow-existing-devices",
			t.ID, len(foreign), strings.Join(foreign[:min(3, len(foreign))], ", ")+map[bool]string{true: ", …"}[len(foreign) > 3])
	}
	fmt.Fprintf(o.Progress, "bench: working in the existing tenant %s; what the benchmark makes there is deleted afterwards\n", t.ID)
	return t, nil
}

// benchDevice says whether id is a benchmark's device: in a tenant the
// benchmarks did not make, only devices with these prefixes are theirs.
func benchDevice(id string) bool {
	for _, p := range []string{"bench-", "alarm-lat-", "dps-bench-"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// DevicePrefix is the device id prefix a benchmark uses for prefix p.
// Device ids are unique across tenants, so in a throw-away tenant it
// carries the tenant's random part: benchmark devices another tenant
// still holds (from another run) do not collide with this run's.
func (t *Tenant) DevicePrefix(p string) string {
	if !t.throwAway {
		return p
	}
	return p + "-" + t.ID[strings.LastIndexByte(t.ID, '-')+1:]
}

// makeThrowAway makes the tenant bench-<time>-<random> below the caller's
// tenant and an account in it, and returns a Tenant acting through that
// account.
func makeThrowAway(ctx context.Context, caller *client.Client, progress io.Writer) (*Tenant, error) {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := "bench-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(rnd[:])
	t := &Tenant{ID: id, Caller: caller, throwAway: true, progress: progress}
	if _, err := caller.CreateTenant(ctx, apiv1.NewTenant{ID: id,
		TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Warden benchmark (throw-away)")}}); err != nil {
		if ctx.Err() != nil {
			// Interrupted: the server may have made it all the same.
			t.Close()
		}
		return nil, fmt.Errorf("make tenant %s: %w", id, err)
	}
	fmt.Fprintf(progress, "bench: made the throw-away tenant %s\n", id)
	api, err := benchAccount(ctx, caller, id)
	if err != nil {
		if cerr := t.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	t.API = api
	return t, nil
}

// benchAccount makes a customer-admin in tenant, activates it through the
// activation link, signs in and returns a client with a token of it.
func benchAccount(ctx context.Context, caller *client.Client, tenant string) (*client.Client, error) {
	email := tenant + "@bench.invalid"
	u, err := caller.CreateUser(ctx, apiv1.NewUser{TenantID: tenant, Role: apiv1.RoleCustomerAdmin, Email: email,
		Profile: apiv1.Profile{FirstName: apiv1.Ptr("Warden"), LastName: apiv1.Ptr("Benchmark")}})
	if err != nil {
		return nil, fmt.Errorf("make the benchmark account of %s: %w", tenant, err)
	}
	if u.ActivationLink == "" {
		return nil, fmt.Errorf("the benchmark account of %s: the server mails activation links, so the benchmark cannot activate its account", tenant)
	}
	link, err := url.Parse(u.ActivationLink)
	if err != nil {
		return nil, fmt.Errorf("the benchmark account of %s: activation link: %w", tenant, err)
	}
	var pw [18]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	password := hex.EncodeToString(pw[:])
	if _, err := caller.Anonymous().Activate(ctx, link.Query().Get("token"), password); err != nil {
		return nil, fmt.Errorf("activate the benchmark account of %s: %w", tenant, err)
	}
	sc, _, err := caller.Login(ctx, email, password, "")
	if err != nil {
		return nil, fmt.Errorf("sign in as the benchmark account of %s: %w", tenant, err)
	}
	defer sc.Logout(context.WithoutCancel(ctx))
	tok, err := sc.CreateToken(ctx, "benchmark", nil, "")
	if err != nil {
		return nil, fmt.Errorf("token of the benchmark account of %s: %w", tenant, err)
	}
	return caller.WithToken(tok.Token), nil
}

// cleanupTimeout bounds the clean-up, which runs on a context of its own.
const cleanupTimeout = 2 * time.Minute

// Close deletes the throw-away tenant with everything in it, or what the
// benchmark made in an existing tenant, and says so on the progress
// writer.
func (t *Tenant) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if t.throwAway {
		stop := ticker(t.progress, "deleting the throw-away tenant "+t.ID, nil)
		err := t.Caller.DeleteTenant(ctx, t.ID)
		stop()
		if client.IsNotFound(err) {
			return nil // never made
		}
		if err != nil {
			fmt.Fprintf(t.progress, "warning: the throw-away tenant %s was not deleted: %v; delete it with DELETE /api/v1/tenants/%s\n", t.ID, err, t.ID)
			return fmt.Errorf("bench: delete the throw-away tenant %s: %w", t.ID, err)
		}
		fmt.Fprintf(t.progress, "bench: deleted the throw-away tenant %s with everything in it\n", t.ID)
		return nil
	}
	t.mu.Lock()
	devices := make([]string, 0, len(t.devices))
	for id := range t.devices {
		devices = append(devices, id)
	}
	rules, groups, regs := t.rules, t.groups, t.regs
	t.mu.Unlock()
	slices.Sort(devices)
	var errs []error
	for _, id := range rules {
		if err := t.API.Do(ctx, http.MethodDelete, "/api/v1/rules/"+url.PathEscape(id), nil, nil, nil); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("rule %s: %w", id, err))
		}
	}
	for _, id := range groups {
		if err := t.API.Do(ctx, http.MethodDelete, "/api/v1/dps/enrollment-groups/"+url.PathEscape(id), t.query(), nil, nil); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("enrollment group %s: %w", id, err))
		}
	}
	var done atomic.Int64
	total := len(devices) + len(regs)
	stop := ticker(t.progress, "deleting what the benchmark made in "+t.ID, func() string {
		return fmt.Sprintf("%d of %d devices and registrations", done.Load(), total)
	})
	var mu sync.Mutex
	deleteAll := func(ids []string, del func(string) error) {
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, id := range ids {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := del(id); err != nil && !client.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", id, err))
					mu.Unlock()
				}
				done.Add(1)
			})
		}
		wg.Wait()
	}
	deleteAll(regs, func(id string) error {
		return t.API.Do(ctx, http.MethodDelete, "/api/v1/dps/registrations/"+url.PathEscape(id), t.query(), nil, nil)
	})
	deleteAll(devices, func(id string) error { return t.API.DeleteDevice(ctx, id) })
	stop()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(t.progress, "warning: not everything the benchmark made in %s was deleted: %v\n", t.ID, err)
		return fmt.Errorf("bench: clean up tenant %s: %w", t.ID, err)
	}
	fmt.Fprintf(t.progress, "bench: deleted the %d devices, %d rules, %d enrollment groups and %d registrations the benchmark made in %s\n",
		len(devices), len(rules), len(groups), len(regs), t.ID)
	return nil
}

// query names the tenant in a request, for an existing tenant.
func (t *Tenant) query() url.Values {
	if !t.scoped {
		return nil
	}
	return url.Values{"tenant": {t.ID}}
}

// Register registers a device in the tenant (an existing benchmark device
// of the tenant is reused) and returns its connection string.
func (t *Tenant) Register(ctx context.Context, id string) (sas.ConnectionString, error) {
	if !t.throwAway {
		t.mu.Lock()
		t.devices[id] = true
		t.mu.Unlock()
	}
	body := apiv1.NewDevice{ID: id}
	if t.scoped {
		body.TenantID = t.ID
	}
	d, err := t.API.CreateDeviceWith(ctx, body)
	if client.IsConflict(err) {
		d, err = t.API.Device(ctx, id)
		if err == nil && d.TenantID != t.ID {
			return sas.ConnectionString{}, fmt.Errorf("device %s exists in another tenant, %s", id, d.TenantID)
		}
	}
	if err != nil {
		return sas.ConnectionString{}, err
	}
	if d.ConnectionString == "" {
		return sas.ConnectionString{}, fmt.Errorf("device %s: the server does not show you its keys "+
			"(operator staff never see a customer's device keys): run without --tenant, so that the benchmark works in a throw-away tenant of its own", id)
	}
	return sas.ParseConnectionString(d.ConnectionString)
}

// CreateRule makes an alarm rule in the tenant; body is the rule.
func (t *Tenant) CreateRule(ctx context.Context, body map[string]any) (string, error) {
	if t.scoped {
		body["tenantId"] = t.ID
	}
	var rule struct {
		ID string `json:"id"`
	}
	if err := t.API.Do(ctx, http.MethodPost, "/api/v1/rules", nil, body, &rule); err != nil {
		return "", err
	}
	t.mu.Lock()
	t.rules = append(t.rules, rule.ID)
	t.mu.Unlock()
	return rule.ID, nil
}

// DPSInfo is the tenant's ID scope and provisioning host.
func (t *Tenant) DPSInfo(ctx context.Context) (apiv1.DPSInfo, error) {
	var out apiv1.DPSInfo
	err := t.API.Do(ctx, http.MethodGet, "/api/v1/dps", t.query(), nil, &out)
	return out, err
}

// EnrollmentGroup returns the group id, with its keys, making it if
// absent.
func (t *Tenant) EnrollmentGroup(ctx context.Context, id string) (apiv1.EnrollmentGroup, error) {
	var g apiv1.EnrollmentGroup
	err := t.API.Do(ctx, http.MethodGet, "/api/v1/dps/enrollment-groups/"+url.PathEscape(id), t.query(), nil, &g)
	if !client.IsNotFound(err) {
		return g, err
	}
	fmt.Fprintf(t.progress, "bench: making the enrollment group %s\n", id)
	err = t.API.Do(ctx, http.MethodPost, "/api/v1/dps/enrollment-groups", t.query(), apiv1.NewEnrollmentGroup{ID: id}, &g)
	if err == nil {
		t.mu.Lock()
		t.groups = append(t.groups, id)
		t.mu.Unlock()
	}
	return g, err
}

// registered notes a device made by a DPS registration, for the clean-up.
func (t *Tenant) registered(regID string) {
	if t.throwAway {
		return
	}
	t.mu.Lock()
	t.devices[regID] = true
	t.regs = append(t.regs, regID)
	t.mu.Unlock()
}
