// Command nirctl is the command line of the register for case systems, analysts and
// operators: it appends registrations, reads history, explains the regelmotor's view of a
// person, and measures performance.
//
//	nirctl [--server URL] [--token TOKEN] COMMAND [flags] [args]
//
// Run `nirctl help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one nirctl subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; each command's file calls it from init.
func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	if _, dup := commands[name]; dup {
		panic("nirctl: command registered twice: " + name)
	}
	commands[name] = command{name: name, summary: summary, run: run}
}

// globals are the flags that come before the command.
type globals struct {
	server string
	token  string
}

// global holds the parsed global flags for the running command.
var global globals

// errUsage marks a usage error: the command printed its own usage.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "nirctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nirctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g := &global
	fs.StringVar(&g.server, "server", envOr("NIR_SERVER", "http://127.0.0.1:8080"), "nird's API address (env NIR_SERVER)")
	fs.StringVar(&g.token, "token", os.Getenv("NIR_TOKEN"), "bearer token (env NIR_TOKEN)")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 || fs.Arg(0) == "help" {
		usage(stderr, fs)
		if fs.NArg() == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := commands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(stderr, "nirctl: unknown command %q\n", fs.Arg(0))
		usage(stderr, fs)
		return errUsage
	}
	return c.run(ctx, fs.Args()[1:], stdout, stderr)
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: nirctl [--server URL] [--token TOKEN] COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	fs.PrintDefaults()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
