package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/docs/eventschema"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// eventWait bounds every wait for an event to travel from the outbox to the
// event log or a stream. Delivery is usually a matter of milliseconds, but
// watermill-sql reads only rows older than the oldest transaction running
// anywhere on the PostgreSQL server (not only in this package's database),
// so other test packages' long transactions can hold it back for seconds.
const eventWait = 20 * time.Second

// runEventPipeline runs, until the test ends, what `aura serve` runs beside
// the API: the outbox forwarder and the event-log consumer over the postgres
// pub/sub of the package's database. The HTTP harness runs neither.
func runEventPipeline(t *testing.T) {
	t.Helper()
	pool := dbtest.Pool(t)
	ps, err := messaging.NewPostgres(pool, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs[0] = messaging.Forward(ctx, pool, ps, watermill.NopLogger{})
	}()
	go func() {
		defer wg.Done()
		errs[1] = messaging.Consume(ctx, pool, ps, watermill.NopLogger{}, messaging.EventLog())
	}()
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			if err := errors.Join(errs...); err != nil {
				t.Errorf("event pipeline: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the forwarder and consumers did not stop within 15s")
		}
		_ = ps.Close()
	})
}

// emittedCount is the clinic's event counter: how many events its committed
// transactions emitted (sequences are gapless, so the last one is the count).
func emittedCount(t *testing.T, clinicID string) int {
	t.Helper()
	return count(t, `SELECT coalesce((SELECT last_sequence FROM event_sequences WHERE clinic_id = $1), 0)`, clinicID)
}

