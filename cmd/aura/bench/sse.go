package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxEventLine bounds one line of an event stream.
const maxEventLine = 1 << 20

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID    string
	Event string
	Data  []byte
}

// readEvents parses the Server-Sent Events in r and calls fn for each, until
// r ends or fails. Comments (keep-alives) are skipped; multi-line data is
// joined with newlines, as the SSE specification says.
func readEvents(r io.Reader, fn func(sseEvent)) error {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var e sseEvent
	var data [][]byte
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			if len(data) > 0 {
				e.Data = bytes.Join(data, []byte("\n"))
				fn(e)
			}
			e, data = sseEvent{}, nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			e.ID = string(value)
		case "event":
			e.Event = string(value)
		case "data":
			data = append(data, bytes.Clone(value))
		}
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}

// openStream opens the clinic's event stream after the event lastID (none
// when empty) and returns its body.
func (c *Client) openStream(ctx context.Context, clinic, lastID string) (io.ReadCloser, error) {
	path := clinicPath(clinic, "events", "stream")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Request-Id", c.nextID(phaseSetup))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: status %d%s", path, resp.StatusCode, hint(resp.StatusCode))
	}
	return resp.Body, nil
}

// streamReconnectDelay is the pause before reopening a stream that ended.
const streamReconnectDelay = 100 * time.Millisecond
