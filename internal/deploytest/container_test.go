package deploytest

import (
	"path/filepath"
	"testing"

	"github.com/introreg/nir/eventstore"
)

// TestContainerConf loads deploy/nats/container.conf, the one file every node of the
// Kubernetes StatefulSet and the compose cluster runs, with the environment those give it:
// JetStream fsyncing every write, the route credentials, a route to each node, the users of
// accounts.conf.
func TestContainerConf(t *testing.T) {
	creds := SetCredentials(t)
	t.Setenv("SERVER_NAME", "nats-1")
	t.Setenv("NIR_NATS_ROUTE_PASSWORD", "proutesecret")
	for i, host := range []string{"nats-0.nats", "nats-1.nats", "nats-2.nats"} {
		t.Setenv("NATS_ROUTE_"+string(rune('1'+i)), "nats-route://nir-route:proutesecret@"+host+":6222")
	}
	opts := Options(t, filepath.Join(Dir(), "container.conf"))
	if opts.ServerName != "nats-1" || !opts.JetStream || !opts.SyncAlways || opts.MaxPayload != 8<<20 {
		t.Errorf("server %q, jetstream %v, sync always %v, max payload %d", opts.ServerName, opts.JetStream, opts.SyncAlways, opts.MaxPayload)
	}
	if opts.Cluster.Name != "nir" || opts.Cluster.Username != "nir-route" || opts.Cluster.Password != "proutesecret" || len(opts.Routes) != 3 {
		t.Errorf("cluster %q user %q, %d routes; want nir, nir-route with the password, 3", opts.Cluster.Name, opts.Cluster.Username, len(opts.Routes))
	}
	for i, r := range opts.Routes {
		if r.User.Username() != "nir-route" || r.Port() != "6222" {
			t.Errorf("route %d: %s", i, r.Redacted())
		}
	}
	if opts.JetStreamLimits.MaxBatchSize != eventstore.MaxBatchEvents {
		t.Errorf("atomic batch limit %d; want eventstore.MaxBatchEvents, %d", opts.JetStreamLimits.MaxBatchSize, eventstore.MaxBatchEvents)
	}
	users := map[string]string{}
	for _, u := range opts.Users {
		users[u.Username] = u.Password
	}
	for _, u := range []string{"nird", "ingress", "reader"} {
		if users[u] != creds.Password(u) {
			t.Errorf("user %s does not have its password from the environment", u)
		}
	}
}

// TestConfigs_BatchLimit: every server deploy/nats configures takes nird's largest atomic
// batch (eventstore.MaxBatchEvents): the events of a request of the most registrations the
// API takes. At the server's default, 1000, such a request was refused whenever it brought a
// further national id (found on 2026-12-08 by `nirctl import --batch 1000`).
func TestConfigs_BatchLimit(t *testing.T) {
	SetCredentials(t)
	for _, f := range []string{"single.conf", "cluster-1.conf", "cluster-2.conf", "cluster-3.conf"} {
		if got := Options(t, f).JetStreamLimits.MaxBatchSize; got != eventstore.MaxBatchEvents {
			t.Errorf("%s: atomic batch limit %d; want eventstore.MaxBatchEvents, %d", f, got, eventstore.MaxBatchEvents)
		}
	}
}