// waitLogged waits until the event log holds exactly n events of the clinic.
func waitLogged(t *testing.T, clinicID string, n int) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for {
		got := count(t, `SELECT count(*) FROM clinic_events WHERE clinic_id = $1`, clinicID)
		if got == n {
			return
		}
		if got > n {
			t.Fatalf("the event log holds %d events of clinic %s, want %d", got, clinicID, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event log holds %d events of clinic %s after %v, want %d", got, clinicID, eventWait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadEventSchemas compiles the published event schemas once.
var loadEventSchemas = sync.OnceValues(eventschema.Load)

// eventSchemas returns the published schemas of the events.
func eventSchemas(t testing.TB) *eventschema.Validator {
	t.Helper()
	v, err := loadEventSchemas()
	if err != nil {
		t.Fatalf("load the event schemas: %v", err)
	}
	return v
}

// loggedEvent is one item of GET /v1/clinics/{id}/events: its raw JSON and
// its decoded envelope.
type loggedEvent struct {
	raw json.RawMessage
	env messaging.Envelope
}

// eventPage fetches one page of the clinic's event log at path (with its
// query) and checks the list shape.
func (a *api) eventPage(key, path string) (events []loggedEvent, next string, raw []byte) {
	a.t.Helper()
	r := a.call("GET", path, key, nil).want(a.t, http.StatusOK)
	var body struct {
		Data       []json.RawMessage `json:"data"`
		HasMore    *bool             `json:"has_more"`
		NextCursor *string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.raw, &body); err != nil || body.Data == nil || body.HasMore == nil {
		a.t.Fatalf("GET %s: not a list (%v): %s", path, err, r.raw)
	}
	if *body.HasMore != (body.NextCursor != nil) {
		a.t.Fatalf("GET %s: has_more %v with next_cursor %v", path, *body.HasMore, body.NextCursor)
	}
	for _, item := range body.Data {
		var env messaging.Envelope
		if err := json.Unmarshal(item, &env); err != nil {
			a.t.Fatalf("GET %s: item %s: %v", path, item, err)
		}
		if err := eventSchemas(a.t).Validate(item); err != nil {
			a.t.Errorf("GET %s: event %s does not match its published schema: %v", path, env.Event, err)
		}
		events = append(events, loggedEvent{raw: item, env: env})
	}
	if body.NextCursor != nil {
		next = *body.NextCursor
	}
	return events, next, r.raw
}

// eventLog walks the clinic's event log (filtered by query, e.g.
// "event=crm.patient.created") page by page of limit, and returns every
// event, newest first, and the raw bodies of the pages.
func (a *api) eventLog(key, clinicID, query string, limit int) ([]loggedEvent, [][]byte) {
	a.t.Helper()
	var all []loggedEvent
	var bodies [][]byte
	cursor := ""
	for pages := 0; ; pages++ {
		q, err := url.ParseQuery(query)
		if err != nil {
			a.t.Fatal(err)
		}
		q.Set("limit", strconv.Itoa(limit))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		events, next, raw := a.eventPage(key, "/v1/clinics/"+clinicID+"/events?"+q.Encode())
		if len(events) > limit {
			a.t.Fatalf("page of %d events with limit %d", len(events), limit)
		}
		all = append(all, events...)
		bodies = append(bodies, raw)
		if next == "" {
			return all, bodies
		}
		if pages > 1000 {
			a.t.Fatal("the event log's pagination does not end")
		}
		cursor = next
	}
}

// sequences returns the events' sequence numbers, in order.
func sequences(events []loggedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.env.Sequence
	}
	return out
}

// descending returns n, n-1, ..., 1.
func descending(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(n - i)
	}
	return out
}

// expectedEvent is what one logged event must be.
type expectedEvent struct {
	name      string
	requestID string
	userID    uuid.UUID
	payload   map[string]any // exactly these members, compared as JSON
}

// envelopeMembers are the members of every envelope, and nothing else.
var envelopeMembers = []string{"clinic_id", "event", "event_id", "occurred_at", "payload", "request_id", "sequence", "user_id", "version"}

// checkLoggedEvent compares a logged event with what it must be: envelope
// (UUIDv7 event id, name, version 1, occurred_at in UTC, request id, user,
// clinic, sequence) and payload (exactly the expected members and values).
func checkLoggedEvent(t *testing.T, got loggedEvent, want expectedEvent, clinicID string, seq int64) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(got.raw, &raw); err != nil {
		t.Fatalf("event %s: %v", got.raw, err)
	}
	if keys := slices.Sorted(maps.Keys(raw)); !slices.Equal(keys, envelopeMembers) {
		t.Errorf("event %d: envelope members %v, want %v", seq, keys, envelopeMembers)
	}
	env := got.env
	where := fmt.Sprintf("event %d (%s)", seq, env.Event)
	if env.Event != want.name {
		t.Errorf("%s: name %q, want %q", where, env.Event, want.name)
	}
	if env.EventID.Version() != 7 || env.EventID.Variant() != uuid.RFC4122 {
		t.Errorf("%s: event_id %s is not a UUIDv7", where, env.EventID)
	}
	if env.Version != 1 {
		t.Errorf("%s: version %d, want 1", where, env.Version)
	}
	var occurred string
	_ = json.Unmarshal(raw["occurred_at"], &occurred)
	if at, err := time.Parse(time.RFC3339Nano, occurred); err != nil || !strings.HasSuffix(occurred, "Z") ||
		at.Before(time.Now().Add(-5*time.Minute)) || at.After(time.Now().Add(time.Minute)) {
		t.Errorf("%s: occurred_at %q is not a recent RFC 3339 UTC time", where, occurred)
	}
	if env.RequestID == "" || env.RequestID != want.requestID {
		t.Errorf("%s: request_id %q, want the request's X-Request-Id %q", where, env.RequestID, want.requestID)
	}
	if env.UserID != want.userID {
		t.Errorf("%s: user_id %s, want the caller %s", where, env.UserID, want.userID)
	}
	if env.ClinicID.String() != clinicID {
		t.Errorf("%s: clinic_id %s, want %s", where, env.ClinicID, clinicID)
	}
	if env.Sequence != seq {
		t.Errorf("%s: sequence %d, want %d", where, env.Sequence, seq)
	}
	var payload map[string]any
	if err := json.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatalf("%s: payload %s: %v", where, env.Payload, err)
	}
	wantPayload := asJSON(t, want.payload)
	if keys, wantKeys := slices.Sorted(maps.Keys(payload)), slices.Sorted(maps.Keys(wantPayload)); !slices.Equal(keys, wantKeys) {
		t.Errorf("%s: payload members %v, want %v", where, keys, wantKeys)
	}
	for k, w := range wantPayload {
		if !sameJSONValue(k, payload[k], w) {
			t.Errorf("%s: payload %s = %v, want %v", where, k, payload[k], w)
		}
	}
}

