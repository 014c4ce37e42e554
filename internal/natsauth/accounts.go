package natsauth

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natsingress"
)

// The accounts. The register's holds the streams and nird's users:
// NIR in deploy/nats/accounts.conf, the global account on the embedded server, where the
// stream has always been. The readers' account holds the read-only user and nothing else,
// and each case system has an account of its own (CaseSystemAccount, below).
//
// Why the reader has an account of its own: the server answers a JetStream API request on
// whatever reply subject it names, and a push consumer delivers wherever its creator says,
// both as the server, past the user's permissions. In the register's account the reader
// so wrote into the streams: a stream info answer stored as an event on nir.ev.<key>, as a
// checkpoint, or over a data key on $KV.NIR_KEYS.<id>. From its own account, its requests
// reach the register's only through the imports below, and the server answers them on
// reply subjects of its own making, delivered back into the readers' account; its consumer
// creations go to nird (eventstore.ServeReaderConsumers), which creates pull consumers only.
const (
	RegisterAccount = "NIR"
	ReaderAccount   = "READER"
	// globalAccount is the server's name of the global account.
	globalAccount = "$G"
)

// Import is one subject of the register's account that the readers' account imports.
type Import struct {
	// Subject is the subject in the readers' account; To the one in the register's ("" =
	// the same).
	Subject, To string
	// Streamed: a service whose answer is more than one message (a batch of direct gets,
	// a pull request's messages, the micro service's discovery).
	Streamed bool
	// Stream: a stream import (the live events), not a service.
	Stream bool
}

// Remote is the import's subject in the register's account.
func (im Import) Remote() string {
	if im.To != "" {
		return im.To
	}
	return im.Subject
}

// ReaderImports are all the readers' account reaches of the register's: the JetStream API
// to read the events, the checkpoints and the data keys (eventstore.ReaderStreams: info,
// gets, direct gets, consumer info and pull requests, and consumer creation through nird),
// the live events, and the micro service's discovery. Not the consumer lists: with a
// consumer's name a reader could pull from it, and nird's are named at random.
func ReaderImports() []Import {
	ims := []Import{
		{Subject: "$JS.API.INFO"},
		{Subject: "$JS.API.STREAM.NAMES"},
		{Subject: "$JS.API.STREAM.LIST"},
	}
	for _, s := range eventstore.ReaderStreams {
		ims = append(ims,
			Import{Subject: "$JS.API.STREAM.INFO." + s},
			Import{Subject: "$JS.API.STREAM.MSG.GET." + s},
			Import{Subject: "$JS.API.DIRECT.GET." + s, To: eventstore.ReaderDirectGet + "." + s, Streamed: true},
			Import{Subject: "$JS.API.DIRECT.GET." + s + ".>", Streamed: true},
			Import{Subject: "$JS.API.CONSUMER.INFO." + s + ".*"},
			Import{Subject: "$JS.API.CONSUMER.MSG.NEXT." + s + ".*", Streamed: true},
			Import{Subject: "$JS.API.CONSUMER.CREATE." + s, To: eventstore.ReaderConsumerCreate + "." + s},
			Import{Subject: "$JS.API.CONSUMER.CREATE." + s + ".>", To: eventstore.ReaderConsumerCreate + "." + s + ".>"},
		)
	}
	return append(ims,
		Import{Subject: "$SRV.>", Streamed: true},
		Import{Subject: eventstore.EventSubjects, Stream: true},
	)
}

// The readers' account's limits: its connections, the subscriptions of each, and the
// largest message it may publish. What a reader sends is small (JetStream API requests,
// consumer creations); what the server holds for it is bounded per connection (its pending
// messages, 64 MiB by default) and so by the connections.
//
// Why: the reader's consumer creations of 8 MiB each, from four connections, reach nird's
// event store connection (eventstore.ServeReaderConsumers); the server held more than 64 MiB
// for it and cut it as a slow consumer, again and again, and appends stopped (10 s medians,
// deadline errors; internal/adversarial's TestNATS_ReaderLimits). Readers' connections that
// subscribe to the live events and stop reading cost up to 64 MiB each, without a bound on
// how many there are.
const (
	ReaderMaxConnections   = 16
	ReaderMaxSubscriptions = 1000
	ReaderMaxPayload       = 64 << 10
)

