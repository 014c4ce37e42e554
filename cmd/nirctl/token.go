package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/introreg/nir/internal/auth"
)

func init() {
	register("token", "create or revoke a bearer token in nird's token file (token create|revoke)", runToken)
}

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "tokens.json", "token file (as given to nird --tokens)")
	name := fs.String("name", "", "principal name, recorded as the actor of its events (required)")
	role := fs.String("role", "", "kommune, analyst, operator or system (create)")
	kommune := fs.String("kommune", "", "kommunenummer of a kommune principal")
	system := fs.String("system", "", "name of the case system (fagsystem), recorded in events")
	natsUser := fs.String("nats-user", "", "bind the token to this case system's NATS user (nird --nats-case-systems): accepted only in its requests over NATS")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nirctl token create --name NAME --role ROLE [--kommune NNNN] [--system NAME] [--nats-user USER] [--file tokens.json]")
		fmt.Fprintln(stderr, "       nirctl token revoke --name NAME [--file tokens.json]")
		fmt.Fprintln(stderr, "create prints the token once; the file keeps only its SHA-256. Send SIGHUP to nird to reload.")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil || *name == "" {
		return badArgs(fs, err)
	}
	switch args[0] {
	case "create":
		token, err := auth.AddToken(*file, auth.Principal{Name: *name, Role: auth.Role(*role), Kommune: *kommune, System: *system, NATSUser: *natsUser})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "token for %q added to %s; it is shown only now\n", *name, *file)
	case "revoke":
		removed, err := auth.RemoveToken(*file, *name)
		if err != nil {
			return err
		}
		if !removed {
			return fmt.Errorf("no token named %q in %s", *name, *file)
		}
		fmt.Fprintf(stderr, "token %q removed from %s\n", *name, *file)
	default:
		fs.Usage()
		return errUsage
	}
	return nil
}
