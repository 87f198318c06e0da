package actors_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// route is one of the two paths an idempotent request takes: a clinic route,
// run by the clinic's actor, or a route outside any clinic, run on the
// Executor with its key stored under a NULL clinic.
type route struct {
	name string
	// start returns a dispatcher running commands on exec: a fresh one is
	// what another process (or this one, restarted) would have.
	start func(t *testing.T, exec *actors.Executor) actors.Dispatcher
	// clinic returns the clinic the route's requests name.
	clinic func(t *testing.T) uuid.UUID
}

var routes = []route{
	{
		name: "ClinicActor",
		start: func(t *testing.T, exec *actors.Executor) actors.Dispatcher {
			return registryOn(t, exec, actors.Config{})
		},
		clinic: func(t *testing.T) uuid.UUID { return newClinic(t) },
	},
	{
		name:   "Executor",
		start:  func(_ *testing.T, exec *actors.Executor) actors.Dispatcher { return exec },
		clinic: func(*testing.T) uuid.UUID { return uuid.Nil },
	},
}

// process returns a new dispatcher of the route on its own Executor, as one
// process of Aura has.
func (rt route) process(t *testing.T) actors.Dispatcher {
	return rt.start(t, newExecutor(t))
}

// forEachRoute runs test as a subtest for each route.
func forEachRoute(t *testing.T, test func(t *testing.T, rt route)) {
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) { test(t, rt) })
	}
}

// newUser stores a fresh user: every idempotency key belongs to one.
func newUser(t testing.TB) uuid.UUID {
	t.Helper()
	u, err := platform.NewUser(uuid.NewString()+"@example.com", "Ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.New(dbtest.Pool(t)).EnsureUser(testContext(t), u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// requester is the Meta of a fresh user's writes to clinicID (uuid.Nil for
// none), without an idempotency key yet.
func requester(t *testing.T, clinicID uuid.UUID) actors.Meta {
	t.Helper()
	m := metaFor(t, clinicID)
	m.UserID = newUser(t)
	return m
}

// keyed returns m carrying the Idempotency-Key key, for a request whose
// method, route and body are summed up by body.
func keyed(m actors.Meta, key, body string) actors.Meta {
	m.Idempotency = &actors.Idempotency{Key: key, Fingerprint: sha256.Sum256([]byte(body))}
	return m
}

// scopeArgs are the SQL arguments naming m's key: user, clinic (NULL for
// uuid.Nil) and key.
func scopeArgs(m actors.Meta) []any {
	var clinic any
	if m.ClinicID != uuid.Nil {
		clinic = m.ClinicID
	}
	return []any{m.UserID, clinic, m.Idempotency.Key}
}

const scopeWhere = `user_id = $1 AND clinic_id IS NOT DISTINCT FROM $2 AND key = $3`

// storedKeys counts the rows of m's key in its scope.
func storedKeys(t *testing.T, m actors.Meta) int {
	t.Helper()
	var n int
	if err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT count(*) FROM idempotency_keys WHERE `+scopeWhere,
		scopeArgs(m)...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedOutcome returns the stored outcome of m's key, as JSON text.
func storedOutcome(t *testing.T, m actors.Meta) string {
	t.Helper()
	var s string
	if err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT outcome::text FROM idempotency_keys WHERE `+scopeWhere,
		scopeArgs(m)...).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// keyExpiry returns when m's key expires, by the database.
func keyExpiry(t *testing.T, m actors.Meta) time.Time {
	t.Helper()
	var at time.Time
	if err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT expires_at FROM idempotency_keys WHERE `+scopeWhere,
		scopeArgs(m)...).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// deleteKey deletes m's key behind the dispatchers' backs.
func deleteKey(t *testing.T, m actors.Meta) {
	t.Helper()
	tag, err := dbtest.Pool(t).Exec(testContext(t), `DELETE FROM idempotency_keys WHERE `+scopeWhere, scopeArgs(m)...)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("delete key %q: %d rows, %v; want 1 row", m.Idempotency.Key, tag.RowsAffected(), err)
	}
}

// effect is what a probe answers: which of its runs produced the answer and
// the row that run wrote.
type effect struct {
	Run    int32     `json:"run"`
	Clinic uuid.UUID `json:"clinic"`
}

// probe is a command that counts its runs. Each run writes one row, a clinic
// named after the probe (so that its committed effects can be counted), then
// calls finish, if set: finish's error, or panic, ends the run.
type probe struct {
	name   string
	runs   atomic.Int32
	finish func(ctx context.Context, q *store.Queries, m actors.Meta, e effect) error
}

func newProbe() *probe { return &probe{name: "probe " + uuid.NewString()} }

// Execute implements actors.Command.
func (p *probe) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (effect, error) {
	run := p.runs.Add(1)
	c, err := platform.NewClinic(p.name, "EUR", "Europe/Madrid")
	if err != nil {
		return effect{}, err
	}
	if c, err = q.InsertClinic(ctx, c); err != nil {
		return effect{}, err
	}
	e := effect{Run: run, Clinic: c.ID}
	if p.finish != nil {
		if err := p.finish(ctx, q, m, e); err != nil {
			return effect{}, err
		}
	}
	return e, nil
}

// wantRuns fails the test unless the probe ran n times.
func (p *probe) wantRuns(t *testing.T, n int32) {
	t.Helper()
	if got := p.runs.Load(); got != n {
		t.Errorf("the command ran %d times, want %d", got, n)
	}
}

// wantEffects fails the test unless n of the probe's writes were committed.
func (p *probe) wantEffects(t *testing.T, n int) {
	t.Helper()
	var got int
	if err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT count(*) FROM clinics WHERE name = $1`, p.name).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("%d of the command's writes are committed, want %d", got, n)
	}
}

