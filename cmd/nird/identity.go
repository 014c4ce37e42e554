package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// metaPersonKey is the stream metadata key of the person key's fingerprint, written when
// nird creates the stream. Every nird that shares the stream must have the key it names.
const metaPersonKey = "nir_person_key"

// keyCheckEvents bounds the registrations whose person keys checkPersonKey recomputes on a
// stream without a fingerprint, and keyCheckScan the messages it reads to find them.
const (
	keyCheckEvents = 20
	keyCheckScan   = 5000
)

// loadPersonKey loads the person key file, or, when there is none, makes a new key and
// writes it (before the stream is opened, so that a stream created with its fingerprint
// never outlives the key). fresh says the key was made now: checkPersonKey removes it again
// if the stream turns out to have a key of its own.
func loadPersonKey(keyFile string, log *slog.Logger) (keys *personkey.Keyer, fresh bool, err error) {
	keys, err = personkey.Load(keyFile)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			err = fmt.Errorf("--person-key-file: %w", err)
		} else {
			logLoadNote(keys, log)
		}
		return keys, false, err
	}
	if keys, err = personkey.Generate(); err != nil {
		return nil, false, err
	}
	if err := keys.Write(keyFile); err != nil {
		return nil, false, fmt.Errorf("--person-key-file: %w", err)
	}
	return keys, true, nil
}

// logLoadNote logs what loading the person key file changed, or would change, about it.
func logLoadNote(keys *personkey.Keyer, log *slog.Logger) {
	if note := keys.LoadNote(); note != "" {
		log.Warn("the person key file was open to others", "detail", note)
	}
}

// checkPersonKey refuses a person key that is not the one the stream's persons were keyed
// with: a wrong key would file every national id under another person (lookups find nobody,
// and a second registration of the same fødselsnummer makes a second person). The stream's
// metadata names the fingerprint of the key it was created with; a stream without it (made
// by an older nird or by hand) is checked by recomputing the keys of its first
// registrations. A fresh key (the file was missing) is accepted only for a stream that was
// just created or is empty and names no key; otherwise it is removed again.
func checkPersonKey(ctx context.Context, store *eventstore.Store, keys *personkey.Keyer, keyFile string, fresh bool, open func(*nirv1.Event) error, log *slog.Logger) (err error) {
	defer func() {
		if err != nil && fresh {
			os.Remove(keyFile)
		}
	}()
	id := store.Identity()
	want := id.Metadata[metaPersonKey]
	restore := fmt.Sprintf("restore the original key file to %s (from a backup, or from another nird of this register) and start again", keyFile)
	if fresh && !id.New {
		// The leader's: a replica that lags may answer a stream with events as empty.
		last, err := store.LeaderLastSeq(ctx)
		if err != nil {
			return err
		}
		if want != "" || last > 0 {
			return fmt.Errorf("--person-key-file %s is missing, and the stream %s already holds events keyed with a person key (fingerprint %q): nird does not make a new key for a register that has one; %s",
				keyFile, eventstore.StreamName, want, restore)
		}
	}
	if want != "" {
		if want != keys.Fingerprint() {
			return fmt.Errorf("--person-key-file %s holds another person key (fingerprint %s) than the one the stream %s was created with (fingerprint %s); %s",
				keyFile, keys.Fingerprint(), eventstore.StreamName, want, restore)
		}
		return nil
	}
	if id.New || fresh {
		return nil
	}
	checked, matched, err := keyedLike(ctx, store, keys, open)
	if err != nil {
		return fmt.Errorf("check the person key against the stream: %w", err)
	}
	if checked > 0 && matched == 0 {
		return fmt.Errorf("--person-key-file %s is not the person key the stream %s was written with (none of its first %d registrations has the person key this key gives); %s",
			keyFile, eventstore.StreamName, checked, restore)
	}
	if checked == 0 {
		// Nothing to check against (the first messages hold no readable registration, e.g.
		// all erased): accepted, since refusing would stop a sound register, but loudly, as
		// a wrong key goes unnoticed until lookups find nobody.
		log.Warn("the stream names no person key fingerprint, and none of its first messages holds a readable registration: the person key was NOT checked; make sure --person-key-file is this register's key",
			"messages_read", keyCheckScan)
		return nil
	}
	log.Info("the stream names no person key fingerprint (created by an older nird or by hand); the key was checked against its registrations, and its fingerprint is written to the stream",
		"registrations_checked", checked, "matched", matched)
	// Written once checked, so that later starts compare fingerprints: checked again at every
	// start, the key went unchecked (a warning) once the retention rule had erased the
	// registrations of the first messages.
	if err := store.SetMetaIfAbsent(ctx, metaPersonKey, keys.Fingerprint()); err != nil {
		log.Warn("the checked person key's fingerprint was not written to the stream: the next start checks the key against the registrations again", "err", err)
	}
	return nil
}

// keyedLike recomputes, with keys, the person keys of the stream's first registrations (up
// to keyCheckEvents of them, in the first keyCheckScan messages), and counts those that match
// the person they are stored for.
//
// The registrations' ids are sealed (DOMAIN.md Product decisions 15): open opens them. Those
// that do not open (erased, or a damaged data key) are not counted.
func keyedLike(ctx context.Context, store *eventstore.Store, keys *personkey.Keyer, open func(*nirv1.Event) error) (checked, matched int, err error) {
	last, err := store.LeaderLastSeq(ctx)
	if err != nil || last == 0 {
		return 0, 0, err
	}
	for st, err := range store.Replay(ctx, eventstore.ReplayOptions{From: 1, To: min(last, keyCheckScan)}) {
		if err != nil {
			return checked, matched, err
		}
		pr := st.Event.GetPersonRegistered()
		if pr == nil {
			continue
		}
		if err := open(st.Event); err != nil {
			return checked, matched, err
		}
		if id := rules.KeyingID(pr); id == rules.ErasedText || id == rules.UnreadableText {
			// Erased, or its data key damaged: its ids tell nothing of the key. Counted as
			// not matching, a register whose first persons were erased (the retention rule
			// erases the oldest first) refused its own key.
			continue
		}
		checked++
		for _, nid := range []string{pr.GetFodselsnummer(), pr.GetDNummer(), pr.GetDufNummer(), rules.KeyingID(pr)} {
			if nid != "" && keys.Key(nid) == st.PersonKey {
				matched++
				break
			}
		}
		if checked >= keyCheckEvents {
			break
		}
	}
	return checked, matched, nil
}
