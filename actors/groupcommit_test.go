package actors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// holdActor keeps the clinic's actor busy in a transaction until release is
// called, so that the writes sent meanwhile queue in its mailbox and run as
// one batch; release waits for the holding command's answer.
func holdActor(t *testing.T, r *actors.Registry, meta actors.Meta) (release func()) {
	t.Helper()
	started, done := make(chan struct{}), make(chan struct{})
	held := goExec(testContext(t), r, meta, blockUntil(started, done))
	receive(t, "the holding command to start", started)
	return func() {
		t.Helper()
		close(done)
		if res := receive(t, "the holding command's answer", held); res.err != nil {
			t.Errorf("holding command: %v", res.err)
		}
	}
}

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
			release := holdActor(t, r, meta)

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
			release()

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

// Two requests with one key in the same batch run once: the second is
// answered with the first's outcome, and a third with the same key but
// another body gets idempotency_key_reused.
func TestGroupCommitRepeatedKey(t *testing.T) {
	r := newRegistry(t, actors.Config{})
	clinicID := newClinic(t)
	ctx, meta := testContext(t), metaFor(t, clinicID)
	release := holdActor(t, r, meta)

	type answer struct {
		p        crm.Patient
		replayed bool
		err      error
	}
	same := keyed(requester(t, clinicID), "key-1", "body")
	other := keyed(same, "key-1", "another body")
	var answers []chan answer
	for i, m := range []actors.Meta{same, same, other} {
		ch := make(chan answer, 1)
		answers = append(answers, ch)
		go func() {
			p, replayed, err := actors.Exec(ctx, r, m, createPatient)
			ch <- answer{p, replayed, err}
		}()
		eventually(t, "the request queues", func() bool { return r.InFlight(clinicID) == i+2 })
	}
	release()

	first, second, third := receive(t, "the first", answers[0]), receive(t, "the second", answers[1]), receive(t, "the third", answers[2])
	if first.err != nil || first.replayed {
		t.Fatalf("first: replayed %v, err %v; want it to run", first.replayed, first.err)
	}
	if second.err != nil || !second.replayed || second.p.ID != first.p.ID {
		t.Errorf("second: patient %s replayed %v err %v; want the first's patient %s replayed", second.p.ID, second.replayed, second.err, first.p.ID)
	}
	wantCode(t, third.err, actors.ErrKeyReused)
	var n int
	if err := dbtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM patients WHERE clinic_id = $1`, clinicID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
}

// panickyEvent is an event whose name panics, as a bug in the batch's own
// code (not in a command) would.
type panickyEvent struct{}

func (panickyEvent) EventName() string { panic("no name") }

// When a step of the batch's own fails, nothing of the batch is committed
// and each write runs again alone: only the poisoning one fails. Here one
// command poisons the events' outbox write, with an event of a clinic that
// does not exist (an SQL error) or with an event whose name panics.
func TestGroupCommitFallsBackToOneByOne(t *testing.T) {
	for name, poisonEvent := range map[string]func(q *store.Queries, p crm.Patient){
		"statement fails": func(q *store.Queries, p crm.Patient) { q.Emit(uuid.New(), messaging.PatientCreated{PatientID: p.ID}) },
		"batch panics":    func(q *store.Queries, p crm.Patient) { q.Emit(p.ClinicID, panickyEvent{}) },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRegistry(t, actors.Config{})
			clinicID := newClinic(t)
			ctx, meta := testContext(t), metaFor(t, clinicID)
			release := holdActor(t, r, meta)

			poisoned := make(chan uuid.UUID, 2) // it runs in the batch, then alone
			poison := commandFunc[crm.Patient](func(ctx context.Context, q *store.Queries, m actors.Meta) (crm.Patient, error) {
				p, err := createPatient.Execute(ctx, q, m)
				poisoned <- p.ID
				poisonEvent(q, p)
				return p, err
			})
			var answers []<-chan outcome[crm.Patient]
			for i, cmd := range []actors.Command[crm.Patient]{createPatient, poison, createPatient} {
				answers = append(answers, goExec(ctx, r, meta, cmd))
				eventually(t, "the write queues", func() bool { return r.InFlight(clinicID) == i+2 })
			}
			release()
			for i, answer := range answers {
				res := receive(t, "a write's answer", answer)
				switch {
				case i == 1 && res.err == nil:
					t.Error("the poisoning write succeeded")
				case i == 1:
					for range 2 {
						if id := receive(t, "the poisoning write's patient", poisoned); patientExists(t, clinicID, id) {
							t.Error("the poisoning write was committed")
						}
					}
				case res.err != nil:
					t.Errorf("write %d: %v", i, res.err)
				case !patientExists(t, clinicID, res.value.ID):
					t.Errorf("write %d answered but not committed", i)
				}
			}
		})
	}
}
