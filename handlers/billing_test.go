package handlers_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/schema/dbtest"
)

// bilClinic is a clinic set up for billing tests: the appointment fixture
// (owner, patient, practitioners, reception) plus a billing member.
type bilClinic struct {
	*aptClinic
	billing string // a billing member's key
}

// newBilClinic creates a clinic for billing tests.
func newBilClinic(a *api) *bilClinic {
	a.t.Helper()
	c := &bilClinic{aptClinic: newAptClinic(a)}
	c.billing = a.newMember(c.owner, c.id, "billing")
	return c
}

// bilLine is an invoice line as a client sends it.
func bilLine(description string, quantity, unitPrice, taxRateBP int64) map[string]any {
	return map[string]any{"description": description, "quantity": quantity, "unit_price": unitPrice, "tax_rate_bp": taxRateBP}
}

// bilInvoiceBody is an invoice request for the patient with the lines.
func bilInvoiceBody(patientID string, lines ...map[string]any) map[string]any {
	if lines == nil {
		lines = []map[string]any{}
	}
	return map[string]any{"patient_id": patientID, "lines": lines}
}

// issue posts an invoice as key's user.
func (c *bilClinic) issue(key string, body any) response {
	c.a.t.Helper()
	return c.a.call("POST", c.base+"/invoices", key, body)
}

// issued issues, as the billing member, an invoice for the clinic's patient
// of one untaxed line worth total, expecting 201.
func (c *bilClinic) issued(total int64) response {
	c.a.t.Helper()
	return c.issue(c.billing, bilInvoiceBody(c.patient, bilLine("Consultation", 1, total, 0))).want(c.a.t, http.StatusCreated)
}

// pay posts a payment of the invoice as key's user.
func (c *bilClinic) pay(key, invoiceID string, body any) response {
	c.a.t.Helper()
	return c.a.call("POST", c.base+"/invoices/"+invoiceID+"/payments", key, body)
}

// paid records a card payment of amount, expecting 201.
func (c *bilClinic) paid(invoiceID string, amount int64) response {
	c.a.t.Helper()
	return c.pay(c.billing, invoiceID, map[string]any{"amount": amount, "method": "card"}).want(c.a.t, http.StatusCreated)
}

// refund posts a refund of the payment as key's user.
func (c *bilClinic) refund(key, paymentID string, body any) response {
	c.a.t.Helper()
	return c.a.call("POST", c.base+"/payments/"+paymentID+"/refunds", key, body)
}

// invoice reads an invoice back.
func (c *bilClinic) invoice(id string) response {
	c.a.t.Helper()
	return c.a.call("GET", c.base+"/invoices/"+id, c.billing, nil).want(c.a.t, http.StatusOK)
}

// payment reads a payment back.
func (c *bilClinic) payment(id string) response {
	c.a.t.Helper()
	return c.a.call("GET", c.base+"/payments/"+id, c.billing, nil).want(c.a.t, http.StatusOK)
}

// bilAccepted counts the 201 answers and sums their amounts; every other
// answer must be the 422 problem refusal.
func bilAccepted(t *testing.T, answers []response, refusal string) (n int, sum int64) {
	t.Helper()
	for _, r := range answers {
		if r.StatusCode == http.StatusCreated {
			sum += bilInt(r.body, "amount")
			n++
			continue
		}
		r.wantProblem(t, http.StatusUnprocessableEntity, refusal)
	}
	return n, sum
}

// bilInt is the integer member name of m (math.MinInt64 when it is not a
// number).
func bilInt(m map[string]any, name string) int64 {
	f, ok := m[name].(float64)
	if !ok {
		return math.MinInt64
	}
	return int64(f)
}

// bilWantAmounts fails the test unless m's integer members are as in want.
func bilWantAmounts(t *testing.T, what string, m map[string]any, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got := bilInt(m, k); got != v {
			t.Errorf("%s: %s = %d, want %d", what, k, got, v)
		}
	}
}

// bilList returns the array member name of m as objects.
func bilList(m map[string]any, name string) []map[string]any {
	var out []map[string]any
	list, _ := m[name].([]any)
	for _, e := range list {
		o, _ := e.(map[string]any)
		out = append(out, o)
	}
	return out
}

// bilDisplayNumber is an invoice number's documented display form for an
// invoice issued at issuedAt in the zone.
func bilDisplayNumber(t *testing.T, n int64, issuedAt time.Time, zone string) string {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d-%06d", issuedAt.In(loc).Year(), n)
}

// bilInvoiceNumbers returns the clinic's invoice numbers in the database, in
// order.
func bilInvoiceNumbers(t *testing.T, clinicID string) []int64 {
	t.Helper()
	rows, err := dbtest.Pool(t).Query(context.Background(), `SELECT number FROM invoices WHERE clinic_id = $1 ORDER BY number`, clinicID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bilSeq is 1..n.
func bilSeq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// Issuing an invoice answers 201 with Location and an issued invoice: the
// clinic's first number, display_number "<year of issue in the clinic's time
// zone>-000001", the clinic's currency, and totals computed by the server
// with tax rounded half up per line (99.9 → 100, 0.5 → 1, 0.4 → 0, 52.5 →
// 53); balance_due is the total and nothing is paid. GET gives back the
// same with its lines and no payments; the next invoice is number 2.
func TestIssueInvoice(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	r := c.issue(c.billing, bilInvoiceBody(c.patient,
		bilLine("  Consultation ", 3, 333, 1000), // 999, tax 99.9 → 100
		bilLine("Bandage", 1, 5, 1000),           // 5, tax 0.5 → 1
		bilLine("Plaster", 1, 4, 1000),           // 4, tax 0.4 → 0
		bilLine("X-ray", 2, 125, 2100),           // 250, tax 52.5 → 53
		bilLine("Follow-up", 1, 0, 2100),         // free
	)).want(t, http.StatusCreated)

	id := r.str("id")
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	if loc, want := r.Header.Get("Location"), c.base+"/invoices/"+id; loc != want {
		t.Errorf("Location %q, want %q", loc, want)
	}
	bilWantAmounts(t, "invoice", r.body, map[string]int64{
		"number": 1, "subtotal": 1258, "tax": 154, "total": 1412,
		"amount_paid": 0, "amount_refunded": 0, "balance_due": 1412,
	})
	issuedAt := timeMember(t, r, "issued_at")
	if got, want := r.str("display_number"), bilDisplayNumber(t, 1, issuedAt, "Europe/Madrid"); got != want {
		t.Errorf("display_number %q, want %q", got, want)
	}
	for k, v := range map[string]any{"status": "issued", "currency": "EUR", "clinic_id": c.id, "patient_id": c.patient, "appointment_id": nil} {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.body[k], v)
		}
	}
	if d := time.Since(issuedAt); d < -time.Second || d > time.Minute {
		t.Errorf("issued_at %v is not now", issuedAt)
	}

	lines := bilList(r.body, "lines")
	want := []struct {
		description                            string
		quantity, price, rate, sub, tax, total int64
	}{
		{"Consultation", 3, 333, 1000, 999, 100, 1099},
		{"Bandage", 1, 5, 1000, 5, 1, 6},
		{"Plaster", 1, 4, 1000, 4, 0, 4},
		{"X-ray", 2, 125, 2100, 250, 53, 303},
		{"Follow-up", 1, 0, 2100, 0, 0, 0},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %s", len(lines), len(want), r.raw)
	}
	for i, w := range want {
		if lines[i]["description"] != w.description {
			t.Errorf("line %d description %v, want %q", i, lines[i]["description"], w.description)
		}
		bilWantAmounts(t, fmt.Sprintf("line %d", i), lines[i], map[string]int64{
			"quantity": w.quantity, "unit_price": w.price, "tax_rate_bp": w.rate,
			"subtotal": w.sub, "tax": w.tax, "total": w.total,
		})
	}

	got := c.invoice(id)
	if payments, ok := got.body["payments"].([]any); !ok || len(payments) != 0 {
		t.Errorf("payments %v, want []", got.body["payments"])
	}
	delete(got.body, "payments")
	if !reflect.DeepEqual(got.body, r.body) {
		t.Errorf("GET differs from the issued invoice:\n %s\n %s", got.raw, r.raw)
	}

	second := c.issued(100)
	if n := bilInt(second.body, "number"); n != 2 {
		t.Errorf("second invoice number %d", n)
	}
	if got, want := second.str("display_number"), bilDisplayNumber(t, 2, timeMember(t, second, "issued_at"), "Europe/Madrid"); got != want {
		t.Errorf("display_number %q, want %q", got, want)
	}
	// An admin and the owner may issue too.
	for _, key := range []string{c.owner, a.newMember(c.owner, c.id, "admin")} {
		c.issue(key, bilInvoiceBody(c.patient, bilLine("Visit", 1, 10, 0))).want(t, http.StatusCreated)
	}
}

