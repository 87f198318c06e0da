package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/schema/store"
)

// A rate check on a clinic answers at once while the clinic's actor is busy
// with a write: reads never wait behind writes.
func TestAdmitDoesNotWaitForWrites(t *testing.T) {
	limits, err := ratelimit.Parse("user.read=2/m")
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, actors.Config{Limits: limits})
	clinicID := newClinic(t)
	started, release := make(chan struct{}), make(chan struct{})
	blocked := goExec(testContext(t), r, metaFor(t, clinicID), commandFunc[int](
		func(context.Context, *store.Queries, actors.Meta) (int, error) {
			close(started)
			<-release
			return 1, nil
		}))
	receive(t, "the write to start", started)

	user := uuid.New()
	done := make(chan ratelimit.Decision, 3)
	go func() {
		for i := 0; i < 3; i++ {
			d, err := r.Admit(testContext(t), clinicID, user, ratelimit.ClassRead)
			if err != nil {
				t.Error(err)
			}
			done <- d
		}
	}()
	for i, want := range []bool{true, true, false} {
		select {
		case d := <-done:
			if d.Allowed != want {
				t.Errorf("admission %d allowed=%v, want %v", i+1, d.Allowed, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a rate check waited behind the clinic's write")
		}
	}
	close(release)
	if res := receive(t, "the write", blocked); res.err != nil {
		t.Fatal(res.err)
	}
}

// An actor whose buckets are still spent is not passivated before its
// longest window has passed, so its quota cannot be reset by idling.
func TestPassivationWaitsForLongestWindow(t *testing.T) {
	limits, err := ratelimit.Parse("clinic.write=1/h")
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, actors.Config{Limits: limits, IdleTimeout: 20 * time.Millisecond})
	clinicID := newClinic(t)
	if d, _ := r.Admit(testContext(t), clinicID, uuid.New(), ratelimit.ClassWrite); !d.Allowed {
		t.Fatal("first write refused")
	}
	time.Sleep(100 * time.Millisecond) // several idle timeouts and sweeps
	if d, _ := r.Admit(testContext(t), clinicID, uuid.New(), ratelimit.ClassWrite); d.Allowed {
		t.Error("a second write passed within the hour: the bucket was forgotten")
	}
}
