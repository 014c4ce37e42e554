package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// Example_wiring shows how nird serves the query and admin services and the CSV export: one
// guard built with Policy (DefaultPolicy plus the export route) in front of all of them, and
// the projector as both sources.
func Example_wiring() {
	dir, _ := os.MkdirTemp("", "nir-example")
	defer os.RemoveAll(dir)
	proj, err := projections.New(projections.NewSliceFeed(nil), projections.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer proj.Close()
	keys, _ := personkey.New([]byte("example secret, not a real one.."))
	authn, _ := auth.NewDev(auth.Principal{Name: "dev", Role: auth.RoleOperator})
	log := slog.New(slog.DiscardHandler)

	guard := auth.NewGuard(authn, Policy(), log)
	q := NewQuery(QueryConfig{Source: proj, Keys: keys, Logger: log})
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewQueryServiceHandler(q, connect.WithInterceptors(guard)))
	mux.Handle(nirv1connect.NewAdminServiceHandler(NewAdmin(proj, log), connect.WithInterceptors(guard)))
	mux.Handle(ExportPersonsPath, guard.Middleware(q.ExportHandler()))

	_, _ = proj.CatchUp(context.Background())
	// Output:
}
