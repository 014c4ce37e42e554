package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// unfinishedAdmin answers a rebuild and a snapshot with progress and then ends the stream
// without saying they finished, as a nird that stops (killed, restarted) in the middle would.
type unfinishedAdmin struct {
	nirv1connect.UnimplementedAdminServiceHandler
}

func (unfinishedAdmin) Rebuild(_ context.Context, _ *connect.Request[nirv1.RebuildRequest], s *connect.ServerStream[nirv1.RebuildResponse]) error {
	return s.Send(&nirv1.RebuildResponse{Progress: &nirv1.Progress{Done: 5, Total: 10}})
}

func (unfinishedAdmin) CreateSnapshot(_ context.Context, _ *connect.Request[nirv1.CreateSnapshotRequest], s *connect.ServerStream[nirv1.CreateSnapshotResponse]) error {
	return s.Send(&nirv1.CreateSnapshotResponse{Progress: &nirv1.Progress{Done: 5, Total: 10}})
}

// TestProjections_StreamEndedUnfinishedFails checks that `nirctl projections rebuild` and
// `snapshot create` fail (a non-zero exit status for a script or a cron job) when the server's
// stream ends before it said the rebuild was swapped in or the snapshot kept: nothing was. Found
// by mutation testing on 2026-12-07: either command returning success there passed every test.
func TestProjections_StreamEndedUnfinishedFails(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewAdminServiceHandler(unfinishedAdmin{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"projections", "rebuild"}, "the stream ended before the rebuild finished"},
		{[]string{"projections", "snapshot", "create", "2022@2023-02-28", "--cutoff", "2023-02-28"}, "the stream ended before the replay finished"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"--server", srv.URL, "--token", "operator"}, tc.args...), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nirctl %v on a stream that ended unfinished: %v, want an error saying %q (stdout %q)", tc.args, err, tc.want, stdout.String())
		}
		if strings.Contains(stdout.String(), "swapped in") || strings.Contains(stdout.String(), "kept") {
			t.Errorf("nirctl %v said it finished: %q", tc.args, stdout.String())
		}
	}
}
