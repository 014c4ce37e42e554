package projections

import (
	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Due is a person the retention rule makes due for erasure (rules.ErasureDue).
type Due struct {
	PersonKey    string
	Kommune      string
	LastActivity rules.Date
}

// ErasureDue lists the persons due for erasure under a retention rule of years on now, in
// person-key order, and the checkpoint the file had folded (DOMAIN.md Product decisions 15).
// It folds every person of the file: a scheduled job's cost, not a query's.
func (db *DB) ErasureDue(years int, now rules.Date) ([]Due, uint64, error) {
	return db.erasureDue(years, now, "")
}

// PersonErasureDue is ErasureDue for the person with key personKey alone: the person, if due,
// and the checkpoint (a re-check right before an erasure costs one person's fold, not the
// register's).
func (db *DB) PersonErasureDue(years int, now rules.Date, personKey string) ([]Due, uint64, error) {
	return db.erasureDue(years, now, personKey)
}

func (db *DB) erasureDue(years int, now rules.Date, only string) ([]Due, uint64, error) {
	var out []Due
	var ckpt uint64
	err := db.view(func(tx *bolt.Tx) error {
		ckpt = checkpointTx(tx)
		each := bucket(tx, bucketPEvents).ForEach
		if only != "" {
			each = func(fn func(k, v []byte) error) error {
				if v := bucket(tx, bucketPEvents).Get([]byte(only)); v != nil {
					return fn([]byte(only), v)
				}
				return nil
			}
		}
		return each(func(k, _ []byte) error {
			// Folded sealed: the rule reads no identifying field.
			var les []rules.LoggedEvent
			if err := personEvents(tx, string(k), func(seq uint64, ev *nirv1.Event) error {
				les = append(les, rules.LoggedEvent{Seq: seq, Event: ev})
				return nil
			}); err != nil {
				return err
			}
			st := rules.NewState(string(k))
			st.ApplyAll(les)
			if last, due := rules.ErasureDue(st, years, now); due {
				out = append(out, Due{PersonKey: st.PersonKey, Kommune: rules.KommuneNow(st.Kommune), LastActivity: last})
			}
			return nil
		})
	})
	return out, ckpt, err
}
