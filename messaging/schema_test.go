package messaging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/aura-clinic/aura/messaging"
)

// The event contract's documents, from this package's directory.
const (
	schemaDir = "../docs/events"
	eventsDoc = "../docs/EVENTS.md"
	// schemaBase is the $id of every schema but its file name.
	schemaBase = "https://aura.example/schemas/events/"
)

// eventSchemas are the compiled JSON Schemas of docs/events by file name
// without ".schema.json": "envelope" and the ten event names.
//
// It depends on nothing but the files, so that tests elsewhere can validate
// the events Aura really emits against the same schemas.
type eventSchemas map[string]*jsonschema.Schema

// loadEventSchemas compiles every *.schema.json of dir, each registered
// under its $id so that the envelope's $refs to the payload schemas resolve
// to the files (nothing is fetched), with format assertions (uuid,
// date-time) on.
func loadEventSchemas(dir string) (eventSchemas, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.schema.json in %s", dir)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ids := map[string]string{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if want := schemaBase + filepath.Base(file); id != want {
			return nil, fmt.Errorf("%s: $id is %q, want %q", file, id, want)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		ids[strings.TrimSuffix(filepath.Base(file), ".schema.json")] = id
	}
	schemas := eventSchemas{}
	for name, id := range ids {
		if schemas[name], err = c.Compile(id); err != nil {
			return nil, fmt.Errorf("compile %s: %w", id, err)
		}
	}
	return schemas, nil
}

