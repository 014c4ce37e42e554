package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/freeport"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// Dir holds the processes' files; it must exist.
	Dir  string
	Bins Binaries
	// Events is how many registrations each ingest measurement appends, Queries how many
	// person reads each query measurement makes, Clients how many do so at once.
	Events, Queries, Clients int
	// Rounds alternate the single node and the cluster, so that both see the same load.
	Rounds int
	// Nirds on the cluster (default 2).
	Nirds int
	Log   func(msg string, args ...any)
}

// BenchResult is one measurement.
type BenchResult struct {
	Setup  string  `json:"setup"` // "single" or "cluster"
	Round  int     `json:"round"`
	What   string  `json:"what"` // "ingest" or "query"
	Ops    int     `json:"ops"`
	PerSec float64 `json:"per_sec"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Errors int     `json:"errors"`
}

// BenchReport is every measurement and the ratios cluster/single of the medians.
type BenchReport struct {
	Clients     int           `json:"clients"`
	Nirds       int           `json:"cluster_nirds"`
	Results     []BenchResult `json:"results"`
	IngestRatio float64       `json:"ingest_cluster_per_single"`
	QueryRatio  float64       `json:"query_cluster_per_single"`
}

// Bench measures ingest (one registration of a new person per call, Clients at once, over
// HTTP) and queries (GetPerson by national id of those persons) on one nird with its
// embedded NATS (every write fsynced) and on the 3-node cluster (R3, sync always, no
// proxies) with Nirds nird, the clients spread over them, in alternating rounds.
func Bench(ctx context.Context, opt BenchOptions) (*BenchReport, error) {
	if opt.Nirds == 0 {
		opt.Nirds = 2
	}
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	rep := &BenchReport{Clients: opt.Clients, Nirds: opt.Nirds}
	for round := range opt.Rounds {
		for _, setup := range []string{"single", "cluster"} {
			dir := filepath.Join(opt.Dir, fmt.Sprintf("%s-%d", setup, round))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			urls, token, stop, err := startSetup(ctx, setup, dir, opt)
			if err != nil {
				return nil, err
			}
			opt.Log("measuring", "setup", setup, "round", round+1, "nird", len(urls))
			persons := make([]string, opt.Events)
			for i := range persons {
				persons[i] = NewPerson(2*(round*opt.Events+i) + 1).NationalID
			}
			ing := measure(ctx, opt.Clients, opt.Events, func(ctx context.Context, c *http.Client, i int) error {
				p := NewPerson(2*(round*opt.Events+i) + 1)
				r := nirv1connect.NewRegistrationServiceClient(c, urls[i%len(urls)], connect.WithInterceptors(auth.BearerInterceptor(token)))
				_, err := r.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{p.registration(0)}}))
				return err
			})
			ing.Setup, ing.Round, ing.What = setup, round+1, "ingest"
			// Every nird has the persons before the reads start.
			if err := waitCaughtUp(ctx, urls, token, persons[len(persons)-1]); err != nil {
				stop()
				return nil, err
			}
			q := measure(ctx, opt.Clients, opt.Queries, func(ctx context.Context, c *http.Client, i int) error {
				r := nirv1connect.NewQueryServiceClient(c, urls[i%len(urls)], connect.WithInterceptors(auth.BearerInterceptor(token)))
				_, err := r.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: persons[rand.IntN(len(persons))]}}))
				return err
			})
			q.Setup, q.Round, q.What = setup, round+1, "query"
			stop()
			opt.Log("measured", "setup", setup, "round", round+1, "ingest_per_sec", int(ing.PerSec), "query_per_sec", int(q.PerSec))
			rep.Results = append(rep.Results, ing, q)
		}
	}
	median := func(setup, what string) float64 {
		var v []float64
		for _, r := range rep.Results {
			if r.Setup == setup && r.What == what {
				v = append(v, r.PerSec)
			}
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	if s := median("single", "ingest"); s > 0 {
		rep.IngestRatio = median("cluster", "ingest") / s
	}
	if s := median("single", "query"); s > 0 {
		rep.QueryRatio = median("cluster", "query") / s
	}
	return rep, nil
}

// startSetup starts one nird with its embedded server, or the cluster, and returns the API
// URLs, the case system's token and how to stop it.
func startSetup(ctx context.Context, setup, dir string, opt BenchOptions) ([]string, string, func(), error) {
	if setup == "cluster" {
		c, err := NewCluster(ClusterOptions{Dir: dir, Bins: opt.Bins, Nirds: opt.Nirds, Direct: true})
		if err != nil {
			return nil, "", nil, err
		}
		if err := c.Start(ctx); err != nil {
			c.Close()
			return nil, "", nil, err
		}
		var urls []string
		for _, n := range c.Nirds {
			urls = append(urls, n.URL())
		}
		return urls, c.Token, c.Close, nil
	}
	token := "nir_bench-" + randomHex(16)
	tokens := filepath.Join(dir, "tokens.json")
	if err := auth.WriteEntries(tokens, []auth.Entry{{Name: "bench", Role: auth.RoleKommune, Kommune: "0301", TokenSHA256: auth.HashToken(token)}}); err != nil {
		return nil, "", nil, err
	}
	if _, err := personkey.LoadOrCreate(filepath.Join(dir, personkey.FileName)); err != nil {
		return nil, "", nil, err
	}
	var api string
	var p *proc
	// A port found free may be taken before nird binds it: then again on others.
	err := freeport.Retry(func(int) error {
		hp, err := freeport.Port()
		if err != nil {
			return err
		}
		ap, err := freeport.Port()
		if err != nil {
			return err
		}
		admin := "127.0.0.1:" + strconv.Itoa(ap)
		api = "127.0.0.1:" + strconv.Itoa(hp)
		args := []string{"--data", filepath.Join(dir, "data"), "--http", api, "--admin", admin,
			"--nats-listen", "127.0.0.1:0", "--tokens", tokens, "--person-key-file", filepath.Join(dir, personkey.FileName),
			"--rate-limit", "0", // the clients share one token
		}
		if p, err = startProc(filepath.Join(dir, "nird.log"), exec.Command(opt.Bins.Nird, slices.Concat(args, nirdLogArgs)...)); err != nil {
			return err
		}
		if err := waitNird(ctx, p, admin, 60*time.Second); err != nil {
			_ = p.signal(syscall.SIGKILL)
			return fmt.Errorf("chaos: bench nird %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	return []string{"http://" + api}, token, func() { _ = p.signal(syscall.SIGKILL) }, nil
}

// waitCaughtUp waits until every nird's read models have the person with national id id.
func waitCaughtUp(ctx context.Context, urls []string, token, id string) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range urls {
		r := nirv1connect.NewQueryServiceClient(http.DefaultClient, u, connect.WithInterceptors(auth.BearerInterceptor(token)))
		for {
			_, err := r.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}}))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("chaos: %s never had the last person: %v", u, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// measure runs op n times from clients goroutines and returns the rate and latencies.
func measure(ctx context.Context, clients, n int, op func(ctx context.Context, c *http.Client, i int) error) BenchResult {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(ctx, c, i); err != nil {
					errs.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return BenchResult{Ops: n, PerSec: float64(n) / el.Seconds(), P50ms: ms(lat[n/2]), P99ms: ms(lat[n*99/100]), Errors: int(errs.Load())}
}
