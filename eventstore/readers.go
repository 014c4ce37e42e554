package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"
)

// ReaderConsumerCreate is where the readers' account sends its consumer creations
// ($JS.API.CONSUMER.CREATE.> there, mapped to ReaderConsumerCreate.> in the register's
// account by the import of internal/natsauth and deploy/nats/accounts.conf). nird answers
// them (ServeReaderConsumers), not the JetStream API.
//
// Why: a consumer lives in its stream's account, and a push consumer delivers to whatever
// subject its creator names, as the server, past every user permission. A reader's push
// consumer delivering onto nir.checkpoint or $KV.NIR_KEYS.<id> had its messages stored
// there: forged checkpoints, a data key overwritten. So a reader may create only what
// ordered consumers are: ephemeral pull consumers (internal/adversarial's
// natsReaderWritesNothing).
const ReaderConsumerCreate = "nir.reader.consumer.create"

// ReaderStreams are the streams the readers' account may read: the events, the checkpoints
// that commit to them, and the data keys, stored wrapped with the master key.
var ReaderStreams = []string{StreamName, CheckpointStreamName, "KV_" + KeyBucket}

// serviceReplyPrefix starts the reply subjects the server makes for a request that came
// through an account's service import; nird answers no other reply subject here, so no
// request can name where the answer goes.
const serviceReplyPrefix = "_R_."

// A reader's consumer is removed after it has been idle for its inactive threshold: at most
// maxReaderInactive, defaultReaderInactive if it names none (nats.go's ordered consumers'
// default).
const (
	maxReaderInactive     = 10 * time.Minute
	defaultReaderInactive = 5 * time.Minute
)

// ReaderMaxWaiting is the most pull requests a reader's consumer holds waiting (an ordered
// consumer has one, and a second while the first runs out).
//
// Why: the server sends a waiting pull request's idle heartbeats as often as the request
// names, nothing bounds that from below, and a reader's pull requests go to the server
// directly (they cannot pass through nird: the server refuses a client's publish whose reply
// is one of its service replies, _R_.). Eight consumers with 600 pull requests each, every
// one asking for a heartbeat a nanosecond apart, had the server send 1.2 million heartbeats
// in 3 s, on both cores of nird's process: every append timed out
// (internal/adversarial's TestNATS_ReaderPullHeartbeats). With at most two waiting a
// consumer, and readers' consumers at most ReaderConsumerMax, the same attack took nird's
// appends from 5 ms to about 20 ms, none failing.
const ReaderMaxWaiting = 2

// ReaderMaxBatch is the most messages a reader's pull request may ask for (an ordered
// consumer of the store asks for replayDirectMax). Without it, a reader's pull requests
// for the whole stream, from connections that read nothing, held 1.3 GB in nird's process
// and stopped appends.
const ReaderMaxBatch = 4096

// The readers' consumer creations a nird answers: each is a consumer on the server, living
// up to maxReaderInactive, so a reader's flood of them is refused past this rate. An
// ordered consumer makes one at its start and one at each reset.
const (
	readerConsumerRate  = rate.Limit(20)
	readerConsumerBurst = 100
)

// ErrReaderConsumerRate is a reader's consumer creation refused for the rate.
var ErrReaderConsumerRate = errors.New("too many consumer creations by readers")

// ReaderConsumerMax bounds the consumers ReaderStreams may hold together for a reader's
// creation to be served. The server holds at most 1 000 a stream (nats-server's
// default_max_consumers), nird's own among them: its projections follow the events with
// one, a rebuild or a restart reads with one, the key store watches its bucket with one.
// Readers at the allowed rate, each consumer idle up to its inactive threshold, held every
// slot within a minute, and nird could create none (internal/adversarial's
// TestNATS_ReaderHoldsTheConsumerSlots). Each consumer may also hold ReaderMaxWaiting pull
// requests. Readers now fill only ReaderConsumerMax; an ordered consumer needs one at a time.
const ReaderConsumerMax = 128

// ErrReaderConsumersHeld is a reader's consumer creation refused because the readers'
// streams hold ReaderConsumerMax consumers.
var ErrReaderConsumersHeld = errors.New("the readers' streams hold as many consumers as readers may fill")

