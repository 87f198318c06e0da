package crm_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/fault/faulttest"
)

// The ids and slot of a valid booking: 10:00–10:30 in Madrid (UTC+1 in
// December) is 09:00–09:30 UTC.
var (
	patientID      = uuid.MustParse("01a23cb1-af57-7762-a3fc-20d28cafa084")
	practitionerID = uuid.MustParse("01a23cb1-af57-7762-a3fc-20d28cafa085")
	slotStart      = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
)

// booking returns a valid booking, changed by edit.
func booking(edit func(b *crm.Booking)) crm.Booking {
	b := crm.Booking{
		PatientID:      patientID.String(),
		PractitionerID: practitionerID.String(),
		StartsAt:       "2026-12-03T10:00:00+01:00",
		EndsAt:         "2026-12-03T10:30:00+01:00",
	}
	if edit != nil {
		edit(&b)
	}
	return b
}

// TestNewAppointmentValid proves a valid booking becomes a booked
// appointment with the parsed ids, UTC times, trimmed notes and server-set
// id, clinic and timestamps.
func TestNewAppointmentValid(t *testing.T) {
	clinicID := uuid.New()
	a, err := crm.NewAppointment(clinicID, booking(func(b *crm.Booking) { b.Notes = str("  first visit \n") }), now)
	if err != nil {
		t.Fatal(err)
	}
	want := crm.Appointment{
		ID: a.ID, ClinicID: clinicID, PatientID: patientID, PractitionerID: practitionerID,
		StartsAt: slotStart, EndsAt: slotStart.Add(30 * time.Minute), Status: crm.StatusBooked,
		Notes: str("first visit"), CreatedAt: now, UpdatedAt: now,
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("appointment = %+v\nwant          %+v", a, want)
	}
	if a.ID.Version() != 7 {
		t.Errorf("id %v is not a UUIDv7", a.ID)
	}
}

