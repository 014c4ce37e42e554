package auth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// history is a stand-in RegistrationService that tells who called.
type history struct {
	nirv1connect.UnimplementedRegistrationServiceHandler
}

func (history) History(ctx context.Context, _ *connect.Request[nirv1.HistoryRequest]) (*connect.Response[nirv1.HistoryResponse], error) {
	p, _ := auth.FromContext(ctx) // always there behind the guard
	return connect.NewResponse(&nirv1.HistoryResponse{PersonKey: p.Name}), nil
}

// The wiring of nird and a client: a token is made once (nirctl token create), its hash goes
// into the token file, the guard sits in front of the Connect handlers, and the client sends
// the token as a bearer token.
func ExampleGuard() {
	token, entry, err := auth.GenerateToken(auth.Principal{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301"})
	if err != nil {
		log.Fatal(err)
	}
	authn, err := auth.New([]auth.Entry{entry}) // nird: auth.LoadFile("/etc/nird/tokens.json")
	if err != nil {
		log.Fatal(err)
	}
	guard := auth.NewGuard(authn, auth.DefaultPolicy(), nil)
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(history{}, connect.WithInterceptors(guard)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL,
		connect.WithInterceptors(auth.BearerInterceptor(token)))
	res, err := client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{}))
	fmt.Println(res.Msg.GetPersonKey(), err)

	anonymous := nirv1connect.NewRegistrationServiceClient(srv.Client(), srv.URL)
	_, err = anonymous.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{}))
	fmt.Println(connect.CodeOf(err))
	// Output:
	// oslo-fagsystem <nil>
	// unauthenticated
}