// readerGuardQueue spreads the readers' consumer creations over the nird that serve them.
const readerGuardQueue = "nird-reader-consumers"

// ServeReaderConsumers answers the readers' consumer creations and direct gets on the
// store's connection (see ServeReaderConsumersOn) until stop is called or the store closes.
func (s *Store) ServeReaderConsumers() (stop func(), err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return ServeReaderConsumersOn(s.nc, s.log)
}

// ServeReaderConsumersOn answers the readers' consumer creations and direct gets on nc, a
// connection of nird's user, until stop is called. An ephemeral pull consumer on one of
// ReaderStreams is created as asked (with action create, so it can never change an
// existing consumer, such as one of nird's); a direct get is made as asked if it asks for
// no more than ReaderMaxBatch messages (CheckReaderDirectGet), its answers passed on. Anything
// else is refused naming the field. Run it on every nird, before readers are let in: the
// subscriptions are in place on the server when it returns. On a server without a readers'
// account it receives nothing.
func ServeReaderConsumersOn(nc *nats.Conn, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	limit := rate.NewLimiter(readerConsumerRate, readerConsumerBurst)
	var subs []*nats.Subscription
	stop = func() {
		cancel()
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	for _, serve := range []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{ReaderConsumerCreate, func(m *nats.Msg) {
			var resp []byte
			if limit.Allow() {
				resp = readerConsumer(ctx, nc, m)
			} else {
				resp = consumerRefusal(fmt.Errorf("%w: more than %v a second; try again", ErrReaderConsumerRate, float64(readerConsumerRate)))
			}
			if err := nc.Publish(m.Reply, resp); err != nil {
				log.Warn("reader consumer: answer", "err", err)
			}
		}},
		{ReaderDirectGet, func(m *nats.Msg) { readerDirectGet(ctx, nc, m, log) }},
	} {
		// One at a time on each nird: a reader's flood of them waits here, and its
		// overflow is dropped here, not in the store's other subscriptions.
		sub, err := nc.QueueSubscribe(serve.subject+".>", readerGuardQueue, func(m *nats.Msg) {
			if strings.HasPrefix(m.Reply, serviceReplyPrefix) {
				serve.handle(m)
			}
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("eventstore: reader consumers: %w", err)
		}
		subs = append(subs, sub)
		if err := sub.SetPendingLimits(256, 16<<20); err != nil {
			stop()
			return nil, fmt.Errorf("eventstore: reader consumers: %w", err)
		}
	}
	// The server has the subscriptions once it answers a ping sent after them.
	if err := nc.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("eventstore: reader consumers: %w", err)
	}
	return stop, nil
}

// ReaderDirectGet is where the readers' account sends its direct gets by request
// ($JS.API.DIRECT.GET.<stream> there, mapped to ReaderDirectGet.<stream>; the direct gets of
// a subject's last message, $JS.API.DIRECT.GET.<stream>.<subject>, go to the server). nird
// makes each one it lets through (CheckReaderDirectGet) and passes its answers on.
//
// Why: the server copies a direct get's whole answer into the stream's send queue while it
// holds the lock every append takes. The reader's direct gets of the whole stream (a batch
// and max_bytes as large as JSON allows), from four connections, held appends for 5 s at the
// median on a stream of 99 000 events, and longer on a longer stream
// (internal/adversarial's TestNATS_ReaderDirectGetWholeStream). They cannot be checked and
// sent on with the reader's reply subject: the server refuses a client's publish whose reply
// is one of its service replies (_R_.).
const ReaderDirectGet = "nir.reader.direct.get"

// readerDirectMaxBytes bounds the bytes of one reader's direct get.
const readerDirectMaxBytes = 16 << 20

// ErrReaderDirectGet is a reader's direct get refused.
var ErrReaderDirectGet = errors.New("a reader's direct get refused")