// TestNewAppointmentValidation proves each rule of a booking, with the JSON
// Pointer and code of every invalid member, and the zero appointment on error.
func TestNewAppointmentValidation(t *testing.T) {
	const start = "2026-12-03T10:00:00Z"
	times := func(starts, ends string) func(b *crm.Booking) {
		return func(b *crm.Booking) { b.StartsAt, b.EndsAt = starts, ends }
	}
	notes := func(s string) func(b *crm.Booking) { return func(b *crm.Booking) { b.Notes = &s } }
	tests := []struct {
		name string
		edit func(b *crm.Booking)
		want map[string]string // pointer → code; nil for a valid booking
	}{
		{"valid", nil, nil},
		{"upper-case ids", func(b *crm.Booking) {
			b.PatientID, b.PractitionerID = strings.ToUpper(b.PatientID), strings.ToUpper(b.PractitionerID)
		}, nil},

		{"no patient", func(b *crm.Booking) { b.PatientID = "" }, map[string]string{"/patient_id": "required"}},
		{"malformed patient", func(b *crm.Booking) { b.PatientID = "42" }, map[string]string{"/patient_id": "invalid_id"}},
		{"patient id without hyphens", func(b *crm.Booking) { b.PatientID = strings.ReplaceAll(patientID.String(), "-", "") },
			map[string]string{"/patient_id": "invalid_id"}},
		{"patient id in braces", func(b *crm.Booking) { b.PatientID = "{" + patientID.String() + "}" },
			map[string]string{"/patient_id": "invalid_id"}},
		{"patient id as a URN", func(b *crm.Booking) { b.PatientID = "urn:uuid:" + patientID.String() },
			map[string]string{"/patient_id": "invalid_id"}},
		{"patient id with a non-hex digit", func(b *crm.Booking) { b.PatientID = "01a23cb1-af57-7762-a3fc-20d28cafa08g" },
			map[string]string{"/patient_id": "invalid_id"}},
		{"no practitioner", func(b *crm.Booking) { b.PractitionerID = "" }, map[string]string{"/practitioner_id": "required"}},
		{"malformed practitioner", func(b *crm.Booking) { b.PractitionerID = "dr-who" }, map[string]string{"/practitioner_id": "invalid_id"}},

		{"no start", times("", start), map[string]string{"/starts_at": "required"}},
		{"no end", times(start, ""), map[string]string{"/ends_at": "required"}},
		{"start with a space for T", times("2026-12-03 10:00:00Z", "2026-12-03T11:00:00Z"), map[string]string{"/starts_at": "invalid_time"}},
		{"start without a zone", times("2026-12-03T10:00:00", "2026-12-03T11:00:00Z"), map[string]string{"/starts_at": "invalid_time"}},
		{"date only", times(start, "2026-12-04"), map[string]string{"/ends_at": "invalid_time"}},
		{"impossible date", times("2026-02-30T10:00:00Z", "2026-03-01T10:00:00Z"), map[string]string{"/starts_at": "invalid_time"}},
		{"malformed start hides the order check", times("soon", "2026-12-03T09:00:00Z"), map[string]string{"/starts_at": "invalid_time"}},

		{"ends when it starts", times(start, start), map[string]string{"/ends_at": "not_after_start"}},
		{"ends before it starts", times(start, "2026-12-03T09:59:59Z"), map[string]string{"/ends_at": "not_after_start"}},
		{"same instant in two zones", times("2026-12-03T11:00:00+01:00", start), map[string]string{"/ends_at": "not_after_start"}},
		{"later by less than a microsecond", times("2026-12-03T10:00:00.0000001Z", "2026-12-03T10:00:00.0000009Z"),
			map[string]string{"/ends_at": "not_after_start"}},
		{"one microsecond long", times(start, "2026-12-03T10:00:00.000001Z"), nil},
		{"24 hours long", times(start, "2026-12-04T10:00:00Z"), nil},
		{"24 hours across a zone change", times("2026-12-03T10:00:00+01:00", "2026-12-04T09:00:00Z"), nil},
		{"24 hours and a microsecond", times(start, "2026-12-04T10:00:00.000001Z"), map[string]string{"/ends_at": "too_long"}},
		{"25 hours", times(start, "2026-12-04T11:00:00Z"), map[string]string{"/ends_at": "too_long"}},

		{"notes of 2000", notes(strings.Repeat("ñ", 2000)), nil},
		{"notes of 2001", notes(strings.Repeat("n", 2001)), map[string]string{"/notes": "too_long"}},
		{"notes padded to 2001", notes(" " + strings.Repeat("n", 2000) + " "), nil},
		{"notes with NUL", notes("a\x00b"), map[string]string{"/notes": "invalid_characters"}},
		{"notes not UTF-8", notes("a\xffb"), map[string]string{"/notes": "invalid_characters"}},

		{"nothing at all", func(b *crm.Booking) { *b = crm.Booking{} }, map[string]string{
			"/patient_id": "required", "/practitioner_id": "required", "/starts_at": "required", "/ends_at": "required"}},
		{"everything wrong", func(b *crm.Booking) {
			*b = crm.Booking{PatientID: "x", PractitionerID: "y", StartsAt: "z", EndsAt: start, Notes: str(strings.Repeat("n", 2001))}
		}, map[string]string{"/patient_id": "invalid_id", "/practitioner_id": "invalid_id", "/starts_at": "invalid_time", "/notes": "too_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := crm.NewAppointment(uuid.New(), booking(tt.edit), now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("NewAppointment: %v", err)
				}
				return
			}
			if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("field errors = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(a, crm.Appointment{}) {
				t.Errorf("appointment = %+v on error, want the zero appointment", a)
			}
		})
	}
}

