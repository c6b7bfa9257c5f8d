// Package notify tells people and systems about alarms: e-mails to users
// and to escalation contacts, and signed webhook calls, through a durable
// outbox (notifystore.Delivery, kept by package notifysql) with retries and backoff, and escalation of
// critical alarms nobody acknowledges.
//
// Alarm is called after an alarm change has been stored. It decides who is
// told and writes the outbox, nothing more, so it is fast and a crash after
// it loses nothing. Run (or RunOnce, with a simulated clock) delivers what is
// due and escalates what is overdue.
//
// # Who is told
//
// E-mail about an alarm on device D (of tenant T, at site S) goes to each
// active user who
//
//   - belongs to a tenant on D's tenant path (T, its parent, …, the root), or
//     is a supporter with an active grant of D or of S;
//   - may read D's machine data: access.Decide(user, access.DeviceData, D)
//     with S's factory-access switch. So operator staff only hear of a
//     customer's machine while its site's factory service access is on, and
//     a supporter only while the grant is in force;
//   - has switched e-mail on in the notification settings, and whose
//     settings' severities (empty: all) hold the alarm's severity and whose
//     sites (empty: all) hold S.
//
// Webhooks: every enabled webhook of a tenant on D's tenant path whose
// severities (empty: all) hold the alarm's. A webhook of the root tenant (the
// operator's) only hears of the operator's own devices and of devices whose
// site has factory service access on — the same privacy rule.
//
// Escalation: a tenant's Escalation sends each active, unacknowledged,
// critical alarm of a device in the tenant's subtree that was raised at least
// Delay ago once, as event "escalated", by e-mail to Escalation.Email and to
// that tenant's webhooks (severities permitting). Whether it was sent is read
// from the outbox, so a restart does not send it again. The root tenant's
// escalation follows the root webhook rule above.
//
// # Which events go where
//
//	event         e-mail to users   webhooks
//	raised        yes               yes
//	retriggered   no (too chatty)   yes
//	acknowledged  no                yes
//	cleared       no                yes
//	escalated     escalation contact (not users); the escalating tenant's webhooks
//
// Without a mail sender (New with a nil *mail.Sender) no e-mail deliveries
// are made at all; webhooks and escalation to webhooks still work.
//
// # Delivery
//
// Every delivery is tried until it succeeds or MaxAttempts tries have failed
// (then its state is "failed"). After the n-th failed try it waits
// BaseBackoff·2^(n-1), at most 6 hours. Delivery is at least once: a crash
// between sending and recording the result sends again, so receivers should
// deduplicate by delivery id.
//
// Delivery.Payload is written when the delivery is enqueued: for a webhook
// the body below without its "id" (a retry sends the very same body, with a
// fresh timestamp and signature); for an e-mail the rendered message
// {"subject", "text"}. Delivery.TenantID is the tenant whose setting the
// delivery comes from: the webhook's or the escalation's tenant, the user's
// tenant for a user on D's tenant path, and D's tenant for a supporter.
//
// # Webhook requests
//
// A webhook is called with
//
//	POST <url>
//	Content-Type: application/json
//	X-Warden-Event: raised
//	X-Warden-Delivery: 1234
//	X-Warden-Timestamp: 1767323045
//	X-Warden-Signature: sha256=5d0c…
//
//	{"id":1234,"event":"raised","alarm":{"id":42,"tenantId":"acme","ruleId":"r1",
//	 "deviceId":"pump-7","siteId":"north","kind":"rule","severity":"critical",
//	 "message":"Pressure high","value":12.5,"state":"active",
//	 "raisedAt":"2026-01-02T03:04:05Z","lastAt":"2026-01-02T03:04:05Z","retriggers":0},
//	 "sentAt":"2026-01-02T03:04:05Z"}
//
// (see Payload: "ackedAt", "ackedBy", "clearedAt" and "clearedBy" appear
// once set; "sentAt" is when the event was emitted and stays the same on
// retries). Any 2xx answer counts as delivered; any other status, a redirect
// (redirects are not followed), a timeout (HTTPTimeout) or a connection
// error is retried.
//
// X-Warden-Signature is "sha256=" and the lower-case hex HMAC-SHA256, keyed
// with the webhook's secret, of the timestamp header's decimal digits, a
// dot, and the raw body. A receiver verifies it like this (Verify does it):
//
//  1. Read the raw body before parsing it.
//  2. Compute HMAC-SHA256(secret, X-Warden-Timestamp + "." + body), hex
//     encode it, prefix "sha256=", and compare it with X-Warden-Signature in
//     constant time (hmac.Equal). Reject on mismatch.
//  3. Reject a timestamp more than a few minutes (say 5) from the
//     receiver's clock, in either direction: the signature covers the
//     timestamp, so an attacker who captured a request cannot replay it
//     later.
//  4. Ignore a delivery id already processed (a retry of something that
//     reached you).
//
// In a shell:
//
//	printf '%s.%s' "$timestamp" "$body" | openssl dgst -sha256 -hmac "$secret"
package notify
