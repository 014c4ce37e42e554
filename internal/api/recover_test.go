package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/api"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// buggyQuery panics in GetPerson, quoting the national id it was asked for.
type buggyQuery struct {
	nirv1connect.UnimplementedQueryServiceHandler
}

func (buggyQuery) GetPerson(_ context.Context, req *connect.Request[nirv1.GetPersonRequest]) (*connect.Response[nirv1.GetPersonResponse], error) {
	panic("bug with " + req.Msg.GetPerson().GetNationalId())
}

// A handler's panic is the call's Internal error, counted and logged without the national
// id; without Recover, net/http cuts the connection and logs the value as it is.
func TestRecover_PanicIsTheCallsInternalError(t *testing.T) {
	var logs bytes.Buffer
	var panics atomic.Int64
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewQueryServiceHandler(buggyQuery{}, api.Recover(slog.New(slog.NewTextHandler(&logs, nil)), func() { panics.Add(1) })))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const id = "12849000290"
	client := nirv1connect.NewQueryServiceClient(srv.Client(), srv.URL)
	_, err := client.GetPerson(context.Background(), connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}}))
	if connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("GetPerson: %v, want Internal", err)
	}
	if strings.Contains(err.Error(), id) {
		t.Errorf("the error holds the national id: %v", err)
	}
	if panics.Load() != 1 {
		t.Errorf("panics counted: %d, want 1", panics.Load())
	}
	if !strings.Contains(logs.String(), "panic serving a call") || !strings.Contains(logs.String(), nirv1connect.QueryServiceGetPersonProcedure) {
		t.Errorf("the panic was not logged with its procedure:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), id) {
		t.Errorf("the log holds the national id:\n%s", logs.String())
	}
}