// display_number takes the year of issue in the clinic's own time zone, and
// the invoice is in the clinic's currency; every clinic numbers from 1.
func TestInvoiceDisplayNumberTimeZone(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	for _, tz := range []struct{ zone, currency string }{{"Pacific/Kiritimati", "JPY"}, {"Pacific/Pago_Pago", "USD"}} {
		clinicID := a.call("POST", "/v1/clinics", key, map[string]any{"name": "Clinic " + tz.zone, "currency": tz.currency, "timezone": tz.zone}).
			want(t, http.StatusCreated).str("id")
		patient := a.newPatient(key, clinicID, "Eva", "Ruiz").str("id")
		r := a.call("POST", "/v1/clinics/"+clinicID+"/invoices", key, bilInvoiceBody(patient, bilLine("Visit", 1, 5000, 1000))).
			want(t, http.StatusCreated)
		if got, want := r.str("display_number"), bilDisplayNumber(t, 1, timeMember(t, r, "issued_at"), tz.zone); got != want {
			t.Errorf("%s: display_number %q, want %q", tz.zone, got, want)
		}
		if r.str("currency") != tz.currency {
			t.Errorf("%s: currency %q, want %q", tz.zone, r.str("currency"), tz.currency)
		}
		listed := a.call("GET", "/v1/clinics/"+clinicID+"/invoices", key, nil).want(t, http.StatusOK).items()
		if len(listed) != 1 || listed[0]["display_number"] != r.str("display_number") {
			t.Errorf("%s: listed %v", tz.zone, listed)
		}
	}
}

