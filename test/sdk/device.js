'use strict';
// The whole life of a provisioned device with the official SDK, as a device
// app would write it:
//
//   registered  provision with the group key (provision.js)
//   connected   Client.fromConnectionString(HostName={assignedHub};DeviceId=…;SharedAccessKey={derived key})
//   telemetry   sendEvent twice with the same messageId (a resend): stored once
//   ready       twin, desired-property listener, method handler and C2D
//               listener in place (a twin GET after the subscriptions is the
//               barrier: the server has processed them when it answers)
//   desired     a desired-property patch set through the REST API arrives
//   reported    the device reports properties in reply
//   method      a direct method "reboot" invoked through the REST API
//   c2d         a cloud-to-device message, completed
//   closed
//
// Environment: see provision.js (without ID_SCOPE: no provisioning, the
// device is HUB_HOST, DEVICE_ID, DEVICE_KEY), plus
//   MESSAGE_ID   the telemetry message id
//   TRANSPORT    "ws": the hub connection uses MqttWs too, with
//                GatewayHostName={WS_HOST} so that the SDK builds the URL
//                wss://{WS_HOST}:443/$iothub/websocket (HostName keeps the
//                port of the MQTT listener, which is the hub name in tokens)

const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const lib = require('./lib');
const { provision } = require('./provision');

async function main() {
  const ws = lib.env('TRANSPORT', 'mqtt') === 'ws';
  let deviceKey;
  let result;
  if (process.env.ID_SCOPE) {
    ({ deviceKey, result } = await provision().catch((err) => lib.fatal('registered', err)));
    lib.emit('registered', {
      assignedHub: result.assignedHub, deviceId: result.deviceId, status: result.status,
      substatus: result.substatus, deviceKey,
    });
  } else { // a device made through the REST API: no provisioning
    deviceKey = lib.env('DEVICE_KEY');
    result = { assignedHub: lib.env('HUB_HOST'), deviceId: lib.env('DEVICE_ID') };
  }

  // What the sample does next: a connection string from the assignment.
  let cs = `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${deviceKey}`;
  if (ws) cs += `;GatewayHostName=${lib.env('WS_HOST', 'localhost')}`;
  const client = Client.fromConnectionString(cs, ws ? MqttWs : Mqtt);
  const options = { ca: lib.ca() };
  if (ws) options.mqtt = { webSocketAgent: lib.portAgent(lib.env('WS_PORT')) };
  await lib.step('connected', 20000, async () => {
    await client.setOptions(options);
    await lib.within(15000, 'open()', client.open());
    return { transport: ws ? 'MqttWs' : 'Mqtt' };
  });

  await lib.step('telemetry', 20000, async () => {
    for (let i = 0; i < 2; i++) { // the second copy is what a resend looks like
      const msg = new Message(JSON.stringify({ temperature: 21.5, humidity: 40 }));
      msg.messageId = lib.env('MESSAGE_ID');
      msg.contentType = 'application/json';
      msg.contentEncoding = 'utf-8';
      msg.properties.add('alert', 'false');
      msg.properties.add('site name', 'hall 3/B');
      await lib.within(10000, `sendEvent copy ${i + 1} (no PUBACK?)`, client.sendEvent(msg));
    }
    return { sent: 2 };
  });

  let twin;
  let desiredSeen = false;
  await lib.step('ready', 20000, async () => {
    twin = await lib.within(10000, 'getTwin() (no answer to the twin GET?)', client.getTwin());
    twin.on('properties.desired', (patch) => {
      // The first events carry the whole desired section of the GET; the
      // test waits for the patch that sets "interval".
      if (desiredSeen || !patch || patch.interval === undefined) return;
      desiredSeen = true;
      lib.emit('desired', { patch });
      const reported = { interval: patch.interval, firmware: '1.0.0', site: { hall: 3 } };
      lib.step('reported', 10000, () => lib.cb((done) => twin.properties.reported.update(reported, done)).then(() => ({ reported })));
    });
    client.onDeviceMethod('reboot', (request, response) => {
      lib.emit('method', { methodName: request.methodName, payload: request.payload });
      const delay = request.payload && request.payload.delay;
      lib.step('methodAnswered', 20000, () => lib.cb((done) => response.send(200, { rebooting: true, delay }, done)).then(() => ({})));
    });
    client.on('message', (msg) => {
      const properties = {};
      for (const p of msg.properties.propertyList) properties[p.key] = p.value;
      lib.emit('c2d', { data: msg.data.toString(), messageId: msg.messageId, properties });
      lib.step('c2dCompleted', 20000, () => client.complete(msg).then(() => ({})))
        .then(() => lib.step('closed', 20000, () => client.close().then(() => ({}))))
        .then(() => process.exit(0));
    });
    await lib.within(10000, 'twin.get() after subscribing (no answer to the twin GET?)', twin.get()); // barrier, see above
    return { desired: twin.properties.desired, reported: twin.properties.reported };
  });
}

main().catch((err) => lib.fatal('crash', err));