// asJSON returns v as it reads back from JSON.
func asJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJSONValue compares decoded JSON values; members named *_at are times,
// equal when they denote the same instant.
func sameJSONValue(name string, got, want any) bool {
	if strings.HasSuffix(name, "_at") {
		gs, _ := got.(string)
		ws, _ := want.(string)
		g, err1 := time.Parse(time.RFC3339Nano, gs)
		w, err2 := time.Parse(time.RFC3339Nano, ws)
		return err1 == nil && err2 == nil && g.Equal(w)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// requestID is the X-Request-Id the server answered r with.
func requestID(r response) string { return r.Header.Get(handlers.RequestIDHeader) }

// wantEmitted fails the test unless the clinic's committed transactions have
// emitted exactly n events so far.
func wantEmitted(t *testing.T, clinicID string, n int, after string) {
	t.Helper()
	if got := emittedCount(t, clinicID); got != n {
		t.Fatalf("after %s: %d events emitted, want %d", after, got, n)
	}
}

// TestEventsEmittedByActions proves that each of the ten domain events is
// emitted exactly once by its action, after commit, with a correct envelope
// (UUIDv7 id, name, version 1, UTC occurred_at, the request's X-Request-Id,
// the caller, the clinic, a gapless sequence) and a payload of ids, amounts
// and statuses only (no patient or member name, email, phone, date of birth
// or notes anywhere in the envelopes): creating a clinic emits only
// platform.clinic.created; crm.patient.updated names the changed fields and
// is not emitted when nothing changed; billing.invoice.paid follows the
// payment that brings the balance to zero and not an earlier one. A rejected
// (4xx) request, a rolled-back write (an appointment conflict, a payment
// exceeding the balance) and an idempotent replay emit nothing.
func TestEventsEmittedByActions(t *testing.T) {
	a := newAPI(t)
	runEventPipeline(t)
	ownerKey := a.newUser(email(t, "owner"))
	owner := userOf(t, ownerKey)
	var want []expectedEvent
	expect := func(r response, name string, payload map[string]any) {
		want = append(want, expectedEvent{name: name, requestID: requestID(r), userID: owner, payload: payload})
	}

	// The clinic: one event, no member.added for its owner.
	clinicName := "Clínica " + uuid.NewString()
	r := a.call("POST", "/v1/clinics", ownerKey, map[string]any{"name": clinicName, "currency": "EUR", "timezone": "Europe/Madrid"}).
		want(t, http.StatusCreated)
	clinicID := r.str("id")
	base := "/v1/clinics/" + clinicID
	expect(r, messaging.ClinicCreatedName, map[string]any{
		"clinic_id": clinicID, "name": clinicName, "currency": "EUR", "timezone": "Europe/Madrid", "owner_id": owner,
	})
	wantEmitted(t, clinicID, 1, "creating the clinic")
	waitLogged(t, clinicID, 1)

	// A member.
	practEmail := email(t, "practitioner")
	practKey := a.newUser(practEmail)
	practitioner := userOf(t, practKey)
	r = a.call("POST", base+"/members", ownerKey, map[string]any{"email": practEmail, "role": "practitioner"}).want(t, http.StatusCreated)
	expect(r, messaging.MemberAddedName, map[string]any{"user_id": practitioner, "role": "practitioner"})
	wantEmitted(t, clinicID, 2, "adding a member")

	// A patient, full of health data that no event may carry.
	secrets := []string{"Zaphyra", "Quillbottom", "600 111 222", "zaphyra.q@example.com", "1987-06-05",
		"penicillin", "699 000 111", "wheezing", "knee pain", "cough", "overcharged", practEmail, "Test " + practEmail}
	r = a.call("POST", base+"/patients", ownerKey, map[string]any{
		"first_name": "Zaphyra", "last_name": "Quillbottom", "date_of_birth": "1987-06-05",
		"email": "zaphyra.q@example.com", "phone": "+34 600 111 222", "notes": "Allergic to penicillin.",
	}).want(t, http.StatusCreated)
	patientID := r.str("id")
	expect(r, messaging.PatientCreatedName, map[string]any{"patient_id": patientID})
	wantEmitted(t, clinicID, 3, "creating a patient")

	// A rejected request emits nothing.
	a.call("POST", base+"/patients", ownerKey, map[string]any{"first_name": "Zaphyra"}).
		wantFieldError(t, "/last_name", "required")
	wantEmitted(t, clinicID, 3, "a rejected patient")

	// An update names the changed fields, not their values; an update that
	// changes nothing emits nothing.
	patch := map[string]any{"phone": "+34 699 000 111", "notes": "wheezing"}
	r = a.call("PATCH", base+"/patients/"+patientID, ownerKey, patch).want(t, http.StatusOK)
	expect(r, messaging.PatientUpdatedName, map[string]any{"patient_id": patientID, "fields": []string{"phone", "notes"}})
	wantEmitted(t, clinicID, 4, "updating a patient")
	a.call("PATCH", base+"/patients/"+patientID, ownerKey, patch).want(t, http.StatusOK)
	wantEmitted(t, clinicID, 4, "an update that changes nothing")

	// An appointment; a conflicting one is rolled back and emits nothing.
	starts, ends := "2031-03-04T09:00:00Z", "2031-03-04T09:30:00Z"
	r = a.call("POST", base+"/appointments", ownerKey, map[string]any{
		"patient_id": patientID, "practitioner_id": practitioner.String(), "starts_at": starts, "ends_at": ends, "notes": "knee pain",
	}).want(t, http.StatusCreated)
	appointmentID := r.str("id")
	expect(r, messaging.AppointmentBookedName, map[string]any{
		"appointment_id": appointmentID, "patient_id": patientID, "practitioner_id": practitioner, "starts_at": starts, "ends_at": ends,
	})
	wantEmitted(t, clinicID, 5, "booking")
	a.call("POST", base+"/appointments", ownerKey, map[string]any{
		"patient_id": patientID, "practitioner_id": practitioner.String(), "starts_at": "2031-03-04T09:15:00Z", "ends_at": "2031-03-04T09:45:00Z",
	}).wantProblem(t, http.StatusConflict, "appointment_conflict")
	wantEmitted(t, clinicID, 5, "a conflicting booking")

	r = a.call("POST", base+"/appointments/"+appointmentID+"/cancel", ownerKey, map[string]any{"reason": "cough"}).want(t, http.StatusOK)
	expect(r, messaging.AppointmentCancelledName, map[string]any{
		"appointment_id": appointmentID, "patient_id": patientID, "practitioner_id": practitioner, "starts_at": starts, "ends_at": ends,
	})
	wantEmitted(t, clinicID, 6, "cancelling")

	// An invoice of 100.00 + 21 % tax.
	r = a.call("POST", base+"/invoices", ownerKey, map[string]any{
		"patient_id": patientID, "appointment_id": appointmentID,
		"lines": []map[string]any{{"description": "Consulta", "quantity": 1, "unit_price": 10000, "tax_rate_bp": 2100}},
	}).want(t, http.StatusCreated)
	invoiceID := r.str("id")
	expect(r, messaging.InvoiceIssuedName, map[string]any{
		"invoice_id": invoiceID, "number": 1, "display_number": r.str("display_number"), "patient_id": patientID,
		"appointment_id": appointmentID, "currency": "EUR", "subtotal": 10000, "tax": 2100, "total": 12100,
	})
	if r.str("display_number") == "" {
		t.Fatalf("invoice without display_number: %s", r.raw)
	}
	wantEmitted(t, clinicID, 7, "issuing an invoice")

	// A part payment: payment.recorded only.
	r = a.call("POST", base+"/invoices/"+invoiceID+"/payments", ownerKey, map[string]any{"amount": 5000, "method": "card"}).
		want(t, http.StatusCreated)
	firstPayment := r.str("id")
	expect(r, messaging.PaymentRecordedName, map[string]any{
		"payment_id": firstPayment, "invoice_id": invoiceID, "amount": 5000, "currency": "EUR", "method": "card", "balance_due": 7100,
	})
	wantEmitted(t, clinicID, 8, "a part payment")

	// A payment exceeding the balance is rolled back.
	a.call("POST", base+"/invoices/"+invoiceID+"/payments", ownerKey, map[string]any{"amount": 7101, "method": "cash"}).
		wantProblem(t, http.StatusUnprocessableEntity, "payment_exceeds_balance")
	wantEmitted(t, clinicID, 8, "a payment exceeding the balance")

	// The payment that settles the invoice: payment.recorded, then invoice.paid.
	r = a.call("POST", base+"/invoices/"+invoiceID+"/payments", ownerKey, map[string]any{"amount": 7100, "method": "cash", "reference": "overcharged"}).
		want(t, http.StatusCreated)
	expect(r, messaging.PaymentRecordedName, map[string]any{
		"payment_id": r.str("id"), "invoice_id": invoiceID, "amount": 7100, "currency": "EUR", "method": "cash", "balance_due": 0,
	})
	expect(r, messaging.InvoicePaidName, map[string]any{
		"invoice_id": invoiceID, "total": 12100, "amount_paid": 12100, "amount_refunded": 0, "currency": "EUR",
	})
	wantEmitted(t, clinicID, 10, "the settling payment")

	r = a.call("POST", base+"/payments/"+firstPayment+"/refunds", ownerKey, map[string]any{"amount": 1000, "reason": "overcharged"}).
		want(t, http.StatusCreated)
	expect(r, messaging.RefundRecordedName, map[string]any{
		"refund_id": r.str("id"), "payment_id": firstPayment, "invoice_id": invoiceID, "amount": 1000, "currency": "EUR", "balance_due": 1000,
	})
	wantEmitted(t, clinicID, 11, "a refund")

	// An idempotent replay emits nothing new.
	key := uuid.NewString()
	body := map[string]any{"first_name": "Zaphyra", "last_name": "Quillbottom"}
	r = a.call("POST", base+"/patients", ownerKey, body, idemKey, key).want(t, http.StatusCreated)
	expect(r, messaging.PatientCreatedName, map[string]any{"patient_id": r.str("id")})
	wantEmitted(t, clinicID, 12, "a patient under an idempotency key")
	again := a.call("POST", base+"/patients", ownerKey, body, idemKey, key).want(t, http.StatusCreated)
	wantReplay(t, r, again)
	wantEmitted(t, clinicID, 12, "its replay")

	// The event log holds each event once, as emitted.
	waitLogged(t, clinicID, len(want))
	events, bodies := a.eventLog(ownerKey, clinicID, "", 100)
	if got := sequences(events); !slices.Equal(got, descending(len(want))) {
		t.Fatalf("logged sequences %v, want %v", got, descending(len(want)))
	}
	slices.Reverse(events)
	names := map[string]bool{}
	for i, e := range events {
		checkLoggedEvent(t, e, want[i], clinicID, int64(i+1))
		names[e.env.Event] = true
	}
	if len(names) != len(messaging.Names) {
		t.Errorf("the log holds %d distinct events, want all %d: %v", len(names), len(messaging.Names), names)
	}
	for _, b := range bodies {
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("the event log carries personal data %q: %s", s, b)
			}
		}
	}
}

