'use strict';
// SAS token lifetime with the official SDK.
//
// MODE=fixed: a connection string with a fixed SharedAccessSignature that
// expires in a few seconds (no renewal is possible). The retry policy is
// NoRetry, so that the server closing the connection surfaces as the
// client's public 'disconnect' event instead of silent reconnect attempts.
//   connected       open() with TOKEN
//   sent            sendEvent works
//   disconnected    the server closes the connection when the token expires
//   refused         sendEvent with the expired token is refused
//   renewed         updateSharedAccessSignature(NEW_TOKEN), then sendEvent
//                   reconnects and works
//   closed
//
// MODE=renew: a connection string with SharedAccessKey; the SDK makes and
// renews its own tokens (here valid TOKEN_VALID_S seconds, renewed
// TOKEN_MARGIN_S before expiry) by disconnecting and reconnecting with the
// new token, without subscribing again.
//   ready           connected, desired-property listener, twin GET done
//   renewal         each new token of the SDK (with its expiry)
//   sent            telemetry every second during RUN_S seconds: all acknowledged
//   desired         a desired patch set through the REST API after a renewal
//                   arrives (the server kept the subscriptions)
//   twin            a twin GET after the renewals is answered
//   closed
//
// Environment: WARDEN_CA, HUB_HOST, DEVICE_ID, MODE, and
//   fixed: TOKEN, NEW_TOKEN, TOKEN_EXPIRY (Unix seconds of TOKEN's se)
//   renew: DEVICE_KEY, TOKEN_VALID_S, TOKEN_MARGIN_S, RUN_S

const { Client, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');

// NoRetry as in azure-iot-common (not a direct dependency): never retry.
class NoRetry {
  nextRetryTimeout() { return -1; }
  shouldRetry() { return false; }
}

function event(id, n) {
  const msg = new Message(JSON.stringify({ counter: n }));
  msg.messageId = `${id}-${n}`;
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  return msg;
}

async function fixed() {
  const host = lib.env('HUB_HOST');
  const id = lib.env('DEVICE_ID');
  const expiry = Number(lib.env('TOKEN_EXPIRY'));
  const client = Client.fromConnectionString(`HostName=${host};DeviceId=${id};SharedAccessSignature=${lib.env('TOKEN')}`, Mqtt);
  client.setRetryPolicy(new NoRetry());
  let onDisconnect;
  const disconnected = new Promise((resolve) => { onDisconnect = resolve; });
  client.on('disconnect', (reason) => onDisconnect(reason));
  client.on('error', (err) => console.error('client error:', err));

  await lib.step('connected', 10000, async () => {
    await client.setOptions({ ca: lib.ca() });
    await lib.within(8000, 'open()', client.open());
    return { secondsLeft: expiry - Date.now() / 1000 };
  });
  await lib.step('sent', 10000, async () => { await client.sendEvent(event(id, 1)); return {}; });
  const waitMs = Math.max(0, expiry * 1000 - Date.now()) + 10000;
  await lib.step('disconnected', waitMs, async () => {
    const reason = await disconnected;
    const err = reason && reason.transportObj;
    return { reason: err ? String(err.message || err) : String(reason), secondsAfterExpiry: Date.now() / 1000 - expiry };
  });
  await lib.step('refused', 15000, async () => {
    try {
      await client.sendEvent(event(id, 2));
    } catch (err) {
      return { refusal: lib.errFields(err) };
    }
    throw new Error('sendEvent with an expired token succeeded');
  });
  await lib.step('renewed', 15000, async () => {
    await lib.cb((done) => client.updateSharedAccessSignature(lib.env('NEW_TOKEN'), done));
    await client.sendEvent(event(id, 3));
    return {};
  });
  await lib.step('closed', 10000, async () => { await client.close(); return {}; });
}

async function renew() {
  const id = lib.env('DEVICE_ID');
  const valid = Number(lib.env('TOKEN_VALID_S'));
  const margin = Number(lib.env('TOKEN_MARGIN_S'));
  const cs = `HostName=${lib.env('HUB_HOST')};DeviceId=${id};SharedAccessKey=${lib.env('DEVICE_KEY')}`;
  // Same as Client.fromConnectionString(cs, Mqtt) followed by
  // setOptions({tokenRenewal: {tokenValidTimeInSeconds, tokenRenewalMarginInSeconds}}),
  // but with a handle on the provider to see its renewals.
  const auth = SharedAccessKeyAuthenticationProvider.fromConnectionString(cs, valid, margin);
  auth.on('newTokenAvailable', (creds) => {
    const se = /se=(\d+)/.exec(creds.sharedAccessSignature);
    lib.emit('renewal', { expiry: se ? Number(se[1]) : null });
  });
  const client = Client.fromAuthenticationProvider(auth, Mqtt);
  client.on('error', (err) => console.error('client error:', err));
  client.on('disconnect', (reason) => console.error('client disconnect:', reason));

  let twin;
  let onDesired;
  const desired = new Promise((resolve) => { onDesired = resolve; });
  await lib.step('ready', 15000, async () => {
    await client.setOptions({ ca: lib.ca() });
    await lib.within(8000, 'open()', client.open());
    twin = await lib.within(8000, 'getTwin() (no answer to the twin GET?)', client.getTwin());
    twin.on('properties.desired', (patch) => { if (patch && patch.afterRenewal !== undefined) onDesired(patch); });
    await lib.within(8000, 'twin.get() (no answer to the twin GET?)', twin.get()); // barrier: the desired subscription is in place
    return {};
  });
  const runMs = Number(lib.env('RUN_S')) * 1000;
  const sending = lib.step('sent', runMs + 15000, async () => {
    const start = Date.now();
    let n = 0;
    while (Date.now() - start < runMs) {
      n++;
      await lib.within(8000, `sendEvent ${n}`, client.sendEvent(event(id, n)));
      await lib.sleep(1000);
    }
    return { count: n };
  });
  await lib.step('desired', runMs + 15000, async () => ({ patch: await desired }));
  await sending;
  await lib.step('twin', 10000, async () => {
    await lib.within(8000, 'twin.get() after the renewals (no answer: twin subscription lost?)', twin.get());
    return { desired: twin.properties.desired };
  });
  await lib.step('closed', 10000, async () => { await client.close(); return {}; });
}

const mode = lib.env('MODE');
(mode === 'fixed' ? fixed() : mode === 'renew' ? renew() : Promise.reject(new Error(`MODE ${mode}`)))
  .then(() => process.exit(0), (err) => lib.fatal('crash', err));