// mustRun sends the probe through d and wants it executed, not replayed.
func mustRun(t *testing.T, d actors.Dispatcher, m actors.Meta, p *probe) effect {
	t.Helper()
	e, replayed, err := actors.Exec(testContext(t), d, m, p)
	if err != nil || replayed {
		t.Fatalf("Exec = %+v, replayed %v, err %v; want an execution", e, replayed, err)
	}
	return e
}

// mustReplay sends the probe through d and wants the stored answer want.
func mustReplay(t *testing.T, d actors.Dispatcher, m actors.Meta, p *probe, want effect) {
	t.Helper()
	e, replayed, err := actors.Exec(testContext(t), d, m, p)
	if err != nil || !replayed || e != want {
		t.Fatalf("Exec = %+v, replayed %v, err %v; want the replay of %+v", e, replayed, err, want)
	}
}

// A retry with the same key and fingerprint is answered with the first
// answer, marked replayed: the command ran once, wrote once, and one row
// holds its key, in the request's scope (its clinic, or NULL).
func TestIdempotentRequestRunsOnce(t *testing.T) {
	forEachRoute(t, func(t *testing.T, rt route) {
		d, p := rt.process(t), newProbe()
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")

		first := mustRun(t, d, m, p)
		mustReplay(t, d, m, p, first)
		mustReplay(t, d, m, p, first)
		p.wantRuns(t, 1)
		p.wantEffects(t, 1)
		if n := storedKeys(t, m); n != 1 {
			t.Errorf("%d rows for the key, want 1", n)
		}
	})
}

// The same key with another fingerprint is idempotency_key_reused, whether
// the process answering knows the key from memory or only from the
// database, and the command does not run again.
func TestIdempotencyKeyReused(t *testing.T) {
	forEachRoute(t, func(t *testing.T, rt route) {
		d, p := rt.process(t), newProbe()
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")
		first := mustRun(t, d, m, p)

		other := keyed(m, "key-1", "another body")
		for name, d := range map[string]actors.Dispatcher{"same process": d, "new process": rt.process(t)} {
			_, replayed, err := actors.Exec(testContext(t), d, other, p)
			if !fault.HasCode(err, actors.ErrKeyReused) || replayed {
				t.Errorf("%s: reused key: replayed %v, err %v; want %s", name, replayed, err, actors.ErrKeyReused.Name())
			}
		}
		mustReplay(t, d, m, p, first)
		p.wantRuns(t, 1)
	})
}

