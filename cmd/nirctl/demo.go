package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/schollz/progressbar/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/introreg/nir/internal/demo"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func init() {
	register("demo", "generate a synthetic demo population and append it to the server (or write it as protojson lines)", runDemo)
}

const demoUsage = `usage: nirctl demo --persons N [--seed S] [--now YYYY-MM-DD] [--batch N] [--concurrency N] [--progress] [--out FILE]

Generates N synthetic persons (internal/demo: introduksjonsloven, integreringsloven and
chapter 6A life cycles, synthetic fødselsnummer and D-nummer, real kommuner) and appends
their events to the server, whole persons per atomic request, several requests at a time.
The population is deterministic for (seed, persons, now), event ids included, so running
the same command again stores nothing twice (the events are reported as already stored).
National ids are unique within one seed only: populations of two seeds share some ids, so
the second is refused with NIR-R002 (person already registered). Load one seed per register.

Events carry each kommune's number, so the token must be the system principal's (or nird
runs in development mode without --tokens). With --out the registrations are written as
protojson lines (for nirctl import or nirctl append) instead of being sent.
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	persons := fs.Int("persons", 0, "number of persons to generate (required)")
	seed := fs.Int64("seed", 1, "seed of the population")
	nowFlag := fs.String("now", "", "the population's today (YYYY-MM-DD); default today in Norway")
	batch := fs.Int("batch", 500, "registrations per request, at most 1000 (a person is never split)")
	concurrency := fs.Int("concurrency", 4, "requests in flight")
	progress := fs.Bool("progress", false, "show a progress bar on stderr even when it is not a terminal")
	out := fs.String("out", "", "write protojson Registration lines to FILE (- for stdout) instead of appending")
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return errUsage
	case *persons < 1:
		return errors.New("--persons: give the number of persons, at least 1")
	case *batch < 1 || *batch > 1000:
		return fmt.Errorf("--batch: %d is not between 1 and 1000", *batch)
	case *concurrency < 1 || *concurrency > 64:
		return fmt.Errorf("--concurrency: %d is not between 1 and 64", *concurrency)
	}
	now, err := demoNow(*nowFlag)
	if err != nil {
		return err
	}
	pop := demo.Generate(*seed, *persons, now)
	if *out != "" {
		return writeDemo(pop, *out, stdout, stderr)
	}

	bar := progressbar.NewOptions(*persons,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetVisibility(*progress || isTerminal(stderr)),
		progressbar.OptionSetDescription("persons"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("persons"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	defer func() { _ = bar.Exit() }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type request struct {
		regs    []*nirv1.Registration
		persons int
	}
	var (
		client   = registrationClient(ctx)
		work     = make(chan request)
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sent     struct{ persons, events, duplicates int }
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range *concurrency {
		wg.Go(func() {
			for req := range work {
				res, err := client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: req.regs}))
				if err != nil {
					fail(callErr("append", err))
					continue
				}
				mu.Lock()
				sent.persons += req.persons
				sent.events += len(req.regs)
				for _, p := range res.Msg.GetPositions() {
					if p.GetDuplicate() {
						sent.duplicates++
					}
				}
				mu.Unlock()
				_ = bar.Add(req.persons)
			}
		})
	}
	start := time.Now()
	var cur request
	send := func() bool {
		if len(cur.regs) == 0 {
			return true
		}
		select {
		case work <- cur:
			cur = request{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for evs := range pop {
		regs := demo.Registrations(evs)
		if len(cur.regs) > 0 && len(cur.regs)+len(regs) > *batch {
			if !send() {
				break
			}
		}
		cur.regs = append(cur.regs, regs...)
		cur.persons++
	}
	send()
	close(work)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%w (%d persons, %d events appended before the error)", firstErr, sent.persons, sent.events)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = bar.Finish()
	secs := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "appended %d persons, %d events (%d already stored) in %.1fs, %.0f events/s\n",
		sent.persons, sent.events, sent.duplicates, secs, float64(sent.events)/secs)
	return nil
}

// demoNow parses --now, or is today's date in Norway (the register's calendar).
func demoNow(s string) (rules.Date, error) {
	if s != "" {
		d, err := rules.ParseDate(s)
		if err != nil {
			return rules.Date{}, fmt.Errorf("--now: %w", err)
		}
		return d, nil
	}
	return rules.Today(time.Now()), nil
}

// writeDemo writes the population as protojson Registration lines.
func writeDemo(pop iter.Seq[[]*nirv1.Event], path string, stdout, stderr io.Writer) error {
	w := stdout
	var f *os.File
	if path != "-" {
		var err error
		if f, err = os.Create(path); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	persons, events := 0, 0
	for evs := range pop {
		for _, reg := range demo.Registrations(evs) {
			b, err := protojson.Marshal(reg)
			if err != nil {
				return err
			}
			bw.Write(b)
			bw.WriteByte('\n')
			events++
		}
		persons++
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "wrote %d persons, %d events\n", persons, events)
	return nil
}
