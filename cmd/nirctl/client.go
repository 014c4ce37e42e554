package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// httpClient is the HTTP client for nird's API, with the global token (auth.BearerTransport).
func httpClient(ctx context.Context) *http.Client {
	return &http.Client{Transport: auth.BearerTransport(globalsOf(ctx).token, http.DefaultTransport), Timeout: 5 * time.Minute}
}

// serverURL is nird's API address from the global flags.
func serverURL(ctx context.Context) string { return strings.TrimRight(globalsOf(ctx).server, "/") }

func registrationClient(ctx context.Context) nirv1connect.RegistrationServiceClient {
	return nirv1connect.NewRegistrationServiceClient(httpClient(ctx), serverURL(ctx))
}

// personRef reads a command-line person argument: a person key, or a national id; "-"
// reads either from the first line of stdin, so that a national id need not stand in the
// command line, which any local process reads in /proc and the shell keeps in its history.
func personRef(ctx context.Context, arg string) (*nirv1.PersonRef, error) {
	if arg == "-" {
		line, err := bufio.NewReader(io.LimitReader(stdinOf(ctx), 256)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the person from stdin: %w", err)
		}
		if arg = strings.TrimSpace(line); arg == "" {
			return nil, errors.New("PERSON is -, but stdin holds no national id or person key")
		}
	}
	if personkey.IsKey(arg) {
		return &nirv1.PersonRef{PersonKey: arg}, nil
	}
	return &nirv1.PersonRef{NationalId: arg}, nil
}

// readRegistrations reads protojson Registration lines as nirctl import does
// (regfile.ScanJSONL); an event without an id gets a new ULID.
func readRegistrations(r io.Reader, yield func(line int, reg *nirv1.Registration) error) error {
	return regfile.ScanJSONL(r, func(l regfile.Line) error {
		if ev := l.Registration.GetEvent(); ev != nil && ev.GetId() == "" {
			ev.Id = ulid.Make().String()
		}
		return yield(l.Number, l.Registration)
	})
}

// callErr makes a Connect error readable: its code and message.
func callErr(op string, err error) error {
	if ce, ok := err.(*connect.Error); ok {
		return fmt.Errorf("%s: %s: %s", op, ce.Code(), ce.Message())
	}
	return fmt.Errorf("%s: %w", op, err)
}
