package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Mismatch is a setting of the stream that differs from what the register depends on: one
// that lets history be lost or rewritten, events in without nird, or appends fail.
type Mismatch struct {
	// Setting is the stream setting's name as the nats CLI shows it, e.g. "max_age".
	Setting string
	// Have and Want are its value on the stream and the value the register needs.
	Have, Want string
}

func (m Mismatch) String() string { return m.Setting + "=" + m.Have + " (want " + m.Want + ")" }

// StreamCheck is what CheckStream found.
type StreamCheck struct {
	// Mismatches are the settings that differ from the register's definition, in a fixed
	// order; empty when the stream is as it should be.
	Mismatches []Mismatch
	// Messages and Bytes are the stream's size.
	Messages, Bytes uint64
	// LastSeq is the stream's last sequence as the answering server has it.
	LastSeq uint64
	// Replicas is the stream's replica count; CurrentReplicas the leader and the followers
	// that are current (both 1 on a single server).
	Replicas, CurrentReplicas int
	// Leader is the stream leader's server name ("" on a single server or without one).
	Leader string
}

// streamVerdict compares an existing stream's configuration with the register's: fatal
// is an error for what cannot be repaired in place (the stream cannot hold the register),
// mismatches what can, and repaired the configuration with every mismatch put right and
// everything else (quotas, placement, more replicas than configured) kept.
func streamVerdict(have, want jetstream.StreamConfig) (mismatches []Mismatch, repaired jetstream.StreamConfig, fatal error) {
	switch {
	case have.Storage != want.Storage:
		return nil, have, fmt.Errorf("%w: stream %s has %s storage; the register needs file storage (events must survive a restart)", ErrInvalid, StreamName, have.Storage)
	case have.Retention != want.Retention:
		return nil, have, fmt.Errorf("%w: stream %s has %s retention; the register needs limits retention (no event may be removed once consumed)", ErrInvalid, StreamName, have.Retention)
	case have.Mirror != nil:
		return nil, have, fmt.Errorf("%w: stream %s is a mirror; it cannot take the register's appends", ErrInvalid, StreamName)
	case have.Sealed:
		return nil, have, fmt.Errorf("%w: stream %s is sealed; it takes no appends and cannot be unsealed", ErrInvalid, StreamName)
	}
	repaired = have
	add := func(setting string, differs bool, have, want string, apply func()) {
		if differs {
			mismatches = append(mismatches, Mismatch{Setting: setting, Have: have, Want: want})
			apply()
		}
	}
	b := strconv.FormatBool
	add("subjects", !slices.Equal(have.Subjects, want.Subjects), strings.Join(have.Subjects, ","), strings.Join(want.Subjects, ","), func() { repaired.Subjects = want.Subjects })
	add("discard", have.Discard != want.Discard, have.Discard.String(), want.Discard.String(), func() { repaired.Discard = want.Discard })
	add("max_age", have.MaxAge != want.MaxAge, have.MaxAge.String(), "0 (unlimited)", func() { repaired.MaxAge = want.MaxAge })
	add("max_msgs_per_subject", have.MaxMsgsPerSubject != want.MaxMsgsPerSubject, strconv.FormatInt(have.MaxMsgsPerSubject, 10), "-1 (unlimited)", func() { repaired.MaxMsgsPerSubject = want.MaxMsgsPerSubject })
	add("duplicate_window", have.Duplicates != want.Duplicates, have.Duplicates.String(), want.Duplicates.String(), func() { repaired.Duplicates = want.Duplicates })
	add("replicas", have.Replicas < want.Replicas, strconv.Itoa(have.Replicas), "at least "+strconv.Itoa(want.Replicas), func() { repaired.Replicas = want.Replicas })
	add("allow_direct", !have.AllowDirect, b(have.AllowDirect), "true", func() { repaired.AllowDirect = true })
	add("allow_atomic", !have.AllowAtomicPublish, b(have.AllowAtomicPublish), "true", func() { repaired.AllowAtomicPublish = true })
	add("deny_delete", !have.DenyDelete, b(have.DenyDelete), "true", func() { repaired.DenyDelete = true })
	add("deny_purge", !have.DenyPurge, b(have.DenyPurge), "true", func() { repaired.DenyPurge = true })
	add("no_ack", have.NoAck, b(have.NoAck), "false", func() { repaired.NoAck = false })
	add("allow_rollup_hdrs", have.AllowRollup, b(have.AllowRollup), "false", func() { repaired.AllowRollup = false })
	add("allow_msg_ttl", have.AllowMsgTTL, b(have.AllowMsgTTL), "false", func() { repaired.AllowMsgTTL = false })
	add("allow_msg_schedules", have.AllowMsgSchedules, b(have.AllowMsgSchedules), "false", func() { repaired.AllowMsgSchedules = false })
	add("allow_msg_counter", have.AllowMsgCounter, b(have.AllowMsgCounter), "false", func() { repaired.AllowMsgCounter = false })
	add("persist_mode", have.PersistMode != want.PersistMode, have.PersistMode.String(), want.PersistMode.String(), func() { repaired.PersistMode = want.PersistMode })
	add("republish", have.RePublish != nil, fmt.Sprint(have.RePublish != nil), "none", func() { repaired.RePublish = nil })
	add("sources", len(have.Sources) > 0, strconv.Itoa(len(have.Sources)), "none", func() { repaired.Sources = nil })
	add("subject_transform", have.SubjectTransform != nil, fmt.Sprint(have.SubjectTransform != nil), "none", func() { repaired.SubjectTransform = nil })
	return mismatches, repaired, nil
}

