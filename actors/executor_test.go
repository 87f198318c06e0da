package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// errRefused is a domain error a test command fails with.
var errRefused = fault.Define("test_refused", fault.Conflict, "Refused by the test")

// dispatchers are the two ways to run a command, for tests that hold for both.
func dispatchers(t *testing.T) map[string]actors.Dispatcher {
	return map[string]actors.Dispatcher{
		"Executor": newExecutor(t),
		"Registry": newRegistry(t, actors.Config{}),
	}
}

// A command that returns an error is rolled back, and its error reaches the
// caller unchanged, on the Executor as in a clinic's actor.
func TestCommandErrorRollsBack(t *testing.T) {
	for name, d := range dispatchers(t) {
		t.Run(name, func(t *testing.T) {
			meta := metaFor(t, newClinic(t))
			created := make(chan uuid.UUID, 1)
			_, _, err := actors.Exec(testContext(t), d, meta, createPatientThen(created, func() error {
				return errRefused.New("refused after writing")
			}))
			wantCode(t, err, errRefused)
			if patientExists(t, meta.ClinicID, receive(t, "the patient's id", created)) {
				t.Error("the failed command's write was committed")
			}
		})
	}
}

// A command that succeeds is committed and its result returned.
func TestCommandCommits(t *testing.T) {
	for name, d := range dispatchers(t) {
		t.Run(name, func(t *testing.T) {
			meta := metaFor(t, newClinic(t))
			p, _, err := actors.Exec(testContext(t), d, meta, createPatient)
			if err != nil {
				t.Fatal(err)
			}
			if p.ClinicID != meta.ClinicID || !patientExists(t, meta.ClinicID, p.ID) {
				t.Errorf("patient %+v not committed in clinic %s", p, meta.ClinicID)
			}
		})
	}
}

// On the Executor too, a panicking command is answered with internal_error
// and rolled back; the panic never reaches the caller.
func TestExecutorRecoversFromPanic(t *testing.T) {
	e, meta := newExecutor(t), metaFor(t, newClinic(t))
	wantPanicRolledBack(t, e, meta)
	if _, _, err := actors.Exec(testContext(t), e, meta, createPatient); err != nil {
		t.Fatalf("command after the panic: %v", err)
	}
}

// The Executor reports a command cut short by its deadline as
// request_timeout, not as the driver's or the command's own error.
func TestExecutorTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(testContext(t), 50*time.Millisecond)
	defer cancel()
	_, _, err := actors.Exec(ctx, newExecutor(t), actors.Meta{RequestID: t.Name()},
		commandFunc[struct{}](func(ctx context.Context, _ *store.Queries, _ actors.Meta) (struct{}, error) {
			<-ctx.Done()
			return struct{}{}, ctx.Err()
		}))
	wantCode(t, err, fault.ErrTimeout)
}

// A command whose result type is an interface may answer nil.
func TestExecNilInterfaceResult(t *testing.T) {
	for name, d := range dispatchers(t) {
		t.Run(name, func(t *testing.T) {
			v, _, err := actors.Exec(testContext(t), d, metaFor(t, newClinic(t)),
				commandFunc[any](func(context.Context, *store.Queries, actors.Meta) (any, error) { return nil, nil }))
			if err != nil || v != nil {
				t.Errorf("Exec = %v, %v; want nil, nil", v, err)
			}
		})
	}
}