// TestNewAppointmentNormalisesTimes proves times are kept as the database
// stores them, UTC at microsecond precision (truncated, not rounded), and
// that blank notes are no notes.
func TestNewAppointmentNormalisesTimes(t *testing.T) {
	a, err := crm.NewAppointment(uuid.New(), booking(func(b *crm.Booking) {
		b.StartsAt = "2026-12-03T10:00:00.123456789+01:00"
		b.EndsAt = "2026-12-03T05:30:00.9999999-05:00"
		b.Notes = str(" \t\n ")
	}), now)
	if err != nil {
		t.Fatal(err)
	}
	wantStart := time.Date(2026, 12, 3, 9, 0, 0, 123456000, time.UTC)
	wantEnd := time.Date(2026, 12, 3, 10, 30, 0, 999999000, time.UTC)
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{{"starts_at", a.StartsAt, wantStart}, {"ends_at", a.EndsAt, wantEnd}} {
		if tt.got != tt.want { // == also compares the location: it must be UTC
			t.Errorf("%s = %v (%v), want %v", tt.name, tt.got, tt.got.Location(), tt.want)
		}
	}
	if a.Notes != nil {
		t.Errorf("blank notes = %q, want nil", *a.Notes)
	}
}

// appointment is an appointment of the practitioner at [from, to), given
// as minutes after 10:00 UTC, with status.
func appointment(practitioner uuid.UUID, from, to int, status crm.AppointmentStatus) crm.Appointment {
	at := func(minutes int) time.Time {
		return time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute)
	}
	return crm.Appointment{ID: uuid.New(), PractitionerID: practitioner, StartsAt: at(from), EndsAt: at(to), Status: status}
}

