package simulate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/sas"
)

// Provisioner is a minimal MQTT 3.1.1 client of the Device Provisioning
// Service: it speaks exactly the packets of the Azure IoT SDK's
// registration with a symmetric key and nothing else (so that a benchmark's
// load generator leaves the CPU to the server). See docs/provisioning.md.
type Provisioner struct {
	// Addr is the provisioning endpoint, host:port (Warden's MQTT TLS
	// listener).
	Addr string
	// IDScope is the tenant's ID scope.
	IDScope string
	// TLS configures the connection (ServerName, RootCAs).
	TLS *tls.Config
	// PollDelay is the wait between the 202 and the first poll (the SDK
	// waits the retry-after, 1 s; 0: none).
	PollDelay time.Duration
}

// Assignment is the result of a registration.
type Assignment struct {
	// AssignedHub is the hub host name to connect to, with ":port" when it
	// is not 8883.
	AssignedHub string `json:"assignedHub"`
	DeviceID    string `json:"deviceId"`
	Substatus   string `json:"substatus"`
}

// DeriveKey is the key of device regID of an enrollment group: the
// HMAC-SHA256 of the registration id with the group key.
func DeriveKey(groupKey []byte, regID string) []byte { return sas.DeriveDeviceKey(groupKey, regID) }

// Register registers regID, whose symmetric key is key (an individual
// enrollment's, or one derived from a group key with DeriveKey), on a
// connection of its own, and returns the assignment.
func (d *Provisioner) Register(ctx context.Context, regID string, key []byte) (Assignment, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: d.TLS}
	nc, err := dialer.DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return Assignment{}, fmt.Errorf("dial %s: %w", d.Addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second)) // the SDK's limit per request
	c := &mqttConn{r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}

	res := d.IDScope + "/registrations/" + regID
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 180, ClientIdentifier: regID,
			UsernameFlag: true, Username: []byte(res + "/api-version=2019-03-31&ClientVersion=warden-bench"),
			PasswordFlag: true, Password: []byte(sas.SignRaw(key, res, "registration", time.Now().Add(time.Hour)))}}
	if err := c.send(connect.ConnectEncode); err != nil {
		return Assignment{}, err
	}
	if typ, body, err := c.read(); err != nil || typ != packets.Connack || len(body) < 2 || body[1] != 0 {
		return Assignment{}, fmt.Errorf("%s: CONNACK: %w", regID, packetErr(typ, body, err))
	}

	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "$dps/registrations/res/#", Qos: 1}}}
	if err := c.send(sub.SubscribeEncode); err != nil {
		return Assignment{}, err
	}
	if typ, body, err := c.read(); err != nil || typ != packets.Suback || len(body) < 3 || body[2] != 1 {
		return Assignment{}, fmt.Errorf("%s: SUBACK: %w", regID, packetErr(typ, body, err))
	}

	rid := "1"
	status, answer, err := c.request(2, "$dps/registrations/PUT/iotdps-register/?$rid="+rid, `{"registrationId":"`+regID+`"}`, rid)
	if err != nil {
		return Assignment{}, fmt.Errorf("%s: register: %w", regID, err)
	}
	if status != 202 {
		return Assignment{}, fmt.Errorf("%s: register: %d %s", regID, status, answer)
	}
	var op struct {
		OperationID       string     `json:"operationId"`
		Status            string     `json:"status"`
		RegistrationState Assignment `json:"registrationState"`
	}
	if err := json.Unmarshal(answer, &op); err != nil || op.Status != "assigning" {
		return Assignment{}, fmt.Errorf("%s: register: answer %s", regID, answer)
	}
	for try := 0; ; try++ {
		if d.PollDelay > 0 {
			time.Sleep(d.PollDelay)
		}
		rid = strconv.Itoa(try + 2)
		status, answer, err = c.request(uint16(try+3), "$dps/registrations/GET/iotdps-get-operationstatus/?$rid="+rid+"&operationId="+op.OperationID, " ", rid)
		if err != nil {
			return Assignment{}, fmt.Errorf("%s: poll: %w", regID, err)
		}
		if err := json.Unmarshal(answer, &op); err != nil {
			return Assignment{}, fmt.Errorf("%s: poll: answer %s", regID, answer)
		}
		if status == 200 && op.Status == "assigned" {
			break
		}
		if (status != 202 && status < 429) || try == 10 {
			return Assignment{}, fmt.Errorf("%s: poll: %d %s", regID, status, answer)
		}
		time.Sleep(time.Second) // retry-after
	}

	unsub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 100,
		Filters: packets.Subscriptions{{Filter: "$dps/registrations/res/#"}}}
	if err := c.send(unsub.UnsubscribeEncode); err != nil {
		return Assignment{}, err
	}
	if typ, body, err := c.read(); err != nil || typ != packets.Unsuback {
		return Assignment{}, fmt.Errorf("%s: UNSUBACK: %w", regID, packetErr(typ, body, err))
	}
	disconnect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ProtocolVersion: 4}
	return op.RegistrationState, c.send(disconnect.DisconnectEncode)
}

func packetErr(typ byte, body []byte, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected packet type %d, % x", typ, body[:min(len(body), 16)])
}

// mqttConn reads and writes MQTT packets.
type mqttConn struct {
	r   *bufio.Reader
	w   *bufio.Writer
	buf bytes.Buffer
}