// An invoice request that is malformed or breaks a rule is 422 pointing at
// the member: 0 or 101 lines, a line's quantity outside 1–10,000, a negative
// or too large unit_price, tax_rate_bp outside 0–10,000, an empty or too
// long description (each at /lines/{i}/…, all reported at once), a missing,
// malformed or unknown patient_id, a malformed or unknown appointment_id;
// an appointment of another patient is 422 appointment_mismatch. None of
// them takes a number: the first invoice issued afterwards, with 100 lines
// (the maximum) and a valid appointment_id, is number 1.
func TestInvoiceValidation(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	other := newBilClinic(a)
	appointment := c.booked(c.pracID, aptAt(0, 10, 0), aptAt(0, 10, 30))
	otherPatient := a.newPatient(c.owner, c.id, "Ana", "Gil").str("id")
	ok := func() map[string]any { return bilLine("Visit", 1, 100, 2100) }
	with := func(k string, v any) map[string]any { l := ok(); l[k] = v; return l }
	lines := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = ok()
		}
		return out
	}

	cases := []struct {
		name          string
		body          map[string]any
		pointer, code string
	}{
		{"no lines member", map[string]any{"patient_id": c.patient}, "/lines", "invalid_length"},
		{"0 lines", bilInvoiceBody(c.patient), "/lines", "invalid_length"},
		{"101 lines", bilInvoiceBody(c.patient, lines(101)...), "/lines", "invalid_length"},
		{"quantity 0", bilInvoiceBody(c.patient, with("quantity", 0)), "/lines/0/quantity", "out_of_range"},
		{"quantity missing", bilInvoiceBody(c.patient, map[string]any{"description": "Visit", "unit_price": 1, "tax_rate_bp": 0}), "/lines/0/quantity", "out_of_range"},
		{"quantity negative", bilInvoiceBody(c.patient, with("quantity", -1)), "/lines/0/quantity", "out_of_range"},
		{"quantity 10001", bilInvoiceBody(c.patient, with("quantity", 10001)), "/lines/0/quantity", "out_of_range"},
		{"negative unit_price", bilInvoiceBody(c.patient, with("unit_price", -1)), "/lines/0/unit_price", "out_of_range"},
		{"unit_price over the maximum", bilInvoiceBody(c.patient, with("unit_price", int64(10_000_000_001))), "/lines/0/unit_price", "out_of_range"},
		{"tax_rate_bp 10001", bilInvoiceBody(c.patient, with("tax_rate_bp", 10001)), "/lines/0/tax_rate_bp", "out_of_range"},
		{"negative tax_rate_bp", bilInvoiceBody(c.patient, with("tax_rate_bp", -1)), "/lines/0/tax_rate_bp", "out_of_range"},
		{"empty description", bilInvoiceBody(c.patient, with("description", "")), "/lines/0/description", "required"},
		{"blank description", bilInvoiceBody(c.patient, with("description", "  \t ")), "/lines/0/description", "required"},
		{"description too long", bilInvoiceBody(c.patient, with("description", strings.Repeat("d", 501))), "/lines/0/description", "too_long"},
		{"third line bad", bilInvoiceBody(c.patient, ok(), ok(), with("quantity", 0)), "/lines/2/quantity", "out_of_range"},
		{"missing patient_id", map[string]any{"lines": lines(1)}, "/patient_id", "required"},
		{"malformed patient_id", bilInvoiceBody("p-1", ok()), "/patient_id", "invalid_id"},
		{"unknown patient", bilInvoiceBody(uuid.NewString(), ok()), "/patient_id", "not_found"},
		{"patient of another clinic", bilInvoiceBody(other.patient, ok()), "/patient_id", "not_found"},
		{"malformed appointment_id", map[string]any{"patient_id": c.patient, "appointment_id": "a-1", "lines": lines(1)}, "/appointment_id", "invalid_id"},
		{"empty appointment_id", map[string]any{"patient_id": c.patient, "appointment_id": "", "lines": lines(1)}, "/appointment_id", "required"},
		{"unknown appointment", map[string]any{"patient_id": c.patient, "appointment_id": uuid.NewString(), "lines": lines(1)}, "/appointment_id", "not_found"},
		{"unknown member", map[string]any{"patient_id": c.patient, "lines": lines(1), "total": 5}, "/total", "unknown_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.issue(c.billing, tc.body).wantFieldError(t, tc.pointer, tc.code)
		})
	}

	// Every bad line member is reported, each at its own line.
	r := c.issue(c.billing, bilInvoiceBody(c.patient,
		map[string]any{"description": "", "quantity": 0, "unit_price": -1, "tax_rate_bp": 10001}, ok(), with("quantity", 0)))
	for _, p := range []string{"/lines/0/description", "/lines/0/quantity", "/lines/0/unit_price", "/lines/0/tax_rate_bp", "/lines/2/quantity"} {
		aptWantPointer(t, r.wantProblem(t, http.StatusUnprocessableEntity, "validation_failed"), p)
	}
	if n := len(r.fieldErrors()); n != 5 {
		t.Errorf("%d field errors, want 5: %s", n, r.raw)
	}
	// A number where an integer is due is refused, never truncated.
	c.issue(c.billing, bilInvoiceBody(c.patient, with("quantity", 1.5))).wantProblem(t, http.StatusUnprocessableEntity, "validation_failed")

	// An appointment of another clinic is not found; one of another patient is a mismatch.
	foreign := other.booked(other.pracID, aptAt(0, 10, 0), aptAt(0, 10, 30))
	body := bilInvoiceBody(c.patient, ok())
	body["appointment_id"] = foreign
	c.issue(c.billing, body).wantFieldError(t, "/appointment_id", "not_found")
	body = bilInvoiceBody(otherPatient, ok())
	body["appointment_id"] = appointment
	c.issue(c.billing, body).wantProblem(t, http.StatusUnprocessableEntity, "appointment_mismatch")

	if n := count(t, `SELECT count(*) FROM invoices WHERE clinic_id = $1`, c.id); n != 0 {
		t.Fatalf("%d invoices after refused requests", n)
	}
	body = bilInvoiceBody(c.patient, lines(100)...)
	body["appointment_id"] = appointment
	first := c.issue(c.billing, body).want(t, http.StatusCreated)
	if n := bilInt(first.body, "number"); n != 1 {
		t.Errorf("first invoice after refusals has number %d, want 1", n)
	}
	if first.str("appointment_id") != appointment || len(bilList(first.body, "lines")) != 100 {
		t.Errorf("appointment_id %q, %d lines", first.str("appointment_id"), len(bilList(first.body, "lines")))
	}
	bilWantAmounts(t, "100 lines", first.body, map[string]int64{"subtotal": 10000, "tax": 2100, "total": 12100})

	// The largest line allowed is computed exactly, without overflow.
	biggest := c.issue(c.billing, bilInvoiceBody(c.patient, bilLine(strings.Repeat("d", 500), 10_000, 10_000_000_000, 10_000))).
		want(t, http.StatusCreated)
	bilWantAmounts(t, "largest line", biggest.body, map[string]int64{"number": 2, "subtotal": 1e14, "tax": 1e14, "total": 2e14})
}

// No request that fails takes a number: after a refused request (unknown
// patient, invalid line, appointment mismatch) and after one that fails in
// the database once its number was drawn (its transaction is rolled back,
// the number with it), the next invoice gets the next number: 1, 2, 3 with
// no gap, and the counter says 3.
func TestInvoiceNumbersNoGapAfterFailures(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	number := func(r response) int64 { t.Helper(); return bilInt(r.want(t, http.StatusCreated).body, "number") }

	if n := number(c.issued(100)); n != 1 {
		t.Fatalf("first number %d", n)
	}
	c.issue(c.billing, bilInvoiceBody(uuid.NewString(), bilLine("Visit", 1, 100, 0))).wantFieldError(t, "/patient_id", "not_found")
	c.issue(c.billing, bilInvoiceBody(c.patient, bilLine("Visit", 0, 100, 0))).wantFieldError(t, "/lines/0/quantity", "out_of_range")
	mismatch := bilInvoiceBody(a.newPatient(c.owner, c.id, "Ana", "Gil").str("id"), bilLine("Visit", 1, 100, 0))
	mismatch["appointment_id"] = c.booked(c.pracID, aptAt(0, 9, 0), aptAt(0, 9, 30))
	c.issue(c.billing, mismatch).wantProblem(t, http.StatusUnprocessableEntity, "appointment_mismatch")
	if n := number(c.issued(100)); n != 2 {
		t.Fatalf("number after refused requests %d, want 2", n)
	}

	// The invoice row and its number are written, then its line fails.
	undo := failInserts(t, "invoice_lines", "description", "Explode")
	c.issue(c.billing, bilInvoiceBody(c.patient, bilLine("Explode", 1, 100, 0))).wantProblem(t, http.StatusInternalServerError, "internal_error")
	undo()
	if n := number(c.issued(100)); n != 3 {
		t.Errorf("number after a rolled-back request %d, want 3", n)
	}
	if got := bilInvoiceNumbers(t, c.id); !slices.Equal(got, bilSeq(3)) {
		t.Errorf("stored numbers %v, want 1..3", got)
	}
	if n := count(t, `SELECT last_number FROM invoice_counters WHERE clinic_id = $1`, c.id); n != 3 {
		t.Errorf("counter at %d, want 3", n)
	}
}

// 50 parallel invoice creations in one clinic (distinct idempotency keys)
// all succeed and get exactly the numbers 1..50: no gap, no duplicate, each
// display_number its own.
func TestInvoiceNumbersConcurrent(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	bilWantNumbers(t, c, []*api{a}, 50)
}

