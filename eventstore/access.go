package eventstore

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// InboxPrefix is the inbox prefix of the store's connection: the JetStream API's replies,
// direct gets, batch acknowledgements and ordered consumers deliver to subjects under it.
// Only nird's NATS user may subscribe to it (StorePermissions, deploy/nats/accounts.conf),
// and it is outside _INBOX.>, where case systems and the nats CLI receive their replies.
const InboxPrefix = "_NIRD_INBOX"

// StorePermissions are what the store's connection needs and no more: publish events,
// leases (LeaseBucket) and the persons' data keys (KeyBucket), use the JetStream API except
// purging streams, deleting the event, checkpoint and key streams, and deleting messages of
// the event, checkpoint and lease streams (events are immutable; those streams also deny
// deletes and purges), answer flow control, receive replies on InboxPrefix, and serve the
// readers' consumer creations and direct gets (ReaderConsumerCreate, ReaderDirectGet,
// answered on the server's service replies). The one message delete it may make is in KeyBucket's stream: KeyStore.Destroy
// overwrites a destroyed data key (SecureDeleteMsg). The one stream it may delete is the
// lease bucket's, which holds nothing but leases: a lease whose record is damaged on disk
// can be taken by nobody, and the bucket is made again (Lease.Run). The server's deny list
// overrides its allow list, so the streams nird may not delete, and those whose messages it
// may not delete, are named one by one.
// They are nird's permissions on the embedded server and the nird user's in
// deploy/nats/accounts.conf (internal/deploytest checks that both agree).
func StorePermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				subjectPrefix + ">", CheckpointSubject, "$KV." + LeaseBucket + ".>", "$KV." + KeyBucket + ".>",
				"$JS.API.>", "$JS.FC.>",
				// Answers to the readers' consumer creations and direct gets
				// (ServeReaderConsumers).
				serviceReplyPrefix + ">",
			},
			Deny: []string{
				"$JS.API.STREAM.DELETE." + StreamName, "$JS.API.STREAM.DELETE." + CheckpointStreamName,
				"$JS.API.STREAM.DELETE.KV_" + KeyBucket, "$JS.API.STREAM.PURGE.>",
				"$JS.API.STREAM.MSG.DELETE." + StreamName, "$JS.API.STREAM.MSG.DELETE." + CheckpointStreamName,
				"$JS.API.STREAM.MSG.DELETE.KV_" + LeaseBucket,
				"$JS.API.ACCOUNT.PURGE.>",
			},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{InboxPrefix + ".>", ReaderConsumerCreate + ".>", ReaderDirectGet + ".>"}},
	}
}

// InProcessUser makes a user of the embedded server with perms and a fresh key that
// exists only in this process's memory, and returns the client option that authenticates
// as it. The server admits it in-process only, never over TCP. Pass the user in
// Config.Users and the option to Store.Connect.
func InProcessUser(perms *server.Permissions) (*server.NkeyUser, nats.Option, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: new nkey: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: new nkey: %w", err)
	}
	u := &server.NkeyUser{
		Nkey:                   pub,
		Permissions:            perms,
		AllowedConnectionTypes: map[string]struct{}{"IN_PROCESS": {}},
	}
	return u, nats.Nkey(pub, kp.Sign), nil
}
