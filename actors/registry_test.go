package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// bumpCounter adds one to the clinic's row of the counters table by reading
// it and writing it back in two statements, with no row lock and outside the
// command's transaction: two of them running at once lose an update. Each
// run is counted on the gauge while it executes.
type bumpCounter struct {
	counters *pgxpool.Pool
	gauge    *gauge
}

func (c bumpCounter) Execute(ctx context.Context, _ *store.Queries, m actors.Meta) (int, error) {
	c.gauge.enter()
	defer c.gauge.leave()
	var n int
	if err := c.counters.QueryRow(ctx, `SELECT n FROM counters WHERE clinic_id = $1`, m.ClinicID).Scan(&n); err != nil {
		return 0, err
	}
	if _, err := c.counters.Exec(ctx, `UPDATE counters SET n = $2 WHERE clinic_id = $1`, m.ClinicID, n+1); err != nil {
		return 0, err
	}
	return n + 1, nil
}

// newCounter creates the clinic's counter at zero and returns a pool of its
// own to reach it. A separate pool keeps the test's verdict about counting:
// were commands to run at once, each holding a transaction's connection
// while waiting for one from the same pool could exhaust it.
func newCounter(t *testing.T, clinicID uuid.UUID) *pgxpool.Pool {
	t.Helper()
	ctx := testContext(t)
	counters, err := pgxpool.New(ctx, dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(counters.Close)
	if _, err := counters.Exec(ctx, `CREATE TABLE IF NOT EXISTS counters (clinic_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := counters.Exec(ctx, `INSERT INTO counters (clinic_id, n) VALUES ($1, 0)`, clinicID); err != nil {
		t.Fatal(err)
	}
	return counters
}

// blockUntil is a command that says it started and then waits for release,
// ignoring its context, as a stuck command would.
func blockUntil(started chan<- struct{}, release <-chan struct{}) actors.Command[struct{}] {
	return commandFunc[struct{}](func(context.Context, *store.Queries, actors.Meta) (struct{}, error) {
		close(started)
		<-release
		return struct{}{}, nil
	})
}

// Concurrent writes to one clinic run one at a time: 50 unlocked
// read-modify-writes sent at once lose no update, and no two ever overlap.
func TestRegistrySerialisesOneClinic(t *testing.T) {
	const writers = 50
	r := newRegistry(t, actors.Config{})
	clinicID := newClinic(t)
	cmd := bumpCounter{counters: newCounter(t, clinicID), gauge: new(gauge)}

	ctx, meta := testContext(t), metaFor(t, clinicID)
	var wg sync.WaitGroup
	results := make(chan int, writers)
	for range writers {
		wg.Go(func() {
			n, _, err := actors.Exec(ctx, r, meta, cmd)
			if err != nil {
				t.Errorf("exec: %v", err)
			}
			results <- n
		})
	}
	wg.Wait()
	close(results)

	var seen []int
	for n := range results {
		seen = append(seen, n)
	}
	slices.Sort(seen)
	for i, n := range seen { // each write saw the one before it
		if n != i+1 {
			t.Errorf("writes returned %v, want 1..%d", seen, writers)
			break
		}
	}
	var n int
	if err := cmd.counters.QueryRow(ctx, `SELECT n FROM counters WHERE clinic_id = $1`, clinicID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != writers {
		t.Errorf("counter %d, want %d: updates were lost", n, writers)
	}
	if most := cmd.gauge.most.Load(); most != 1 {
		t.Errorf("%d commands ran at once, want 1", most)
	}
}

// Different clinics have different actors: a write to clinic B completes
// while a write to clinic A is still executing.
func TestRegistryRunsClinicsConcurrently(t *testing.T) {
	r := newRegistry(t, actors.Config{})
	clinicA, clinicB := newClinic(t), newClinic(t)
	ctx := testContext(t)

	started, release := make(chan struct{}), make(chan struct{})
	a := goExec(ctx, r, metaFor(t, clinicA), blockUntil(started, release))
	receive(t, "clinic A's command to start", started)

	if _, _, err := actors.Exec(ctx, r, metaFor(t, clinicB), createPatient); err != nil {
		t.Fatalf("clinic B, while clinic A is busy: %v", err)
	}
	if n := r.Len(); n != 2 {
		t.Errorf("Len() = %d, want 2", n)
	}
	close(release)
	if res := receive(t, "clinic A's answer", a); res.err != nil {
		t.Errorf("clinic A: %v", res.err)
	}
}

// A command that panics is answered with internal_error and rolled back,
// and the clinic's actor survives it and serves the next command.
func TestRegistryRecoversFromPanic(t *testing.T) {
	r := newRegistry(t, actors.Config{})
	clinicID := newClinic(t)
	ctx, meta := testContext(t), metaFor(t, clinicID)

	wantPanicRolledBack(t, r, meta)
	if n := r.Len(); n != 1 {
		t.Errorf("after the panic Len() = %d, want 1", n)
	}
	p, _, err := actors.Exec(ctx, r, meta, createPatient)
	if err != nil {
		t.Fatalf("command after the panic: %v", err)
	}
	if !patientExists(t, clinicID, p.ID) {
		t.Error("the command after the panic was not committed")
	}
}

// wantPanicRolledBack runs, through d, a command that writes and then
// panics, and checks its answer and that its write is gone.
func wantPanicRolledBack(t *testing.T, d actors.Dispatcher, meta actors.Meta) {
	t.Helper()
	created := make(chan uuid.UUID, 1)
	_, _, err := actors.Exec(testContext(t), d, meta, createPatientThen(created, func() error {
		panic("test: command panics after writing")
	}))
	wantCode(t, err, fault.ErrInternal)
	if patientExists(t, meta.ClinicID, receive(t, "the patient's id", created)) {
		t.Error("the panicking command's write was committed")
	}
}

// An idle actor is passivated (forgotten) after IdleTimeout, and the next
// command for its clinic spawns a fresh one.
func TestRegistryPassivatesIdleActors(t *testing.T) {
	r := newRegistry(t, actors.Config{IdleTimeout: 50 * time.Millisecond})
	clinicID := newClinic(t)
	ctx, meta := testContext(t), metaFor(t, clinicID)
	// liveActors reports Len() while it executes: no actor with a command
	// in flight may be passivated, so this is deterministic.
	liveActors := commandFunc[int](func(context.Context, *store.Queries, actors.Meta) (int, error) {
		return r.Len(), nil
	})

	if n, _, err := actors.Exec(ctx, r, meta, liveActors); err != nil || n != 1 {
		t.Fatalf("first command: Len() = %d, err %v; want 1, nil", n, err)
	}
	eventually(t, "the idle actor is passivated", func() bool { return r.Len() == 0 })

	if n, _, err := actors.Exec(ctx, r, meta, liveActors); err != nil || n != 1 {
		t.Fatalf("command after passivation: Len() = %d, err %v; want 1, nil", n, err)
	}
	if _, _, err := actors.Exec(ctx, r, meta, createPatient); err != nil {
		t.Fatalf("write after passivation: %v", err)
	}
}

// Stop drains: the commands already sent to an actor all run, in order, and
// get their answers; meanwhile new commands are refused with shutting_down,
// and Stop returns nil only once the actors are done.
func TestRegistryStopDrainsQueuedCommands(t *testing.T) {
	const queued = 3
	r := newRegistry(t, actors.Config{})
	clinicID := newClinic(t)
	ctx, meta := testContext(t), metaFor(t, clinicID)
	var ran journal

	started, release := make(chan struct{}), make(chan struct{})
	slow := goExec(ctx, r, meta, commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
		close(started)
		<-release
		ran.add("slow")
		return createPatient.Execute(ctx, q, m)
	}))
	receive(t, "the slow command to start", started)

	// Queue the others one by one, so their mailbox order is known.
	var answers []<-chan outcome[crm.Patient]
	for i := range queued {
		name := fmt.Sprint("queued-", i)
		answers = append(answers, goExec(ctx, r, meta, commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
			ran.add(name)
			return createPatient.Execute(ctx, q, m)
		})))
		eventually(t, name+" is in the mailbox", func() bool { return r.InFlight(clinicID) == i+2 })
	}
	answers = append([]<-chan outcome[crm.Patient]{slow}, answers...)

	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop(ctx) }()
	// Stop forgets every actor as it begins; the slow one is busy, so no
	// passivation can have done it.
	eventually(t, "Stop begins", func() bool { return r.Len() == 0 })
	_, _, err := actors.Exec(ctx, r, meta, createPatient)
	wantCode(t, err, fault.ErrShutdown)
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v while commands were still queued", err)
	default:
	}

	close(release)
	for i, answer := range answers {
		res := receive(t, "a drained command's answer", answer)
		if res.err != nil {
			t.Errorf("command %d: %v", i, res.err)
		} else if !patientExists(t, clinicID, res.value.ID) {
			t.Errorf("command %d answered but was not committed", i)
		}
	}
	if err := receive(t, "Stop to return", stopped); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if want := []string{"slow", "queued-0", "queued-1", "queued-2"}; !slices.Equal(ran.list(), want) {
		t.Errorf("ran %v, want %v", ran.list(), want)
	}
	_, _, err = actors.Exec(ctx, r, meta, createPatient)
	wantCode(t, err, fault.ErrShutdown)
}

// A caller whose deadline passes gets request_timeout promptly, even from a
// command that ignores its context; the command is not committed, and the
// actor serves the next command once the stuck one ends.
func TestRegistryTimesOut(t *testing.T) {
	const deadline = 200 * time.Millisecond
	r := newRegistry(t, actors.Config{})
	clinicID := newClinic(t)
	meta := metaFor(t, clinicID)

	created, release := make(chan uuid.UUID, 1), make(chan struct{})
	ctx, cancel := context.WithTimeout(testContext(t), deadline)
	defer cancel()
	begin := time.Now()
	_, _, err := actors.Exec(ctx, r, meta, createPatientThen(created, func() error {
		<-release
		return nil
	}))
	elapsed := time.Since(begin)
	wantCode(t, err, fault.ErrTimeout)
	if elapsed < deadline || elapsed > deadline+time.Second {
		t.Errorf("answered after %v, want just after the %v deadline", elapsed, deadline)
	}

	close(release)
	if _, _, err := actors.Exec(testContext(t), r, meta, createPatient); err != nil {
		t.Fatalf("command after the timeout: %v", err)
	}
	// The next command ran after the stuck one finished: its outcome is final.
	if patientExists(t, clinicID, receive(t, "the stuck patient's id", created)) {
		t.Error("a command answered request_timeout was committed; a retry would apply it twice")
	}
}

// An actor still executing a command whose caller timed out counts as busy:
// it is not passivated, so the clinic's next command queues behind the stuck
// one instead of running beside it on a second actor.
func TestRegistryKeepsBusyActorAfterTimeout(t *testing.T) {
	const idle = 20 * time.Millisecond
	r := newRegistry(t, actors.Config{IdleTimeout: idle})
	clinicID := newClinic(t)
	meta := metaFor(t, clinicID)
	g := new(gauge)

	started, release := make(chan struct{}), make(chan struct{})
	stuck := commandFunc[struct{}](func(context.Context, *store.Queries, actors.Meta) (struct{}, error) {
		g.enter()
		defer g.leave()
		close(started)
		<-release
		return struct{}{}, nil
	})
	ctx, cancel := context.WithTimeout(testContext(t), 50*time.Millisecond)
	defer cancel()
	_, _, err := actors.Exec(ctx, r, meta, stuck)
	wantCode(t, err, fault.ErrTimeout)
	receive(t, "the stuck command to start", started)

	time.Sleep(5 * idle) // several idle timeouts and sweeps
	if n := r.Len(); n != 1 {
		t.Errorf("Len() = %d while a command executes, want 1", n)
	}
	next := goExec(testContext(t), r, meta, commandFunc[struct{}](func(context.Context, *store.Queries, actors.Meta) (struct{}, error) {
		g.enter()
		defer g.leave()
		return struct{}{}, nil
	}))
	select {
	case res := <-next:
		close(release)
		t.Fatalf("the next command finished (err %v) while the stuck one still ran", res.err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if res := receive(t, "the next command's answer", next); res.err != nil {
		t.Errorf("next command: %v", res.err)
	}
	if most := g.most.Load(); most != 1 {
		t.Errorf("%d commands of one clinic ran at once, want 1", most)
	}
}

// A command without a clinic is refused with internal_error at once rather
// than sent to an actor of the nil clinic.
func TestRegistryRefusesCommandWithoutClinic(t *testing.T) {
	r := newRegistry(t, actors.Config{})
	var ran atomic.Bool
	_, _, err := actors.Exec(testContext(t), r, actors.Meta{RequestID: t.Name()},
		commandFunc[struct{}](func(context.Context, *store.Queries, actors.Meta) (struct{}, error) {
			ran.Store(true)
			return struct{}{}, nil
		}))
	wantCode(t, err, fault.ErrInternal)
	if ran.Load() {
		t.Error("the command ran")
	}
	if n := r.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}