// Three API instances (as three processes, each with its own actor for the
// clinic) issuing 30 invoices at once still number them 1..30 exactly: the
// counter row, not the actor, makes numbers gapless.
func TestInvoiceNumbersAcrossInstances(t *testing.T) {
	apis := []*api{newAPI(t), newAPI(t), newAPI(t)}
	c := newBilClinic(apis[0])
	bilWantNumbers(t, c, apis, 30)
}

// bilWantNumbers issues n invoices at once, spread over apis, and checks
// they are numbered 1..n in the answers and the database.
func bilWantNumbers(t *testing.T, c *bilClinic, apis []*api, n int) {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = apis[i%len(apis)].request("POST", c.base+"/invoices", c.billing,
			bilInvoiceBody(c.patient, bilLine(fmt.Sprintf("Visit %d", i), 1, int64(100+i), 0)))
	}
	var numbers []int64
	display := map[string]bool{}
	for _, r := range concurrently(t, reqs) {
		r.want(t, http.StatusCreated)
		numbers = append(numbers, bilInt(r.body, "number"))
		display[r.str("display_number")] = true
	}
	slices.Sort(numbers)
	if !slices.Equal(numbers, bilSeq(n)) {
		t.Errorf("numbers %v, want 1..%d", numbers, n)
	}
	if len(display) != n {
		t.Errorf("%d distinct display numbers, want %d", len(display), n)
	}
	if got := bilInvoiceNumbers(t, c.id); !slices.Equal(got, bilSeq(n)) {
		t.Errorf("stored numbers %v, want 1..%d", got, n)
	}
}

// A payment answers 201 with Location /v1/clinics/{id}/payments/{pid} and
// the payment (amount, method, trimmed reference, the invoice's currency,
// nothing refunded); the invoice's amount_paid and balance_due follow, and
// paying the whole balance makes it paid with balance_due 0. A payment over
// the balance is 422 payment_exceeds_balance and changes nothing; amount
// <= 0, an unknown method or a too long reference is 422 at the member; an
// unknown invoice is 404 invoice_not_found.
func TestPayments(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	inv := c.issued(1000).str("id")

	p := c.pay(c.billing, inv, map[string]any{"amount": 300, "method": "card", "reference": "  T-1 "}).want(t, http.StatusCreated)
	pid := p.str("id")
	if loc, want := p.Header.Get("Location"), "/v1/clinics/"+c.id+"/payments/"+pid; loc != want {
		t.Errorf("Location %q, want %q", loc, want)
	}
	for k, v := range map[string]any{"invoice_id": inv, "clinic_id": c.id, "method": "card", "reference": "T-1", "currency": "EUR"} {
		if p.body[k] != v {
			t.Errorf("payment %s = %v, want %v", k, p.body[k], v)
		}
	}
	bilWantAmounts(t, "payment", p.body, map[string]int64{"amount": 300, "amount_refunded": 0})
	if refunds, ok := p.body["refunds"].([]any); !ok || len(refunds) != 0 {
		t.Errorf("refunds %v, want []", p.body["refunds"])
	}
	if got := c.payment(pid); string(got.raw) != string(p.raw) {
		t.Errorf("GET payment %s, want %s", got.raw, p.raw)
	}
	after := c.invoice(inv)
	bilWantAmounts(t, "invoice", after.body, map[string]int64{"amount_paid": 300, "balance_due": 700, "total": 1000})
	if after.str("status") != "issued" {
		t.Errorf("status %q after a part payment", after.str("status"))
	}

	invalid := []struct {
		name          string
		body          map[string]any
		pointer, code string
	}{
		{"amount 0", map[string]any{"amount": 0, "method": "cash"}, "/amount", "out_of_range"},
		{"negative amount", map[string]any{"amount": -5, "method": "cash"}, "/amount", "out_of_range"},
		{"no amount", map[string]any{"method": "cash"}, "/amount", "out_of_range"},
		{"amount as a string", map[string]any{"amount": "100", "method": "cash"}, "/amount", "invalid_type"},
		{"unknown method", map[string]any{"amount": 100, "method": "bitcoin"}, "/method", "invalid_method"},
		{"method in capitals", map[string]any{"amount": 100, "method": "CASH"}, "/method", "invalid_method"},
		{"no method", map[string]any{"amount": 100}, "/method", "invalid_method"},
		{"reference too long", map[string]any{"amount": 100, "method": "transfer", "reference": strings.Repeat("r", 201)}, "/reference", "too_long"},
		{"unknown member", map[string]any{"amount": 100, "method": "cash", "currency": "USD"}, "/currency", "unknown_field"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) { c.pay(c.billing, inv, tc.body).wantFieldError(t, tc.pointer, tc.code) })
	}
	c.pay(c.billing, inv, map[string]any{"amount": 701, "method": "cash"}).wantProblem(t, http.StatusUnprocessableEntity, "payment_exceeds_balance")
	bilWantAmounts(t, "invoice after refusals", c.invoice(inv).body, map[string]int64{"amount_paid": 300, "balance_due": 700})

	full := c.pay(c.owner, inv, map[string]any{"amount": 700, "method": "transfer"}).want(t, http.StatusCreated)
	if v, present := full.body["reference"]; !present || v != nil {
		t.Errorf("reference %v (present %v), want null", v, present)
	}
	done := c.invoice(inv)
	bilWantAmounts(t, "paid invoice", done.body, map[string]int64{"amount_paid": 1000, "amount_refunded": 0, "balance_due": 0})
	if done.str("status") != "paid" {
		t.Errorf("status %q after paying the balance, want paid", done.str("status"))
	}
	c.pay(c.billing, inv, map[string]any{"amount": 1, "method": "cash"}).wantProblem(t, http.StatusUnprocessableEntity, "payment_exceeds_balance")
	if n := count(t, `SELECT count(*) FROM payments WHERE invoice_id = $1`, inv); n != 2 {
		t.Errorf("%d payments stored, want 2", n)
	}

	for _, bad := range []string{uuid.NewString(), "inv-1"} {
		c.pay(c.billing, bad, map[string]any{"amount": 1, "method": "cash"}).wantProblem(t, http.StatusNotFound, "invoice_not_found")
		a.call("GET", c.base+"/invoices/"+bad, c.billing, nil).wantProblem(t, http.StatusNotFound, "invoice_not_found")
		a.call("GET", c.base+"/payments/"+bad, c.billing, nil).wantProblem(t, http.StatusNotFound, "payment_not_found")
	}
	// An invoice and a payment of another clinic of the same owner are not found here.
	otherID := a.newClinic(c.owner)
	otherBase := "/v1/clinics/" + otherID
	otherPatient := a.newPatient(c.owner, otherID, "Ana", "Gil").str("id")
	otherInv := a.call("POST", otherBase+"/invoices", c.owner, bilInvoiceBody(otherPatient, bilLine("Visit", 1, 1000, 0))).
		want(t, http.StatusCreated).str("id")
	otherPay := a.call("POST", otherBase+"/invoices/"+otherInv+"/payments", c.owner, map[string]any{"amount": 10, "method": "cash"}).
		want(t, http.StatusCreated).str("id")
	c.pay(c.owner, otherInv, map[string]any{"amount": 1, "method": "cash"}).wantProblem(t, http.StatusNotFound, "invoice_not_found")
	a.call("GET", c.base+"/invoices/"+otherInv, c.owner, nil).wantProblem(t, http.StatusNotFound, "invoice_not_found")
	a.call("GET", c.base+"/payments/"+otherPay, c.owner, nil).wantProblem(t, http.StatusNotFound, "payment_not_found")
	c.refund(c.owner, otherPay, map[string]any{"amount": 1, "reason": "x"}).wantProblem(t, http.StatusNotFound, "payment_not_found")
	got := a.call("GET", otherBase+"/invoices/"+otherInv, c.owner, nil).want(t, http.StatusOK)
	bilWantAmounts(t, "other clinic's invoice", got.body, map[string]int64{"amount_paid": 10, "amount_refunded": 0})
}

