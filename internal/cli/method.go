package cli

import (
	"context"
	"fmt"
	"time"
)

const methodUsage = `method <subcommand> [flags]

Subcommands:
  invoke DEVICE METHOD [--payload JSON] [--timeout 30s]
                        call a direct method on a connected device and print
                        its answer (status and payload). The timeout is from
                        5s to 5m. Exits with 1 if the device is offline, does
                        not answer in time, or answers with a status of 400
                        or more.`

func runMethod(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "method", methodUsage, args)
	if err != nil {
		return err
	}
	payload := in.fs.String("payload", "", `request payload, JSON, e.g. '{"delay":3}' (default none: null)`)
	timeout := durationFlagOf(in.fs, "timeout", 30*time.Second, "how long to wait for the device's answer, 5s to 5m")
	if err := in.parse(args, map[string]arity{"invoke": {2, 2, "a device id and a method name", withToken}}); err != nil {
		return err
	}
	body, err := jsonFlag("payload", *payload)
	if err != nil {
		return in.usageError("%v", err)
	}
	if *timeout < 5*time.Second || *timeout > 5*time.Minute {
		return in.usageError("--timeout must be from 5s to 5m")
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	dev, method := in.arg(0), in.arg(1)
	res, err := c.InvokeMethod(ctx, dev, method, body, *timeout)
	if err != nil {
		return fmt.Errorf("invoke %s on %s: %w", method, dev, err)
	}
	if err := printObject(in, res); err != nil {
		return err
	}
	if res.Status >= 400 {
		return fmt.Errorf("device %s answered %s with status %d", dev, method, res.Status)
	}
	return nil
}
