package cli

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/client"
)

const twinUsage = `twin <subcommand> [flags]

Subcommands:
  get DEVICE            print the device twin (tags, desired and reported
                        properties)
  set DEVICE [--desired JSON] [--tags JSON] [--if-match ETAG]
                        merge a JSON patch into the desired properties and/or
                        the tags (a null value deletes a key); a connected
                        device gets the desired patch at once`

func runTwin(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "twin", twinUsage, args)
	if err != nil {
		return err
	}
	desired := in.fs.String("desired", "", `desired-properties patch, e.g. '{"interval":10}' (set)`)
	tags := in.fs.String("tags", "", `tags patch, e.g. '{"site":"berlin"}' (set)`)
	ifMatch := in.fs.String("if-match", "", "change only if the twin still has this etag (set)")
	one := arity{1, 1, "a device id", withToken}
	if err := in.parse(args, map[string]arity{"get": one, "set": one}); err != nil {
		return err
	}
	var p client.TwinPatch
	if in.sub == "set" {
		if p.Desired, err = jsonFlag("desired", *desired); err != nil {
			return in.usageError("%v", err)
		}
		if p.Tags, err = jsonFlag("tags", *tags); err != nil {
			return in.usageError("%v", err)
		}
		if p.Desired == nil && p.Tags == nil {
			return in.usageError("give --desired and/or --tags")
		}
		p.IfMatch = *ifMatch
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	dev := in.arg(0)
	if in.sub == "get" {
		tw, err := c.Twin(ctx, dev)
		if err != nil {
			return fmt.Errorf("twin of %s: %w", dev, err)
		}
		return printObject(in, tw)
	}
	tw, err := c.UpdateTwin(ctx, dev, p)
	if err != nil {
		return fmt.Errorf("update the twin of %s: %w", dev, err)
	}
	return printObject(in, tw)
}