// Parallel payments that together exceed the total (10 × 300 against 1000)
// never take the invoice over it: exactly 3 are accepted, the 7 others are
// 422 payment_exceeds_balance, and amount_paid equals the accepted sum, in
// the API and in the database.
func TestPaymentsConcurrent(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	bilWantPaymentsCapped(t, c, []*api{a})
}

// bilWantPaymentsCapped sends 10 payments of 300 against an invoice of 1000
// at once, spread over apis, and checks exactly 3 are accepted.
func bilWantPaymentsCapped(t *testing.T, c *bilClinic, apis []*api) {
	t.Helper()
	inv := c.issued(1000).str("id")
	reqs := make([]*http.Request, 10)
	for i := range reqs {
		reqs[i] = apis[i%len(apis)].request("POST", c.base+"/invoices/"+inv+"/payments", c.billing, map[string]any{"amount": 300, "method": "cash"})
	}
	n, accepted := bilAccepted(t, concurrently(t, reqs), "payment_exceeds_balance")
	if n != 3 || accepted != 900 {
		t.Errorf("%d payments accepted (%d), want 3 (900)", n, accepted)
	}
	got := c.invoice(inv)
	bilWantAmounts(t, "invoice", got.body, map[string]int64{"amount_paid": accepted, "balance_due": 1000 - accepted})
	if len(bilList(got.body, "payments")) != n {
		t.Errorf("invoice lists %d payments, want %d", len(bilList(got.body, "payments")), n)
	}
	if sum := count(t, `SELECT coalesce(sum(amount), 0)::bigint FROM payments WHERE invoice_id = $1`, inv); int64(sum) != accepted {
		t.Errorf("stored payments sum to %d, want %d", sum, accepted)
	}
}

// A refund answers 201 with the refund (trimmed reason, the payment and
// invoice ids, the currency); a refund after full payment puts the invoice
// back to issued with that balance due. A payment's refunds never exceed it
// (422 refund_exceeds_payment, even when the invoice has more paid on other
// payments); amount <= 0 or a missing reason is 422 at the member; an
// unknown payment is 404 payment_not_found. GET of the invoice shows its
// lines and its payments, each with its refunds; GET of a payment shows its
// refunds.
func TestRefunds(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	inv := c.issue(c.billing, bilInvoiceBody(c.patient, bilLine("Crown", 1, 800, 2500))).want(t, http.StatusCreated).str("id") // total 1000
	p1 := c.paid(inv, 400).str("id")
	p2 := c.paid(inv, 600).str("id")
	if st := c.invoice(inv).str("status"); st != "paid" {
		t.Fatalf("status %q, want paid", st)
	}

	r1 := c.refund(c.billing, p1, map[string]any{"amount": 150, "reason": "  Overcharged "}).want(t, http.StatusCreated)
	for k, v := range map[string]any{"payment_id": p1, "invoice_id": inv, "clinic_id": c.id, "reason": "Overcharged", "currency": "EUR"} {
		if r1.body[k] != v {
			t.Errorf("refund %s = %v, want %v", k, r1.body[k], v)
		}
	}
	bilWantAmounts(t, "refund", r1.body, map[string]int64{"amount": 150})
	got := c.invoice(inv)
	bilWantAmounts(t, "refunded invoice", got.body, map[string]int64{"amount_paid": 1000, "amount_refunded": 150, "balance_due": 150})
	if got.str("status") != "issued" {
		t.Errorf("status %q after a refund, want issued", got.str("status"))
	}

	// p1 has 250 left to refund, though the invoice has 850 paid net.
	c.refund(c.billing, p1, map[string]any{"amount": 251, "reason": "too much"}).wantProblem(t, http.StatusUnprocessableEntity, "refund_exceeds_payment")
	invalid := []struct {
		name          string
		body          map[string]any
		pointer, code string
	}{
		{"amount 0", map[string]any{"amount": 0, "reason": "x"}, "/amount", "out_of_range"},
		{"negative amount", map[string]any{"amount": -1, "reason": "x"}, "/amount", "out_of_range"},
		{"no reason", map[string]any{"amount": 1}, "/reason", "required"},
		{"blank reason", map[string]any{"amount": 1, "reason": "  "}, "/reason", "required"},
		{"reason too long", map[string]any{"amount": 1, "reason": strings.Repeat("r", 501)}, "/reason", "too_long"},
		{"unknown member", map[string]any{"amount": 1, "reason": "x", "method": "cash"}, "/method", "unknown_field"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) { c.refund(c.billing, p1, tc.body).wantFieldError(t, tc.pointer, tc.code) })
	}
	for _, bad := range []string{uuid.NewString(), "pay-1"} {
		c.refund(c.billing, bad, map[string]any{"amount": 1, "reason": "x"}).wantProblem(t, http.StatusNotFound, "payment_not_found")
	}

	r2 := c.refund(c.owner, p1, map[string]any{"amount": 250, "reason": "Rest"}).want(t, http.StatusCreated)
	c.refund(c.billing, p1, map[string]any{"amount": 1, "reason": "again"}).wantProblem(t, http.StatusUnprocessableEntity, "refund_exceeds_payment")
	got = c.invoice(inv)
	bilWantAmounts(t, "invoice", got.body, map[string]int64{"amount_paid": 1000, "amount_refunded": 400, "balance_due": 400})

	// The balance due can be paid again.
	p3 := c.paid(inv, 400).str("id")
	got = c.invoice(inv)
	if got.str("status") != "paid" || bilInt(got.body, "balance_due") != 0 {
		t.Errorf("after paying again: %s", got.raw)
	}

	// The invoice read whole: lines, payments in order, each with its refunds.
	if ls := bilList(got.body, "lines"); len(ls) != 1 || ls[0]["description"] != "Crown" || bilInt(ls[0], "tax") != 200 {
		t.Errorf("lines %v", ls)
	}
	payments := bilList(got.body, "payments")
	var ids []string
	for _, p := range payments {
		ids = append(ids, p["id"].(string))
	}
	if !slices.Equal(ids, []string{p1, p2, p3}) {
		t.Fatalf("payments %v, want %v", ids, []string{p1, p2, p3})
	}
	bilWantAmounts(t, "p1", payments[0], map[string]int64{"amount": 400, "amount_refunded": 400})
	bilWantAmounts(t, "p2", payments[1], map[string]int64{"amount": 600, "amount_refunded": 0})
	refunds := bilList(payments[0], "refunds")
	if len(refunds) != 2 || !reflect.DeepEqual(refunds[0], r1.body) || !reflect.DeepEqual(refunds[1], r2.body) {
		t.Errorf("p1's refunds %v, want %s and %s", refunds, r1.raw, r2.raw)
	}
	if rs, ok := payments[1]["refunds"].([]any); !ok || len(rs) != 0 {
		t.Errorf("p2's refunds %v, want []", payments[1]["refunds"])
	}
	one := c.payment(p1)
	if !reflect.DeepEqual(one.body, payments[0]) {
		t.Errorf("GET payment %s differs from the invoice's %v", one.raw, payments[0])
	}
	if n := count(t, `SELECT count(*) FROM refunds WHERE payment_id = $1`, p1); n != 2 {
		t.Errorf("%d refunds stored, want 2", n)
	}
}

