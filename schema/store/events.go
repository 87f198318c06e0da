package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/messaging"
)

// ListClinicEvents returns a page of the clinic's events from the event log,
// newest first; page.After is the id of the last event of the previous page.
// name, when set, keeps only events with that name.
func (q *Queries) ListClinicEvents(ctx context.Context, clinicID uuid.UUID, name string, page Page) (List[messaging.Envelope], error) {
	rows, err := q.db.Query(ctx, `SELECT envelope FROM clinic_events
		WHERE clinic_id = $1
		AND ($2::uuid = '00000000-0000-0000-0000-000000000000'
			OR sequence < (SELECT sequence FROM clinic_events WHERE clinic_id = $1 AND event_id = $2))
		AND ($4::text IS NULL OR event = $4)
		ORDER BY sequence DESC LIMIT $3`, clinicID, page.After, page.Limit+1, nullText(name))
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (messaging.Envelope, error) {
		var raw []byte
		var env messaging.Envelope
		if err := row.Scan(&raw); err != nil {
			return env, err
		}
		return env, json.Unmarshal(raw, &env)
	})
	if err != nil {
		return list, fmt.Errorf("list clinic events: %w", err)
	}
	return list, nil
}

// ClinicEventsAfter returns up to limit of the clinic's logged events with a
// sequence above after, oldest first.
func (q *Queries) ClinicEventsAfter(ctx context.Context, clinicID uuid.UUID, after int64, limit int) ([]messaging.Envelope, error) {
	rows, err := q.db.Query(ctx, `SELECT envelope FROM clinic_events
		WHERE clinic_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3`, clinicID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("clinic events after %d: %w", after, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (messaging.Envelope, error) {
		var env messaging.Envelope
		err := row.Scan(&env)
		return env, err
	})
	if err != nil {
		return nil, fmt.Errorf("clinic events after %d: %w", after, err)
	}
	return list, nil
}

// LastClinicSequence is the sequence of the clinic's newest logged event (0
// when none).
func (q *Queries) LastClinicSequence(ctx context.Context, clinicID uuid.UUID) (int64, error) {
	var seq int64
	err := q.db.QueryRow(ctx, `SELECT coalesce(max(sequence), 0) FROM clinic_events WHERE clinic_id = $1`, clinicID).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("last clinic sequence: %w", err)
	}
	return seq, nil
}
