package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register("bench", "moved: the benchmarks are their own command, nirbench", runBench)
}

// runBench points to nirbench: the benchmarks left nirctl, which carries only what case
// systems and operators run, but a reader of older notes still finds them.
func runBench(_ context.Context, args []string, _, stderr io.Writer) error {
	sub := "ingest|rebuild|peer|cluster"
	if len(args) > 0 {
		sub = args[0]
	}
	fmt.Fprintf(stderr, "the benchmarks are their own command now: go run ./cmd/nirbench %s [flags] (from a checkout of nir)\n", sub)
	return errUsage
}