// Parallel refunds of one payment that together exceed it (10 × 300 of a
// payment of 1000): the accepted ones sum to at most the payment (exactly
// 3), the others are 422 refund_exceeds_payment, and the payment's and the
// invoice's amount_refunded equal the accepted sum.
func TestRefundsConcurrent(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	bilWantRefundsCapped(t, c, []*api{a})
}

// bilWantRefundsCapped sends 10 refunds of 300 of a payment of 1000 at
// once, spread over apis, and checks exactly 3 are accepted.
func bilWantRefundsCapped(t *testing.T, c *bilClinic, apis []*api) {
	t.Helper()
	inv := c.issued(1000).str("id")
	pid := c.paid(inv, 1000).str("id")
	reqs := make([]*http.Request, 10)
	for i := range reqs {
		reqs[i] = apis[i%len(apis)].request("POST", c.base+"/payments/"+pid+"/refunds", c.billing,
			map[string]any{"amount": 300, "reason": fmt.Sprintf("refund %d", i)})
	}
	n, accepted := bilAccepted(t, concurrently(t, reqs), "refund_exceeds_payment")
	if n != 3 || accepted != 900 {
		t.Errorf("%d refunds accepted (%d), want 3 (900)", n, accepted)
	}
	p := c.payment(pid)
	bilWantAmounts(t, "payment", p.body, map[string]int64{"amount": 1000, "amount_refunded": accepted})
	if len(bilList(p.body, "refunds")) != n {
		t.Errorf("payment lists %d refunds, want %d", len(bilList(p.body, "refunds")), n)
	}
	bilWantAmounts(t, "invoice", c.invoice(inv).body, map[string]int64{"amount_paid": 1000, "amount_refunded": accepted, "balance_due": accepted})
	if sum := count(t, `SELECT coalesce(sum(amount), 0)::bigint FROM refunds WHERE payment_id = $1`, pid); int64(sum) != accepted {
		t.Errorf("stored refunds sum to %d, want %d", sum, accepted)
	}
}

// Across three API instances (as three processes, each with its own actor
// for the clinic) the money invariants still hold: of 10 parallel payments
// of 300 against 1000 exactly 3 are accepted, and likewise for refunds of a
// payment of 1000.
func TestPaymentsAndRefundsAcrossInstances(t *testing.T) {
	apis := []*api{newAPI(t), newAPI(t), newAPI(t)}
	c := newBilClinic(apis[0])
	bilWantPaymentsCapped(t, c, apis)
	bilWantRefundsCapped(t, c, apis)
}

// The invoice list pages through the clinic's invoices in order of issue,
// without lines, and filters by patient_id and status (combinable).
// Malformed filters are 400 invalid_parameter.
func TestListInvoices(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	p1 := c.patient
	p2 := a.newPatient(c.owner, c.id, "Ana", "Gil").str("id")
	issue := func(patient string) string {
		return c.issue(c.billing, bilInvoiceBody(patient, bilLine("Visit", 1, 500, 0))).want(t, http.StatusCreated).str("id")
	}
	i1, i2, i3, i4, i5 := issue(p1), issue(p2), issue(p1), issue(p1), issue(p2)
	c.paid(i3, 500)
	c.paid(i5, 500)
	c.paid(i4, 100) // partly paid: still issued
	other := newBilClinic(a)
	other.issued(500) // never listed here

	path := c.base + "/invoices"
	all := []string{i1, i2, i3, i4, i5}
	if ids, pages := aptWalk(a, c.billing, path, nil, 2); !slices.Equal(ids, all) || pages != 3 {
		t.Errorf("walk: %v in %d pages, want %v in 3", ids, pages, all)
	}
	list := a.call("GET", path, c.billing, nil).want(t, http.StatusOK)
	for i, it := range list.items() {
		if _, has := it["lines"]; has {
			t.Errorf("listed invoice has lines: %v", it)
		}
		if bilInt(it, "number") != int64(i+1) || it["display_number"] == "" {
			t.Errorf("item %d: number %v, display_number %v", i, it["number"], it["display_number"])
		}
	}
	if it := list.items()[3]; it["status"] != "issued" || bilInt(it, "balance_due") != 400 || bilInt(it, "amount_paid") != 100 {
		t.Errorf("listed i4 %v", it)
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"patient_id=" + p1, []string{i1, i3, i4}},
		{"patient_id=" + p2, []string{i2, i5}},
		{"patient_id=" + uuid.NewString(), nil},
		{"status=paid", []string{i3, i5}},
		{"status=issued", []string{i1, i2, i4}},
		{"patient_id=" + p1 + "&status=paid", []string{i3}},
		{"patient_id=" + p2 + "&status=issued", []string{i2}},
	}
	for _, f := range filters {
		r := a.call("GET", path+"?"+f.query, c.owner, nil).want(t, http.StatusOK)
		if got := r.ids("id"); !slices.Equal(got, f.want) {
			t.Errorf("?%s: %v, want %v", f.query, got, f.want)
		}
	}
	if ids, pages := aptWalk(a, c.billing, path, url.Values{"patient_id": {p1}}, 1); !slices.Equal(ids, []string{i1, i3, i4}) || pages != 3 {
		t.Errorf("filtered walk: %v in %d pages", ids, pages)
	}

	for _, bad := range []string{"patient_id=p-1", "patient_id=42", "status=void", "status=PAID", "status=cancelled", "limit=0", "limit=101", "cursor=zzz"} {
		a.call("GET", path+"?"+bad, c.billing, nil).wantProblem(t, http.StatusBadRequest, "invalid_parameter")
	}
}