// A key belongs to its user and clinic (or to no clinic): the same key sent
// by another user, to another clinic or outside any clinic starts a new
// request, and each retry replays its own answer.
func TestIdempotencyKeyScopes(t *testing.T) {
	exec := newExecutor(t)
	r := registryOn(t, exec, actors.Config{})
	clinicA, clinicB := newClinic(t), newClinic(t)
	user := requester(t, uuid.Nil)
	otherUser := requester(t, clinicA)
	inClinic := func(m actors.Meta, clinicID uuid.UUID) actors.Meta { m.ClinicID = clinicID; return m }
	requests := []struct {
		name string
		d    actors.Dispatcher
		m    actors.Meta
	}{
		{"user in clinic A", r, inClinic(user, clinicA)},
		{"other user in clinic A", r, otherUser},
		{"user in clinic B", r, inClinic(user, clinicB)},
		{"user outside any clinic", exec, inClinic(user, uuid.Nil)},
	}

	p := newProbe()
	answers := make([]effect, len(requests))
	for i, req := range requests {
		answers[i] = mustRun(t, req.d, keyed(req.m, "shared-key", "body"), p)
	}
	for i, req := range requests {
		m := keyed(req.m, "shared-key", "body")
		mustReplay(t, req.d, m, p, answers[i])
		if n := storedKeys(t, m); n != 1 {
			t.Errorf("%s: %d rows for the key, want 1", req.name, n)
		}
	}
	p.wantRuns(t, int32(len(requests)))
}

// The clinic actor answers a retry from memory: with the key's row deleted
// behind its back, the same live actor still replays the answer, and still
// refuses the key with another fingerprint.
func TestClinicActorCacheAnswersWithoutDatabase(t *testing.T) {
	r, p := newRegistry(t, actors.Config{}), newProbe()
	m := keyed(requester(t, newClinic(t)), "key-1", "body")
	first := mustRun(t, r, m, p)
	deleteKey(t, m)

	mustReplay(t, r, m, p, first)
	_, _, err := actors.Exec(testContext(t), r, keyed(m, "key-1", "another body"), p)
	wantCode(t, err, actors.ErrKeyReused)
	p.wantRuns(t, 1)
	if n := storedKeys(t, m); n != 0 {
		t.Errorf("a replay from memory wrote %d rows, want 0", n)
	}
}

// The database is authoritative once the actor's memory is gone, after the
// actor is passivated or on a new registry (a restarted or other process): a
// key whose row is present is replayed, one whose row was deleted runs anew.
func TestIdempotencyAfterActorRestart(t *testing.T) {
	restarts := []struct {
		name    string
		restart func(t *testing.T, r *actors.Registry) actors.Dispatcher
	}{
		{"passivated actor", func(t *testing.T, r *actors.Registry) actors.Dispatcher {
			eventually(t, "the idle actor is passivated", func() bool { return r.Len() == 0 })
			return r
		}},
		{"new registry", func(t *testing.T, _ *actors.Registry) actors.Dispatcher {
			return newRegistry(t, actors.Config{})
		}},
	}
	for _, tt := range restarts {
		t.Run(tt.name, func(t *testing.T) {
			r, p := newRegistry(t, actors.Config{IdleTimeout: 20 * time.Millisecond}), newProbe()
			user := requester(t, newClinic(t))
			kept, deleted := keyed(user, "kept", "body"), keyed(user, "deleted", "body")
			keptAnswer := mustRun(t, r, kept, p)
			mustRun(t, r, deleted, p)
			deleteKey(t, deleted)

			d := tt.restart(t, r)
			mustReplay(t, d, kept, p, keptAnswer)
			if e := mustRun(t, d, deleted, p); e.Run != 3 {
				t.Errorf("the deleted key's retry answered run %d, want 3", e.Run)
			}
			p.wantRuns(t, 3)
			if n := storedKeys(t, deleted); n != 1 {
				t.Errorf("%d rows for the deleted key after its retry, want 1", n)
			}
		})
	}
}

