package cli

import "context"

func runEnrollment(ctx context.Context, env *Env, args []string) error   { return errNotBuilt }
func runRegistration(ctx context.Context, env *Env, args []string) error { return errNotBuilt }