// Payment and refund creation count against the payments rate class: with
// ip.payments=2/m, two payments pass and the third payment POST is 429
// rate_limited naming the ip-payments policy (with Retry-After and
// RateLimit-Policy) and is not applied, as is a refund then; issuing an
// invoice (write class) and reading (read class) still pass. On another
// instance (its own ip buckets), refunds draw on the same class: two refunds
// pass and a payment is then refused.
func TestPaymentsRateClass(t *testing.T) {
	limits, err := ratelimit.Parse("ip.payments=2/m")
	if err != nil {
		t.Fatal(err)
	}
	a := newAPIWith(t, handlers.Config{Limits: limits})
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	base := "/v1/clinics/" + clinicID
	patient := a.newPatient(key, clinicID, "Eva", "Ruiz").str("id")
	inv := a.call("POST", base+"/invoices", key, bilInvoiceBody(patient, bilLine("Visit", 1, 1000, 0))).want(t, http.StatusCreated).str("id")
	payment := func(via *api, amount int) response {
		return via.call("POST", base+"/invoices/"+inv+"/payments", key, map[string]any{"amount": amount, "method": "cash"})
	}
	refund := func(via *api, pid string) response {
		return via.call("POST", base+"/payments/"+pid+"/refunds", key, map[string]any{"amount": 10, "reason": "x"})
	}
	wantLimited := func(r response) {
		t.Helper()
		r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
		if v, _ := r.body["violated_policies"].([]any); len(v) != 1 || v[0] != "ip-payments" {
			t.Errorf("violated_policies %v, want [ip-payments]", r.body["violated_policies"])
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		if p := r.Header.Get(handlers.RateLimitPolicyHeader); !strings.HasPrefix(p, `"ip-payments";q=2;`) {
			t.Errorf("%s %q", handlers.RateLimitPolicyHeader, p)
		}
	}

	pid := payment(a, 300).want(t, http.StatusCreated).str("id")
	payment(a, 200).want(t, http.StatusCreated)
	wantLimited(payment(a, 100))
	wantLimited(refund(a, pid))
	a.call("POST", base+"/invoices", key, bilInvoiceBody(patient, bilLine("Visit", 1, 10, 0))).want(t, http.StatusCreated)
	got := a.call("GET", base+"/invoices/"+inv, key, nil).want(t, http.StatusOK)
	bilWantAmounts(t, "invoice", got.body, map[string]int64{"amount_paid": 500, "amount_refunded": 0, "balance_due": 500})

	b := newAPIWith(t, handlers.Config{Limits: limits})
	refund(b, pid).want(t, http.StatusCreated)
	refund(b, pid).want(t, http.StatusCreated)
	wantLimited(payment(b, 100))
	got = b.call("GET", base+"/invoices/"+inv, key, nil).want(t, http.StatusOK)
	bilWantAmounts(t, "invoice", got.body, map[string]int64{"amount_paid": 500, "amount_refunded": 20, "balance_due": 520})
}

// bilMatrixRoles are the roles of the matrix, most powerful first.
var bilMatrixRoles = []string{"owner", "admin", "practitioner", "reception", "billing"}

// bilMatrixFixture is a clinic with a member of every role and what the
// matrix's requests act on.
type bilMatrixFixture struct {
	a       *api
	c       *bilClinic
	keys    map[string]string // role → key
	ids     map[string]string // role → user id
	invoice string            // an invoice with a large balance
	payment string            // a payment with a large amount to refund
	slots   int               // bookings made so far, for distinct slots
}

// slot is a fresh hour-long slot no other booking of the fixture has.
func (f *bilMatrixFixture) slot() (start, end string) {
	f.slots++
	day, hour := f.slots/12, 8+f.slots%12
	return aptAt(day, hour, 0), aptAt(day, hour+1, 0)
}

// practitionerFor is who role's member books for: themselves when a
// practitioner (their own only), else the clinic's other practitioner.
func (f *bilMatrixFixture) practitionerFor(role string) string {
	if role == "practitioner" {
		return f.ids[role]
	}
	return f.c.prac2ID
}

// appointmentFor books, as the owner, a fresh appointment role's member
// may act on (as far as their role lets them at all).
func (f *bilMatrixFixture) appointmentFor(role string) string {
	start, end := f.slot()
	return f.c.booked(f.practitionerFor(role), start, end)
}

// bilMatrixCall is one request of the matrix and the status it gets when allowed.
type bilMatrixCall struct {
	method, path string // path below /v1/clinics/{id}
	body         any
	ok           int
}

// bilRoleMatrix is the documented role matrix (README, "Roles" and the route
// table), route by route: the roles allowed, space-separated ("member" for
// every role), and the request to make for a role.
var bilRoleMatrix = []struct {
	route string // as the README names it
	roles string
	call  func(f *bilMatrixFixture, role string) bilMatrixCall
}{
	{"GET /v1/clinics/{clinic_id}", "member", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "", nil, http.StatusOK}
	}},
	{"GET /v1/clinics/{clinic_id}/members", "member", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/members", nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/members", "owner admin", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/members", map[string]any{"email": email(f.a.t, "new"), "role": "billing"}, http.StatusCreated}
	}},
	{"GET /v1/clinics/{clinic_id}/patients", "member", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/patients", nil, http.StatusOK}
	}},
	{"GET /v1/clinics/{clinic_id}/patients/{patient_id}", "member", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/patients/" + f.c.patient, nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/patients", "owner admin reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/patients", map[string]any{"first_name": "Ana", "last_name": role}, http.StatusCreated}
	}},
	{"PATCH /v1/clinics/{clinic_id}/patients/{patient_id}", "owner admin reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"PATCH", "/patients/" + f.c.patient, map[string]any{"notes": "seen by " + role}, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/appointments", "owner admin practitioner reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		start, end := f.slot()
		return bilMatrixCall{"POST", "/appointments", f.c.booking(f.practitionerFor(role), start, end), http.StatusCreated}
	}},
	{"GET /v1/clinics/{clinic_id}/appointments", "owner admin practitioner reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/appointments", nil, http.StatusOK}
	}},
	{"GET /v1/clinics/{clinic_id}/appointments/{appointment_id}", "owner admin practitioner reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/appointments/" + f.appointmentFor(role), nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/appointments/{appointment_id}/cancel", "owner admin practitioner reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/appointments/" + f.appointmentFor(role) + "/cancel", map[string]any{"reason": "by " + role}, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/appointments/{appointment_id}/complete", "owner admin practitioner reception", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/appointments/" + f.appointmentFor(role) + "/complete", nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/invoices", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/invoices", bilInvoiceBody(f.c.patient, bilLine("Visit", 1, 100, 0)), http.StatusCreated}
	}},
	{"GET /v1/clinics/{clinic_id}/invoices", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/invoices", nil, http.StatusOK}
	}},
	{"GET /v1/clinics/{clinic_id}/invoices/{invoice_id}", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/invoices/" + f.invoice, nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/invoices/{invoice_id}/payments", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/invoices/" + f.invoice + "/payments", map[string]any{"amount": 1, "method": "cash"}, http.StatusCreated}
	}},
	{"GET /v1/clinics/{clinic_id}/payments/{payment_id}", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"GET", "/payments/" + f.payment, nil, http.StatusOK}
	}},
	{"POST /v1/clinics/{clinic_id}/payments/{payment_id}/refunds", "owner admin billing", func(f *bilMatrixFixture, role string) bilMatrixCall {
		return bilMatrixCall{"POST", "/payments/" + f.payment + "/refunds", map[string]any{"amount": 1, "reason": "by " + role}, http.StatusCreated}
	}},
}

