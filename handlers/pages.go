package handlers

import (
	"encoding/base64"
	"strconv"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/schema/store"
)

// errInvalidParameter reports a bad query parameter.
var errInvalidParameter = fault.Define("invalid_parameter", fault.Invalid, "Invalid query parameter")

// Page sizes.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// listBody is the shape of every list response.
type listBody[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// page reads ?limit= (1–100, default 20) and ?cursor= (opaque, from a
// previous page's next_cursor).
func (c *call) page() (store.Page, error) {
	q := c.r.URL.Query()
	p := store.Page{Limit: defaultLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return p, errInvalidParameter.Errorf("limit must be an integer from 1 to %d.", maxLimit)
		}
		p.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err == nil {
			p.After, err = uuid.FromBytes(raw)
		}
		if err != nil {
			return p, errInvalidParameter.New("cursor is not a cursor this API returned.")
		}
	}
	return p, nil
}

// listReply renders a page; the cursor of the next page is the last item's id.
func listReply[T any](list store.List[T], idOf func(T) uuid.UUID) reply {
	body := listBody[T]{Data: list.Items, HasMore: list.HasMore}
	if body.Data == nil {
		body.Data = []T{}
	}
	if list.HasMore {
		last := idOf(list.Items[len(list.Items)-1])
		cursor := base64.RawURLEncoding.EncodeToString(last[:])
		body.NextCursor = &cursor
	}
	return ok(body)
}
