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

// LoggedEvent is an event with its position in the event log.
type LoggedEvent struct {
	Position int64
	Envelope messaging.Envelope
}

// ClinicEventsAfter returns up to limit of the clinic's events logged after
// position, in log order (which may differ from sequence order when several
// processes write).
func (q *Queries) ClinicEventsAfter(ctx context.Context, clinicID uuid.UUID, position int64, limit int) ([]LoggedEvent, error) {
	rows, err := q.db.Query(ctx, `SELECT position, envelope FROM clinic_events
		WHERE clinic_id = $1 AND position > $2 ORDER BY position LIMIT $3`, clinicID, position, limit)
	if err != nil {
		return nil, fmt.Errorf("clinic events after %d: %w", position, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LoggedEvent, error) {
		var e LoggedEvent
		err := row.Scan(&e.Position, &e.Envelope)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("clinic events after %d: %w", position, err)
	}
	return list, nil
}

// ClinicLogPosition is where in the event log a client that has seen the
// clinic's events up to sequence stands (the newest of the clinic's
// positions when sequence < 0).
func (q *Queries) ClinicLogPosition(ctx context.Context, clinicID uuid.UUID, sequence int64) (int64, error) {
	var pos int64
	err := q.db.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM clinic_events
		WHERE clinic_id = $1 AND ($2 < 0 OR sequence <= $2)`, clinicID, sequence).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("clinic log position: %w", err)
	}
	return pos, nil
}