// CheckStream reads the stream's configuration and state and compares the configuration
// with the register's definition. It changes nothing. It fails only when the stream
// cannot be read or cannot hold the register at all (ErrInvalid).
func (s *Store) CheckStream(ctx context.Context) (StreamCheck, error) {
	if err := s.checkOpen(); err != nil {
		return StreamCheck{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return StreamCheck{}, s.wrap(fmt.Errorf("eventstore: stream %s: %w", StreamName, err))
	}
	info := st.CachedInfo()
	s.window.Store(int64(info.Config.Duplicates))
	mm, _, err := streamVerdict(info.Config, streamConfig(s.cfg))
	if err != nil {
		return StreamCheck{}, err
	}
	c := StreamCheck{
		Mismatches: mm, Messages: info.State.Msgs, Bytes: info.State.Bytes, LastSeq: info.State.LastSeq,
		Replicas: info.Config.Replicas, CurrentReplicas: 1,
	}
	if cl := info.Cluster; cl != nil {
		c.Leader = cl.Leader
		if cl.Leader == "" {
			c.CurrentReplicas = 0
		}
		for _, r := range cl.Replicas {
			if r.Current && !r.Offline {
				c.CurrentReplicas++
			}
		}
	}
	return c, nil
}

// RepairStream puts every mismatched setting back (see CheckStream) and keeps the rest of
// the stream's configuration. It is the operator's explicit step (nird --repair-stream):
// Open only reports. It returns what it changed; nothing when the stream was as it should
// be. A setting the server refuses to change in place is named in the error.
func (s *Store) RepairStream(ctx context.Context) ([]Mismatch, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, s.wrap(fmt.Errorf("eventstore: stream %s: %w", StreamName, err))
	}
	mm, repaired, err := streamVerdict(st.CachedInfo().Config, streamConfig(s.cfg))
	if err != nil || len(mm) == 0 {
		return nil, err
	}
	up, err := s.js.UpdateStream(ctx, repaired)
	if err != nil {
		names := make([]string, len(mm))
		for i, m := range mm {
			names[i] = m.Setting
		}
		return nil, s.wrap(fmt.Errorf("eventstore: repair stream %s (%s): %w", StreamName, strings.Join(names, ", "), err))
	}
	s.window.Store(int64(up.CachedInfo().Config.Duplicates))
	s.log.Warn("stream settings put back by the operator's repair", "stream", StreamName, "settings", mismatchList(mm))
	return mm, nil
}

func mismatchList(mm []Mismatch) string {
	parts := make([]string, len(mm))
	for i, m := range mm {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

// errStreamNotFound reports whether err says the stream does not exist.
func errStreamNotFound(err error) bool { return errors.Is(err, jetstream.ErrStreamNotFound) }
