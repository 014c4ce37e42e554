package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchRebuildScale: --scale measures each population in turn and ends with the scale
// curve, one row per size with its events and figures.
func TestBenchRebuildScale(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and rebuilds two populations")
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--scale", "30,60", "--queries", "2", "--csv-runs", "1"}, &out, &errb); err != nil {
		t.Fatalf("bench rebuild --scale: %v\n%s", err, errb.String())
	}
	s := out.String()
	i := strings.Index(s, "scale curve of the rebuild:")
	if i < 0 {
		t.Fatalf("no scale curve in:\n%s", s)
	}
	rows := regexp.MustCompile(`(?m)^\s+(30|60)\s+(\d+)\s`).FindAllStringSubmatch(s[i:], -1)
	events := func(i int) int { n, _ := strconv.Atoi(rows[i][2]); return n }
	if len(rows) != 2 || rows[0][1] != "30" || rows[1][1] != "60" || events(0) == 0 || events(0) >= events(1) {
		t.Errorf("scale rows %v, want 30 and 60 persons with more events for 60:\n%s", rows, s[i:])
	}
	if err := run(context.Background(), []string{"rebuild", "--scale", "30,x"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "--scale") {
		t.Errorf("bad --scale: %v", err)
	}
}
