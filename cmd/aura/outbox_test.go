package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// outboxWait bounds the waits for events to move. Delivery is usually a
// matter of milliseconds, but watermill-sql reads only rows older than the
// oldest transaction running anywhere on the PostgreSQL server, so other
// test packages' long transactions can hold it back for seconds.
const outboxWait = 20 * time.Second

// outboxDB is a migrated database of the test's own, so that the outbox's
// counts are the test's alone.
type outboxDB struct {
	t        *testing.T
	pool     *pgxpool.Pool
	userID   uuid.UUID
	clinicID uuid.UUID
}

// newOutboxDB creates and migrates a fresh database with `aura migrate`,
// points the command line at it, and inserts a user and a clinic.
func newOutboxDB(t *testing.T) *outboxDB {
	t.Helper()
	_, databaseURL := freshDatabase(t)
	t.Setenv("AURA_DATABASE_URL", databaseURL)
	if _, stderr, err := cli(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	pool, err := pgxpool.New(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // before the database is dropped
	db := &outboxDB{t: t, pool: pool, userID: uuid.Must(uuid.NewV7()), clinicID: uuid.Must(uuid.NewV7())}
	db.exec(`INSERT INTO users (id, email, name) VALUES ($1, $2, 'Outbox')`, db.userID, db.userID.String()+"@example.com")
	db.exec(`INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Outbox clinic', 'EUR', 'Europe/Madrid')`, db.clinicID)
	return db
}

func (db *outboxDB) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.pool.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

func (db *outboxDB) count(sql string, args ...any) int {
	db.t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// emit commits n events of the clinic, as a request's transaction does.
func (db *outboxDB) emit(n int) {
	db.t.Helper()
	ctx := context.Background()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		db.t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	events := make([]messaging.Pending, n)
	for i := range events {
		events[i] = messaging.Pending{ClinicID: db.clinicID, Event: messaging.PatientCreated{PatientID: uuid.Must(uuid.NewV7())},
			Metadata: messaging.Metadata{RequestID: "req-cli", UserID: db.userID}}
	}
	emitter := messaging.NewEmitter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := emitter.Emit(ctx, tx, events, store.New(tx).NextEventSequences); err != nil {
		db.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		db.t.Fatal(err)
	}
}

// status reads the outbox status directly.
func (db *outboxDB) status() messaging.OutboxStatus {
	db.t.Helper()
	s, err := messaging.Status(context.Background(), db.pool)
	if err != nil {
		db.t.Fatal(err)
	}
	return s
}

// fail records a failed event of consumer, as the consumers do.
func (db *outboxDB) fail(consumer string) {
	db.t.Helper()
	env, err := messaging.NewEnvelope(messaging.Metadata{RequestID: "req-failed", UserID: db.userID}, db.clinicID, 1,
		messaging.PatientCreated{PatientID: uuid.New()}, time.Now())
	if err != nil {
		db.t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		db.t.Fatal(err)
	}
	db.exec(`INSERT INTO consumer_failures (consumer, event_id, envelope, error, attempts) VALUES ($1, $2, $3, 'boom', 5)`,
		consumer, env.EventID, raw)
}

// outboxStatusLines runs `aura outbox status` and returns its four lines as
// name → value, checking that there are exactly these four, in order.
func outboxStatusLines(t *testing.T) map[string]string {
	t.Helper()
	stdout, stderr, err := cli(t, "outbox", "status")
	if err != nil {
		t.Fatalf("outbox status: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	names := []string{"pending", "processed", "failed", "oldest_pending"}
	if !strings.HasSuffix(stdout, "\n") || len(lines) != len(names) {
		t.Fatalf("outbox status printed %q, want lines %v", stdout, names)
	}
	out := map[string]string{}
	for i, line := range lines {
		name, value, ok := strings.Cut(line, " ")
		if !ok || name != names[i] {
			t.Fatalf("line %d of outbox status is %q, want %q and a value", i+1, line, names[i])
		}
		out[name] = value
	}
	return out
}

// wantCounts checks the status command's counts.
func wantCounts(t *testing.T, got map[string]string, pending, processed, failed string) {
	t.Helper()
	if got["pending"] != pending || got["processed"] != processed || got["failed"] != failed {
		t.Errorf("outbox status: pending %s, processed %s, failed %s; want %s, %s, %s",
			got["pending"], got["processed"], got["failed"], pending, processed, failed)
	}
}

// TestOutboxCommands proves the outbox commands on a database of their own:
// `outbox status` prints pending, processed, failed and oldest_pending with
// the right figures (all zero at first; emitted events pending until `outbox
// forward` moves them, then processed; consumer failures; the age of the
// oldest pending event); `outbox cleanup` deletes the forwarded rows older
// than AURA_OUTBOX_TTL, never pending ones, and prints how many; `outbox
// retry --consumer x` re-delivers that consumer's failed events through the
// outbox (marked for it alone) and prints how many; `outbox retry` does every
// consumer's.
func TestOutboxCommands(t *testing.T) {
	db := newOutboxDB(t)
	stdout, _, err := cli(t, "outbox", "status")
	if err != nil || stdout != "pending 0\nprocessed 0\nfailed 0\noldest_pending 0s\n" {
		t.Fatalf("outbox status of an empty outbox: %q, %v", stdout, err)
	}

	db.emit(3)
	wantCounts(t, outboxStatusLines(t), "3", "0", "0")

	// `outbox forward` until the three are moved, then stop it as SIGINT does.
	ctx, cancel := context.WithCancel(context.Background())
	forwarded := make(chan error, 1)
	go func() { forwarded <- run(ctx, []string{"outbox", "forward"}, io.Discard, io.Discard) }()
	deadline := time.Now().Add(outboxWait)
	for db.status().Pending != 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("outbox forward did not move the events within %v", outboxWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-forwarded:
		if err != nil {
			t.Fatalf("outbox forward returned %v after cancellation, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("outbox forward did not return within 15s of cancellation")
	}
	if n := db.count(`SELECT count(*) FROM watermill_aura_events`); n != 3 {
		t.Errorf("%d events on the postgres pub/sub, want 3", n)
	}

	db.emit(2)
	db.exec(`UPDATE watermill_aura_outbox SET created_at = created_at - interval '90 seconds'`)
	db.fail("x")
	db.fail("x")
	db.fail("y")
	got := outboxStatusLines(t)
	wantCounts(t, got, "2", "3", "3")
	if age, err := time.ParseDuration(got["oldest_pending"]); err != nil || age < 90*time.Second || age > 150*time.Second {
		t.Errorf("oldest_pending %q, want about 90s", got["oldest_pending"])
	}

	t.Setenv("AURA_OUTBOX_TTL", "1ms")
	stdout, stderr, err := cli(t, "outbox", "cleanup")
	if err != nil || stdout != "deleted 3 rows older than 1ms\n" {
		t.Fatalf("outbox cleanup: %q, %v\n%s; want the 3 forwarded rows deleted", stdout, err, stderr)
	}
	wantCounts(t, outboxStatusLines(t), "2", "0", "3")
	t.Setenv("AURA_OUTBOX_TTL", "1h")
	if stdout, _, err := cli(t, "outbox", "cleanup"); err != nil || stdout != "deleted 0 rows older than 1h0m0s\n" {
		t.Errorf("outbox cleanup with a TTL of 1h: %q, %v; want nothing deleted", stdout, err)
	}

	stdout, stderr, err = cli(t, "outbox", "retry", "--consumer", "x")
	if err != nil || stdout != "re-delivered 2 failed events\n" {
		t.Fatalf("outbox retry --consumer x: %q, %v\n%s", stdout, err, stderr)
	}
	wantCounts(t, outboxStatusLines(t), "4", "0", "1")
	if n := db.count(`SELECT count(*) FROM watermill_aura_outbox WHERE payload->'metadata'->>$1 = 'x'`, messaging.MetadataRetryFor); n != 2 {
		t.Errorf("%d events in the outbox marked for consumer x, want 2", n)
	}
	if n := db.count(`SELECT count(*) FROM consumer_failures WHERE consumer = 'y'`); n != 1 {
		t.Errorf("consumer y has %d failures left, want 1", n)
	}
	if stdout, _, err := cli(t, "outbox", "retry", "--consumer", "x"); err != nil || stdout != "re-delivered 0 failed events\n" {
		t.Errorf("outbox retry --consumer x again: %q, %v; want 0", stdout, err)
	}
	if stdout, _, err := cli(t, "outbox", "retry"); err != nil || stdout != "re-delivered 1 failed events\n" {
		t.Errorf("outbox retry: %q, %v; want y's 1", stdout, err)
	}
	wantCounts(t, outboxStatusLines(t), "5", "0", "0")
}

// TestOutboxUsageErrors proves malformed `aura outbox` invocations fail
// with the usage (or the flag error on stderr) and print nothing on stdout.
func TestOutboxUsageErrors(t *testing.T) {
	useTestDatabase(t)
	tests := []struct {
		args []string
		want string // in the error
	}{
		{[]string{"outbox"}, "usage: aura outbox"},
		{[]string{"outbox", "frobnicate"}, "usage: aura outbox"},
		{[]string{"outbox", "status", "now"}, "usage: aura outbox"},
		{[]string{"outbox", "status", "--consumer", "x"}, "usage: aura outbox"},
		{[]string{"outbox", "cleanup", "--consumer", "x"}, "usage: aura outbox"},
		{[]string{"outbox", "retry", "x"}, "usage: aura outbox"},
		{[]string{"outbox", "retry", "--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		stdout, stderr, err := cli(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("aura %s: err %v, want one containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if stdout != "" {
			t.Errorf("aura %s printed %q on stdout", strings.Join(tt.args, " "), stdout)
		}
		if tt.want == "bogus" && !strings.Contains(stderr, "flag provided but not defined") {
			t.Errorf("aura %s: stderr %q lacks the flag error", strings.Join(tt.args, " "), stderr)
		}
	}
	t.Setenv("AURA_PUBSUB", "carrier-pigeon")
	if _, _, err := cli(t, "outbox", "forward"); err == nil || !strings.Contains(err.Error(), "AURA_PUBSUB") {
		t.Errorf("outbox forward with AURA_PUBSUB=carrier-pigeon: err %v, want one naming the variable", err)
	}
}

// post sends a JSON POST with an Idempotency-Key and returns the status,
// body and X-Request-Id.
func (s *server) post(t *testing.T, path, key string, body any) (int, []byte, string) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", uuid.NewString())
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header.Get("X-Request-Id")
}

// TestServeRunsEventPipeline proves `aura serve` runs the outbox forwarder
// and the event consumers: a clinic created over HTTP shows its
// platform.clinic.created in GET /v1/clinics/{id}/events, with the request's
// X-Request-Id; GET /metrics exports the outbox status; and on shutdown the
// forwarder and consumers stop.
func TestServeRunsEventPipeline(t *testing.T) {
	useTestDatabase(t)
	t.Setenv("AURA_AUTO_MIGRATE", "true")
	t.Setenv("AURA_PUBSUB", "postgres")
	s := startServe(t)
	out, _, err := cli(t, "user", "create", "--email", "events-"+randomHex(t, 4)+"@example.com", "--name", "Events")
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	key := lastLine(t, out)

	status, body, requestID := s.post(t, "/v1/clinics", key, map[string]any{"name": "Clínica Eventos", "currency": "EUR", "timezone": "Europe/Madrid"})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/clinics = %d %s", status, body)
	}
	var clinic struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &clinic); err != nil || clinic.ID == "" {
		t.Fatalf("clinic %s: %v", body, err)
	}

	var events struct {
		Data []messaging.Envelope `json:"data"`
	}
	deadline := time.Now().Add(outboxWait)
	for {
		status, body := s.get(t, "/v1/clinics/"+clinic.ID+"/events", "Authorization", "Bearer "+key)
		if status != http.StatusOK {
			t.Fatalf("GET events = %d %s", status, body)
		}
		if err := json.Unmarshal([]byte(body), &events); err != nil {
			t.Fatalf("events %s: %v", body, err)
		}
		if len(events.Data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event logged within %v\n%s", outboxWait, s.logs)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(events.Data) != 1 || events.Data[0].Event != messaging.ClinicCreatedName || events.Data[0].Sequence != 1 ||
		events.Data[0].ClinicID.String() != clinic.ID || requestID == "" || events.Data[0].RequestID != requestID {
		t.Errorf("events %+v, want platform.clinic.created at sequence 1 with request_id %q", events.Data, requestID)
	}

	status, metrics := s.get(t, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", status)
	}
	for _, name := range []string{"aura_outbox_pending_events", "aura_outbox_processed_events", "aura_consumer_failed_events", "aura_outbox_oldest_pending_seconds"} {
		if !strings.Contains(metrics, "\n"+name+" ") {
			t.Errorf("GET /metrics lacks %s", name)
		}
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v after cancellation\n%s", err, s.logs)
	}
	waitNoGoroutine(t, "messaging.Forward")
	waitNoGoroutine(t, "messaging.Consume")
}
