package actors_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// waitFor bounds every wait in these tests: far above what a healthy run
// needs, so that a broken runtime fails the test instead of hanging it.
const waitFor = 10 * time.Second

var discard = slog.New(slog.DiscardHandler)

func newExecutor(t *testing.T) *actors.Executor {
	t.Helper()
	return actors.NewExecutor(dbtest.Pool(t), discard)
}

// newRegistry starts a registry of clinic actors that is stopped when the
// test ends (Stop is idempotent, so tests may stop it themselves).
func newRegistry(t *testing.T, cfg actors.Config) *actors.Registry {
	t.Helper()
	return registryOn(t, newExecutor(t), cfg)
}

// registryOn is newRegistry with the Executor its actors run commands on.
func registryOn(t *testing.T, exec *actors.Executor, cfg actors.Config) *actors.Registry {
	t.Helper()
	r := actors.NewRegistry(exec, discard, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	return r
}

// testContext is the context of one Exec: the test's, bounded by waitFor.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// newClinic stores a fresh clinic, for the foreign keys of patients.
func newClinic(t testing.TB) uuid.UUID {
	t.Helper()
	c, err := platform.NewClinic("Clínica "+t.Name(), "EUR", "Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.New(dbtest.Pool(t)).InsertClinic(testContext(t), c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// metaFor is the Meta of a write to clinicID.
func metaFor(t *testing.T, clinicID uuid.UUID) actors.Meta {
	return actors.Meta{RequestID: t.Name(), ClinicID: clinicID}
}

// commandFunc makes a function an actors.Command.
type commandFunc[T any] func(ctx context.Context, q *store.Queries, m actors.Meta) (T, error)

func (f commandFunc[T]) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (T, error) {
	return f(ctx, q, m)
}

// createPatient is a real write: it registers a patient in Meta's clinic.
var createPatient = commands.CreatePatient{Fields: crm.PatientFields{
	FirstName: crm.Some("Eva"), LastName: crm.Some("Ruiz"),
}}

// createPatientThen is a command that registers a patient, checks that its
// transaction sees the row, reports the patient's id on created and then
// ends as finish says (returning an error, or panicking).
func createPatientThen(created chan<- uuid.UUID, finish func() error) actors.Command[crm.Patient] {
	return commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
		p, err := createPatient.Execute(ctx, q, m)
		if err != nil {
			return p, err
		}
		if _, err := q.Patient(ctx, m.ClinicID, p.ID); err != nil {
			return p, err // the write did not happen: nothing to roll back
		}
		created <- p.ID
		return p, finish()
	})
}

// patientExists reads the committed state, outside any command.
func patientExists(t *testing.T, clinicID, patientID uuid.UUID) bool {
	t.Helper()
	_, err := store.New(dbtest.Pool(t)).Patient(testContext(t), clinicID, patientID)
	switch {
	case err == nil:
		return true
	case fault.HasCode(err, crm.ErrPatientNotFound):
		return false
	default:
		t.Fatalf("read patient: %v", err)
		return false
	}
}

// wantCode fails the test unless err carries the fault code.
func wantCode(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if !fault.HasCode(err, code) {
		t.Fatalf("error %v, want code %s", err, code.Name())
	}
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receive returns the next value of ch, failing the test after waitFor.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// gauge counts the commands executing at once and remembers the most.
type gauge struct {
	active, most atomic.Int32
}

func (g *gauge) enter() {
	n := g.active.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
}

func (g *gauge) leave() { g.active.Add(-1) }

// journal records, in order, the commands that ran.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// outcome is what one Exec answered, for commands run on goroutines.
type outcome[T any] struct {
	value T
	err   error
}

// goExec runs Exec on a goroutine and delivers its answer on the channel.
func goExec[T any](ctx context.Context, d actors.Dispatcher, m actors.Meta, cmd actors.Command[T]) <-chan outcome[T] {
	ch := make(chan outcome[T], 1)
	go func() {
		v, _, err := actors.Exec(ctx, d, m, cmd)
		ch <- outcome[T]{v, err}
	}()
	return ch
}