// TestOverlaps proves the double-booking rule: same practitioner, neither
// cancelled, and intersecting half-open intervals, so back-to-back slots do
// not overlap. It holds both ways round.
func TestOverlaps(t *testing.T) {
	p, other := uuid.New(), uuid.New()
	a := appointment(p, 0, 60, crm.StatusBooked) // 10:00–11:00
	tests := []struct {
		name string
		b    crm.Appointment
		want bool
	}{
		{"same slot", appointment(p, 0, 60, crm.StatusBooked), true},
		{"inside", appointment(p, 15, 45, crm.StatusBooked), true},
		{"around", appointment(p, -30, 90, crm.StatusBooked), true},
		{"over the start", appointment(p, -30, 30, crm.StatusBooked), true},
		{"over the end", appointment(p, 30, 90, crm.StatusBooked), true},
		{"one minute over the end", appointment(p, 59, 120, crm.StatusBooked), true},
		{"back to back after", appointment(p, 60, 120, crm.StatusBooked), false},
		{"back to back before", appointment(p, -60, 0, crm.StatusBooked), false},
		{"apart", appointment(p, 120, 180, crm.StatusBooked), false},
		{"other practitioner, same slot", appointment(other, 0, 60, crm.StatusBooked), false},
		{"cancelled, same slot", appointment(p, 0, 60, crm.StatusCancelled), false},
		{"completed, same slot", appointment(p, 0, 60, crm.StatusCompleted), true},
	}
	for _, tt := range tests {
		if got := a.Overlaps(tt.b); got != tt.want {
			t.Errorf("%s: a.Overlaps(b) = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.b.Overlaps(a); got != tt.want {
			t.Errorf("%s: b.Overlaps(a) = %v, want %v", tt.name, got, tt.want)
		}
	}
	cancelled := appointment(p, 0, 60, crm.StatusCancelled)
	if cancelled.Overlaps(appointment(p, 0, 60, crm.StatusBooked)) {
		t.Errorf("a cancelled appointment overlaps a booked one in its slot")
	}
}

// TestCheckFree proves CheckFree answers appointment_conflict when any other
// appointment overlaps, and ignores back-to-back, cancelled, other
// practitioners' appointments and the appointment itself.
func TestCheckFree(t *testing.T) {
	p := uuid.New()
	a := appointment(p, 0, 60, crm.StatusBooked)
	free := []crm.Appointment{
		appointment(p, 60, 90, crm.StatusBooked),
		appointment(p, -30, 0, crm.StatusCompleted),
		appointment(p, 0, 60, crm.StatusCancelled),
		appointment(uuid.New(), 0, 60, crm.StatusBooked),
		a, // itself
	}
	if err := a.CheckFree(nil); err != nil {
		t.Errorf("CheckFree(nil) = %v", err)
	}
	if err := a.CheckFree(free); err != nil {
		t.Errorf("CheckFree(no overlap) = %v", err)
	}
	busy := append(free, appointment(p, 30, 45, crm.StatusBooked))
	err := a.CheckFree(busy)
	if !fault.HasCode(err, crm.ErrAppointmentConflict) {
		t.Fatalf("CheckFree(overlap) = %v, want appointment_conflict", err)
	}
	if k := fault.From(err).Code.Kind(); k != fault.Conflict {
		t.Errorf("appointment_conflict is of kind %v, want conflict (409)", k)
	}
}

// TestTransitions proves only booked appointments move, to cancelled (with
// its reason) or completed, setting UpdatedAt; any other move is
// invalid_transition and changes nothing.
func TestTransitions(t *testing.T) {
	later := now.Add(time.Hour)
	cancel := func(a *crm.Appointment) error { return a.Cancel("  patient is ill ", later) }
	complete := func(a *crm.Appointment) error { return a.Complete(later) }
	tests := []struct {
		from   crm.AppointmentStatus
		action string
		do     func(a *crm.Appointment) error
		to     crm.AppointmentStatus // "" when the move is illegal
	}{
		{crm.StatusBooked, "cancel", cancel, crm.StatusCancelled},
		{crm.StatusBooked, "complete", complete, crm.StatusCompleted},
		{crm.StatusCancelled, "cancel", cancel, ""},
		{crm.StatusCancelled, "complete", complete, ""},
		{crm.StatusCompleted, "cancel", cancel, ""},
		{crm.StatusCompleted, "complete", complete, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+" "+tt.action, func(t *testing.T) {
			a := appointment(uuid.New(), 0, 60, tt.from)
			a.CreatedAt, a.UpdatedAt = now, now
			if tt.from == crm.StatusCancelled {
				a.CancelReason = str("earlier reason")
			}
			before := a
			err := tt.do(&a)
			if tt.to == "" {
				if !fault.HasCode(err, crm.ErrInvalidTransition) {
					t.Fatalf("err = %v, want invalid_transition", err)
				}
				if fault.From(err).Code.Kind() != fault.Unprocessable {
					t.Errorf("invalid_transition is not unprocessable (422)")
				}
				if !reflect.DeepEqual(a, before) {
					t.Errorf("after a refused move:\n got %+v\nwant %+v", a, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			want := before
			want.Status, want.UpdatedAt = tt.to, later
			if tt.to == crm.StatusCancelled {
				want.CancelReason = str("patient is ill")
			}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("after %s:\n got %+v\nwant %+v", tt.action, a, want)
			}
		})
	}
}

// TestCancelReason proves a cancellation needs a reason of 1 to 500
// characters of storable text, and a refused one leaves the appointment booked.
func TestCancelReason(t *testing.T) {
	tests := []struct {
		reason string
		want   string // code at /reason; "" for a valid reason
	}{
		{"x", ""},
		{strings.Repeat("ñ", 500), ""},
		{"", "required"},
		{" \t ", "required"},
		{strings.Repeat("r", 501), "too_long"},
		{"a\x00b", "invalid_characters"},
	}
	for _, tt := range tests {
		a := appointment(uuid.New(), 0, 60, crm.StatusBooked)
		before := a
		err := a.Cancel(tt.reason, now)
		if tt.want == "" {
			if err != nil || a.Status != crm.StatusCancelled || a.CancelReason == nil || *a.CancelReason != tt.reason {
				t.Errorf("Cancel(%.10q…) = %v, appointment %+v", tt.reason, err, a)
			}
			continue
		}
		if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, map[string]string{"/reason": tt.want}) {
			t.Errorf("Cancel(%.10q…): field errors = %v, want /reason %s", tt.reason, got, tt.want)
		}
		if !reflect.DeepEqual(a, before) {
			t.Errorf("Cancel(%.10q…) changed the appointment: %+v", tt.reason, a)
		}
	}
}

// TestParseID proves ParseID reads only the canonical 36-character form and
// records required or invalid_id at the given pointer.
func TestParseID(t *testing.T) {
	id := uuid.New()
	tests := []struct {
		in   string
		want uuid.UUID
		code string // "" when valid
	}{
		{id.String(), id, ""},
		{strings.ToUpper(id.String()), id, ""},
		{"", uuid.Nil, "required"},
		{"not-an-id", uuid.Nil, "invalid_id"},
		{strings.ReplaceAll(id.String(), "-", ""), uuid.Nil, "invalid_id"},
		{"{" + id.String() + "}", uuid.Nil, "invalid_id"},
		{" " + id.String(), uuid.Nil, "invalid_id"},
	}
	for _, tt := range tests {
		var errs fault.Fields
		got := crm.ParseID(&errs, "/x", tt.in)
		if got != tt.want {
			t.Errorf("ParseID(%q) = %v, want %v", tt.in, got, tt.want)
		}
		switch {
		case tt.code == "" && len(errs) != 0:
			t.Errorf("ParseID(%q) recorded %v", tt.in, errs)
		case tt.code != "" && (len(errs) != 1 || errs[0].Pointer != "/x" || errs[0].Code != tt.code):
			t.Errorf("ParseID(%q) recorded %v, want one %s at /x", tt.in, errs, tt.code)
		}
	}
}

// TestParseTime proves ParseTime reads RFC 3339 (with any offset and
// fraction) into UTC microseconds, and records required or invalid_time.
func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		code string // "" when valid
	}{
		{"2026-12-03T10:00:00Z", time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), ""},
		{"2026-12-03T10:00:00+01:00", time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), ""},
		{"2026-12-31T23:30:00-05:00", time.Date(2027, 1, 1, 4, 30, 0, 0, time.UTC), ""},
		{"2026-12-03T10:00:00.1234567Z", time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC), ""},
		{"", time.Time{}, "required"},
		{"2026-12-03", time.Time{}, "invalid_time"},
		{"10:00", time.Time{}, "invalid_time"},
		{"2026-12-03T10:00:00", time.Time{}, "invalid_time"},
		{"2026-12-03T25:00:00Z", time.Time{}, "invalid_time"},
		{"1764756000", time.Time{}, "invalid_time"},
	}
	for _, tt := range tests {
		var errs fault.Fields
		got, ok := crm.ParseTime(&errs, "/at", tt.in)
		if got != tt.want || ok != (tt.code == "") {
			t.Errorf("ParseTime(%q) = %v (%v), %v; want %v, %v", tt.in, got, got.Location(), ok, tt.want, tt.code == "")
		}
		switch {
		case tt.code == "" && len(errs) != 0:
			t.Errorf("ParseTime(%q) recorded %v", tt.in, errs)
		case tt.code != "" && (len(errs) != 1 || errs[0].Pointer != "/at" || errs[0].Code != tt.code):
			t.Errorf("ParseTime(%q) recorded %v, want one %s at /at", tt.in, errs, tt.code)
		}
	}
}

// TestParseAppointmentStatus proves exactly the three statuses parse.
func TestParseAppointmentStatus(t *testing.T) {
	for _, s := range []crm.AppointmentStatus{crm.StatusBooked, crm.StatusCancelled, crm.StatusCompleted} {
		if got, ok := crm.ParseAppointmentStatus(string(s)); !ok || got != s {
			t.Errorf("ParseAppointmentStatus(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "Booked", "canceled", "done"} {
		if got, ok := crm.ParseAppointmentStatus(s); ok {
			t.Errorf("ParseAppointmentStatus(%q) = %q, want not ok", s, got)
		}
	}
}