// CheckReaderDirectGet parses a reader's direct get on stream and returns it as it will be
// sent, or why it is refused: more than ReaderMaxBatch messages or readerDirectMaxBytes
// bytes, or the last messages of many subjects at once (multi_last).
func CheckReaderDirectGet(stream string, data []byte) (*server.JSApiMsgGetRequest, error) {
	if !slices.Contains(ReaderStreams, stream) {
		return nil, fmt.Errorf("%w: stream %q", ErrReaderDirectGet, stream)
	}
	var req server.JSApiMsgGetRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: not a direct get: %v", ErrReaderDirectGet, err)
	}
	switch {
	case len(req.MultiLastFor) > 0:
		return nil, fmt.Errorf("%w: multi_last: not for readers", ErrReaderDirectGet)
	case req.Batch < 0 || req.Batch > ReaderMaxBatch:
		return nil, fmt.Errorf("%w: batch: at most %d", ErrReaderDirectGet, ReaderMaxBatch)
	case req.MaxBytes < 0 || req.MaxBytes > readerDirectMaxBytes:
		return nil, fmt.Errorf("%w: max_bytes: at most %d", ErrReaderDirectGet, readerDirectMaxBytes)
	}
	if req.Batch > 0 && req.MaxBytes == 0 {
		req.MaxBytes = readerDirectMaxBytes
	}
	return &req, nil
}

// readerDirectGet makes a reader's direct get and passes each answer on to its reply
// subject: one, or for a batch each message and the closing status.
func readerDirectGet(ctx context.Context, nc *nats.Conn, m *nats.Msg, log *slog.Logger) {
	pass := func(a *nats.Msg) {
		if err := nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: a.Header, Data: a.Data}); err != nil {
			log.Warn("reader direct get: answer", "err", err)
		}
	}
	status := func(code, description string) {
		a := nats.NewMsg(m.Reply)
		a.Header.Set("Status", code)
		a.Header.Set("Description", description)
		pass(a)
	}
	stream := strings.TrimPrefix(m.Subject, ReaderDirectGet+".")
	req, err := CheckReaderDirectGet(stream, m.Data)
	if err != nil {
		status("400", err.Error())
		return
	}
	body, err := json.Marshal(req)
	if err != nil {
		status("400", err.Error())
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	subject := "$JS.API.DIRECT.GET." + stream
	if req.Batch == 0 {
		a, err := nc.RequestWithContext(rctx, subject, body)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			status("503", "no responders")
		case err != nil:
			log.Warn("reader direct get", "err", err)
		default:
			pass(a)
		}
		return
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		log.Warn("reader direct get", "err", err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		log.Warn("reader direct get", "err", err)
		return
	}
	for range req.Batch + 1 { // the messages, then the status that ends them
		a, err := sub.NextMsgWithContext(rctx)
		if err != nil {
			log.Warn("reader direct get", "err", err)
			return
		}
		pass(a)
		if a.Header.Get("Status") != "" {
			return
		}
	}
}

