package auth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

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

// A kommune reads a person who lived there during the period read, and writes only for
// itself (DOMAIN.md 7.4).
func ExampleCanReadPerson() {
	oslo := auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"}
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	history := []auth.KommunePeriod{
		{Kommune: "0301", From: date(2021, 3, 1), To: date(2023, 6, 15)}, // settled in Oslo
		{Kommune: "4601", From: date(2023, 6, 15)},                       // moved to Bergen
	}
	fmt.Println(auth.CanReadPerson(oslo, history, auth.Period{From: date(2022, 1, 1), To: date(2023, 1, 1)}))
	fmt.Println(auth.CanReadPerson(oslo, history, auth.Period{From: date(2024, 1, 1), To: date(2025, 1, 1)}))
	fmt.Println(auth.CanWriteKommune(oslo, "0301"), auth.CanWriteKommune(oslo, "4601"))
	// Output:
	// true
	// false
	// true false
}
