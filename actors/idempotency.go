package actors

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// Idempotency is a request's Idempotency-Key and the fingerprint of what the
// request asked for (method, route and canonical body), computed by the edge.
type Idempotency struct {
	Key         string
	Fingerprint [sha256.Size]byte
}

// Errors of idempotent requests.
var (
	ErrKeyReused   = fault.Define("idempotency_key_reused", fault.Unprocessable, "Idempotency key reused")
	ErrKeyInFlight = fault.Define("idempotency_key_in_flight", fault.Conflict, "Request with this idempotency key in progress")
)

// Redacter is implemented by results that hold a secret shown once (a new
// API key): the stored outcome, and so a replay, holds Redacted() instead.
type Redacter interface {
	Redacted() any
}

// outcome is what is stored of a request, to replay it: the command's
// result as JSON, or the application error it returned.
type outcome struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error *storedError    `json:"error,omitempty"`
}

type storedError struct {
	Code   string             `json:"code"`
	Kind   string             `json:"kind"`
	Title  string             `json:"title"`
	Detail string             `json:"detail"`
	Fields []fault.FieldError `json:"fields,omitempty"`
}

// storable reports whether an error is a domain outcome worth replaying (a
// conflict, a broken rule, a missing resource). Validation, authorisation and
// internal errors are not stored, so a corrected or later retry runs.
func storable(err error) bool {
	var e *fault.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code.Kind() {
	case fault.Conflict, fault.NotFound:
		return true
	case fault.Unprocessable:
		return e.Code != fault.ErrValidation
	default:
		return false
	}
}

func encodeOutcome(value any, err error) ([]byte, error) {
	var out outcome
	if err != nil {
		e := fault.From(err)
		out.Error = &storedError{Code: e.Code.Name(), Kind: e.Code.Kind().String(), Title: e.Code.Title(), Detail: e.Detail, Fields: e.Fields}
	} else {
		if r, ok := value.(Redacter); ok {
			value = r.Redacted()
		}
		raw, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("encode outcome: %w", err)
		}
		out.Value = raw
	}
	return json.Marshal(out)
}

// replay answers a request from a stored record: its outcome when the
// fingerprints match, else ErrKeyReused.
func replay(rec store.IdempotencyRecord, key *Idempotency) result {
	res := result{record: &rec}
	if string(rec.Fingerprint) != string(key.Fingerprint[:]) {
		res.err = ErrKeyReused.New("This Idempotency-Key was used with another request (method, path or body); use a new key for a new request.")
		return res
	}
	var out outcome
	if err := json.Unmarshal(rec.Outcome, &out); err != nil {
		res.err = fault.ErrInternal.Wrap(err, "The server could not complete the request.")
		return res
	}
	res.replayed = true
	if out.Error == nil {
		res.replay = out.Value
		return res
	}
	kind, _ := fault.ParseKind(out.Error.Kind)
	res.err = &fault.Error{
		Code:   fault.Define(out.Error.Code, kind, out.Error.Title),
		Detail: out.Error.Detail,
		Fields: out.Error.Fields,
	}
	return res
}

