'use strict';
// Shared helpers of the SDK scenario scripts. Each script is started by
// internal/e2e/sdk_test.go with its parameters in environment variables and
// reports what happened as one JSON object per line on stdout:
//
//   {"step":"connected","t":1767225600000, ...}
//   {"step":"telemetry","error":"...","name":"TimeoutError"}   <- a failed step
//
// The Go test waits for the steps it expects in order and fails on a line
// with an "error" field, on a crash, or when a step does not come in time.
// Diagnostics go to stderr (the Go test prints it when a scenario fails).

const fs = require('fs');
const https = require('https');
const crypto = require('crypto');

// env returns a required environment variable (or def if given).
function env(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (def !== undefined) return def;
    fatal('setup', new Error(`environment variable ${name} is not set`));
  }
  return v;
}

function emit(step, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ step, t: Date.now() }, fields || {})) + '\n');
}

function errFields(err) {
  if (!err) return { error: 'unknown error' };
  const f = { error: String(err.message || err), name: err.name || err.constructor && err.constructor.name };
  if (err.transportError) f.cause = String(err.transportError.message || err.transportError);
  if (err.code !== undefined) f.code = err.code;
  return f;
}

// fatal reports a failed step and ends the script.
function fatal(step, err) {
  emit(step, errFields(err));
  process.exit(1);
}

// A crash inside the SDK (for example JSON.parse of a bad server answer in
// an event handler) must show up as a failure, not as a silent exit.
process.on('uncaughtException', (err) => {
  console.error(err && err.stack || err);
  fatal('crash', err);
});
process.on('unhandledRejection', (err) => {
  console.error(err && err.stack || err);
  fatal('crash', err);
});

// The whole script has a deadline, so that a hang is a failure and never a
// stuck CI run. SDK_DEADLINE_MS is set by the Go test.
const deadline = Number(env('SDK_DEADLINE_MS', '60000'));
setTimeout(() => fatal('deadline', new Error(`script still running after ${deadline} ms`)), deadline).unref();

// within rejects if promise is not settled within ms.
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what}: no answer within ${ms} ms`);
      e.name = 'TimeoutError';
      reject(e);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// step runs fn, reports {step, ...result} or fails the script on error.
async function step(name, ms, fn) {
  let res;
  try {
    res = await within(ms, name, Promise.resolve().then(fn));
  } catch (err) {
    fatal(name, err);
  }
  emit(name, res);
  return res;
}

// Promise-returning wrappers of callback APIs.
function cb(fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

// ca is the PEM text of Warden's CA (WARDEN_CA is a file name).
function ca() {
  return fs.readFileSync(env('WARDEN_CA'), 'utf8');
}

// deriveKey is the enrollment-group device key, exactly as the official
// sample register_symkeygroup.js computes it.
function deriveKey(groupKey, registrationId) {
  return crypto.createHmac('SHA256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');
}

// portAgent is for the SDK's WebSocket transports, which always dial
// wss://{host}:443/$iothub/websocket. The SDK passes `mqtt.webSocketAgent`
// (a public option of the device client and of MqttBase) to the WebSocket
// library as its HTTPS agent; this agent opens the TLS connection to `port`
// instead of 443. Everything else — URL path, Host header, SNI, CA check,
// the WebSocket handshake and MQTT — is the SDK's own.
class PortAgent extends https.Agent {
  constructor(port) {
    super({ keepAlive: false });
    this.targetPort = Number(port);
  }

  createConnection(options, callback) {
    return super.createConnection(Object.assign({}, options, { port: this.targetPort }), callback);
  }
}

function portAgent(port) {
  return new PortAgent(port);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { env, emit, errFields, fatal, within, step, cb, ca, deriveKey, portAgent, sleep };
