package simulate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/sas"
)

// DefaultTokenTTL is the lifetime of the SAS tokens a Device signs. The
// server closes a connection whose token expires; the Device then reconnects
// with a fresh token.
const DefaultTokenTTL = 24 * time.Hour

// DialConfig describes one device connection.
type DialConfig struct {
	// Addr is the MQTT listener, host:port.
	Addr string
	// HubHost is the HostName of the device's connection string (it may
	// carry a ":port"); it goes into the user name and the SAS token, and
	// its host part is the TLS server name unless ServerName is set.
	HubHost string
	// DeviceID is the device id, also the MQTT client id.
	DeviceID string
	// Key is the device's symmetric key. Nil connects without user name
	// and password (a plain MQTT broker with anonymous access).
	Key []byte
	// RootCAs verifies the server certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// ServerName overrides the TLS server name.
	ServerName string
	// Plain dials MQTT over TCP without TLS.
	Plain bool
	// Insecure skips the verification of the server certificate.
	Insecure bool
	// TokenTTL is the lifetime of each SAS token (default DefaultTokenTTL).
	TokenTTL time.Duration
	// KeepAlive is the MQTT keep-alive (default 60 s).
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (default 15 s).
	ConnectTimeout time.Duration
	// NoReconnect turns off the automatic reconnection after a lost
	// connection.
	NoReconnect bool
	// OnConnectionLost, if set, is called when an established connection
	// is lost.
	OnConnectionLost func(deviceID string, err error)
}

// Device is one simulated device's MQTT 3.1.1 connection, speaking the
// Azure IoT Hub dialect: client id = device id, SAS token as password, clean
// session 0, telemetry at QoS 1. Its methods are safe for concurrent use.
type Device struct {
	id     string
	topic  string // telemetry topic up to the message id
	client pahomqtt.Client
}

// Dial connects a device and waits for the CONNACK.
func Dial(ctx context.Context, cfg DialConfig) (*Device, error) {
	if cfg.DeviceID == "" || cfg.Addr == "" {
		return nil, errors.New("simulate: dial: device id and address are required")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = time.Minute
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	opts := pahomqtt.NewClientOptions().
		SetClientID(cfg.DeviceID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(30 * time.Second).
		SetConnectRetry(false).
		SetAutoReconnect(!cfg.NoReconnect).
		SetMaxReconnectInterval(30 * time.Second)
	if cfg.Plain {
		opts.AddBroker("tcp://" + cfg.Addr)
	} else {
		name := cfg.ServerName
		if name == "" {
			name = hostOnly(cfg.HubHost)
		}
		if name == "" {
			name = hostOnly(cfg.Addr)
		}
		opts.AddBroker("tls://" + cfg.Addr)
		opts.SetTLSConfig(&tls.Config{
			RootCAs:            cfg.RootCAs,
			ServerName:         name,
			InsecureSkipVerify: cfg.Insecure,
			MinVersion:         tls.VersionTLS12,
		})
	}
	if cfg.Key != nil {
		user := cfg.HubHost + "/" + cfg.DeviceID + "/?api-version=2021-04-12"
		res := sas.DeviceResource(cfg.HubHost, cfg.DeviceID)
		key, ttl := cfg.Key, cfg.TokenTTL
		// Called at every (re)connection: a reconnect after the server
		// dropped an expired token gets a fresh one.
		opts.SetCredentialsProvider(func() (string, string) {
			return user, sas.Sign(key, res, time.Now().Add(ttl))
		})
	}
	if cfg.OnConnectionLost != nil {
		lost, id := cfg.OnConnectionLost, cfg.DeviceID
		opts.SetConnectionLostHandler(func(_ pahomqtt.Client, err error) { lost(id, err) })
	}
	c := pahomqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { // do not leave a connection behind if it succeeds later
			tok.Wait()
			c.Disconnect(0)
		}()
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("device %s: connect %s: %w", cfg.DeviceID, cfg.Addr, err)
	}
	return &Device{
		id:     cfg.DeviceID,
		topic:  "devices/" + cfg.DeviceID + "/messages/events/%24.mid=",
		client: c,
	}, nil
}

// ID returns the device id.
func (d *Device) ID() string { return d.id }

// Publish sends body as telemetry at QoS 1 with the given message id and
// waits for the PUBACK or for ctx. While the connection is being
// re-established the message waits in the client and is sent after the
// reconnection. body must not be modified until Publish returns; after an
// error it may still be sent later, so it must not be modified at all.
func (d *Device) Publish(ctx context.Context, messageID string, body []byte) error {
	return wait(ctx, d.client.Publish(d.topic+sas.Escape(messageID), 1, false, body))
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, tok pahomqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the connection is up now.
func (d *Device) Connected() bool { return d.client.IsConnectionOpen() }

// Close disconnects, giving outstanding acknowledgements a moment.
func (d *Device) Close() { d.client.Disconnect(250) }

// hostOnly strips a ":port" from host.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// Subscribe subscribes to filter and calls handle for each message; handle
// runs on the client's goroutine and must not block.
func (d *Device) Subscribe(ctx context.Context, filter string, qos byte, handle func(topic string, payload []byte)) error {
	tok := d.client.Subscribe(filter, qos, func(_ pahomqtt.Client, m pahomqtt.Message) { handle(m.Topic(), m.Payload()) })
	return wait(ctx, tok)
}

// PublishTopic publishes payload on any topic at the given QoS and, for
// QoS 1, waits for the PUBACK.
func (d *Device) PublishTopic(ctx context.Context, topic string, qos byte, payload []byte) error {
	return wait(ctx, d.client.Publish(topic, qos, false, payload))
}
