package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/broker"
	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/server"
)

// listFlag is a flag that may be repeated or given as a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("serve", "serve [flags]", env.Stderr)
	var (
		cfg       server.Config
		hostnames listFlag
		logLevel  string
		logFormat string
		smtpURL   string
		proxies   listFlag
	)
	fs.String("config", "", "config file: one \"flag-name value\" per line")
	fs.StringVar(&cfg.DataDir, "data-dir", "warden-data", "directory for the database, certificates and keys")
	fs.StringVar(&cfg.MQTTListen, "mqtt-listen", ":8883", "MQTT over TLS listen address (empty: off)")
	fs.StringVar(&cfg.MQTTTCPListen, "mqtt-tcp-listen", "", "plain-TCP MQTT listen address, e.g. :1883 (empty: off)")
	fs.IntVar(&cfg.MQTTMaxConnections, "mqtt-max-connections", 0, "cap on open MQTT connections of this node, authenticated or not (TLS, TCP and WebSocket); 0: the open-file limit less a reserve")
	durationVar(fs, &cfg.MQTTConnectTimeout, "mqtt-connect-timeout", broker.DefaultConnectTimeout, "time a new MQTT connection has for its TLS handshake and CONNECT packet")
	durationVar(fs, &cfg.MQTTWriteTimeout, "mqtt-write-timeout", broker.DefaultWriteTimeout, "time each write to an MQTT client may take; a client that does not read is dropped after it")
	fs.IntVar(&cfg.MQTTMaxPacketSize, "mqtt-max-packet-size", broker.DefaultMaxPacketSize, "largest MQTT packet accepted, in bytes (a larger one closes the connection)")
	fs.StringVar(&cfg.HTTPListen, "http-listen", ":8443", "HTTPS API listen address")
	fs.Var(&hostnames, "hostname", "host name(s) devices use to reach this server, comma-separated or repeated; the first is the hub host name (default localhost)")
	fs.StringVar(&cfg.Database, "database", "", "database: empty for SQLite in the data dir, sqlite:<path>, or postgres://user@host/db")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "operator API token to set on first start instead of generating one")
	fs.StringVar(&cfg.MasterKey, "master-key", "", "master key, base64 of 32 bytes (prefer the WARDEN_MASTER_KEY variable; default: the key file)")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "file holding the master key, e.g. a mounted secret apart from the database; it must exist (default <data-dir>/master.key, created on first start)")
	fs.IntVar(&cfg.MaxMessageSize, "max-message-size", ingest.DefaultMaxPayload, "largest telemetry payload stored, in bytes; larger ones are kept as rejected with their size, hash and first KiB")
	durationVar(fs, &cfg.DedupWindow, "dedup-window", server.DefaultDedupWindow, "how long message ids are remembered to drop duplicates")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "address for Go's pprof profiles at /debug/pprof/, e.g. 127.0.0.1:6060 (empty: off; never expose it)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "URL people use to reach this server; account e-mail links point there (default https://<first hostname>:<https port>)")
	fs.StringVar(&smtpURL, "smtp-url", "", "mail server for account e-mails: smtp://user:password@host:587?from=warden@example.com (smtps:// for implicit TLS; empty: links are shown to the admin instead)")
	fs.Var(&proxies, "trusted-proxies", "reverse proxies in front of the HTTPS API, addresses or CIDRs, comma-separated; their X-Forwarded-For names the client in the audit trail")
	fs.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", false, "let alarm webhooks reach loopback and private addresses (off: public addresses only)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	log, err := newLogger(env.Stderr, logLevel, logFormat)
	if err != nil {
		return err
	}
	cfg.Hostnames = hostnames
	cfg.Out = env.Stdout
	for _, p := range proxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return fmt.Errorf("%w: --trusted-proxies: %q is not an address or CIDR", errUsage, p)
			}
			pfx = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx.Masked())
	}
	if smtpURL != "" {
		if cfg.SMTP, err = mail.ParseURL(smtpURL); err != nil {
			return fmt.Errorf("%w: --smtp-url: %v", errUsage, err)
		}
	}

	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return startErr(ctx, log, err)
	}
	if err := srv.Start(ctx); err != nil {
		if serr := shutdown(srv); serr != nil {
			log.Warn("stopping after a failed start", "err", serr)
		}
		return startErr(ctx, log, err)
	}
	<-ctx.Done()
	log.Info("shutting down")
	if err := shutdown(srv); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// startErr is what a start that failed returns: nil when it was asked to
// stop (a signal during start-up), which is no failure.
func startErr(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() != nil {
		log.Info("stopped during start-up", "err", err)
		return nil
	}
	return err
}

func shutdown(srv *server.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}
