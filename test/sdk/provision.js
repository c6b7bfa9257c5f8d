'use strict';
// Provisioning with an enrollment-group symmetric key, as the official sample
// register_symkeygroup.js does it.
//
// Environment:
//   WARDEN_CA        CA certificate file (PEM)
//   DPS_HOST         provisioning host for MQTT over TLS, host[:port]
//   ID_SCOPE         the tenant's ID scope
//   REGISTRATION_ID  the registration (device) id
//   GROUP_KEY        the enrollment group's key (base64); the device key is
//                    derived from it
//   TRANSPORT        "mqtt" (default) or "ws" (MQTT over WebSocket: the SDK
//                    dials wss://{WS_HOST}:443/$iothub/websocket, redirected
//                    to WS_PORT, see lib.js portAgent)
//
// Run alone it reports {"step":"registered", ...} or a failed "registered"
// step with the SDK's error.

const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const ProvisioningMqtt = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { MqttBase } = require('azure-iot-mqtt-base');
const lib = require('./lib');

// provision registers and returns {deviceKey, result}.
async function provision() {
  const registrationId = lib.env('REGISTRATION_ID');
  const deviceKey = lib.deriveKey(lib.env('GROUP_KEY'), registrationId);
  const ws = lib.env('TRANSPORT', 'mqtt') === 'ws';

  // The provisioning transport has no setOptions: the CA (and for WebSocket
  // the agent) go on the MqttBase it is built on (protocol notes §1.4).
  const base = new MqttBase();
  const options = { ca: lib.ca() };
  if (ws) options.mqtt = { webSocketAgent: lib.portAgent(lib.env('WS_PORT')) };
  base.setOptions(options);
  const transport = ws ? new ProvisioningMqtt.MqttWs(base) : new ProvisioningMqtt.Mqtt(base);
  const host = ws ? lib.env('WS_HOST', 'localhost') : lib.env('DPS_HOST');

  const security = new SymmetricKeySecurityClient(registrationId, deviceKey);
  const client = ProvisioningDeviceClient.create(host, lib.env('ID_SCOPE'), transport, security);
  // register() has its own 30 s per-request timeout; ours is a backstop.
  const result = await lib.within(45000, 'register', lib.cb((done) => client.register(done)));
  return { deviceKey, result };
}

module.exports = { provision };

if (require.main === module) {
  provision().then(({ deviceKey, result }) => {
    lib.emit('registered', {
      assignedHub: result.assignedHub,
      deviceId: result.deviceId,
      status: result.status,
      substatus: result.substatus,
      registrationId: result.registrationId,
      deviceKey,
    });
    process.exit(0);
  }, (err) => lib.fatal('registered', err));
}