// failOnce makes a probe's first run end with err (or panic, for a nil err)
// after its write; later runs succeed.
func failOnce(err error) func(context.Context, *store.Queries, actors.Meta, effect) error {
	return func(_ context.Context, _ *store.Queries, _ actors.Meta, e effect) error {
		if e.Run > 1 {
			return nil
		}
		if err == nil {
			panic("test: command panics after writing")
		}
		return err
	}
}

// addOwnerTwice makes the probe's run fail as a real write conflict does: the
// second insert of the same membership violates the primary key, which
// aborts the transaction, and the store answers member_exists.
func addOwnerTwice(ctx context.Context, q *store.Queries, m actors.Meta, e effect) error {
	owner := platform.Member{ClinicID: e.Clinic, UserID: m.UserID, Email: "owner@example.com", Role: platform.RoleOwner}
	for range 2 {
		if _, err := q.InsertMember(ctx, owner); err != nil {
			return err
		}
	}
	return errors.New("test: the second insert of a member succeeded")
}

// errRuleBroken is a domain rule's error that names fields, unlike a
// validation error, and is stored.
var errRuleBroken = fault.Define("test_rule_broken", fault.Unprocessable, "Rule broken by the test")

// A command's error is stored under its key when it is a domain outcome
// (conflict, not found, a broken rule): its writes are rolled back, the
// outcome is committed, and a retry, on this process or another, gets the
// same code, detail and fields, replayed, without running the command. Other
// errors (validation, authorisation, internal, unavailable, a panic) store
// nothing and roll everything back, so the retry runs.
func TestIdempotentErrorOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		finish func(context.Context, *store.Queries, actors.Meta, effect) error
		code   fault.Code
		stored bool
	}{
		{"conflict after a failed statement", addOwnerTwice, platform.ErrMemberExists, true},
		{"conflict", failOnce(platform.ErrMemberExists.New("Already a member, says the test.")), platform.ErrMemberExists, true},
		{"not found", failOnce(crm.ErrPatientNotFound.New("Nothing here.")), crm.ErrPatientNotFound, true},
		{"broken rule with fields", failOnce(&fault.Error{Code: errRuleBroken, Detail: "See the fields.",
			Fields: []fault.FieldError{{Pointer: "/starts_at", Code: "in_the_past", Detail: "must be in the future"}}}), errRuleBroken, true},
		{"validation", failOnce(func() error {
			var f fault.Fields
			f.Add("/name", "required", "is required")
			return f.Err()
		}()), fault.ErrValidation, false},
		{"forbidden", failOnce(fault.ErrForbidden.New("Not for you.")), fault.ErrForbidden, false},
		{"internal", failOnce(errors.New("test: the disk is on fire")), fault.ErrInternal, false},
		{"unavailable", failOnce(fault.ErrShutdown.New("Going away.")), fault.ErrShutdown, false},
		{"panic", failOnce(nil), fault.ErrInternal, false},
	}
	forEachRoute(t, func(t *testing.T, rt route) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, p := rt.process(t), newProbe()
				p.finish = tt.finish
				m := keyed(requester(t, rt.clinic(t)), "key-1", "body")

				_, replayed, err := actors.Exec(testContext(t), d, m, p)
				if err == nil || fault.From(err).Code != tt.code || replayed { // From: what the client sees
					t.Fatalf("first request: replayed %v, err %v; want %s", replayed, err, tt.code.Name())
				}
				p.wantEffects(t, 0)
				if !tt.stored {
					if n := storedKeys(t, m); n != 0 {
						t.Errorf("%d rows for the key, want none", n)
					}
					if e := mustRun(t, d, m, p); e.Run != 2 {
						t.Errorf("the retry answered run %d, want 2", e.Run)
					}
					p.wantEffects(t, 1)
					return
				}
				if n := storedKeys(t, m); n != 1 {
					t.Errorf("%d rows for the key, want 1", n)
				}
				want := fault.From(err)
				for name, d := range map[string]actors.Dispatcher{"same process": d, "new process": rt.process(t)} {
					_, replayed, err := actors.Exec(testContext(t), d, m, p)
					got := fault.From(err)
					if !replayed || got.Code != want.Code || got.Detail != want.Detail || !slices.Equal(got.Fields, want.Fields) {
						t.Errorf("%s: retry: replayed %v, err %+v; want the replay of %+v", name, replayed, got, want)
					}
				}
				p.wantRuns(t, 1)
			})
		}
	})
}

