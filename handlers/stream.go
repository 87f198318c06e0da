package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Stream settings.
const (
	streamBatch     = 100              // events read from the log per query
	streamHeartbeat = 15 * time.Second // a comment line keeps proxies from closing the stream
)

// streamEvents sends the clinic's events as Server-Sent Events, each with
// id = its sequence. A client that reconnects with Last-Event-ID (or
// ?last_event_id=) gets every event after it; without, only new events.
// Events are read from the event log, woken by the feed, so a slow client
// never holds up another.
func (s *Server) streamEvents(c *call) (reply, error) {
	seen, err := c.lastEventID()
	if err != nil {
		return reply{}, err
	}
	position, err := s.queries.ClinicLogPosition(c.ctx, c.clinic.ID, seen)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, stream: func(w http.ResponseWriter) {
		s.stream(c, w, position)
	}}, nil
}

// stream sends the clinic's events logged after position. It pages by log
// position, not by sequence: with several processes writing, sequence 3 may
// reach the log before sequence 2, and must not make the stream skip 2.
func (s *Server) stream(c *call, w http.ResponseWriter, position int64) {
	wake, stop := s.feed.Subscribe(c.clinic.ID)
	defer stop()
	flusher := http.NewResponseController(w)
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	for {
		events, err := s.queries.ClinicEventsAfter(c.ctx, c.clinic.ID, position, streamBatch)
		if err != nil {
			return // the client reconnects with Last-Event-ID
		}
		for _, e := range events {
			data, err := json.Marshal(e.Envelope)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Envelope.Sequence, e.Envelope.Event, data); err != nil {
				return
			}
			position = e.Position
		}
		if err := flusher.Flush(); err != nil {
			return
		}
		if len(events) == streamBatch {
			continue // more to catch up on
		}
		select {
		case <-c.ctx.Done():
			return
		case <-wake:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
	}
}

// lastEventID reads the sequence a reconnecting client saw last; -1 when
// the client starts afresh.
func (c *call) lastEventID() (int64, error) {
	v := c.r.Header.Get("Last-Event-ID")
	if v == "" {
		v = c.r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errInvalidParameter.New("Last-Event-ID must be the id (sequence) of an event this stream sent.")
	}
	return n, nil
}
