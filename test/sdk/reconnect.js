'use strict';
// Twin, methods and C2D across a server-side drop (protocol notes §3.2, §7.5).
// After the server closes the connection the SDK reconnects by itself
// (clean session 0) and subscribes again to C2D and methods only — never to
// the twin response and desired-property topics. Twin GET, reported PATCH
// and desired patches keep working only if the server restored the
// subscriptions of the clean-session-0 client.
//
//   ready        connected, twin + desired listener + method + C2D listener
//   desired      patch {"phase":1} (before the drop)
//   connect      every (re)connection of the transport (the client's 'connect' event)
//   desired      patch {"phase":2} (after the SDK reconnected)
//   twin         twin GET after the reconnection
//   reported     reported-properties PATCH after the reconnection
//   method       direct method "ping" after the reconnection
//   c2d          a C2D message queued while the device was away, completed
//   closed
//
// Environment: WARDEN_CA, HUB_HOST, DEVICE_ID, DEVICE_KEY.

const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');

async function main() {
  const id = lib.env('DEVICE_ID');
  const client = Client.fromConnectionString(`HostName=${lib.env('HUB_HOST')};DeviceId=${id};SharedAccessKey=${lib.env('DEVICE_KEY')}`, Mqtt);
  let connects = 0;
  client.on('connect', () => lib.emit('connect', { n: ++connects }));
  client.on('error', (err) => console.error('client error:', err));
  client.on('disconnect', (reason) => console.error('client disconnect (retries exhausted?):', reason));

  let twin;
  const phases = {};
  let c2d;
  const gotC2D = new Promise((resolve) => { c2d = resolve; });
  let method;
  const gotMethod = new Promise((resolve) => { method = resolve; });
  await lib.step('ready', 15000, async () => {
    await client.setOptions({ ca: lib.ca() });
    await lib.within(10000, 'open()', client.open());
    twin = await lib.within(10000, 'getTwin() (no answer to the twin GET?)', client.getTwin());
    twin.on('properties.desired', (patch) => {
      if (!patch || patch.phase === undefined || phases[patch.phase]) return;
      phases[patch.phase] = true;
      lib.emit('desired', { patch });
      if (patch.phase === 2) afterReconnect();
    });
    client.onDeviceMethod('ping', (request, response) => {
      lib.emit('method', { payload: request.payload });
      response.send(200, { pong: true }, (err) => (err ? lib.fatal('methodAnswered', err) : method()));
    });
    client.on('message', (msg) => {
      lib.emit('c2d', { data: msg.data.toString(), messageId: msg.messageId });
      client.complete(msg, (err) => (err ? lib.fatal('c2dCompleted', err) : c2d()));
    });
    await lib.within(10000, 'twin.get() after subscribing (no answer to the twin GET?)', twin.get());
    return {};
  });

  async function afterReconnect() {
    await lib.step('twin', 15000, async () => {
      await lib.within(10000, 'twin.get() after the reconnection (no answer: $iothub/twin/res/# subscription lost?)', twin.get());
      return { desired: twin.properties.desired };
    });
    await lib.step('reported', 15000, async () => {
      await lib.within(10000, 'reported PATCH after the reconnection (no answer: subscription lost?)',
        lib.cb((done) => twin.properties.reported.update({ phase: 2, reconnected: true }, done)));
      return {};
    });
    await lib.within(30000, 'C2D after the reconnection', gotC2D).catch((err) => lib.fatal('c2d', err));
    await lib.within(30000, 'direct method after the reconnection', gotMethod).catch((err) => lib.fatal('method', err));
    await lib.step('closed', 10000, async () => { await client.close(); return {}; });
    process.exit(0);
  }
}

main().catch((err) => lib.fatal('crash', err));