// N concurrent requests with one key and fingerprint run the command once:
// in one process they wait for each other (the clinic's actor, or the
// Executor's in-process key lock) instead of failing as in flight, and the
// others all get the first one's answer, replayed.
func TestIdempotentConcurrentRequestsRunOnce(t *testing.T) {
	const requests = 25
	forEachRoute(t, func(t *testing.T, rt route) {
		d := rt.process(t)
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")
		started, release := make(chan struct{}), make(chan struct{})
		releaseOnce := sync.OnceFunc(func() { close(release) })
		t.Cleanup(releaseOnce) // runs before the dispatcher stops, should the test fail early
		p := newProbe()
		p.finish = func(context.Context, *store.Queries, actors.Meta, effect) error {
			close(started) // a second run would panic here
			<-release
			return nil
		}

		type answer struct {
			e        effect
			replayed bool
			err      error
		}
		answers := make(chan answer, requests)
		var wg sync.WaitGroup
		ctx := testContext(t)
		for range requests {
			wg.Go(func() {
				e, replayed, err := actors.Exec(ctx, d, m, p)
				answers <- answer{e, replayed, err}
			})
		}
		receive(t, "the first request to run", started)
		time.Sleep(50 * time.Millisecond) // let the others reach the key's lock
		releaseOnce()
		wg.Wait()
		close(answers)

		var executed int
		var first *effect
		for a := range answers {
			if a.err != nil {
				t.Errorf("request failed: %v", a.err)
				continue
			}
			if !a.replayed {
				executed++
			}
			if first == nil {
				first = &a.e
			} else if a.e != *first {
				t.Errorf("answers differ: %+v and %+v", a.e, *first)
			}
		}
		if executed != 1 {
			t.Errorf("%d requests were answered as executed, want 1", executed)
		}
		p.wantRuns(t, 1)
		p.wantEffects(t, 1)
		if n := storedKeys(t, m); n != 1 {
			t.Errorf("%d rows for the key, want 1", n)
		}
	})
}

// secret is a result holding a secret shown once, as a new API key does.
type secret struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
}

// Redacted implements actors.Redacter.
func (s secret) Redacted() any {
	s.Secret = ""
	return s
}

// A result that is a Redacter is stored redacted: the first answer holds the
// secret, the stored outcome does not, and a replay, from memory or from the
// database, answers the redacted value.
func TestIdempotentResultIsRedacted(t *testing.T) {
	forEachRoute(t, func(t *testing.T, rt route) {
		d := rt.process(t)
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")
		var runs atomic.Int32
		issue := commandFunc[secret](func(context.Context, *store.Queries, actors.Meta) (secret, error) {
			return secret{ID: fmt.Sprint("key-", runs.Add(1)), Secret: "s3cret-" + uuid.NewString()}, nil
		})

		first, replayed, err := actors.Exec(testContext(t), d, m, issue)
		if err != nil || replayed || first.ID != "key-1" || first.Secret == "" {
			t.Fatalf("first request = %+v, replayed %v, err %v; want key-1 with its secret", first, replayed, err)
		}
		if stored := storedOutcome(t, m); strings.Contains(stored, first.Secret) {
			t.Errorf("the stored outcome %s holds the secret", stored)
		}
		for name, d := range map[string]actors.Dispatcher{"same process": d, "new process": rt.process(t)} {
			got, replayed, err := actors.Exec(testContext(t), d, m, issue)
			if want := (secret{ID: first.ID}); err != nil || !replayed || got != want {
				t.Errorf("%s: retry = %+v, replayed %v, err %v; want the replay of %+v", name, got, replayed, err, want)
			}
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the command ran %d times, want 1", n)
		}
	})
}