// validate checks a JSON document against the schema called name.
func (s eventSchemas) validate(name string, doc []byte) error {
	schema, ok := s[name]
	if !ok {
		return fmt.Errorf("no schema %s.schema.json", name)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return schema.Validate(v)
}

// validateEnvelope checks an event as it goes over the wire: the envelope,
// and its payload against its event's schema.
func (s eventSchemas) validateEnvelope(env messaging.Envelope) error {
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return s.validate("envelope", raw)
}

var loadSchemas = sync.OnceValues(func() (eventSchemas, error) { return loadEventSchemas(schemaDir) })

func schemas(t *testing.T) eventSchemas {
	t.Helper()
	s, err := loadSchemas()
	if err != nil {
		t.Fatalf("load the event schemas: %v", err)
	}
	return s
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// representative is, for each event, values of its Go type as producers
// make them, covering the optional members both ways.
func representative() map[string][]messaging.Event {
	clinic, patient, practitioner, appointment := newID(), newID(), newID(), newID()
	invoice, payment := newID(), newID()
	starts := time.Date(2026, 3, 4, 8, 30, 0, 0, time.UTC)
	return map[string][]messaging.Event{
		messaging.ClinicCreatedName: {messaging.ClinicCreated{
			ClinicID: clinic, Name: "Clínica Aurora Madrid", Currency: "EUR", Timezone: "Europe/Madrid", OwnerID: newID()}},
		messaging.MemberAddedName: {
			messaging.MemberAdded{UserID: newID(), Role: "practitioner"},
			messaging.MemberAdded{UserID: newID(), Role: "owner"},
			messaging.MemberAdded{UserID: newID(), Role: "billing"},
		},
		messaging.PatientCreatedName: {messaging.PatientCreated{PatientID: patient}},
		messaging.PatientUpdatedName: {
			messaging.PatientUpdated{PatientID: patient, Fields: []string{"phone"}},
			messaging.PatientUpdated{PatientID: patient, Fields: []string{
				"first_name", "last_name", "date_of_birth", "email", "phone", "notes"}},
		},
		messaging.AppointmentBookedName: {messaging.AppointmentBooked{
			AppointmentID: appointment, PatientID: patient, PractitionerID: practitioner,
			StartsAt: starts, EndsAt: starts.Add(30 * time.Minute)}},
		messaging.AppointmentCancelledName: {messaging.AppointmentCancelled{
			AppointmentID: appointment, PatientID: patient, PractitionerID: practitioner,
			StartsAt: starts.Add(123456 * time.Microsecond), EndsAt: starts.Add(time.Hour)}},
		messaging.InvoiceIssuedName: {
			messaging.InvoiceIssued{InvoiceID: invoice, Number: 1, DisplayNumber: "2026-000001", PatientID: patient,
				AppointmentID: nil, Currency: "EUR", Subtotal: 6000, Tax: 1260, Total: 7260},
			messaging.InvoiceIssued{InvoiceID: newID(), Number: 1234567, DisplayNumber: "2026-1234567", PatientID: patient,
				AppointmentID: &appointment, Currency: "JPY", Subtotal: 0, Tax: 0, Total: 0},
		},
		messaging.PaymentRecordedName: {
			messaging.PaymentRecorded{PaymentID: payment, InvoiceID: invoice, Amount: 7260, Currency: "EUR", Method: "card", BalanceDue: 0},
			messaging.PaymentRecorded{PaymentID: newID(), InvoiceID: invoice, Amount: 1, Currency: "EUR", Method: "cash", BalanceDue: 7259},
			messaging.PaymentRecorded{PaymentID: newID(), InvoiceID: invoice, Amount: 500, Currency: "EUR", Method: "transfer", BalanceDue: 6760},
		},
		messaging.RefundRecordedName: {messaging.RefundRecorded{
			RefundID: newID(), PaymentID: payment, InvoiceID: invoice, Amount: 2000, Currency: "EUR", BalanceDue: 2000}},
		messaging.InvoicePaidName: {messaging.InvoicePaid{
			InvoiceID: invoice, Total: 7260, AmountPaid: 9260, AmountRefunded: 2000, Currency: "EUR"}},
	}
}

// TestSchemaFiles checks that the schemas and EVENTS.md cover exactly the
// events of messaging.Names.
func TestSchemaFiles(t *testing.T) {
	s := schemas(t)
	want := append([]string{"envelope"}, messaging.Names...)
	var got []string
	for name := range s {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("schema files in %s: %v, want envelope and messaging.Names: %v", schemaDir, got, want)
	}

	for _, name := range want {
		var doc struct {
			Schema      string `json:"$schema"`
			Title       string `json:"title"`
			Description string `json:"description"`
			Properties  struct {
				Event struct {
					Enum []string `json:"enum"`
				} `json:"event"`
			} `json:"properties"`
		}
		raw, err := os.ReadFile(filepath.Join(schemaDir, name+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" || doc.Title == "" || doc.Description == "" {
			t.Errorf("%s.schema.json: want $schema draft 2020-12, a title and a description", name)
		}
		if name == "envelope" && !slices.Equal(doc.Properties.Event.Enum, messaging.Names) {
			t.Errorf("envelope's event enum = %v, want messaging.Names %v", doc.Properties.Event.Enum, messaging.Names)
		}
	}

	events := readEventsDoc(t)
	for _, name := range messaging.Names {
		if !strings.Contains(events, "\n### `"+name+"`\n") {
			t.Errorf("%s has no section ### `%s`", eventsDoc, name)
		}
		if !strings.Contains(events, "](events/"+name+".schema.json)") {
			t.Errorf("%s does not link events/%s.schema.json", eventsDoc, name)
		}
	}
	if cases := representative(); len(cases) != len(messaging.Names) {
		t.Errorf("representative() covers %d events, want the %d of messaging.Names", len(cases), len(messaging.Names))
	}
}

// TestSchemaValidEvents checks that every event type's JSON, as the Go
// types encode it, and its envelope from NewEnvelope, match the schemas.
func TestSchemaValidEvents(t *testing.T) {
	s := schemas(t)
	cases := representative()
	// NewEnvelope must turn any time into UTC, as the schema demands.
	madrid := time.FixedZone("CET", 3600)
	for i, name := range messaging.Names {
		events, ok := cases[name]
		if !ok {
			t.Errorf("no representative %s", name)
			continue
		}
		for _, e := range events {
			if e.EventName() != name {
				t.Fatalf("%T.EventName() = %s, want %s", e, e.EventName(), name)
			}
			payload, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.validate(name, payload); err != nil {
				t.Errorf("%s payload %s:\n%v", name, payload, err)
			}
			m := messaging.Metadata{RequestID: "019cadd3-7975-7424-b813-c529b6d801b2", UserID: newID()}
			env, err := messaging.NewEnvelope(m, newID(), int64(i+1), e, time.Now().In(madrid))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.validateEnvelope(env); err != nil {
				raw, _ := json.Marshal(env)
				t.Errorf("%s envelope %s:\n%v", name, raw, err)
			}
		}
	}
}

// TestSchemaExamples checks the examples in the schemas and every example
// envelope in EVENTS.md, and that each event has one there.
func TestSchemaExamples(t *testing.T) {
	s := schemas(t)
	for name := range s {
		raw, err := os.ReadFile(filepath.Join(schemaDir, name+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Examples []json.RawMessage `json:"examples"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Examples) == 0 {
			t.Errorf("%s.schema.json has no examples", name)
		}
		for _, ex := range doc.Examples {
			if err := s.validate(name, ex); err != nil {
				t.Errorf("%s.schema.json example %s:\n%v", name, ex, err)
			}
		}
	}

	documented := map[string]bool{}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(readEventsDoc(t), -1)
	for _, b := range blocks {
		var probe struct {
			EventID *string         `json:"event_id"`
			Event   string          `json:"event"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal([]byte(b[1]), &probe); err != nil {
			t.Errorf("%s: a json block does not parse: %v\n%s", eventsDoc, err, b[1])
			continue
		}
		if probe.EventID == nil || probe.Payload == nil {
			continue // not an envelope, e.g. the CloudEvents example
		}
		if err := s.validate("envelope", []byte(b[1])); err != nil {
			t.Errorf("%s: example %s:\n%v", eventsDoc, probe.Event, err)
		}
		documented[probe.Event] = true
	}
	for _, name := range messaging.Names {
		if !documented[name] {
			t.Errorf("%s has no example envelope of %s", eventsDoc, name)
		}
	}
}

// TestSchemaRejectsInvalid checks that the schemas are strict: each member
// is required, no other member is allowed, amounts are integers, and the
// closed value sets, formats and envelope rules hold.
func TestSchemaRejectsInvalid(t *testing.T) {
	s := schemas(t)
	amounts := map[string]bool{"number": true, "subtotal": true, "tax": true, "total": true, "amount": true,
		"balance_due": true, "amount_paid": true, "amount_refunded": true}
	for name, events := range representative() {
		valid, err := json.Marshal(events[0])
		if err != nil {
			t.Fatal(err)
		}
		members := decodeObject(t, valid)
		for member := range members {
			doc := decodeObject(t, valid)
			delete(doc, member)
			rejects(t, s, name, "without "+member, doc)

			if amounts[member] {
				doc := decodeObject(t, valid)
				doc[member] = json.Number("12.5")
				rejects(t, s, name, member+" as a fraction", doc)
				doc[member] = "7260"
				rejects(t, s, name, member+" as a string", doc)
				doc[member] = json.Number("-1")
				rejects(t, s, name, member+" negative", doc)
			}
			if strings.HasSuffix(member, "_id") {
				doc := decodeObject(t, valid)
				doc[member] = "not-a-uuid"
				rejects(t, s, name, member+" not a uuid", doc)
				doc[member] = nil
				if name != messaging.InvoiceIssuedName || member != "appointment_id" {
					rejects(t, s, name, member+" null", doc)
				}
			}
		}
		doc := decodeObject(t, valid)
		doc["patient_name"] = "Lucía Fernández"
		rejects(t, s, name, "with an extra member", doc)
	}

	// Closed value sets and formats.
	invalid := []struct {
		event, member string
		value         any
	}{
		{messaging.MemberAddedName, "role", "superuser"},
		{messaging.MemberAddedName, "role", "Owner"},
		{messaging.PaymentRecordedName, "method", "cheque"},
		{messaging.PaymentRecordedName, "amount", json.Number("0")},
		{messaging.PatientUpdatedName, "fields", []any{}},
		{messaging.PatientUpdatedName, "fields", []any{"ssn"}},
		{messaging.PatientUpdatedName, "fields", []any{"phone", "phone"}},
		{messaging.PatientUpdatedName, "fields", nil},
		{messaging.AppointmentBookedName, "starts_at", "2026-03-04T09:30:00+01:00"},
		{messaging.AppointmentBookedName, "starts_at", "2026-03-04 08:30:00"},
		{messaging.InvoiceIssuedName, "currency", "eur"},
		{messaging.InvoiceIssuedName, "number", json.Number("0")},
		{messaging.InvoiceIssuedName, "display_number", "F-1"},
	}
	cases := representative()
	for _, c := range invalid {
		valid, err := json.Marshal(cases[c.event][0])
		if err != nil {
			t.Fatal(err)
		}
		doc := decodeObject(t, valid)
		doc[c.member] = c.value
		rejects(t, s, c.event, fmt.Sprintf("%s = %v", c.member, c.value), doc)
	}

	// The envelope.
	env, err := messaging.NewEnvelope(messaging.Metadata{RequestID: "req-1", UserID: newID()}, newID(), 1,
		cases[messaging.PatientCreatedName][0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.validateEnvelope(env); err != nil {
		t.Fatalf("valid envelope: %v", err)
	}
	valid, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for member := range decodeObject(t, valid) {
		doc := decodeObject(t, valid)
		delete(doc, member)
		rejects(t, s, "envelope", "without "+member, doc)
	}
	other, err := json.Marshal(cases[messaging.ClinicCreatedName][0])
	if err != nil {
		t.Fatal(err)
	}
	envelopeInvalid := []struct {
		member string
		value  any
	}{
		{"extra", "x"},
		{"event_id", uuid.NewString()}, // a UUIDv4
		{"event", "crm.patient.deleted"},
		{"version", json.Number("2")},
		{"occurred_at", "2026-03-02T10:14:03.521+01:00"},
		{"sequence", json.Number("0")},
		{"sequence", json.Number("1.5")},
		{"request_id", ""},
		{"request_id", "has spaces"},
		{"clinic_id", "0000"},
		{"payload", decodeObject(t, other)}, // another event's payload
		{"payload", map[string]any{"patient_id": newID().String(), "first_name": "Lucía"}},
	}
	for _, c := range envelopeInvalid {
		doc := decodeObject(t, valid)
		doc[c.member] = c.value
		rejects(t, s, "envelope", fmt.Sprintf("%s = %v", c.member, c.value), doc)
	}
}

// rejects fails the test if the schema called name accepts doc.
func rejects(t *testing.T, s eventSchemas, name, what string, doc map[string]any) {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.validate(name, raw); err == nil {
		t.Errorf("%s schema accepts a payload %s: %s", name, what, raw)
	}
}

func decodeObject(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func readEventsDoc(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(eventsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
