package actors_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// benchGoroutinesPerCPU is the parallelism of the parallel sub-benchmarks:
// many more callers than CPUs, so that a clinic's mailbox holds a queue.
const benchGoroutinesPerCPU = 16

// benchClinics is how many clinics the several-clinics variants spread over.
const benchClinics = 8

// noopWrite does nothing: its transaction is still begun, takes the clinic's
// advisory lock and commits, which is the whole cost of a write's plumbing.
type noopWrite struct{}

func (noopWrite) Execute(context.Context, *store.Queries, actors.Meta) (struct{}, error) {
	return struct{}{}, nil
}

// benchPatient is a small real write: one patient row and its
// crm.patient.created event in the outbox.
var benchPatient = commands.CreatePatient{Fields: crm.PatientFields{
	FirstName: crm.Some("Eva"), LastName: crm.Some("Ruiz"),
}}

// benchContext bounds a whole benchmark run, so a stuck actor fails it
// instead of hanging it, without a timer per operation.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// benchRegistry starts a registry on the package's database, stopped when
// the benchmark ends.
func benchRegistry(b *testing.B, cfg actors.Config) *actors.Registry {
	b.Helper()
	r := actors.NewRegistry(actors.NewExecutor(dbtest.Pool(b), discard), discard, cfg)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			b.Errorf("stop registry: %v", err)
		}
	})
	return r
}

// reportRate reports how many operations a second the benchmark achieved.
func reportRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkActorRoundTrip measures one write through a clinic's actor and
// back: actors.Exec → Registry → the actor's mailbox → one transaction
// (BEGIN, the clinic's advisory lock, the command, COMMIT) → the reply.
// noop-write runs a command that does nothing; patient-write inserts a
// patient and its event. serial is one caller; parallel is many callers on
// one clinic (its writes queue in one mailbox, which is where group commit
// pays; parallel-one-by-one is the same with group commit off);
// parallel-clinics spreads the callers over several clinics.
func BenchmarkActorRoundTrip(b *testing.B) {
	b.Run("noop-write", func(b *testing.B) {
		benchRoundTrip(b, actors.Command[struct{}](noopWrite{}), func(struct{}) bool { return true })
	})
	b.Run("patient-write", func(b *testing.B) {
		benchRoundTrip(b, actors.Command[crm.Patient](benchPatient), func(p crm.Patient) bool { return p.ID != uuid.Nil })
	})
}

