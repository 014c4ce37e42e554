package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/internal/feed"
)

// TestParseConfig: flags, NIR_* environment defaults, and errors that name the flag or
// variable at fault.
func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "Defaults", check: func(t *testing.T, c Config) {
			if c.Data != "data" || c.Replicas != 1 || c.Group.MaxWait != 0 || c.Group.MaxInflight != 0 || c.Group.MaxEvents != 0 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "GroupFlags", args: []string{"--group-max-wait", "3ms", "--group-inflight", "2", "--group-max-events", "500", "--group-max-bytes", "1048576"}, check: func(t *testing.T, c Config) {
			if c.Group.MaxWait != 3*time.Millisecond || c.Group.MaxInflight != 2 || c.Group.MaxEvents != 500 || c.Group.MaxBytes != 1<<20 {
				t.Errorf("group = %+v", c.Group)
			}
		}},
		{name: "GroupEnv", env: map[string]string{"NIR_GROUP_MAX_WAIT": "7ms", "NIR_GROUP_INFLIGHT": "3", "NIR_REPLICAS": "3", "NIR_NATS_URL": "nats://127.0.0.1:4222"}, check: func(t *testing.T, c Config) {
			if c.Group.MaxWait != 7*time.Millisecond || c.Group.MaxInflight != 3 || c.Replicas != 3 {
				t.Errorf("config = %+v", c)
			}
		}},
		{name: "FlagBeatsEnv", args: []string{"--group-max-wait", "2ms"}, env: map[string]string{"NIR_GROUP_MAX_WAIT": "7ms"}, check: func(t *testing.T, c Config) {
			if c.Group.MaxWait != 2*time.Millisecond {
				t.Errorf("max wait = %v, want the flag's 2ms", c.Group.MaxWait)
			}
		}},
		{name: "BadEnvDuration", env: map[string]string{"NIR_GROUP_MAX_WAIT": "soon"}, wantErr: "NIR_GROUP_MAX_WAIT"},
		{name: "BadEnvNumber", env: map[string]string{"NIR_REPLICAS": "three"}, wantErr: "NIR_REPLICAS"},
		{name: "WaitTooLong", args: []string{"--group-max-wait", "2s"}, wantErr: "--group-max-wait"},
		{name: "TooManyEvents", args: []string{"--group-max-events", "5000"}, wantErr: "--group-max-events"},
		{name: "NegativeBytes", args: []string{"--group-max-bytes", "-5"}, wantErr: "--group-max-bytes"},
		{name: "NegativeInflight", args: []string{"--group-inflight", "-1"}, wantErr: "--group-inflight"},
		{name: "Replicas", args: []string{"--replicas", "7"}, wantErr: "--replicas"},
		// Found on 2026-12-07 by a walk through the README: --check-config passed both, and
		// the start failed on them.
		{name: "ReplicasEmbedded", args: []string{"--replicas", "3"}, wantErr: "--replicas: 3 needs a NATS cluster"},
		{name: "AdminIsHTTP", args: []string{"--http", "127.0.0.1:9000", "--admin", "127.0.0.1:9000"}, wantErr: "takes --http's address"},
		{name: "AdminOnEveryAddress", args: []string{"--http", "127.0.0.1:9000", "--admin", ":9000"}, wantErr: "takes --http's address"},
		{name: "AdminOtherPort", args: []string{"--http", "127.0.0.1:9000", "--admin", "127.0.0.1:9001"}, check: func(t *testing.T, c Config) {}},
		{name: "BothPortZero", args: []string{"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, check: func(t *testing.T, c Config) {}},
		// Every flag of the start has its NIR_ variable; --shutdown-grace had none.
		{name: "ShutdownGraceEnv", env: map[string]string{"NIR_SHUTDOWN_GRACE": "3s"}, check: func(t *testing.T, c Config) {
			if c.Shutdown != 3*time.Second {
				t.Errorf("shutdown grace = %v, want NIR_SHUTDOWN_GRACE's 3s", c.Shutdown)
			}
		}},
		{name: "HistoryCache", args: []string{"--history-cache", "500", "--history-cache-events", "2000"}, check: func(t *testing.T, c Config) {
			if c.HistoryCache != 500 || c.HistoryEvents != 2000 {
				t.Errorf("history cache = %d persons, %d events; want 500, 2000", c.HistoryCache, c.HistoryEvents)
			}
		}},
		{name: "HistoryCacheDefault", check: func(t *testing.T, c Config) {
			if c.HistoryCache != 10000 || c.HistoryEvents != 500_000 {
				t.Errorf("history cache = %d persons, %d events; want the defaults 10000, 500000", c.HistoryCache, c.HistoryEvents)
			}
		}},
		{name: "HistoryCacheNegative", args: []string{"--history-cache", "-1"}, wantErr: "--history-cache"},
		{name: "HistoryCacheEventsZero", args: []string{"--history-cache-events", "0"}, wantErr: "--history-cache-events"},
		{name: "ClusterDefaults", check: func(t *testing.T, c Config) {
			if c.Cluster.LeaseTTL != 15*time.Second || c.Cluster.RegelmotorInterval != time.Minute || c.Cluster.MinSequenceWait != 10*time.Second || c.Cluster.ClockOffset != 0 {
				t.Errorf("cluster = %+v", c.Cluster)
			}
			if time.Until(c.Cluster.clock()()).Abs() > time.Second {
				t.Error("the default clock is not the wall clock")
			}
		}},
		{name: "ClusterFlags", args: []string{"--lease-ttl", "3s", "--regelmotor-interval", "500ms", "--min-sequence-wait", "2s"},
			env: map[string]string{"NIR_TEST_CLOCK_OFFSET": "-2h"}, check: func(t *testing.T, c Config) {
				if c.Cluster.LeaseTTL != 3*time.Second || c.Cluster.RegelmotorInterval != 500*time.Millisecond || c.Cluster.MinSequenceWait != 2*time.Second {
					t.Errorf("cluster = %+v", c.Cluster)
				}
				if skew := time.Since(c.Cluster.clock()()); skew < 2*time.Hour-time.Second || skew > 2*time.Hour+time.Second {
					t.Errorf("clock is %v behind, want 2h", skew)
				}
			}},
		{name: "LeaseTTLTooShort", args: []string{"--lease-ttl", "100ms"}, wantErr: "--lease-ttl"},
		{name: "BadClockOffset", env: map[string]string{"NIR_TEST_CLOCK_OFFSET": "later"}, wantErr: "NIR_TEST_CLOCK_OFFSET"},
		{name: "MinSequenceWaitZero", args: []string{"--min-sequence-wait", "0s"}, wantErr: "--min-sequence-wait"},
		{name: "AsOfClockSkewDefault", check: func(t *testing.T, c Config) {
			if c.AsOfClockSkew != feed.DefaultClockSkew {
				t.Errorf("as-of clock skew = %v, want %v", c.AsOfClockSkew, feed.DefaultClockSkew)
			}
		}},
		{name: "AsOfClockSkew", args: []string{"--as-of-clock-skew", "30m"}, check: func(t *testing.T, c Config) {
			if c.AsOfClockSkew != 30*time.Minute {
				t.Errorf("as-of clock skew = %v, want 30m", c.AsOfClockSkew)
			}
		}},
		{name: "AsOfClockSkewNegative", args: []string{"--as-of-clock-skew", "-1s"}, wantErr: "--as-of-clock-skew"},
		{name: "NATSBoundTokens", args: []string{"--tokens", "tokens.json", "--nats-bound-tokens"}, check: func(t *testing.T, c Config) {
			if !c.NATSBoundTokens {
				t.Error("--nats-bound-tokens not set")
			}
		}},
		{name: "NATSBoundTokensEnv", args: []string{"--tokens", "tokens.json"}, env: map[string]string{"NIR_NATS_BOUND_TOKENS": "true"}, check: func(t *testing.T, c Config) {
			if !c.NATSBoundTokens {
				t.Error("NIR_NATS_BOUND_TOKENS not taken")
			}
		}},
		{name: "NATSBoundTokensOffByDefault", check: func(t *testing.T, c Config) {
			if c.NATSBoundTokens {
				t.Error("--nats-bound-tokens on by default")
			}
		}},
		{name: "NATSBoundTokensWithoutTokens", args: []string{"--nats-bound-tokens"}, wantErr: "--nats-bound-tokens"},
		{name: "NATSInProcessByDefault", check: func(t *testing.T, c Config) {
			if c.NATSListen != "" || c.NATSURL != "" || len(c.NATSCaseSystems) != 0 {
				t.Errorf("nats = listen %q, url %q, case systems %v; want the embedded server without a listener", c.NATSListen, c.NATSURL, c.NATSCaseSystems)
			}
		}},
		{name: "NATSCaseSystems", args: []string{"--nats-listen", "127.0.0.1:4222", "--nats-case-systems", "oslo, visma-flyt"}, check: func(t *testing.T, c Config) {
			if len(c.NATSCaseSystems) != 2 || c.NATSCaseSystems[0] != "oslo" || c.NATSCaseSystems[1] != "visma-flyt" {
				t.Errorf("case systems = %q", c.NATSCaseSystems)
			}
		}},
		{name: "NATSCaseSystemsNeedListener", args: []string{"--nats-case-systems", "oslo"}, wantErr: "--nats-case-systems"},
		// On an external server, the case systems the ingress serves each on a connection of its own.
		{name: "NATSCaseSystemsExternal", args: []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-case-systems", "oslo-fagsystem"}, check: func(t *testing.T, c Config) {
			if len(c.NATSCaseSystems) != 1 || c.NATSCaseSystems[0] != "oslo-fagsystem" {
				t.Errorf("case systems = %q", c.NATSCaseSystems)
			}
		}},
		{name: "NATSCaseSystemBadName", args: []string{"--nats-listen", "127.0.0.1:4222", "--nats-case-systems", "Oslo.kommune"}, wantErr: "--nats-case-systems"},
		{name: "NATSCaseSystemReserved", args: []string{"--nats-listen", "127.0.0.1:4222", "--nats-case-systems", "reader"}, wantErr: "--nats-case-systems"},
		{name: "NATSIngressUserRequired", args: []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-user", "nird", "--nats-password", "x"}, wantErr: "--nats-ingress-user"},
		{name: "NATSIngressNotNird", args: []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-user", "nird", "--nats-ingress-user", "nird"}, wantErr: "--nats-ingress-user"},
		{name: "NATSIngressOnlyExternal", args: []string{"--nats-ingress-user", "ingress"}, wantErr: "--nats-ingress"},
		{name: "NATSIngressEnv", args: []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-user", "nird"},
			env: map[string]string{"NIR_NATS_INGRESS_USER": "ingress", "NIR_NATS_INGRESS_PASSWORD": "p1"}, check: func(t *testing.T, c Config) {
				if c.NATSIngressUser != "ingress" || c.NATSIngressPassword != "p1" {
					t.Errorf("ingress user %q password %q", c.NATSIngressUser, c.NATSIngressPassword)
				}
			}},
		{name: "EdgeDefaults", check: func(t *testing.T, c Config) {
			e := c.Edge
			if e.ReadTimeout != DefaultReadTimeout || e.WriteTimeout != DefaultWriteTimeout || e.MaxConns != DefaultMaxConns || e.MaxInflightPublic != DefaultMaxInflightPublic || e.RateLimit != DefaultRateLimit || e.BodyMemory != DefaultBodyMemory {
				t.Errorf("edge defaults = %+v", e)
			}
		}},
		{name: "EdgeEnv", env: map[string]string{"NIR_RATE_LIMIT": "2.5", "NIR_RATE_BURST": "5", "NIR_READ_TIMEOUT": "15s", "NIR_MAX_CONNS": "10"}, check: func(t *testing.T, c Config) {
			if e := c.Edge; e.RateLimit != 2.5 || e.RateBurst != 5 || e.ReadTimeout != 15*time.Second || e.MaxConns != 10 {
				t.Errorf("edge = %+v", e)
			}
		}},
		{name: "BadEnvRate", env: map[string]string{"NIR_RATE_LIMIT": "fast"}, wantErr: "NIR_RATE_LIMIT"},
		{name: "ZeroReadTimeout", args: []string{"--read-timeout", "0"}, wantErr: "--read-timeout"},
		{name: "HeaderTimeoutOverReadTimeout", args: []string{"--read-header-timeout", "1m", "--read-timeout", "10s"}, wantErr: "--read-header-timeout"},
		{name: "NoConns", args: []string{"--max-conns", "0"}, wantErr: "--max-conns"},
		{name: "PrincipalOverTotal", args: []string{"--max-inflight", "4", "--max-inflight-per-principal", "8"}, wantErr: "--max-inflight-per-principal"},
		{name: "NoPublicSlots", args: []string{"--max-inflight-public", "0"}, wantErr: "--max-inflight-public"},
		{name: "NegativeRate", args: []string{"--rate-limit", "-1"}, wantErr: "--rate-limit"},
		{name: "RateWithoutBurst", args: []string{"--rate-burst", "0"}, wantErr: "--rate-burst"},
		{name: "NoRateNoBurst", args: []string{"--rate-limit", "0", "--rate-burst", "0"}, check: func(t *testing.T, c Config) {}},
		{name: "BodyMemoryBelowOneRequest", args: []string{"--max-body-memory", "1000"}, wantErr: "--max-body-memory"},
		{name: "DevModeAPIOnNetwork", args: []string{"--http", "0.0.0.0:8080"}, wantErr: "--http"},
		{name: "DevModeAPIOnAllInterfaces", args: []string{"--http", ":8080"}, wantErr: "--http"},
		{name: "DevModeAPIOnHostName", args: []string{"--http", "nird.example:8080"}, wantErr: "--http"},
		{name: "DevModeAdminOnNetwork", args: []string{"--admin", "[::]:8081"}, wantErr: "--admin"},
		{name: "DevModeOnLoopback", args: []string{"--http", "[::1]:8080", "--admin", "localhost:8081"}, check: func(t *testing.T, c Config) {}},
		{name: "TokensOnNetwork", args: []string{"--http", "0.0.0.0:8080", "--admin", "0.0.0.0:8081", "--tokens", "tokens.json"}, check: func(t *testing.T, c Config) {}},
		{name: "SecureCookiesDevDefault", check: func(t *testing.T, c Config) {
			if c.SecureCookies {
				t.Error("development mode: SecureCookies on by default, want off (the console over http://127.0.0.1)")
			}
		}},
		{name: "SecureCookiesTokensDefault", args: []string{"--tokens", "tokens.json"}, check: func(t *testing.T, c Config) {
			if !c.SecureCookies {
				t.Error("with --tokens: SecureCookies off by default, want on")
			}
		}},
		{name: "SecureCookiesOff", args: []string{"--tokens", "tokens.json", "--secure-cookies=false"}, check: func(t *testing.T, c Config) {
			if c.SecureCookies {
				t.Error("--secure-cookies=false: SecureCookies on")
			}
		}},
		{name: "SecureCookiesOnInDev", args: []string{"--secure-cookies"}, check: func(t *testing.T, c Config) {
			if !c.SecureCookies {
				t.Error("--secure-cookies: SecureCookies off")
			}
		}},
		{name: "SecureCookiesEnv", args: []string{"--tokens", "tokens.json"}, env: map[string]string{"NIR_SECURE_COOKIES": "false"}, check: func(t *testing.T, c Config) {
			if c.SecureCookies {
				t.Error("NIR_SECURE_COOKIES=false: SecureCookies on")
			}
		}},
		{name: "SecureCookiesFlagBeatsEnv", env: map[string]string{"NIR_SECURE_COOKIES": "false"}, args: []string{"--secure-cookies"}, check: func(t *testing.T, c Config) {
			if !c.SecureCookies {
				t.Error("--secure-cookies over NIR_SECURE_COOKIES=false: SecureCookies off")
			}
		}},
		{name: "SecureCookiesBadEnv", env: map[string]string{"NIR_SECURE_COOKIES": "ja"}, wantErr: "NIR_SECURE_COOKIES"},
		{name: "SecureCookiesBadFlag", args: []string{"--secure-cookies=kanskje"}, wantErr: "secure-cookies"},
		{name: "ConsoleSessionsDefault", check: func(t *testing.T, c Config) {
			if c.ConsoleSessionsPerPrincipal != 200 {
				t.Errorf("console sessions per principal = %d, want 200", c.ConsoleSessionsPerPrincipal)
			}
		}},
		{name: "ConsoleSessionsEnv", env: map[string]string{"NIR_CONSOLE_SESSIONS_PER_PRINCIPAL": "200"}, check: func(t *testing.T, c Config) {
			if c.ConsoleSessionsPerPrincipal != 200 {
				t.Errorf("console sessions per principal = %d, want 200", c.ConsoleSessionsPerPrincipal)
			}
		}},
		{name: "ConsoleSessionsZero", args: []string{"--console-sessions-per-principal", "0"}, wantErr: "--console-sessions-per-principal"},
		{name: "ConsoleSessionsTooMany", args: []string{"--console-sessions-per-principal", "501"}, wantErr: "--console-sessions-per-principal"},
		{name: "AdminOff", args: []string{"--admin", ""}, check: func(t *testing.T, c Config) {}},
		// Found on 2026-12-07 by mutation testing: each bound of Validate could be moved (a
		// factor of 10, a sign) without a test failing. Each is tried just past its edge, and
		// the edge itself is accepted.
		{name: "ReplicasOverFiveOnACluster", args: []string{"--replicas", "6", "--nats-url", "nats://127.0.0.1:4222"}, wantErr: "--replicas: 6 is not between 1 and 5"},
		{name: "ReplicasFiveOnACluster", args: []string{"--replicas", "5", "--nats-url", "nats://127.0.0.1:4222"}, check: func(t *testing.T, c Config) {}},
		{name: "ReplicasTwoEmbedded", args: []string{"--replicas", "2"}, wantErr: "--replicas: 2 needs a NATS cluster"},
		{name: "StatsMinCountOver100", args: []string{"--stats-min-count", "101"}, wantErr: "--stats-min-count"},
		{name: "StatsMinCountZero", args: []string{"--stats-min-count", "0"}, wantErr: "--stats-min-count"},
		{name: "StatsMinCountEdges", args: []string{"--stats-min-count", "100"}, check: func(t *testing.T, c Config) {}},
		{name: "HistoryCacheTooLarge", args: []string{"--history-cache", "10000001"}, wantErr: "--history-cache"},
		{name: "HistoryCacheEventsTooMany", args: []string{"--history-cache-events", "100000001"}, wantErr: "--history-cache-events"},
		{name: "HistoryCacheEdges", args: []string{"--history-cache", "10000000", "--history-cache-events", "100000000"}, check: func(t *testing.T, c Config) {}},
		{name: "MaxPersonEventsNegative", args: []string{"--max-person-events", "-1"}, wantErr: "--max-person-events"},
		{name: "MaxPersonEventsNone", args: []string{"--max-person-events", "0"}, check: func(t *testing.T, c Config) {
			if c.PersonEvents != 0 || personEvents(c.PersonEvents) >= 0 {
				t.Errorf("--max-person-events 0 = %d, for ingest %d; want no bound (negative)", c.PersonEvents, personEvents(c.PersonEvents))
			}
		}},
		{name: "RetentionYearsOver100", args: []string{"--retention-years", "101"}, wantErr: "--retention-years"},
		{name: "RetentionYearsNegative", args: []string{"--retention-years", "-1"}, wantErr: "--retention-years"},
		{name: "DemoTooLarge", args: []string{"--demo", "1000001"}, wantErr: "--demo"},
		{name: "DemoEdge", args: []string{"--demo", "1000000"}, check: func(t *testing.T, c Config) {}},
		{name: "ShutdownGraceZero", args: []string{"--shutdown-grace", "0s"}, wantErr: "--shutdown-grace"},
		{name: "DuplicateWindowTooShort", args: []string{"--duplicate-window", "99ms"}, wantErr: "--duplicate-window"},
		{name: "DuplicateWindowTooLong", args: []string{"--duplicate-window", "61m"}, wantErr: "--duplicate-window"},
		{name: "DuplicateWindowEdges", args: []string{"--duplicate-window", "100ms"}, check: func(t *testing.T, c Config) {}},
		{name: "AsOfClockSkewTooLong", args: []string{"--as-of-clock-skew", "24h1s"}, wantErr: "--as-of-clock-skew"},
		{name: "LeaseTTLTooLong", args: []string{"--lease-ttl", "10m1s"}, wantErr: "--lease-ttl"},
		{name: "LeaseTTLEdges", args: []string{"--lease-ttl", "1s"}, check: func(t *testing.T, c Config) {}},
		{name: "RegelmotorIntervalTooShort", args: []string{"--regelmotor-interval", "99ms"}, wantErr: "--regelmotor-interval"},
		{name: "CheckpointEveryNegative", args: []string{"--checkpoint-every", "-1"}, wantErr: "--checkpoint-every"},
		{name: "CheckpointIntervalTooShort", args: []string{"--checkpoint-interval", "999ms"}, wantErr: "--checkpoint-interval"},
		{name: "MinSequenceWaitTooLong", args: []string{"--min-sequence-wait", "1m1s"}, wantErr: "--min-sequence-wait"},
		{name: "GroupInflightOver16", args: []string{"--group-inflight", "17"}, wantErr: "--group-inflight"},
		{name: "GroupMaxEventsEdge", args: []string{"--group-max-events", "1000"}, check: func(t *testing.T, c Config) {}},
		{name: "NATSUserWithoutURL", args: []string{"--nats-user", "nird"}, wantErr: "only with --nats-url"},
		{name: "PortOver65535", args: []string{"--tokens", "tokens.json", "--http", "0.0.0.0:65536"}, wantErr: "--http"},
		{name: "UnexpectedArgument", args: []string{"--data", "d", "serve"}, wantErr: `unexpected argument "serve"`},
		{name: "LogLevelUnknown", args: []string{"--log-level", "trace"}, wantErr: "--log-level"},
		{name: "LogFormatUnknown", args: []string{"--log-format", "xml"}, wantErr: "--log-format"},
		{name: "BadPort", args: []string{"--http", "127.0.0.1:http"}, wantErr: "--http"},
		{name: "NoPort", args: []string{"--admin", "127.0.0.1"}, wantErr: "--admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestVersion checks that --version answers whatever else the configuration says, and that
// /metrics says which build runs (nir_build_info).
func TestVersion(t *testing.T) {
	c, err := parseConfig([]string{"--version", "--replicas", "99"}, func(string) string { return "" }, io.Discard)
	if err != nil || !c.ShowVersion {
		t.Errorf("--version with a bad --replicas: %+v, %v; want ShowVersion and no error", c.ShowVersion, err)
	}
	mfs, err := newMetrics().reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "nir_build_info" {
			labels := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["version"] == "" || !strings.HasPrefix(labels["goversion"], "go") || mf.GetMetric()[0].GetGauge().GetValue() != 1 {
				t.Errorf("nir_build_info = %v", mf.GetMetric())
			}
			return
		}
	}
	t.Error("no nir_build_info metric")
}