// TestEventLogListing proves GET /v1/clinics/{id}/events: newest first,
// cursor pagination that visits every event once, the ?event= filter (also
// paginated), 400 for a filter naming no domain event, 404 for a user who is
// not a member of the clinic, and 401 without a key.
func TestEventLogListing(t *testing.T) {
	a := newAPI(t)
	runEventPipeline(t)
	ownerKey := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(ownerKey)
	var patients []string
	for i := range 5 {
		patients = append(patients, a.newPatient(ownerKey, clinicID, "Pat", fmt.Sprintf("No%d", i)).str("id"))
	}
	a.call("PATCH", "/v1/clinics/"+clinicID+"/patients/"+patients[0], ownerKey, map[string]any{"first_name": "Pam"}).want(t, http.StatusOK)
	a.newMember(ownerKey, clinicID, "reception")
	const total = 8 // clinic, 5 patients, an update, a member
	waitLogged(t, clinicID, total)

	all, _ := a.eventLog(ownerKey, clinicID, "", 100)
	if got := sequences(all); !slices.Equal(got, descending(total)) {
		t.Fatalf("sequences %v, want newest first %v", got, descending(total))
	}
	for _, limit := range []int{1, 3, 8} {
		paged, bodies := a.eventLog(ownerKey, clinicID, "", limit)
		if got := sequences(paged); !slices.Equal(got, descending(total)) {
			t.Errorf("limit %d: walked %v, want %v", limit, got, descending(total))
		}
		if want := (total + limit - 1) / limit; len(bodies) != want {
			t.Errorf("limit %d: %d pages, want %d", limit, len(bodies), want)
		}
	}

	created, _ := a.eventLog(ownerKey, clinicID, "event="+messaging.PatientCreatedName, 2)
	if len(created) != 5 {
		t.Fatalf("%d crm.patient.created events, want 5", len(created))
	}
	for i, e := range created {
		var p messaging.PatientCreated
		if err := json.Unmarshal(e.env.Payload, &p); err != nil || e.env.Event != messaging.PatientCreatedName || p.PatientID.String() != patients[4-i] {
			t.Errorf("filtered item %d: %s %s, want the creation of %s", i, e.env.Event, e.env.Payload, patients[4-i])
		}
	}
	updated, _ := a.eventLog(ownerKey, clinicID, "event="+messaging.PatientUpdatedName, 10)
	if len(updated) != 1 || updated[0].env.Sequence != 7 {
		t.Errorf("crm.patient.updated: %v, want the one at sequence 7", sequences(updated))
	}
	none, _ := a.eventLog(ownerKey, clinicID, "event="+messaging.InvoicePaidName, 10)
	if len(none) != 0 {
		t.Errorf("billing.invoice.paid: %v, want none", sequences(none))
	}

	for _, bad := range []string{"crm.patient", "crm.patient.deleted", "CRM.PATIENT.CREATED"} {
		a.call("GET", "/v1/clinics/"+clinicID+"/events?event="+url.QueryEscape(bad), ownerKey, nil).
			wantProblem(t, http.StatusBadRequest, "invalid_parameter")
	}
	a.call("GET", "/v1/clinics/"+clinicID+"/events?cursor=nope", ownerKey, nil).wantProblem(t, http.StatusBadRequest, "invalid_parameter")

	strangerKey := a.newUser(email(t, "stranger"))
	a.newClinic(strangerKey) // a member of another clinic
	a.call("GET", "/v1/clinics/"+clinicID+"/events", strangerKey, nil).wantProblem(t, http.StatusNotFound, "clinic_not_found")
	a.call("GET", "/v1/clinics/"+clinicID+"/events", "", nil).want(t, http.StatusUnauthorized)
}