// A case system's account. Each case system is alone in an account of its own, named as
// its user (CaseSystemAccount), which reaches the register's account through one import:
// its own request subject (natsingress.RequestSubject), a service whose answer the server
// delivers back into the case system's account alone. Its limits bound what it can make
// the server hold: the connections, the subscriptions of each, and the largest message.
//
// Why: in the register's account, beside nird, no account limit could bound a case system
// without bounding nird, and one case system held a million subscriptions in its inbox,
// about 1 GB of the server's (nird's) memory (internal/adversarial's
// TestNATS_CaseSystemSubscriptions). The largest message must still hold the largest
// request the ingress takes (natsingress.MaxRequestBytes) with its headers.
//
// The server keeps a mapping for every request that came through the import until it is
// answered or its response threshold passes (2 min by default): requests nird never
// answers (those nats.go drops past the lane's pending limit, or the server's cut of a
// flooded lane) held about 350 bytes each for 2 min, 200 000 of them after a few seconds
// of one connection's flood (helper-40's probe, 2026-12-06). CaseSystemResponseThreshold
// is the ingress's own bound on a request (natsingress.ServeTimeout) and a margin, so that
// no answer nird gives is lost and no mapping lives longer than it could be used.
const (
	CaseSystemMaxConnections    = 8
	CaseSystemMaxSubscriptions  = 1000
	CaseSystemMaxPayload        = natsingress.MaxRequestBytes + 64<<10
	CaseSystemResponseThreshold = natsingress.ServeTimeout + 5*time.Second
)

// CaseSystemAccount is the account of case system name: its name.
func CaseSystemAccount(name string) string { return name }

// AccountsConfig is the accounts block of a NATS server configuration for the register's
// account named register (with JetStream, its users left to the caller), the readers'
// account (the exports and imports of ReaderImports, and the readers' limits) and one
// account per case system of caseSystems (its request subject exported to it alone and
// imported, and the case systems' limits). deploy/nats/accounts.conf has the same, with
// the users; internal/deploytest checks that they agree.
func AccountsConfig(register string, caseSystems []string) string {
	var exp, imp, cs strings.Builder
	for _, name := range caseSystems {
		q, subj, acc := strconv.Quote, strconv.Quote(natsingress.RequestSubject(name)), strconv.Quote(CaseSystemAccount(name))
		fmt.Fprintf(&exp, "      { service: %s, response: singleton, threshold: %q, accounts: [%s] }\n", subj, CaseSystemResponseThreshold.String(), acc)
		fmt.Fprintf(&cs, "  %s {\n    limits: { max_connections: %d, max_subscriptions: %d, max_payload: %d }\n    imports: [\n      { service: { account: %s, subject: %s } }\n    ]\n  }\n",
			acc, CaseSystemMaxConnections, CaseSystemMaxSubscriptions, CaseSystemMaxPayload, q(register), subj)
	}
	for _, im := range ReaderImports() {
		q := strconv.Quote
		if im.Stream {
			fmt.Fprintf(&exp, "      { stream: %s, accounts: [%s] }\n", q(im.Remote()), ReaderAccount)
			fmt.Fprintf(&imp, "      { stream: { account: %s, subject: %s } }\n", register, q(im.Remote()))
			continue
		}
		resp := "singleton"
		if im.Streamed {
			resp = "stream"
		}
		fmt.Fprintf(&exp, "      { service: %s, response: %s, accounts: [%s] }\n", q(im.Remote()), resp, ReaderAccount)
		to := ""
		if im.To != "" {
			to = ", to: " + q(im.Subject)
		}
		fmt.Fprintf(&imp, "      { service: { account: %s, subject: %s }%s }\n", register, q(im.Remote()), to)
	}
	return fmt.Sprintf("accounts {\n  %s {\n    jetstream: enabled\n    exports: [\n%s    ]\n  }\n  %s {\n    limits: { max_connections: %d, max_subscriptions: %d, max_payload: %d }\n    imports: [\n%s    ]\n  }\n%s}\n",
		register, exp.String(), ReaderAccount, ReaderMaxConnections, ReaderMaxSubscriptions, ReaderMaxPayload, imp.String(), cs.String())
}

// EmbeddedAccounts returns the embedded server's accounts (eventstore.Config.Accounts): the
// global account, with JetStream and the exports to the readers and the case systems, the
// readers' account, and each case system's of caseSystems by name. Give the reader's user
// the second, each case system's user its own. They are parsed from AccountsConfig, as the
// server parses its configuration file: a Go program cannot otherwise give an account
// JetStream before the server starts, and without it the global account would lose its
// streams once another account exists.
func EmbeddedAccounts(caseSystems []string) (global, reader *server.Account, cases map[string]*server.Account, err error) {
	opts := &server.Options{}
	if err := opts.ProcessConfigString(AccountsConfig(RegisterAccount, caseSystems)); err != nil {
		return nil, nil, nil, fmt.Errorf("nats accounts: %w", err)
	}
	cases = map[string]*server.Account{}
	for _, a := range opts.Accounts {
		switch a.Name {
		case RegisterAccount:
			global = a
		case ReaderAccount:
			reader = a
		}
		for _, n := range caseSystems {
			if a.Name == CaseSystemAccount(n) {
				cases[n] = a
			}
		}
	}
	if global == nil || reader == nil || len(cases) != len(caseSystems) {
		return nil, nil, nil, fmt.Errorf("nats accounts: parsed %d accounts, not %s, %s and %d case systems'", len(opts.Accounts), RegisterAccount, ReaderAccount, len(caseSystems))
	}
	// The configuration may not name the global account; the server takes an account of
	// that name as the global account's settings, and the imports follow the name.
	global.Name = globalAccount
	return global, reader, cases, nil
}
