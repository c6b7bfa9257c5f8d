package cli

import (
	"context"
	"errors"
)

var errNotBuilt = errors.New("not built yet")

func runTwin(ctx context.Context, env *Env, args []string) error   { return errNotBuilt }
func runMethod(ctx context.Context, env *Env, args []string) error { return errNotBuilt }
func runC2D(ctx context.Context, env *Env, args []string) error    { return errNotBuilt }
