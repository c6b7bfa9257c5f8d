package cli

import (
	"context"
	"errors"
)

func runSimulate(ctx context.Context, env *Env, args []string) error {
	return errors.New("not yet wired")
}
