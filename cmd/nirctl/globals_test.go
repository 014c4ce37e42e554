package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRun_ParallelCommandsKeepTheirGlobals: commands run at the same time in one process
// (as parallel tests do) each reach their own --server with their own --token; the global
// flags are the command's, not the package's.
func TestRun_ParallelCommandsKeepTheirGlobals(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var wrong []string
	seen := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The path starts with /g<N>/, the token is t<N>.
		n, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/g"), "/")
		mu.Lock()
		seen++
		if got := r.Header.Get("Authorization"); got != "Bearer t"+n {
			wrong = append(wrong, fmt.Sprintf("%s got %q", r.URL.Path, got))
		}
		mu.Unlock()
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	var wg sync.WaitGroup
	const n = 16
	for i := range n {
		wg.Go(func() {
			args := []string{"--server", fmt.Sprintf("%s/g%d", srv.URL, i), "projections", "status", "--token", fmt.Sprintf("t%d", i)}
			if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
				t.Errorf("command %d succeeded against a server that answers 503", i)
			}
		})
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Errorf("requests with another command's token:\n%s", strings.Join(wrong, "\n"))
	}
	if seen < n {
		t.Errorf("the server saw %d requests, want at least %d", seen, n)
	}
}