// lockID is the advisory lock of the key in its scope (user, clinic, key).
func (k *Idempotency) lockID(m Meta) int64 {
	h := sha256.New()
	h.Write(m.UserID[:])
	h.Write(m.ClinicID[:])
	h.Write([]byte(k.Key))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// The idempotency steps of a batch (see runInTx), each one statement for the
// whole batch.

// claimKeys takes the advisory lock of each keyed request's key for the rest
// of tx, so that a second process with the same key gets ErrKeyInFlight
// instead of running it again. It runs before the clinic's lock, so such a
// retry is answered at once rather than after queueing behind the clinic.
func claimKeys(ctx context.Context, q *store.Queries, slots []slot, live []int) error {
	keyed := keyedSlots(slots, live)
	if len(keyed) == 0 {
		return nil
	}
	ids := make([]int64, len(keyed))
	for n, i := range keyed {
		ids[n] = slots[i].req.meta.Idempotency.lockID(slots[i].req.meta)
	}
	locked, err := q.TryLockIdempotencyKeys(ctx, ids)
	if err != nil {
		return err
	}
	for n, i := range keyed {
		if !locked[n] {
			slots[i].answer(result{err: ErrKeyInFlight.New("A request with this Idempotency-Key is still in progress; retry after it completes.")})
		}
	}
	return nil
}

// findRecords answers the keyed requests whose key already has an outcome
// with it, and marks a request repeating the key of an earlier one in the
// batch, which is answered with that one's outcome (answerRepeats).
func findRecords(ctx context.Context, q *store.Queries, clinicID uuid.UUID, slots []slot, live []int) error {
	keyed := keyedSlots(slots, live)
	if len(keyed) == 0 {
		return nil
	}
	keys := make([]store.IdempotencyKey, len(keyed))
	for n, i := range keyed {
		keys[n] = store.IdempotencyKey{UserID: slots[i].req.meta.UserID, Key: slots[i].req.meta.Idempotency.Key}
	}
	recs, err := q.IdempotencyRecords(ctx, clinicID, keys)
	if err != nil {
		return err
	}
	stored := make(map[store.IdempotencyKey]store.IdempotencyRecord, len(recs))
	for _, rec := range recs {
		stored[store.IdempotencyKey{UserID: rec.UserID, Key: rec.Key}] = rec
	}
	first := make(map[store.IdempotencyKey]int, len(keyed))
	for n, i := range keyed {
		if rec, ok := stored[keys[n]]; ok {
			slots[i].answer(replay(rec, slots[i].req.meta.Idempotency))
		} else if j, ok := first[keys[n]]; ok {
			slots[i].repeats = j
		} else {
			first[keys[n]] = i
		}
	}
	return nil
}

// saveOutcomes stores the outcomes of the keyed requests that ran.
func (e *Executor) saveOutcomes(ctx context.Context, q *store.Queries, slots []slot, live []int) error {
	var recs []store.IdempotencyRecord
	var owners []int
	for _, i := range live {
		if s := &slots[i]; s.outcome != nil {
			m := s.req.meta
			recs = append(recs, store.IdempotencyRecord{UserID: m.UserID, ClinicID: m.ClinicID, Key: m.Idempotency.Key,
				Fingerprint: m.Idempotency.Fingerprint[:], Outcome: s.outcome})
			owners = append(owners, i)
		}
	}
	saved, err := q.SaveIdempotencyRecords(ctx, recs, e.idempotencyTTL)
	if err != nil {
		return err
	}
	for n, i := range owners {
		slots[i].res.record = &saved[n]
	}
	return nil
}

// answerRepeats answers each request that repeated an earlier one's key with
// that one's stored outcome; when it stored none (it failed in a way that is
// not replayed), the key was in flight when the repeat arrived.
func answerRepeats(slots []slot, live []int) {
	for _, i := range live {
		s := &slots[i]
		if s.repeats < 0 {
			continue
		}
		if rec := slots[s.repeats].res.record; rec != nil {
			s.answer(replay(*rec, s.req.meta.Idempotency))
		} else {
			s.answer(result{err: ErrKeyInFlight.New("A request with this Idempotency-Key was in progress; retry it.")})
		}
	}
}

// keyedSlots returns the indexes of the live requests that carry a key and
// still wait for an answer.
func keyedSlots(slots []slot, live []int) []int {
	var keyed []int
	for _, i := range live {
		if !slots[i].answered && slots[i].req.meta.Idempotency != nil {
			keyed = append(keyed, i)
		}
	}
	return keyed
}

// keyLocks serialises, within this process, requests with the same key that
// run outside any clinic actor, so a retry racing its original waits for it
// and then replays it (clinic routes get this from their actor).
type keyLocks struct {
	mu   sync.Mutex
	held map[int64]chan struct{}
}

// lock waits until no other request holds id, then holds it until unlock.
func (l *keyLocks) lock(ctx context.Context, id int64) (unlock func(), err error) {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = make(map[int64]chan struct{})
		}
		busy, isHeld := l.held[id]
		if !isHeld {
			done := make(chan struct{})
			l.held[id] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.held, id)
				l.mu.Unlock()
				close(done)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, timeoutError(ctx)
		}
	}
}

// scopeOf names a key's cache entry in a clinic actor.
type scopeOf struct {
	user uuid.UUID
	key  string
}
