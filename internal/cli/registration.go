package cli

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/apiv1"
)

const registrationUsage = `registration <subcommand> [flags]

Subcommands:
  list                  list the devices' registrations
  show ID               print a registration
  delete ID             delete a registration record (the device stays; to
                        provision it again, delete the device too)`

func runRegistration(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "registration", registrationUsage, args)
	if err != nil {
		return err
	}
	one := arity{1, 1, "a registration id", withToken}
	if err := in.parse(args, map[string]arity{"list": {}, "show": one, "delete": one}); err != nil {
		return err
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "list":
		var all []apiv1.Registration
		for after := ""; ; {
			rs, next, err := c.Registrations(ctx, after, 0)
			if err != nil {
				return fmt.Errorf("list registrations: %w", err)
			}
			all = append(all, rs...)
			if next == "" {
				break
			}
			after = next
		}
		return printList(in, all, "no registrations", []string{"REGISTRATION ID", "DEVICE ID", "ENROLLMENT", "STATUS", "SUBSTATUS", "UPDATED"},
			func(r apiv1.Registration) []any {
				return []any{r.RegistrationID, r.DeviceID, r.EnrollmentType + "/" + r.EnrollmentID, r.Status, dash(r.Substatus), localTime(r.UpdatedAt)}
			})
	case "show":
		r, err := c.Registration(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show registration %s: %w", in.arg(0), err)
		}
		return printObject(in, r)
	case "delete":
		if err := c.DeleteRegistration(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("delete registration %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "registration %s deleted (the device stays)\n", in.arg(0))
	}
	return nil
}