// readerConsumer checks one creation and forwards it, returning the answer.
func readerConsumer(ctx context.Context, nc *nats.Conn, m *nats.Msg) []byte {
	rest := strings.TrimPrefix(m.Subject, ReaderConsumerCreate+".")
	stream, _, _ := strings.Cut(rest, ".")
	req, err := CheckReaderConsumer(stream, m.Data)
	if err != nil {
		return consumerRefusal(err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return consumerRefusal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := readerConsumerRoom(rctx, nc); err != nil {
		return consumerRefusal(err)
	}
	resp, err := nc.RequestWithContext(rctx, "$JS.API.CONSUMER.CREATE."+rest, body)
	if err != nil {
		return consumerRefusal(fmt.Errorf("the register's server did not answer: %w", err))
	}
	return resp.Data
}

// readerConsumerRoom refuses a reader's creation while ReaderStreams together hold
// ReaderConsumerMax consumers. The creations one nird serves are answered one at a time,
// so only several nird at once may each let one more in.
func readerConsumerRoom(ctx context.Context, nc *nats.Conn) error {
	held := 0
	for _, stream := range ReaderStreams {
		resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO."+stream, nil)
		if err != nil {
			return fmt.Errorf("the register's server did not answer: %w", err)
		}
		var info server.JSApiStreamInfoResponse
		switch err := json.Unmarshal(resp.Data, &info); {
		case err != nil:
			return fmt.Errorf("the register's server answered %s's info with %d bytes that are not one: %w", stream, len(resp.Data), err)
		case info.Error != nil && info.Error.ErrCode == uint16(server.JSStreamNotFoundErr):
			continue // holds none (a server nird has not set up in full)
		case info.Error != nil:
			return fmt.Errorf("%s's info: %s", stream, info.Error.Description)
		case info.StreamInfo == nil:
			return fmt.Errorf("%s's info: empty", stream)
		}
		held += info.State.Consumers
	}
	if held >= ReaderConsumerMax {
		return fmt.Errorf("%w: %s hold %d, and a reader may create one only while they hold fewer than %d; an idle consumer is removed after its inactive_threshold", ErrReaderConsumersHeld, strings.Join(ReaderStreams, ", "), held, ReaderConsumerMax)
	}
	return nil
}

// ErrReaderConsumer is a reader's consumer creation refused.
var ErrReaderConsumer = errors.New("a reader may create only ephemeral pull consumers on " + strings.Join(ReaderStreams, ", "))

// CheckReaderConsumer parses a reader's consumer creation for stream and returns it as it
// will be sent, or why it is refused.
func CheckReaderConsumer(stream string, data []byte) (*server.CreateConsumerRequest, error) {
	if !slices.Contains(ReaderStreams, stream) {
		return nil, fmt.Errorf("%w: stream %q", ErrReaderConsumer, stream)
	}
	var req server.CreateConsumerRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: not a consumer creation: %v", ErrReaderConsumer, err)
	}
	c := &req.Config
	switch {
	case req.Stream != stream:
		return nil, fmt.Errorf("%w: stream_name %q is not the subject's %q", ErrReaderConsumer, req.Stream, stream)
	case c.DeliverSubject != "":
		return nil, fmt.Errorf("%w: deliver_subject: push consumers deliver into the register's account", ErrReaderConsumer)
	case c.DeliverGroup != "":
		return nil, fmt.Errorf("%w: deliver_group is for push consumers", ErrReaderConsumer)
	case c.Direct:
		return nil, fmt.Errorf("%w: direct: that is for a mirror's or source's consumer", ErrReaderConsumer)
	case c.Durable != "":
		return nil, fmt.Errorf("%w: durable_name: no durable consumers", ErrReaderConsumer)
	case c.InactiveThreshold < 0 || c.InactiveThreshold > maxReaderInactive:
		return nil, fmt.Errorf("%w: inactive_threshold: at most %s, so a reader's consumers go away", ErrReaderConsumer, maxReaderInactive)
	}
	if c.InactiveThreshold == 0 {
		c.InactiveThreshold = defaultReaderInactive
	}
	if c.MaxWaiting <= 0 || c.MaxWaiting > ReaderMaxWaiting {
		c.MaxWaiting = ReaderMaxWaiting
	}
	if c.MaxRequestBatch <= 0 || c.MaxRequestBatch > ReaderMaxBatch {
		c.MaxRequestBatch = ReaderMaxBatch
	}
	// No acks: the server keeps an entry for every message a consumer with acks delivered
	// and has not had acked (160-330 bytes each, in nird's process on the embedded server).
	// A reader's explicit-ack consumers with max_ack_pending -1, pulled through a stream of
	// 55 000 events and never acked, held 887 000 entries with 16 consumers and took nird
	// from 183 to 459 MiB; 128 consumers on a register of millions of events, tens of GB
	// (internal/adversarial's TestNATS_ReaderAckPending). A read needs no acks: ordered
	// consumers (nirctl backup, replay, verify) take none, and an ack sent to a consumer
	// without them is ignored.
	c.AckPolicy = server.AckNone
	c.MaxAckPending = 0
	// Never an update: a name a reader learns must not let it change another's consumer.
	req.Action = server.ActionCreate
	return &req, nil
}

// consumerError explains a consumer creation or a direct get that nobody answered: where
// the caller is a reader (the readers' account), a nird serves them, and none runs.
func consumerError(err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w (a read-only reader's consumers and direct gets are served by nird: is a nird running?)", err)
	}
	return err
}

// consumerRefusal is a JetStream API error answer, as the server gives one.
func consumerRefusal(err error) []byte {
	b, _ := json.Marshal(server.JSApiConsumerCreateResponse{ApiResponse: server.ApiResponse{
		Type:  server.JSApiConsumerCreateResponseType,
		Error: &server.ApiError{Code: 403, Description: err.Error()},
	}})
	return b
}
