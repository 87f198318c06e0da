package actors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// sighting is what a command saw of an earlier command's patient: through
// its own transaction, and committed (through another connection).
type sighting struct{ inTx, committed bool }

// Writes that queue while a clinic's transaction runs commit together in the
// next one, each in its own savepoint: a command that fails with a domain
// error, one that panics and one whose SQL fails are each rolled back alone
// and answered with their error, while the others commit and are answered
// after the commit. With MaxBatch 1 each write commits on its own.
func TestGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		maxBatch int
		shared   bool // the last command shares the first one's transaction
	}{{maxBatch: 0, shared: true}, {maxBatch: 1, shared: false}} {
		t.Run(map[bool]string{true: "batched", false: "one by one"}[tc.shared], func(t *testing.T) {
			r := newRegistry(t, actors.Config{MaxBatch: tc.maxBatch})
			clinicID := newClinic(t)
			ctx, meta := testContext(t), metaFor(t, clinicID)

			// Hold the actor in a first transaction while the others queue.
			started, release := make(chan struct{}), make(chan struct{})
			gate := goExec(ctx, r, meta, blockUntil(started, release))
			receive(t, "the gate command to start", started)

			firstID := make(chan uuid.UUID, 1)
			first := goExec(ctx, r, meta, createPatientThen(firstID, func() error { return nil }))
			eventually(t, "the first write queues", func() bool { return r.InFlight(clinicID) == 2 })
			written := make(chan uuid.UUID, 3)
			failures := []<-chan outcome[crm.Patient]{
				goExec(ctx, r, meta, createPatientThen(written, func() error { return errRefused.New("refused") })),
				goExec(ctx, r, meta, createPatientThen(written, func() error { panic("boom") })),
				goExec(ctx, r, meta, commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
					p, err := createPatient.Execute(ctx, q, m)
					if err != nil {
						return p, err
					}
					written <- p.ID
					// A foreign key violation: the transaction is aborted
					// until the savepoint is rolled back.
					_, err = q.NextEventSequences(ctx, uuid.New(), 1)
					return p, errors.Join(err, errors.New("the foreign key was not checked"))
				})),
			}
			eventually(t, "the failing writes queue", func() bool { return r.InFlight(clinicID) == 5 })
			seen := make(chan sighting, 1)
			last := goExec(ctx, r, meta, commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
				id := <-firstID
				_, errInTx := q.Patient(ctx, m.ClinicID, id)
				seen <- sighting{inTx: errInTx == nil, committed: patientExists(t, m.ClinicID, id)}
				return createPatient.Execute(ctx, q, m)
			}))
			eventually(t, "the last write queues", func() bool { return r.InFlight(clinicID) == 6 })
			close(release)
			receive(t, "the gate's answer", gate)

			p := receive(t, "the first write's answer", first)
			if p.err != nil {
				t.Fatalf("first write: %v", p.err)
			}
			wantCodes := []fault.Code{errRefused, fault.ErrInternal}
			for i, answer := range failures {
				res := receive(t, "a failing write's answer", answer)
				if res.err == nil || (i < len(wantCodes) && !fault.HasCode(res.err, wantCodes[i])) {
					t.Errorf("failing write %d: err %v", i, res.err)
				}
				if id := receive(t, "a failing write's patient", written); patientExists(t, clinicID, id) {
					t.Errorf("failing write %d was committed", i)
				}
			}
			res := receive(t, "the last write's answer", last)
			if res.err != nil {
				t.Fatalf("last write: %v", res.err)
			}
			for _, id := range []uuid.UUID{p.value.ID, res.value.ID} {
				if !patientExists(t, clinicID, id) {
					t.Errorf("patient %s answered but not committed", id)
				}
			}
			got := receive(t, "what the last write saw", seen)
			want := sighting{inTx: true, committed: !tc.shared}
			if got != want {
				t.Errorf("the last write saw the first's patient %+v, want %+v", got, want)
			}
		})
	}
}
