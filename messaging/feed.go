package messaging

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// FeedPollInterval is how often the feed looks for newly logged events.
const FeedPollInterval = 100 * time.Millisecond

// Feed tells subscribers when new events of their clinic reach the event
// log. It carries no events, only wake-ups: a subscriber reads what it has
// not seen from the log itself, so a slow subscriber misses nothing and never
// holds up the others. One poller serves every subscriber of the process; it
// runs only while someone listens.
type Feed struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	subs    map[uuid.UUID]map[chan struct{}]struct{}
	stop    context.CancelFunc // stops the poller; nil when it is not running
	last    int64              // the newest log position seen
	stopped chan struct{}
}

// NewFeed returns a feed of the event log in pool.
func NewFeed(pool *pgxpool.Pool) *Feed {
	return &Feed{pool: pool, subs: make(map[uuid.UUID]map[chan struct{}]struct{})}
}

// Subscribe returns a channel that receives a value (coalesced) whenever new
// events of the clinic are logged, and a function that ends the subscription.
func (f *Feed) Subscribe(clinicID uuid.UUID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[clinicID] == nil {
		f.subs[clinicID] = make(map[chan struct{}]struct{})
	}
	f.subs[clinicID][ch] = struct{}{}
	if f.stop == nil {
		if f.last == 0 { // start from now: earlier events the subscriber reads itself
			_ = f.pool.QueryRow(context.Background(), `SELECT coalesce(max(position), 0) FROM clinic_events`).Scan(&f.last)
		}
		ctx, cancel := context.WithCancel(context.Background())
		f.stop, f.stopped = cancel, make(chan struct{})
		go f.poll(ctx, f.stopped)
	}
	return ch, func() { f.unsubscribe(clinicID, ch) }
}

func (f *Feed) unsubscribe(clinicID uuid.UUID, ch chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs[clinicID], ch)
	if len(f.subs[clinicID]) == 0 {
		delete(f.subs, clinicID)
	}
	if len(f.subs) == 0 && f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

// poll wakes the subscribers of every clinic with newly logged events.
func (f *Feed) poll(ctx context.Context, done chan struct{}) {
	defer close(done)
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	ticker := time.NewTicker(FeedPollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		rows, err := f.pool.Query(ctx, `SELECT clinic_id, max(position) FROM clinic_events
			WHERE position > $1 GROUP BY clinic_id`, last)
		if err != nil {
			continue // the database is away; try again at the next tick
		}
		var clinics []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			var pos int64
			if rows.Scan(&id, &pos) == nil {
				clinics = append(clinics, id)
				last = max(last, pos)
			}
		}
		rows.Close()
		f.wake(clinics, last)
	}
}

func (f *Feed) wake(clinics []uuid.UUID, last int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = last
	for _, id := range clinics {
		for ch := range f.subs[id] {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}
