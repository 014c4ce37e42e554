// Command nirctl is the command line of the register for case systems, analysts and
// operators: it appends and imports registrations, reads history and person lists,
// statistics and reports, explains the regelmotor's view of a person offline, replays
// history as of a date, and runs the operator's tasks (read models, tokens). The
// benchmarks are a command of their own, nirbench.
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
	"strings"
	"syscall"

	"github.com/introreg/nir/internal/buildinfo"
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

type globalsKey struct{}

type stdinKey struct{}

// withStdin makes commands run under ctx read r as their stdin (tests).
func withStdin(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, stdinKey{}, r)
}

// stdinOf is the stdin of the command ctx runs: os.Stdin unless withStdin put another.
func stdinOf(ctx context.Context) io.Reader {
	if r, ok := ctx.Value(stdinKey{}).(io.Reader); ok {
		return r
	}
	return os.Stdin
}

// globalsOf returns the global flags of the command ctx runs (run puts them there, so that
// commands and their tests share no package state).
func globalsOf(ctx context.Context) globals {
	g, _ := ctx.Value(globalsKey{}).(*globals)
	if g == nil {
		return globals{}
	}
	return *g
}

// errUsage marks a usage error: the usage was printed (exit status 2).
var errUsage = errors.New("usage")

// errHelp marks a request for help (-h, --help): the usage was printed once, and that is
// no error (exit status 0).
var errHelp = errors.New("help")

// badArgs is a command's answer to wrong arguments. err is the flag package's parse error:
// the package has printed the usage then (and -h is a request for help, not an error). With
// err nil the arguments parsed but are wrong, and badArgs prints the usage itself.
func badArgs(fs *flag.FlagSet, err error) error {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	case err != nil:
		return errUsage
	}
	fs.Usage()
	return errUsage
}

// usageError prints fs's usage and returns a usage error (exit status 2) that also names
// what is missing or wrong (msg names the flag).
func usageError(fs *flag.FlagSet, msg string) error {
	fs.Usage()
	return namedUsage(fs.Name() + ": " + msg)
}

// namedUsage is errUsage with a message of its own, printed after the usage.
type namedUsage string

func (e namedUsage) Error() string        { return string(e) }
func (e namedUsage) Is(target error) bool { return target == errUsage }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, errHelp):
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "nirctl:", err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "nirctl:", err)
		os.Exit(1)
	}
}

// globalFlags are the flags every command takes, before or after the command's name.
var globalFlags = map[string]bool{"server": true, "token": true}

// splitGlobals takes the global flags (--server, --token, in either form) out of args
// wherever they stand before a "--", and returns the rest, so that `nirctl stats --year 2023
// --token analyst` works as well as `nirctl --token analyst stats --year 2023`. No command
// has a flag of these names.
func splitGlobals(args []string) (globals, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return globals, append(rest, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !globalFlags[name] {
			rest = append(rest, a)
			continue
		}
		globals = append(globals, a)
		if !hasValue && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	return globals, rest
}

// isHelp reports whether args ask for help before a "--".
func isHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "help":
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nirctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g := &globals{}
	fs.StringVar(&g.server, "server", envOr("NIR_SERVER", "http://127.0.0.1:8080"), "nird's API address (env NIR_SERVER)")
	fs.StringVar(&g.token, "token", os.Getenv("NIR_TOKEN"), "bearer token (env NIR_TOKEN)")
	showVersion := fs.Bool("version", false, "print nirctl's version and exit")
	fs.Usage = func() { usage(stderr, fs) }
	globals, rest := splitGlobals(args)
	// The global flags first, then whatever precedes the command (--version, --help).
	if err := fs.Parse(append(globals, rest...)); err != nil {
		return badArgs(fs, err)
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.Text("nirctl"))
		return nil
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return errUsage
	}
	name, cmdArgs := fs.Arg(0), fs.Args()[1:]
	switch name {
	case "help":
		if len(cmdArgs) > 0 {
			c, ok := commands[cmdArgs[0]]
			if !ok {
				// "help bogus" is a wrong use, not help: exit 2 naming it, as "bogus" alone does.
				fmt.Fprintf(stderr, "nirctl: unknown command %q\n", cmdArgs[0])
				usage(stderr, fs)
				return errUsage
			}
			name, cmdArgs = c.name, []string{"--help"}
			break
		}
		usage(stdout, fs)
		return nil
	case "version":
		fmt.Fprintln(stdout, buildinfo.Text("nirctl"))
		return nil
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "nirctl: unknown command %q\n", name)
		usage(stderr, fs)
		return errUsage
	}
	err := c.run(context.WithValue(ctx, globalsKey{}, g), cmdArgs, stdout, stderr)
	if isHelp(cmdArgs) && errors.Is(err, errUsage) {
		// A command with subcommands answers --help with its usage, as for a wrong use.
		return errHelp
	}
	return err
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: nirctl [--server URL] [--token TOKEN] COMMAND [flags] [args]")
	fmt.Fprintln(w, "       nirctl help COMMAND | COMMAND --help | --version")
	fmt.Fprintln(w, "\nThe global flags may also follow the command. --json prints the API's JSON (protojson")
	fmt.Fprintln(w, "field names and enum names), one object per line, with 64-bit counts as numbers; the bench")
	fmt.Fprintln(w, "commands' --json is their own report.")
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
