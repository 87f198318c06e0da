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
	"github.com/jackc/pgx/v5"

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

// claimKey takes the key's advisory lock for the rest of tx, so that a second
// process with the same key gets ErrKeyInFlight instead of running it again.
// It is taken before the clinic's lock, so such a retry is answered at once
// rather than after queueing behind the clinic's writes.
func claimKey(ctx context.Context, tx pgx.Tx, m Meta) error {
	locked, err := store.New(tx).TryLockIdempotencyKey(ctx, m.Idempotency.lockID(m))
	if err != nil {
		return err
	}
	if !locked {
		return ErrKeyInFlight.New("A request with this Idempotency-Key is still in progress; retry after it completes.")
	}
	return nil
}

// runIdempotent runs j in tx unless the key, claimed by claimKey, already
// has an outcome. It runs j in a savepoint, so a storable error rolls back
// j's writes but still commits the stored outcome.
func (e *Executor) runIdempotent(ctx context.Context, tx pgx.Tx, m Meta, j job) (result, error) {
	q := store.New(tx)
	key := m.Idempotency
	rec, found, err := q.IdempotencyRecord(ctx, m.UserID, m.ClinicID, key.Key)
	if err != nil {
		return result{}, err
	}
	if found {
		return replay(rec, key), nil
	}

	savepoint, err := tx.Begin(ctx)
	if err != nil {
		return result{}, fmt.Errorf("savepoint: %w", err)
	}
	jobQueries := store.New(savepoint)
	value, jobErr := j(ctx, jobQueries)
	if jobErr != nil {
		if rbErr := savepoint.Rollback(ctx); rbErr != nil {
			return result{}, fmt.Errorf("roll back to savepoint: %w", rbErr)
		}
		if !storable(jobErr) {
			return result{}, jobErr
		}
	} else {
		if err := savepoint.Commit(ctx); err != nil {
			return result{}, fmt.Errorf("release savepoint: %w", err)
		}
		if err := e.emit(ctx, tx, m, jobQueries); err != nil {
			return result{}, err
		}
	}
	encoded, err := encodeOutcome(value, jobErr)
	if err != nil {
		return result{}, err
	}
	rec, err = q.SaveIdempotencyRecord(ctx, store.IdempotencyRecord{
		UserID: m.UserID, ClinicID: m.ClinicID, Key: key.Key, Fingerprint: key.Fingerprint[:], Outcome: encoded,
	}, e.idempotencyTTL)
	if err != nil {
		return result{}, err
	}
	return result{value: value, err: jobErr, record: &rec}, nil
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