// failKeysWithPrefix makes every insert of an idempotency key starting with
// prefix fail, until the test ends: the request's write and its events are
// then rolled back after its sequence numbers were taken.
func failKeysWithPrefix(t *testing.T, prefix string) {
	t.Helper()
	fn := "fail_keys_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	execSQL(t, `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$`)
	execSQL(t, `CREATE TRIGGER `+fn+` BEFORE INSERT ON idempotency_keys FOR EACH ROW
		WHEN (NEW.key LIKE '`+prefix+`%') EXECUTE FUNCTION `+fn+`()`)
	t.Cleanup(func() {
		execSQL(t, `DROP TRIGGER `+fn+` ON idempotency_keys`)
		execSQL(t, `DROP FUNCTION `+fn+`()`)
	})
}

// TestEventSequenceGapless proves a clinic's sequence numbers are 1..N with
// no gap and no repeat under 30 concurrent writes to one clinic through three
// API instances (as three processes), also when some of them fail: rejected
// by validation (422) or rolled back after their events took sequence numbers
// (the idempotency record's insert fails: 500). Every created patient has
// exactly one crm.patient.created event, and failed writes have none.
func TestEventSequenceGapless(t *testing.T) {
	a := newAPI(t)
	instances := []*api{a, newAPI(t), newAPI(t)}
	runEventPipeline(t)
	ownerKey := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(ownerKey)
	failPrefix := "fail-" + uuid.NewString()[:8] + "-"
	failKeysWithPrefix(t, failPrefix)

	const n = 30
	reqs := make([]*http.Request, n)
	for i := range reqs {
		body := map[string]any{"first_name": "Con", "last_name": fmt.Sprintf("Current%02d", i)}
		headers := []string{}
		switch {
		case i%6 == 1:
			delete(body, "last_name") // 422
		case i%6 == 4:
			headers = []string{idemKey, failPrefix + strconv.Itoa(i)} // 500 after emitting
		}
		reqs[i] = instances[i%3].request("POST", "/v1/clinics/"+clinicID+"/patients", ownerKey, body, headers...)
	}
	answers := concurrently(t, reqs)
	created := map[string]bool{}
	for i, r := range answers {
		want := http.StatusCreated
		switch {
		case i%6 == 1:
			want = http.StatusUnprocessableEntity
		case i%6 == 4:
			want = http.StatusInternalServerError
		}
		if r.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d: %s", i, r.StatusCode, want, r.raw)
		}
		if want == http.StatusCreated {
			created[r.str("id")] = true
		}
	}
	if len(created) != 20 {
		t.Fatalf("%d patients created, want 20", len(created))
	}
	total := 1 + len(created)
	wantEmitted(t, clinicID, total, "the concurrent writes")
	waitLogged(t, clinicID, total)
	events, _ := a.eventLog(ownerKey, clinicID, "", 7)
	if got := sequences(events); !slices.Equal(got, descending(total)) {
		t.Fatalf("sequences %v, want %v", got, descending(total))
	}
	seen := map[string]int{}
	for _, e := range events[:len(events)-1] {
		var p messaging.PatientCreated
		if err := json.Unmarshal(e.env.Payload, &p); err != nil || e.env.Event != messaging.PatientCreatedName {
			t.Fatalf("event %d: %s %s, want crm.patient.created", e.env.Sequence, e.env.Event, e.env.Payload)
		}
		seen[p.PatientID.String()]++
	}
	for id := range created {
		if seen[id] != 1 {
			t.Errorf("patient %s has %d crm.patient.created events, want 1", id, seen[id])
		}
	}
	if len(seen) != len(created) {
		t.Errorf("events name %d patients, %d were created", len(seen), len(created))
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// sseStream is an open GET …/events/stream, read on a goroutine.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent // closed when the stream ends
	ctx    context.Context
	cancel context.CancelFunc
}