// bilMatrixAllows reports whether the matrix's roles string lets role in.
func bilMatrixAllows(roles, role string) bool {
	return roles == "member" || slices.Contains(strings.Fields(roles), role)
}

// Route by route, each role gets exactly the documented rights: an allowed
// role's request succeeds (practitioners acting on their own appointments),
// a role without the right gets 403 forbidden whatever the body (decided
// before the body is read) and nothing happens, and a non-member gets 404
// clinic_not_found on every route.
func TestRoleMatrixRouteByRoute(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	f := &bilMatrixFixture{a: a, c: c, keys: map[string]string{"owner": c.owner, "practitioner": c.prac, "reception": c.reception, "billing": c.billing}}
	f.keys["admin"] = a.newMember(c.owner, c.id, "admin")
	f.ids = map[string]string{}
	for role, key := range f.keys {
		f.ids[role] = userOf(t, key).String()
	}
	f.invoice = c.issued(1_000_000).str("id")
	f.payment = c.paid(c.issued(1_000_000).str("id"), 1_000_000).str("id")
	outsider := a.newUser(email(t, "outsider"))
	a.newClinic(outsider) // a member elsewhere

	for _, rt := range bilRoleMatrix {
		t.Run(rt.route, func(t *testing.T) {
			f.a = a.on(t)
			c.aptClinic.a = f.a // the fixture's helpers report on the subtest
			for _, role := range bilMatrixRoles {
				call := rt.call(f, role)
				path := c.base + call.path
				r := f.a.call(call.method, path, f.keys[role], call.body)
				if !bilMatrixAllows(rt.roles, role) {
					r.wantProblem(t, http.StatusForbidden, "forbidden")
					if call.method != "GET" {
						for _, b := range invalidBodies {
							f.a.call(call.method, path, f.keys[role], b.body, b.headers...).wantProblem(t, http.StatusForbidden, "forbidden")
						}
					}
					continue
				}
				if r.StatusCode != call.ok {
					t.Errorf("%s: %s %s: status %d, want %d; body %s", role, call.method, call.path, r.StatusCode, call.ok, r.raw)
				}
			}
			call := rt.call(f, "owner")
			f.a.call(call.method, c.base+call.path, outsider, call.body).wantProblem(t, http.StatusNotFound, "clinic_not_found")
		})
	}

	c.aptClinic.a = a

	// What forbidden requests would have changed is unchanged.
	if n := count(t, `SELECT count(*) FROM appointments WHERE clinic_id = $1 AND status <> 'booked'`, c.id); n != 8 {
		t.Errorf("%d appointments cancelled or completed, want 8 (4 roles × cancel and complete)", n)
	}
	if n := count(t, `SELECT count(*) FROM payments WHERE invoice_id = $1`, f.invoice); n != 3 {
		t.Errorf("%d payments of the matrix's invoice, want 3 (owner, admin, billing)", n)
	}
	if n := count(t, `SELECT count(*) FROM refunds WHERE payment_id = $1`, f.payment); n != 3 {
		t.Errorf("%d refunds of the matrix's payment, want 3 (owner, admin, billing)", n)
	}
}

// The matrix above is the documented one: for each of its routes the
// README's route table lists exactly the same roles.
func TestRoleMatrixIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Split(string(raw), "\n")
	for _, rt := range bilRoleMatrix {
		var cell string
		for _, line := range readme {
			if strings.HasPrefix(line, "| `"+rt.route+"`") {
				if cells := strings.Split(line, "|"); len(cells) > 2 {
					cell = strings.TrimSpace(cells[2])
				}
				break
			}
		}
		if cell == "" {
			t.Errorf("README's route table has no row for %s", rt.route)
			continue
		}
		var documented []string
		for _, r := range strings.Split(cell, ",") {
			r = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r), "(own)"))
			documented = append(documented, r)
		}
		want := strings.Fields(rt.roles)
		slices.Sort(documented)
		slices.Sort(want)
		if !slices.Equal(documented, want) {
			t.Errorf("%s: README allows %v, the matrix %v", rt.route, documented, want)
		}
	}
}

// Decoding errors inside an invoice line point at that line's member: a
// member of the wrong type, an unknown member, a line that is not an object.
func TestInvoiceLineDecodingPointers(t *testing.T) {
	a := newAPI(t)
	c := newBilClinic(a)
	good := bilLine("Visit", 1, 100, 0)
	cases := []struct {
		name, pointer, code string
		line                any
	}{
		{"fractional quantity", "/lines/1/quantity", "invalid_type", map[string]any{"description": "X", "quantity": 1.5, "unit_price": 1, "tax_rate_bp": 0}},
		{"unknown member", "/lines/1/discount", "unknown_field", map[string]any{"description": "X", "quantity": 1, "unit_price": 1, "tax_rate_bp": 0, "discount": 5}},
		{"not an object", "/lines/1", "invalid_type", "Visit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"patient_id": c.patient, "lines": []any{good, tc.line}}
			r := c.issue(c.billing, body).wantFieldError(t, tc.pointer, tc.code)
			if tc.code == "invalid_type" && tc.pointer != "/lines/1" && !strings.Contains(string(r.raw), "integer") {
				t.Errorf("a fractional quantity should be reported as not an integer: %s", r.raw)
			}
		})
	}
}