func benchRoundTrip[T any](b *testing.B, cmd actors.Command[T], ok func(T) bool) {
	exec := func(ctx context.Context, r *actors.Registry, m actors.Meta) error {
		v, replayed, err := actors.Exec(ctx, r, m, cmd)
		switch {
		case err != nil:
			return err
		case replayed || !ok(v):
			return fmt.Errorf("exec answered %+v (replayed %v)", v, replayed)
		}
		return nil
	}
	// setup starts a registry whose actors for n clinics are already
	// spawned, and returns each clinic's Meta.
	setup := func(b *testing.B, n int, cfg actors.Config) (context.Context, *actors.Registry, []actors.Meta) {
		ctx, r := benchContext(b), benchRegistry(b, cfg)
		metas := make([]actors.Meta, n)
		for i := range metas {
			metas[i] = actors.Meta{RequestID: "bench", ClinicID: newClinic(b)}
			if err := exec(ctx, r, metas[i]); err != nil {
				b.Fatal(err)
			}
		}
		return ctx, r, metas
	}
	parallel := func(b *testing.B, clinics int, cfg actors.Config) {
		ctx, r, metas := setup(b, clinics, cfg)
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(benchGoroutinesPerCPU)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			m := metas[int(next.Add(1))%len(metas)]
			for pb.Next() {
				if err := exec(ctx, r, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, "writes/s")
	}

	b.Run("serial", func(b *testing.B) {
		ctx, r, metas := setup(b, 1, actors.Config{})
		b.ReportAllocs()
		for b.Loop() {
			if err := exec(ctx, r, metas[0]); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, "writes/s")
	})
	b.Run("parallel", func(b *testing.B) { parallel(b, 1, actors.Config{}) })
	b.Run("parallel-one-by-one", func(b *testing.B) { parallel(b, 1, actors.Config{MaxBatch: 1}) })
	b.Run(fmt.Sprintf("parallel-%d-clinics", benchClinics), func(b *testing.B) { parallel(b, benchClinics, actors.Config{}) })
}

// BenchmarkIdempotencyReplay measures a retried request (same
// Idempotency-Key, same fingerprint) answered by the clinic actor from its
// in-memory key cache: the mailbox round trip plus decoding the stored
// outcome, and no database access (checked on the pool's acquire count).
func BenchmarkIdempotencyReplay(b *testing.B) {
	setup := func(b *testing.B) (context.Context, *actors.Registry, actors.Meta, uuid.UUID) {
		ctx, r := benchContext(b), benchRegistry(b, actors.Config{})
		m := actors.Meta{RequestID: "bench", UserID: newUser(b), ClinicID: newClinic(b), Idempotency: &actors.Idempotency{
			Key:         "bench-" + uuid.NewString(),
			Fingerprint: sha256.Sum256([]byte(`POST /v1/clinics/{clinic_id}/patients {"first_name":"Eva","last_name":"Ruiz"}`)),
		}}
		first, replayed, err := actors.Exec(ctx, r, m, benchPatient)
		if err != nil || replayed {
			b.Fatalf("first request: replayed %v, err %v", replayed, err)
		}
		return ctx, r, m, first.ID
	}
	replay := func(ctx context.Context, r *actors.Registry, m actors.Meta, want uuid.UUID) error {
		p, replayed, err := actors.Exec(ctx, r, m, benchPatient)
		switch {
		case err != nil:
			return err
		case !replayed || p.ID != want:
			return fmt.Errorf("replay answered patient %s (replayed %v), want %s replayed", p.ID, replayed, want)
		}
		return nil
	}
	// noDatabase fails the benchmark if the replays acquired a connection.
	noDatabase := func(b *testing.B, before int64) {
		if n := dbtest.Pool(b).Stat().AcquireCount() - before; n != 0 {
			b.Errorf("replays acquired %d database connections, want none", n)
		}
	}

	b.Run("serial", func(b *testing.B) {
		ctx, r, m, want := setup(b)
		before := dbtest.Pool(b).Stat().AcquireCount()
		b.ReportAllocs()
		for b.Loop() {
			if err := replay(ctx, r, m, want); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, "replays/s")
		noDatabase(b, before)
	})
	b.Run("parallel", func(b *testing.B) {
		ctx, r, m, want := setup(b)
		before := dbtest.Pool(b).Stat().AcquireCount()
		b.ReportAllocs()
		b.SetParallelism(benchGoroutinesPerCPU)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := replay(ctx, r, m, want); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, "replays/s")
		noDatabase(b, before)
	})
}

// BenchmarkRegistryAdmit measures a clinic rate check (Registry.Admit): the
// registry's lookup of the clinic's entry plus the GCRA decision over its
// user and clinic buckets, beside the mailbox. The quotas are too high to be
// reached, so every request must be allowed.
func BenchmarkRegistryAdmit(b *testing.B) {
	limits, err := ratelimit.Parse("user.read=1000000000/s,clinic.read=1000000000/s")
	if err != nil {
		b.Fatal(err)
	}
	admit := func(ctx context.Context, r *actors.Registry, clinicID, user uuid.UUID) error {
		d, err := r.Admit(ctx, clinicID, user, ratelimit.ClassRead)
		switch {
		case err != nil:
			return err
		case !d.Allowed || len(d.Statuses) != 2:
			return fmt.Errorf("decision %+v, want allowed by 2 policies", d)
		}
		return nil
	}

	b.Run("serial", func(b *testing.B) {
		ctx, r, clinicID, user := benchContext(b), benchRegistry(b, actors.Config{Limits: limits}), uuid.New(), uuid.New()
		b.ReportAllocs()
		for b.Loop() {
			if err := admit(ctx, r, clinicID, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) { // one clinic, a user per goroutine
		ctx, r, clinicID := benchContext(b), benchRegistry(b, actors.Config{Limits: limits}), uuid.New()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			user := uuid.New()
			for pb.Next() {
				if err := admit(ctx, r, clinicID, user); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
