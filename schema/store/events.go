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