// A key expires after the Executor's TTL: until then a retry is replayed
// (from memory on a clinic actor), after it the same key runs anew, and the
// new outcome replaces the expired row instead of adding one.
func TestIdempotencyKeyExpires(t *testing.T) {
	const ttl = 200 * time.Millisecond
	forEachRoute(t, func(t *testing.T, rt route) {
		d := rt.start(t, actors.NewExecutor(dbtest.Pool(t), discard, actors.WithIdempotencyTTL(ttl)))
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")
		p := newProbe()

		sent := time.Now()
		first := mustRun(t, d, m, p)
		expiry := keyExpiry(t, m)
		// Only a machine too slow to retry within the TTL may see a new run.
		e, replayed, err := actors.Exec(testContext(t), d, m, p)
		if err != nil || replayed && e != first || !replayed && time.Since(sent) < ttl {
			t.Fatalf("retry before the TTL = %+v, replayed %v, err %v; want the replay of %+v", e, replayed, err, first)
		}
		eventually(t, "the key expires", func() bool {
			var expired bool
			err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT expires_at <= now() FROM idempotency_keys WHERE `+scopeWhere,
				scopeArgs(m)...).Scan(&expired)
			return err == nil && expired
		})

		before := p.runs.Load()
		if e := mustRun(t, d, m, p); e.Run != before+1 {
			t.Errorf("the request after expiry answered run %d, want %d", e.Run, before+1)
		}
		if n := storedKeys(t, m); n != 1 {
			t.Errorf("%d rows for the key after it was reused, want 1", n)
		}
		if renewed := keyExpiry(t, m); !renewed.After(expiry) {
			t.Errorf("the reused key expires at %v, not after the expired %v", renewed, expiry)
		}
		p.wantEffects(t, int(before)+1)
	})
}

// While one process runs a request, the same key sent to another process
// (its own actors and Executor) is idempotency_key_in_flight and does not
// run; once the first commits, the other process replays its answer, while
// another user's request with the same key runs.
func TestIdempotencyKeyInFlight(t *testing.T) {
	forEachRoute(t, func(t *testing.T, rt route) {
		a, b := rt.process(t), rt.process(t)
		m := keyed(requester(t, rt.clinic(t)), "key-1", "body")
		started, release := make(chan struct{}), make(chan struct{})
		releaseOnce := sync.OnceFunc(func() { close(release) })
		t.Cleanup(releaseOnce) // runs before the dispatchers stop, should the test fail early
		p := newProbe()
		p.finish = func(_ context.Context, _ *store.Queries, _ actors.Meta, e effect) error {
			if e.Run == 1 {
				close(started)
				<-release
			}
			return nil
		}

		original := goExec(testContext(t), a, m, p)
		receive(t, "the original request to run", started)
		_, replayed, err := actors.Exec(testContext(t), b, m, p)
		if !fault.HasCode(err, actors.ErrKeyInFlight) || replayed {
			t.Fatalf("the same key on another process: replayed %v, err %v; want %s", replayed, err, actors.ErrKeyInFlight.Name())
		}
		p.wantRuns(t, 1)

		releaseOnce()
		res := receive(t, "the original's answer", original)
		if res.err != nil {
			t.Fatalf("original request: %v", res.err)
		}
		mustReplay(t, b, m, p, res.value)
		// Another user's key of the same name is another key: it runs (after
		// the original, as the clinic's writes are serialised across processes).
		otherUser := m
		otherUser.UserID = newUser(t)
		mustRun(t, b, otherUser, p)
		p.wantRuns(t, 2)
		p.wantEffects(t, 2)
	})
}