func (c *mqttConn) send(encode func(*bytes.Buffer) error) error {
	c.buf.Reset()
	if err := encode(&c.buf); err != nil {
		return err
	}
	if _, err := c.w.Write(c.buf.Bytes()); err != nil {
		return err
	}
	return c.w.Flush()
}

// read returns the next packet's type and body.
func (c *mqttConn) read() (byte, []byte, error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return 0, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	return h >> 4, body, nil
}

// request publishes at QoS 1 and waits for the PUBACK and for the answer
// whose $rid is rid; it returns the answer's status and body.
func (c *mqttConn) request(id uint16, topic, body, rid string) (int, []byte, error) {
	pub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 4, PacketID: id,
		TopicName: topic, Payload: []byte(body)}
	if err := c.send(pub.PublishEncode); err != nil {
		return 0, nil, err
	}
	acked := false
	for {
		typ, p, err := c.read()
		if err != nil {
			return 0, nil, err
		}
		switch typ {
		case packets.Puback:
			if len(p) < 2 || binary.BigEndian.Uint16(p) != id {
				return 0, nil, fmt.Errorf("PUBACK of another packet")
			}
			acked = true
			continue
		case packets.Publish:
		default:
			return 0, nil, packetErr(typ, p, nil)
		}
		if len(p) < 2 || int(binary.BigEndian.Uint16(p))+2 > len(p) {
			return 0, nil, errors.New("malformed PUBLISH")
		}
		n := int(binary.BigEndian.Uint16(p))
		t, payload := string(p[2:2+n]), p[2+n:] // QoS 0: no packet id
		rest, ok := strings.CutPrefix(t, "$dps/registrations/res/")
		status, query, ok2 := strings.Cut(rest, "/?")
		if !ok || !ok2 || !strings.Contains("&"+query+"&", "&$rid="+rid+"&") {
			return 0, nil, fmt.Errorf("answer on %q", t)
		}
		code, err := strconv.Atoi(status)
		if err != nil {
			return 0, nil, fmt.Errorf("answer on %q", t)
		}
		if !acked {
			return 0, nil, fmt.Errorf("answer on %q before the PUBACK", t)
		}
		return code, payload, nil
	}
}

// groupProvisioner registers the simulator's devices with an enrollment
// group.
type groupProvisioner struct {
	Provisioner
	groupKey []byte
}

// newProvisioner resolves what opts.Provisioning leaves out through the
// API: the ID scope, the provisioning host and the group key.
func newProvisioner(ctx context.Context, opts RunOptions) (*groupProvisioner, error) {
	p := *opts.Provisioning
	if p.Group == "" && p.GroupKey == nil {
		return nil, errors.New("simulate: provisioning: an enrollment group or its key is required")
	}
	if p.IDScope == "" || p.Host == "" {
		if opts.Client == nil {
			return nil, errors.New("simulate: provisioning: the ID scope and the provisioning host are required without an API token")
		}
		info, err := opts.Client.DPSInfo(ctx)
		if err != nil {
			return nil, fmt.Errorf("simulate: provisioning info: %w", err)
		}
		if p.IDScope == "" {
			p.IDScope = info.IDScope
		}
		if p.Host == "" {
			p.Host = info.ProvisioningHost
		}
	}
	if p.GroupKey == nil {
		if opts.Client == nil {
			return nil, errors.New("simulate: provisioning: the group key is required without an API token")
		}
		g, err := opts.Client.EnrollmentGroup(ctx, p.Group)
		if err != nil {
			return nil, fmt.Errorf("simulate: enrollment group %s: %w", p.Group, err)
		}
		if g.PrimaryKey == "" {
			return nil, fmt.Errorf("simulate: enrollment group %s: the server does not show you its key "+
				"(operator staff never see a customer's enrollment keys); pass the group key", p.Group)
		}
		if p.GroupKey, err = base64.StdEncoding.DecodeString(g.PrimaryKey); err != nil {
			return nil, fmt.Errorf("simulate: enrollment group %s: key: %w", p.Group, err)
		}
	}
	addr := p.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "8883")
	}
	host, _, _ := net.SplitHostPort(addr)
	return &groupProvisioner{groupKey: p.GroupKey, Provisioner: Provisioner{Addr: addr, IDScope: p.IDScope,
		TLS: &tls.Config{ServerName: host, RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}}}, nil
}

// register provisions regID, retrying twice, and returns the device's
// connection string.
func (g *groupProvisioner) register(ctx context.Context, regID string) (sas.ConnectionString, error) {
	key := DeriveKey(g.groupKey, regID)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var a Assignment
		if a, err = g.Register(ctx, regID, key); err == nil {
			if a.AssignedHub == "" || a.DeviceID == "" {
				return sas.ConnectionString{}, fmt.Errorf("provisioning %s: assignment without hub or device id", regID)
			}
			return sas.ConnectionString{HostName: a.AssignedHub, DeviceID: a.DeviceID, SharedAccessKey: key}, nil
		}
		if ctx.Err() != nil {
			return sas.ConnectionString{}, ctx.Err()
		}
		select {
		case <-time.After(time.Duration(attempt) * time.Second):
		case <-ctx.Done():
			return sas.ConnectionString{}, ctx.Err()
		}
	}
	return sas.ConnectionString{}, fmt.Errorf("provisioning %s: %w", regID, err)
}
