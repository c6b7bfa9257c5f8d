package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// TestFactorySwitchAttacks is the operator's admin trying every way around
// the owner's factory service access switch to a customer's machine: with
// the switch off each fails; what works while it is on stops when the owner
// switches it off, and the owner sees all of it in the access log.
func TestFactorySwitchAttacks(t *testing.T) {
	t.Parallel()
	factorySwitchAttacks(t, start(t, withWebhooksInside()))
}

// TestFactorySwitchAttacksPostgres is the same on PostgreSQL.
func TestFactorySwitchAttacksPostgres(t *testing.T) {
	t.Parallel()
	factorySwitchAttacks(t, start(t, withWebhooksInside(), withDatabase(pgtest.URL(t))))
}

func factorySwitchAttacks(t *testing.T, e *env) {
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme Heating")}}); err != nil {
		t.Fatal(err)
	}
	site, err := e.api.CreateSite(ctx, "acme", "Boiler house")
	if err != nil {
		t.Fatal(err)
	}
	open, err := e.api.CreateSite(ctx, "acme", "Workshop")
	if err != nil {
		t.Fatal(err)
	}
	// The operator registers the customer's machine, but is not told its keys.
	var created apiv1.Device
	if err := e.api.Do(ctx, "POST", "/api/v1/devices", nil, map[string]any{"id": "pump-1", "tenantId": "acme",
		"siteId": site.ID, "model": "pellet-heater"}, &created); err != nil {
		t.Fatal(err)
	}
	if created.PrimaryKey != "" || created.ConnectionString != "" {
		t.Fatal("the operator was told the keys of the customer's new device")
	}
	owner := signUp(t, e, e.api, "acme", "customer-admin", "owner@acme.example").bearer
	staffPerson := signUp(t, e, e.api, "root", "operator-admin", "admin@maker.example")
	staff := staffPerson.bearer
	if _, err := owner.SetFactoryAccess(ctx, open.ID, true); err != nil {
		t.Fatal(err)
	}

	// The machine itself, with the key its owner reads.
	var own apiv1.Device
	if err := owner.Do(ctx, "GET", "/api/v1/devices/pump-1", nil, nil, &own); err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(own.PrimaryKey)
	if err != nil || len(key) == 0 {
		t.Fatalf("owner's view of the keys: %q, %v", own.PrimaryKey, err)
	}
	machine := e.deviceConn("pump-1", key)
	machine.mustPublish(t, events("pump-1", ""), `{"flue_temp": 120}`)

	sink := &webhookSink{t: t}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	// The owner's own webhook, which the operator must not even list.
	ownerSink := &webhookSink{t: t}
	ohs := httptest.NewServer(ownerSink)
	t.Cleanup(ohs.Close)
	ownHook, err := owner.CreateWebhook(ctx, "acme", ohs.URL+"/acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	ownerSink.mu.Lock()
	ownerSink.secret = []byte(ownHook.Secret)
	ownerSink.mu.Unlock()

	refused := func(what string, err error) {
		t.Helper()
		if s := client.StatusOf(err); s != http.StatusForbidden && s != http.StatusNotFound && s != http.StatusBadRequest {
			t.Errorf("%s: %v, want a refusal", what, err)
		}
	}
	// Things staff may never do in a customer's tenant, switch on or off.
	never := func(phase string) {
		t.Helper()
		var d apiv1.Device
		if err := staff.Do(ctx, "GET", "/api/v1/devices/pump-1", nil, nil, &d); err != nil {
			t.Fatal(err)
		}
		if d.PrimaryKey != "" || d.SecondaryKey != "" || d.ConnectionString != "" {
			t.Errorf("%s: staff read the device keys", phase)
		}
		refused(phase+": rule in the customer's tenant", staff.Do(ctx, "POST", "/api/v1/rules", nil, matrixRule("acme", nil), nil))
		_, err := staff.CreateWebhook(ctx, "acme", hs.URL+"/stolen", nil)
		refused(phase+": webhook in the customer's tenant", err)
		_, err = staff.SetEscalation(ctx, "acme", 1, "night@maker.example")
		refused(phase+": escalation in the customer's tenant", err)
		refused(phase+": the customer's deliveries", staff.Do(ctx, "GET", "/api/v1/deliveries", url.Values{"tenant": {"acme"}}, nil, nil))
		refused(phase+": maintenance plan in the customer's tenant", staff.Do(ctx, "PUT", "/api/v1/maintenance-plans/pellet-heater",
			url.Values{"tenant": {"acme"}}, map[string]any{"service": map[string]any{"everyMonths": 1}}, nil))
		refused(phase+": enrollment in the customer's tenant", staff.Do(ctx, "POST", "/api/v1/dps/enrollments",
			url.Values{"tenant": {"acme"}}, map[string]any{"registrationId": "pump-1"}, nil))
	}

	// A box the owner provisions through its own enrollment group: the
	// operator sees the registration, not the group's key nor what the box
	// sent.
	var group apiv1.EnrollmentGroup
	if err := owner.Do(ctx, "POST", "/api/v1/dps/enrollment-groups", nil, map[string]any{"id": "acme-line"}, &group); err != nil {
		t.Fatal(err)
	}
	groupKey, _ := base64.StdEncoding.DecodeString(group.PrimaryKey)
	var info apiv1.DPSInfo
	if err := owner.Do(ctx, "GET", "/api/v1/dps", nil, nil, &info); err != nil {
		t.Fatal(err)
	}
	p := e.provisionConn(info.IDScope, "box-7", sas.DeriveDeviceKey(groupKey, "box-7"))
	p.register("box-7", map[string]any{"burnerHours": 4242})
	p.finish()
	var reg apiv1.Registration
	if err := owner.Do(ctx, "GET", "/api/v1/dps/registrations/box-7", nil, nil, &reg); err != nil || !strings.Contains(string(reg.Payload), "4242") {
		t.Fatalf("the owner's view of the registration: %s, %v", reg.Payload, err)
	}
	q := url.Values{"tenant": {"acme"}}
	var staffReg apiv1.Registration
	if err := staff.Do(ctx, "GET", "/api/v1/dps/registrations/box-7", q, nil, &staffReg); err != nil || staffReg.DeviceID != "box-7" ||
		len(staffReg.Payload) != 0 || len(staffReg.InitialTwin) != 0 {
		t.Errorf("staff's view of the registration: %+v, %v; want it without the payload", staffReg, err)
	}
	var staffGroup apiv1.EnrollmentGroup
	if err := staff.Do(ctx, "GET", "/api/v1/dps/enrollment-groups/acme-line", q, nil, &staffGroup); err != nil ||
		staffGroup.ID != "acme-line" || staffGroup.PrimaryKey != "" || staffGroup.SecondaryKey != "" {
		t.Errorf("staff's view of the enrollment group: %v; want it without keys", err)
	}
	refused("staff change the customer's enrollment group", staff.Do(ctx, "PATCH", "/api/v1/dps/enrollment-groups/acme-line", q,
		map[string]any{"enabled": false}, nil))

	// Switch off: no token, no keys, no rule on the machine, no moving it
	// into the open workshop, no forwarding.
	never("off")
	_, err = staff.DeviceToken(ctx, "pump-1", time.Hour)
	refused("off: mint a device token", err)
	refused("off: root rule on the machine", staff.Do(ctx, "POST", "/api/v1/rules", nil,
		matrixRule("root", map[string]string{"deviceId": "pump-1"}), nil))
	refused("off: move the machine into an open site", staff.Do(ctx, "PATCH", "/api/v1/devices/pump-1", nil,
		map[string]any{"siteId": open.ID}, nil))
	refused("off: read the twin", staff.Do(ctx, "GET", "/api/v1/devices/pump-1/twin", nil, nil, nil))
	// A token of the operator's own making, without a credential record,
	// does not connect either.
	forged := sas.SignRaw(factory.DeriveKey([]byte("not the key"), factory.KeyName("stf_x")),
		sas.Escape(sas.DeviceResource(e.hubHost, "pump-1")), factory.KeyName("stf_x"), time.Now().Add(time.Hour))
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), forged); err == nil || rc == 0 {
		t.Fatalf("forged staff token connected: rc %d", rc)
	}

	// The owner opens the boiler house. Now staff may make a token, connect
	// as the machine and read its twin, aim an operator rule at it, and
	// hear of its alarms through the operator's own webhook.
	if _, err := owner.SetFactoryAccess(ctx, site.ID, true); err != nil {
		t.Fatal(err)
	}
	never("on")
	if err := staff.Do(ctx, "GET", "/api/v1/devices/pump-1/twin", nil, nil, nil); err != nil {
		t.Fatalf("on: staff read the twin: %v", err)
	}
	var minted struct {
		Token        string `json:"token"`
		CredentialID string `json:"credentialId"`
	}
	if err := staff.Do(ctx, "POST", "/api/v1/devices/pump-1/token", nil, map[string]any{"ttl": "1h"}, &minted); err != nil {
		t.Fatal(err)
	}
	tok, err := sas.Parse(minted.Token)
	if err != nil || minted.CredentialID == "" || tok.KeyName != factory.KeyName(minted.CredentialID) {
		t.Fatalf("staff token %+v (%v): want a named staff credential", tok, err)
	}
	// Without its name the signature is worth nothing.
	bare := strings.Replace(minted.Token, "&skn="+sas.Escape(tok.KeyName), "", 1)
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), bare); err == nil || rc == 0 {
		t.Fatalf("staff token without its key name connected: rc %d", rc)
	}
	impostor := staffConnect(t, e, "pump-1", minted.Token)
	impostor.subscribe(t, filterTwinRes)
	impostor.publish0(t, "$iothub/twin/GET/?$rid=staff", " ")
	if m := impostor.next(t, "$iothub/twin/res/"); !strings.HasPrefix(m.Topic(), "$iothub/twin/res/200/") {
		t.Fatalf("staff twin read: %s", m.Topic())
	}
	impostor.c.Disconnect(50) // the machine takes its place again
	machine = e.deviceConn("pump-1", key)

	var rule apiv1.Rule
	if err := staff.Do(ctx, "POST", "/api/v1/rules", nil, matrixRule("root", map[string]string{"deviceId": "pump-1"}), &rule); err != nil {
		t.Fatalf("on: root rule on the machine: %v", err)
	}
	hook, err := staff.CreateWebhook(ctx, "root", hs.URL+"/maker", nil)
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	sink.secret = []byte(hook.Secret)
	sink.mu.Unlock()
	machine.mustPublish(t, events("pump-1", ""), `{"flue_temp": 300}`)
	waitFor(t, "the operator's webhook told of the alarm", 10*time.Second, func() bool {
		return slices.Contains(sink.seen(), "raised:active")
	})
	// The receiver goes down; the clearing waits in the outbox for a retry.
	sink.mu.Lock()
	sink.secret = nil
	sink.mu.Unlock()
	machine.mustPublish(t, events("pump-1", ""), `{"flue_temp": 100}`)
	var waiting apiv1.Delivery
	waitFor(t, "a failed try of the clearing", 10*time.Second, func() bool {
		ds, err := staff.Deliveries(ctx, client.DeliveryFilter{Tenant: "root", State: "pending"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Event == "cleared" && d.Attempts > 0 {
				waiting = d
				return true
			}
		}
		return false
	})
	// Staff connect as the machine again, and stay connected.
	impostor = staffConnect(t, e, "pump-1", minted.Token)

	// The owner switches the boiler house off: the staff connection is
	// closed, the token is dead, and nothing more reaches the operator.
	if _, err := owner.SetFactoryAccess(ctx, site.ID, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-impostor.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection made with the staff token is still open after the switch went off")
	}
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), minted.Token); err == nil || rc == 0 {
		t.Fatalf("staff token connected after the switch went off: rc %d", rc)
	}
	sink.mu.Lock()
	sink.secret = []byte(hook.Secret)
	sink.mu.Unlock()
	waitFor(t, "the waiting delivery given up", 10*time.Second, func() bool {
		ds, err := staff.Deliveries(ctx, client.DeliveryFilter{Tenant: "root"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.ID == waiting.ID {
				return d.State == "failed" && strings.Contains(d.LastError, "factory service access")
			}
		}
		return false
	})
	before := len(sink.seen())
	machine = e.deviceConn("pump-1", key)
	machine.mustPublish(t, events("pump-1", ""), `{"flue_temp": 310}`)
	var alarms apiv1.AlarmPage
	waitFor(t, "the owner's alarm", 10*time.Second, func() bool {
		if err := owner.Do(ctx, "GET", "/api/v1/alarms", url.Values{"device": {"pump-1"}, "state": {"active"}}, nil, &alarms); err != nil {
			t.Fatal(err)
		}
		return len(alarms.Alarms) > 0
	})
	time.Sleep(3 * time.Second) // a poll round and then some
	if got := sink.seen(); len(got) != before {
		t.Errorf("the operator's webhook heard %v after the switch went off", got[before:])
	}
	if err := staff.Do(ctx, "GET", "/api/v1/alarms", url.Values{"device": {"pump-1"}}, nil, &alarms); err != nil || len(alarms.Alarms) != 0 {
		t.Errorf("staff list the machine's alarms after the switch went off: %v, %v", alarms.Alarms, err)
	}
	_, err = staff.DeviceToken(ctx, "pump-1", time.Hour)
	refused("off again: mint a device token", err)

	// Switched on again, the old token stays dead: it was made for an
	// earlier opening.
	if _, err := owner.SetFactoryAccess(ctx, site.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), minted.Token); err == nil || rc == 0 {
		t.Fatalf("old staff token connected after the switch went off and on: rc %d", rc)
	}
	// A device moved out of the open site takes its staff connection along.
	if err := staff.Do(ctx, "POST", "/api/v1/devices/pump-1/token", nil, map[string]any{"ttl": "1h"}, &minted); err != nil {
		t.Fatal(err)
	}
	impostor = staffConnect(t, e, "pump-1", minted.Token)
	if err := owner.Do(ctx, "PATCH", "/api/v1/devices/pump-1", nil, map[string]any{"siteId": open.ID}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-impostor.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the staff connection survived the device leaving its site")
	}

	// A staff credential acts for its maker: once the account is disabled
	// it connects no more, whatever the switch says.
	if err := staff.Do(ctx, "POST", "/api/v1/devices/pump-1/token", nil, map[string]any{"ttl": "1h"}, &minted); err != nil {
		t.Fatal(err)
	}
	staffConnect(t, e, "pump-1", minted.Token).c.Disconnect(50)
	if err := e.api.Do(ctx, "PATCH", "/api/v1/users/"+staffPerson.user.ID, nil, map[string]any{"status": "disabled"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), minted.Token); err == nil || rc == 0 {
		t.Fatalf("a disabled account's staff token connected: rc %d", rc)
	}
	if err := e.api.Do(ctx, "PATCH", "/api/v1/users/"+staffPerson.user.ID, nil, map[string]any{"status": "active"}, nil); err != nil {
		t.Fatal(err)
	}

	// The customer's webhook and its deliveries do not show through the
	// operator's own tenant either.
	hooks, err := staff.Webhooks(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		if h.TenantID != "root" {
			t.Errorf("staff list the webhook %s of tenant %s", h.ID, h.TenantID)
		}
	}
	if len(ownerSink.seen()) == 0 {
		t.Error("the owner's webhook heard nothing")
	}
	ds, err := staff.Deliveries(ctx, client.DeliveryFilter{Tenant: "root", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.TenantID != "root" {
			t.Errorf("staff list a delivery of tenant %s: %+v", d.TenantID, d)
		}
	}

	// The owner's access log names every staff credential made, each
	// connection with one (allowed or refused) and never the token.
	var log apiv1.AuditPage
	if err := owner.Do(ctx, "GET", "/api/v1/access-log", url.Values{"outside": {"true"}, "limit": {"1000"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	raw, _ := json.Marshal(log)
	for _, en := range log.Entries {
		if en.Action == notify.ActionOperatorNotified && en.OwnerTenantID == "acme" && en.ActorName == hook.ID {
			count["operator notified"]++
		}
		if en.OwnerTenantID != "acme" || en.ActorName != "admin@maker.example" {
			continue
		}
		count[en.Action+":"+en.Outcome]++
		if en.Action == factory.ActionConnect && !strings.HasPrefix(en.Target, "pump-1/stf_") {
			t.Errorf("connection entry target %q", en.Target)
		}
	}
	for _, want := range []string{"device.token:success", factory.ActionConnect + ":success", factory.ActionConnect + ":denied",
		"device.token:denied", "device.data.read:success", "device.data.read:denied"} {
		if count[want] == 0 {
			t.Errorf("the owner's access log has no %s entry by the operator's admin: %v", want, count)
		}
	}
	if count["operator notified"] != 1 {
		t.Errorf("the operator's webhook heard of the machine %d times in the owner's access log, want once (raised, while on)",
			count["operator notified"])
	}
	if count[factory.ActionConnect+":success"] < 4 || count[factory.ActionConnect+":denied"] < 3 {
		t.Errorf("staff connections in the access log: %v, want at least 4 allowed and 3 refused", count)
	}
	if strings.Contains(string(raw), tok.Signature) || strings.Contains(string(raw), sas.Escape(tok.Signature)) {
		t.Error("the access log holds a staff token's signature")
	}
}

// staffConnect connects as device id with a token made by staff.
func staffConnect(t *testing.T, e *env, id, token string) *hubDevice {
	t.Helper()
	d := &hubDevice{id: id, msgs: make(chan pahomqtt.Message, 64), lost: make(chan error, 1)}
	o := pahomqtt.NewClientOptions().AddBroker("tls://" + e.srv.MQTTAddr()).SetClientID(id).
		SetUsername(e.username(id)).SetPassword(token).SetTLSConfig(e.tlsConfig()).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { d.msgs <- m }).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) {
			select {
			case d.lost <- err:
			default:
			}
		})
	d.c = pahomqtt.NewClient(o)
	ct := d.c.Connect()
	if !ct.WaitTimeout(10*time.Second) || ct.Error() != nil {
		t.Fatalf("staff connect as %s: %v", id, ct.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(50) })
	return d
}
