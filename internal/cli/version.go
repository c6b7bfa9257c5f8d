package cli

import (
	"context"
	"fmt"
	"runtime"
)

// Version is set at build time with -ldflags "-X ...cli.Version=…".
var Version = "dev"

const versionUsage = `version [--json]

Prints the version of warden; "warden --version" does the same.`

func runVersion(_ context.Context, env *Env, args []string) error {
	in := beginPlain(env, "version", versionUsage)
	if err := in.parse(args, map[string]arity{"": {access: local}}); err != nil {
		return err
	}
	if in.json {
		return printJSON(env, map[string]string{"version": Version, "go": runtime.Version()})
	}
	fmt.Fprintln(env.Stdout, "warden", Version)
	return nil
}