// openStream opens the clinic's event stream, with query (such as
// "?last_event_id=4", or "") on its URL and headers as name, value pairs, and
// checks it is one; the stream is closed at the latest when the test ends.
func (a *api) openStream(key, clinicID, query string, headers ...string) *sseStream {
	a.t.Helper()
	req := a.request("GET", "/v1/clinics/"+clinicID+"/events/stream"+query, key, nil, headers...)
	ctx, cancel := context.WithCancel(req.Context()) // keeps the exchange for the contract check
	req = req.WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		a.t.Fatal(err)
	}
	s := &sseStream{t: a.t, resp: resp, events: make(chan sseEvent, 1000), ctx: ctx, cancel: cancel}
	a.t.Cleanup(s.close)
	x, _ := exchangeOf(req)
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		x.check(req, resp, raw, false)
		a.t.Fatalf("GET events/stream: status %d: %s", resp.StatusCode, raw)
	}
	// The body is a stream that lasts as long as the test reads it: the
	// contract check covers the status and headers.
	x.check(req, resp, nil, true)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		a.t.Errorf("stream Content-Type %q, want text/event-stream", ct)
	}
	go s.read()
	return s
}

// read parses the text/event-stream body into events: id:, event: and data:
// fields, a blank line ends an event, lines starting with ':' are comments.
func (s *sseStream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil || ev.id != "" || ev.event != "" {
				ev.data = strings.Join(data, "\n")
				select {
				case s.events <- ev:
				case <-s.ctx.Done():
					return
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// next returns the next event, failing the test if none comes in time.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(eventWait):
		s.t.Fatalf("no event on the stream within %v", eventWait)
		return sseEvent{}
	}
}

// wantNext checks the next event's id, name and data (its envelope, with
// sequence = id) and returns the envelope.
func (s *sseStream) wantNext(seq int64, name string) messaging.Envelope {
	s.t.Helper()
	ev := s.next()
	var env messaging.Envelope
	if err := json.Unmarshal([]byte(ev.data), &env); err != nil {
		s.t.Fatalf("event %q data %q: %v", ev.id, ev.data, err)
	}
	if ev.id != strconv.FormatInt(seq, 10) || ev.event != name || env.Sequence != seq || env.Event != name {
		s.t.Fatalf("got id %q event %q (data: sequence %d, %s), want id %d event %s", ev.id, ev.event, env.Sequence, env.Event, seq, name)
	}
	return env
}

// close ends the stream from the client's side.
func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// TestEventStream proves GET …/events/stream: with Last-Event-ID: 0 it sends
// the clinic's backlog in order, each event with id = its sequence, event =
// its name and its envelope as data, then new events live; a reconnection
// with Last-Event-ID: k (or ?last_event_id=k) resumes right after k; without
// one it sends only events newer than the connection; a malformed
// Last-Event-ID is 400 and a user who is not a member gets 404.
func TestEventStream(t *testing.T) {
	a := newAPI(t)
	runEventPipeline(t)
	ownerKey := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(ownerKey)
	other := a.newClinic(ownerKey) // its events must not show
	first := a.newPatient(ownerKey, clinicID, "Sse", "One").str("id")
	a.newPatient(ownerKey, other, "Sse", "Elsewhere")
	a.newPatient(ownerKey, clinicID, "Sse", "Two")
	waitLogged(t, clinicID, 3)

	s := a.openStream(ownerKey, clinicID, "", "Last-Event-ID", "0")
	env := s.wantNext(1, messaging.ClinicCreatedName)
	if env.ClinicID.String() != clinicID {
		t.Errorf("stream of %s sent an event of %s", clinicID, env.ClinicID)
	}
	env = s.wantNext(2, messaging.PatientCreatedName)
	if !strings.Contains(string(env.Payload), first) {
		t.Errorf("event 2 payload %s, want patient %s", env.Payload, first)
	}
	s.wantNext(3, messaging.PatientCreatedName)

	// Live: a change after the backlog arrives on the open stream.
	third := a.newPatient(ownerKey, clinicID, "Sse", "Three").str("id")
	env = s.wantNext(4, messaging.PatientCreatedName)
	if !strings.Contains(string(env.Payload), third) {
		t.Errorf("live event payload %s, want patient %s", env.Payload, third)
	}
	a.call("PATCH", "/v1/clinics/"+clinicID+"/patients/"+third, ownerKey, map[string]any{"notes": "x"}).want(t, http.StatusOK)
	s.wantNext(5, messaging.PatientUpdatedName)
	s.close()

	// Resuming after 3 sends 4 and 5, then live events.
	resumed := a.openStream(ownerKey, clinicID, "", "Last-Event-ID", "3")
	resumed.wantNext(4, messaging.PatientCreatedName)
	resumed.wantNext(5, messaging.PatientUpdatedName)
	byQuery := a.openStream(ownerKey, clinicID, "?last_event_id=4")
	byQuery.wantNext(5, messaging.PatientUpdatedName)

	// Without Last-Event-ID: only what happens after the connection.
	fresh := a.openStream(ownerKey, clinicID, "")
	a.call("POST", "/v1/clinics/"+clinicID+"/members", ownerKey, map[string]any{"email": email(t, "late"), "role": "billing"}).
		want(t, http.StatusCreated)
	fresh.wantNext(6, messaging.MemberAddedName)
	resumed.wantNext(6, messaging.MemberAddedName)
	byQuery.wantNext(6, messaging.MemberAddedName)

	for _, bad := range []string{"abc", "-1", "1.5", "0x10"} {
		a.call("GET", "/v1/clinics/"+clinicID+"/events/stream", ownerKey, nil, "Last-Event-ID", bad).
			wantProblem(t, http.StatusBadRequest, "invalid_parameter")
	}
	strangerKey := a.newUser(email(t, "stranger"))
	a.call("GET", "/v1/clinics/"+clinicID+"/events/stream", strangerKey, nil, "Last-Event-ID", "0").
		wantProblem(t, http.StatusNotFound, "clinic_not_found")
	a.call("GET", "/v1/clinics/"+clinicID+"/events/stream", "", nil).want(t, http.StatusUnauthorized)
}

// emitDirectly commits one crm.patient.created event of the clinic in tx, as
// a write of another process would: the executor's emitter with the clinic's
// next sequence number.
func emitDirectly(t *testing.T, tx pgx.Tx, clinicID string, userID uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	emitter := messaging.NewEmitter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := []messaging.Pending{{ClinicID: uuid.MustParse(clinicID), Event: messaging.PatientCreated{PatientID: uuid.New()},
		Metadata: messaging.Metadata{RequestID: "req-" + uuid.NewString(), UserID: userID}}}
	if err := emitter.Emit(ctx, tx, events, store.New(tx).NextEventSequences); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEventStreamOutOfOrderLogging proves the stream sends every event even
// when the event log receives a clinic's events out of sequence order, as it
// does when two processes write to one clinic: the outbox is read in
// transaction-id order, so a transaction that began first but took the next
// sequence number second is forwarded, and logged, first. Here the logging of
// the earlier sequence number is also slowed down (a trigger sleeps 1s), so
// the stream reads the log between the two.
func TestEventStreamOutOfOrderLogging(t *testing.T) {
	a := newAPI(t)
	runEventPipeline(t)
	ownerKey := a.newUser(email(t, "owner"))
	owner := userOf(t, ownerKey)
	clinicID := a.newClinic(ownerKey)
	waitLogged(t, clinicID, 1)
	s := a.openStream(ownerKey, clinicID, "", "Last-Event-ID", "0")
	s.wantNext(1, messaging.ClinicCreatedName)

	fn := "slow_log_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	execSQL(t, `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$`)
	execSQL(t, `CREATE TRIGGER `+fn+` BEFORE INSERT ON clinic_events FOR EACH ROW
		WHEN (NEW.clinic_id = '`+clinicID+`' AND NEW.sequence = 2) EXECUTE FUNCTION `+fn+`()`)
	t.Cleanup(func() {
		execSQL(t, `DROP TRIGGER `+fn+` ON clinic_events`)
		execSQL(t, `DROP FUNCTION `+fn+`()`)
	})

	ctx := context.Background()
	pool := dbtest.Pool(t)
	first, err := pool.Begin(ctx) // begins first, takes its sequence number second
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Rollback(ctx) }()
	if _, err := first.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	second, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Rollback(ctx) }()
	if _, err := second.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	emitDirectly(t, second, clinicID, owner) // sequence 2
	emitDirectly(t, first, clinicID, owner)  // sequence 3
	waitLogged(t, clinicID, 3)
	var order []int64
	rows, err := pool.Query(ctx, `SELECT sequence FROM clinic_events WHERE clinic_id = $1 ORDER BY position`, clinicID)
	if err == nil {
		order, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the event log received sequences in the order %v", order)

	// Both are in the log: the stream's feed polls it every 100ms.
	const catchUp = 5 * time.Second
	got := map[string]bool{}
	deadline := time.After(catchUp)
	for !got["2"] || !got["3"] {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("the event stream ended")
			}
			got[ev.id] = true
		case <-deadline:
			t.Fatalf("within %v of both being logged (in the order %v) the stream sent ids %v, want 2 and 3",
				catchUp, order, slices.Sorted(maps.Keys(got)))
		}
	}
}
