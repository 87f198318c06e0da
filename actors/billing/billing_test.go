package billing_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/billing"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/fault/faulttest"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func str(s string) *string { return &s }

// line is a requested line.
func line(quantity, unitPrice, taxRateBP int64) billing.LineRequest {
	return billing.LineRequest{Description: "Consultation", Quantity: quantity, UnitPrice: unitPrice, TaxRateBP: taxRateBP}
}

// request asks for an invoice of a fresh patient with lines.
func request(lines ...billing.LineRequest) billing.InvoiceRequest {
	return billing.InvoiceRequest{PatientID: uuid.NewString(), Lines: lines}
}

// newInvoice issues an invoice of lines, failing the test on error.
func newInvoice(t *testing.T, lines ...billing.LineRequest) billing.Invoice {
	t.Helper()
	inv, err := billing.NewInvoice(uuid.New(), "EUR", request(lines...), now)
	if err != nil {
		t.Fatalf("NewInvoice: %v", err)
	}
	return inv
}

// invoiceOf returns an issued invoice whose total is total (one untaxed line).
func invoiceOf(t *testing.T, total int64) billing.Invoice {
	t.Helper()
	inv := newInvoice(t, line(1, total, 0))
	if inv.Total != total {
		t.Fatalf("invoice total %d, want %d", inv.Total, total)
	}
	return inv
}

// TestLineAmounts proves each line's subtotal is quantity × unit_price and
// its tax is subtotal × rate / 10000 rounded half up (not half to even) to
// a whole minor unit.
func TestLineAmounts(t *testing.T) {
	tests := []struct {
		name                  string
		quantity, price, rate int64
		wantSubtotal, wantTax int64
	}{
		{"3 × 333 at 10 %: 99.9 rounds up", 3, 333, 1000, 999, 100},
		{"5 at 10 %: 0.5 rounds up", 1, 5, 1000, 5, 1},
		{"4 at 10 %: 0.4 rounds down", 1, 4, 1000, 4, 0},
		{"1 at 50 %: 0.5 rounds up", 1, 1, 5000, 1, 1},
		{"15 at 10 %: 1.5 rounds up", 1, 15, 1000, 15, 2},
		{"25 at 10 %: 2.5 rounds up, not to even", 1, 25, 1000, 25, 3},
		{"1 at 49.99 %: 0.4999 rounds down", 1, 1, 4999, 1, 0},
		{"19.99 at 21 %: 419.79 rounds up", 1, 1999, 2100, 1999, 420},
		{"zero price", 7, 0, 2100, 0, 0},
		{"zero rate", 7, 1234, 0, 8638, 0},
		{"100 %", 7, 3, 10000, 21, 21},
		{"1 bp of one unit", 1, 1, 1, 1, 0},
		{"1 bp of 5000 units: 0.5 rounds up", 1, 5000, 1, 5000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := newInvoice(t, line(tt.quantity, tt.price, tt.rate))
			want := billing.Line{Description: "Consultation", Quantity: tt.quantity, UnitPrice: tt.price, TaxRateBP: tt.rate,
				Subtotal: tt.wantSubtotal, Tax: tt.wantTax, Total: tt.wantSubtotal + tt.wantTax}
			if len(inv.Lines) != 1 || inv.Lines[0] != want {
				t.Fatalf("lines = %+v, want [%+v]", inv.Lines, want)
			}
			if inv.Subtotal != want.Subtotal || inv.Tax != want.Tax || inv.Total != want.Total {
				t.Errorf("invoice subtotal/tax/total = %d/%d/%d, want %d/%d/%d",
					inv.Subtotal, inv.Tax, inv.Total, want.Subtotal, want.Tax, want.Total)
			}
		})
	}
}

// TestNewInvoice proves an invoice is issued with the request's patient and
// appointment, trimmed line descriptions in order, sums of its lines' amounts
// (each line rounded on its own), nothing paid, the whole total due and
// server-set id, clinic, currency and times; the number comes later.
func TestNewInvoice(t *testing.T) {
	clinicID, patientID, appointmentID := uuid.New(), uuid.New(), uuid.New()
	inv, err := billing.NewInvoice(clinicID, "EUR", billing.InvoiceRequest{
		PatientID:     patientID.String(),
		AppointmentID: str(appointmentID.String()),
		Lines: []billing.LineRequest{
			{Description: "  Check-up ", Quantity: 1, UnitPrice: 5, TaxRateBP: 1000},
			{Description: "X-ray", Quantity: 1, UnitPrice: 5, TaxRateBP: 1000},
			{Description: "Gel", Quantity: 3, UnitPrice: 333, TaxRateBP: 1000},
		},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := billing.Invoice{
		ID: inv.ID, ClinicID: clinicID, PatientID: patientID, AppointmentID: &appointmentID, Currency: "EUR",
		Lines: []billing.Line{
			{Description: "Check-up", Quantity: 1, UnitPrice: 5, TaxRateBP: 1000, Subtotal: 5, Tax: 1, Total: 6},
			{Description: "X-ray", Quantity: 1, UnitPrice: 5, TaxRateBP: 1000, Subtotal: 5, Tax: 1, Total: 6},
			{Description: "Gel", Quantity: 3, UnitPrice: 333, TaxRateBP: 1000, Subtotal: 999, Tax: 100, Total: 1099},
		},
		// Per-line rounding: 0.5 + 0.5 + 99.9 → 1 + 1 + 100, not round(100.9) = 101.
		Subtotal: 1009, Tax: 102, Total: 1111, BalanceDue: 1111,
		Status: billing.StatusIssued, IssuedAt: now, UpdatedAt: now,
	}
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("invoice = %+v\nwant      %+v", inv, want)
	}
	if inv.ID.Version() != 7 {
		t.Errorf("id %v is not a UUIDv7", inv.ID)
	}
	if inv.Number != 0 || inv.DisplayNumber != "" {
		t.Errorf("a new invoice is numbered %d (%q) before it is issued", inv.Number, inv.DisplayNumber)
	}
}

// TestZeroTotalInvoiceIsPaid proves an invoice of free lines is paid at
// once: nothing is due.
func TestZeroTotalInvoiceIsPaid(t *testing.T) {
	inv := newInvoice(t, line(3, 0, 2100), line(1, 0, 0))
	if inv.Total != 0 || inv.BalanceDue != 0 || inv.Status != billing.StatusPaid {
		t.Errorf("free invoice: total %d, due %d, status %s; want 0, 0, paid", inv.Total, inv.BalanceDue, inv.Status)
	}
}

// TestNewInvoiceValidation proves the limits of a request at their
// boundaries, each reported at its JSON Pointer (lines are 0-based), and the
// zero invoice on error.
func TestNewInvoiceValidation(t *testing.T) {
	lines := func(n int) []billing.LineRequest {
		l := make([]billing.LineRequest, n)
		for i := range l {
			l[i] = line(1, 100, 2100)
		}
		return l
	}
	withLine := func(edit func(l *billing.LineRequest)) func(r *billing.InvoiceRequest) {
		return func(r *billing.InvoiceRequest) { edit(&r.Lines[0]) }
	}
	quantity := func(n int64) func(r *billing.InvoiceRequest) {
		return withLine(func(l *billing.LineRequest) { l.Quantity = n })
	}
	price := func(n int64) func(r *billing.InvoiceRequest) {
		return withLine(func(l *billing.LineRequest) { l.UnitPrice = n })
	}
	rate := func(n int64) func(r *billing.InvoiceRequest) {
		return withLine(func(l *billing.LineRequest) { l.TaxRateBP = n })
	}
	desc := func(s string) func(r *billing.InvoiceRequest) {
		return withLine(func(l *billing.LineRequest) { l.Description = s })
	}
	count := func(n int) func(r *billing.InvoiceRequest) {
		return func(r *billing.InvoiceRequest) { r.Lines = lines(n) }
	}
	tests := []struct {
		name string
		edit func(r *billing.InvoiceRequest)
		want map[string]string // pointer → code; nil for a valid request
	}{
		{"valid", func(*billing.InvoiceRequest) {}, nil},

		{"quantity 0", quantity(0), map[string]string{"/lines/0/quantity": "out_of_range"}},
		{"quantity -1", quantity(-1), map[string]string{"/lines/0/quantity": "out_of_range"}},
		{"quantity 1", quantity(1), nil},
		{"quantity 10000", quantity(billing.MaxQuantity), nil},
		{"quantity 10001", quantity(billing.MaxQuantity + 1), map[string]string{"/lines/0/quantity": "out_of_range"}},

		{"unit price -1", price(-1), map[string]string{"/lines/0/unit_price": "out_of_range"}},
		{"unit price 0", price(0), nil},
		{"unit price 1e10", price(10_000_000_000), nil},
		{"unit price 1e10+1", price(10_000_000_001), map[string]string{"/lines/0/unit_price": "out_of_range"}},

		{"tax rate -1", rate(-1), map[string]string{"/lines/0/tax_rate_bp": "out_of_range"}},
		{"tax rate 0", rate(0), nil},
		{"tax rate 10000", rate(10000), nil},
		{"tax rate 10001", rate(10001), map[string]string{"/lines/0/tax_rate_bp": "out_of_range"}},

		{"description empty", desc(""), map[string]string{"/lines/0/description": "required"}},
		{"description blank", desc(" \t "), map[string]string{"/lines/0/description": "required"}},
		{"description of 1", desc("x"), nil},
		{"description of 500", desc(strings.Repeat("ñ", 500)), nil},
		{"description of 501", desc(strings.Repeat("d", 501)), map[string]string{"/lines/0/description": "too_long"}},
		{"description with NUL", desc("a\x00b"), map[string]string{"/lines/0/description": "invalid_characters"}},

		{"no lines", func(r *billing.InvoiceRequest) { r.Lines = nil }, map[string]string{"/lines": "invalid_length"}},
		{"empty lines", count(0), map[string]string{"/lines": "invalid_length"}},
		{"1 line", count(1), nil},
		{"100 lines", count(billing.MaxLines), nil},
		{"101 lines", count(billing.MaxLines + 1), map[string]string{"/lines": "invalid_length"}},
		{"error in the third line", func(r *billing.InvoiceRequest) {
			r.Lines = lines(3)
			r.Lines[2].Quantity = 0
		}, map[string]string{"/lines/2/quantity": "out_of_range"}},
		{"every member of a line wrong", func(r *billing.InvoiceRequest) {
			r.Lines = []billing.LineRequest{line(1, 1, 1), {Description: "", Quantity: 0, UnitPrice: -1, TaxRateBP: 10001}}
		}, map[string]string{"/lines/1/description": "required", "/lines/1/quantity": "out_of_range",
			"/lines/1/unit_price": "out_of_range", "/lines/1/tax_rate_bp": "out_of_range"}},

		{"no patient", func(r *billing.InvoiceRequest) { r.PatientID = "" }, map[string]string{"/patient_id": "required"}},
		{"malformed patient", func(r *billing.InvoiceRequest) { r.PatientID = "p-1" }, map[string]string{"/patient_id": "invalid_id"}},
		{"appointment", func(r *billing.InvoiceRequest) { r.AppointmentID = str(uuid.NewString()) }, nil},
		{"empty appointment", func(r *billing.InvoiceRequest) { r.AppointmentID = str("") }, map[string]string{"/appointment_id": "required"}},
		{"malformed appointment", func(r *billing.InvoiceRequest) { r.AppointmentID = str("a-1") }, map[string]string{"/appointment_id": "invalid_id"}},
		{"everything wrong", func(r *billing.InvoiceRequest) {
			*r = billing.InvoiceRequest{PatientID: "", AppointmentID: str("x"), Lines: lines(101)}
		}, map[string]string{"/patient_id": "required", "/appointment_id": "invalid_id", "/lines": "invalid_length"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(line(2, 100, 2100))
			tt.edit(&req)
			inv, err := billing.NewInvoice(uuid.New(), "EUR", req, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("NewInvoice: %v", err)
				}
				return
			}
			if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("field errors = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(inv, billing.Invoice{}) {
				t.Errorf("invoice = %+v on error, want the zero invoice", inv)
			}
		})
	}
}

// TestLargestInvoiceFitsInt64 proves the limits keep every amount exact:
// 100 lines of the largest quantity and price at 100 % tax.
func TestLargestInvoiceFitsInt64(t *testing.T) {
	lines := make([]billing.LineRequest, billing.MaxLines)
	for i := range lines {
		lines[i] = line(billing.MaxQuantity, billing.MaxUnitPrice, billing.MaxTaxRateBP)
	}
	inv := newInvoice(t, lines...)
	const lineSubtotal = int64(billing.MaxQuantity) * billing.MaxUnitPrice // 1e14
	for i, l := range inv.Lines {
		if l.Subtotal != lineSubtotal || l.Tax != lineSubtotal || l.Total != 2*lineSubtotal {
			t.Fatalf("line %d = %+v, want subtotal = tax = %d", i, l, lineSubtotal)
		}
	}
	if want := int64(billing.MaxLines) * lineSubtotal; inv.Subtotal != want || inv.Tax != want || inv.Total != 2*want || inv.BalanceDue != 2*want {
		t.Errorf("subtotal/tax/total/due = %d/%d/%d/%d, want %d/%d/%d/%d",
			inv.Subtotal, inv.Tax, inv.Total, inv.BalanceDue, want, want, 2*want, 2*want)
	}
}

// TestDisplayNumber proves the display form is the year of issue in the
// clinic's time zone and the number in at least six digits, and that
// AssignNumber sets both the number and its display form.
func TestDisplayNumber(t *testing.T) {
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	newYearsEve := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		n        int64
		issuedAt time.Time
		zone     string
		want     string
	}{
		{42, newYearsEve, "Europe/Madrid", "2027-000042"},
		{42, newYearsEve, "America/New_York", "2026-000042"},
		{42, newYearsEve, "UTC", "2026-000042"},
		{42, time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "America/New_York", "2026-000042"},
		{42, time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "Europe/Madrid", "2027-000042"},
		{1, newYearsEve, "UTC", "2026-000001"},
		{999999, newYearsEve, "UTC", "2026-999999"},
		{1000000, newYearsEve, "UTC", "2026-1000000"},
		{1234567, newYearsEve, "UTC", "2026-1234567"},
	}
	for _, tt := range tests {
		if got := billing.DisplayNumber(tt.n, tt.issuedAt, zone(tt.zone)); got != tt.want {
			t.Errorf("DisplayNumber(%d, %v, %s) = %q, want %q", tt.n, tt.issuedAt, tt.zone, got, tt.want)
		}
		inv := billing.Invoice{IssuedAt: tt.issuedAt}
		inv.AssignNumber(tt.n, zone(tt.zone))
		if inv.Number != tt.n || inv.DisplayNumber != tt.want {
			t.Errorf("AssignNumber(%d, %s): number %d, display %q; want %d, %q", tt.n, tt.zone, inv.Number, inv.DisplayNumber, tt.n, tt.want)
		}
	}
}

// TestRecordPaymentValidation proves a payment needs a positive amount, a
// known method and an optional reference of at most 200 characters, and a
// refused one leaves the invoice unchanged.
func TestRecordPaymentValidation(t *testing.T) {
	tests := []struct {
		name string
		req  billing.PaymentRequest
		want map[string]string
	}{
		{"zero amount", billing.PaymentRequest{Amount: 0, Method: "cash"}, map[string]string{"/amount": "out_of_range"}},
		{"negative amount", billing.PaymentRequest{Amount: -100, Method: "card"}, map[string]string{"/amount": "out_of_range"}},
		{"no method", billing.PaymentRequest{Amount: 100}, map[string]string{"/method": "invalid_method"}},
		{"upper-case method", billing.PaymentRequest{Amount: 100, Method: "CASH"}, map[string]string{"/method": "invalid_method"}},
		{"unknown method", billing.PaymentRequest{Amount: 100, Method: "cheque"}, map[string]string{"/method": "invalid_method"}},
		{"reference of 201", billing.PaymentRequest{Amount: 100, Method: "transfer", Reference: str(strings.Repeat("r", 201))},
			map[string]string{"/reference": "too_long"}},
		{"reference with NUL", billing.PaymentRequest{Amount: 100, Method: "transfer", Reference: str("a\x00")},
			map[string]string{"/reference": "invalid_characters"}},
		{"everything wrong", billing.PaymentRequest{Amount: -1, Method: "gold", Reference: str(strings.Repeat("r", 201))},
			map[string]string{"/amount": "out_of_range", "/method": "invalid_method", "/reference": "too_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoiceOf(t, 1000)
			before := inv
			p, err := inv.RecordPayment(tt.req, now.Add(time.Hour))
			if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("field errors = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(inv, before) || !reflect.DeepEqual(p, billing.Payment{}) {
				t.Errorf("refused payment changed the invoice to %+v or returned %+v", inv, p)
			}
		})
	}
}

// TestRecordPayment proves payments reduce the balance, the invoice is paid
// exactly when nothing is left due, and a payment above the balance is
// payment_exceeds_balance with the invoice unchanged.
func TestRecordPayment(t *testing.T) {
	inv := invoiceOf(t, 1000)
	later := now.Add(time.Hour)

	p, err := inv.RecordPayment(billing.PaymentRequest{Amount: 400, Method: "card", Reference: str("  TX-1 ")}, later)
	if err != nil {
		t.Fatal(err)
	}
	want := billing.Payment{ID: p.ID, ClinicID: inv.ClinicID, InvoiceID: inv.ID, Amount: 400, Currency: "EUR",
		Method: billing.MethodCard, Reference: str("TX-1"), CreatedAt: later, Refunds: []billing.Refund{}}
	if !reflect.DeepEqual(p, want) || p.ID.Version() != 7 {
		t.Errorf("payment = %+v\nwant      %+v", p, want)
	}
	if inv.AmountPaid != 400 || inv.BalanceDue != 600 || inv.Status != billing.StatusIssued || !inv.UpdatedAt.Equal(later) {
		t.Errorf("after 400 of 1000: paid %d, due %d, status %s, updated %v", inv.AmountPaid, inv.BalanceDue, inv.Status, inv.UpdatedAt)
	}

	before := inv
	_, err = inv.RecordPayment(billing.PaymentRequest{Amount: 601, Method: "cash"}, later.Add(time.Hour))
	if !fault.HasCode(err, billing.ErrPaymentExceedsBalance) {
		t.Fatalf("601 on 600 due: err = %v, want payment_exceeds_balance", err)
	}
	if fault.From(err).Code.Kind() != fault.Unprocessable {
		t.Errorf("payment_exceeds_balance is not unprocessable (422)")
	}
	if !reflect.DeepEqual(inv, before) {
		t.Errorf("refused payment changed the invoice:\n got %+v\nwant %+v", inv, before)
	}

	p, err = inv.RecordPayment(billing.PaymentRequest{Amount: 600, Method: "transfer", Reference: str("   ")}, later)
	if err != nil {
		t.Fatalf("paying the exact balance: %v", err)
	}
	if p.Reference != nil {
		t.Errorf("blank reference = %q, want nil", *p.Reference)
	}
	if inv.AmountPaid != 1000 || inv.BalanceDue != 0 || inv.Status != billing.StatusPaid {
		t.Errorf("after paying off: paid %d, due %d, status %s; want 1000, 0, paid", inv.AmountPaid, inv.BalanceDue, inv.Status)
	}
	if _, err := inv.RecordPayment(billing.PaymentRequest{Amount: 1, Method: "cash"}, later); !fault.HasCode(err, billing.ErrPaymentExceedsBalance) {
		t.Errorf("paying a paid invoice: err = %v, want payment_exceeds_balance", err)
	}
}

// TestPaymentOnFreeInvoice proves nothing can be paid on an invoice whose
// total is zero.
func TestPaymentOnFreeInvoice(t *testing.T) {
	inv := invoiceOf(t, 0)
	if _, err := inv.RecordPayment(billing.PaymentRequest{Amount: 1, Method: "cash"}, now); !fault.HasCode(err, billing.ErrPaymentExceedsBalance) {
		t.Errorf("err = %v, want payment_exceeds_balance", err)
	}
}

// pay records a payment of amount on inv, failing the test on error.
func pay(t *testing.T, inv *billing.Invoice, amount int64) billing.Payment {
	t.Helper()
	p, err := inv.RecordPayment(billing.PaymentRequest{Amount: amount, Method: "cash"}, now)
	if err != nil {
		t.Fatalf("pay %d: %v", amount, err)
	}
	return p
}

// TestRefundValidation proves a refund needs a positive amount and a reason
// of 1 to 500 characters, and a refused one changes neither the invoice nor
// the payment.
func TestRefundValidation(t *testing.T) {
	tests := []struct {
		name string
		req  billing.RefundRequest
		want map[string]string
	}{
		{"zero amount", billing.RefundRequest{Amount: 0, Reason: "error"}, map[string]string{"/amount": "out_of_range"}},
		{"negative amount", billing.RefundRequest{Amount: -5, Reason: "error"}, map[string]string{"/amount": "out_of_range"}},
		{"no reason", billing.RefundRequest{Amount: 5}, map[string]string{"/reason": "required"}},
		{"blank reason", billing.RefundRequest{Amount: 5, Reason: "  "}, map[string]string{"/reason": "required"}},
		{"reason of 501", billing.RefundRequest{Amount: 5, Reason: strings.Repeat("r", 501)}, map[string]string{"/reason": "too_long"}},
		{"both wrong", billing.RefundRequest{Amount: 0}, map[string]string{"/amount": "out_of_range", "/reason": "required"}},
		{"over the payment and no reason", billing.RefundRequest{Amount: 10_000}, map[string]string{"/reason": "required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoiceOf(t, 1000)
			p := pay(t, &inv, 500)
			invBefore, pBefore := inv, p
			r, err := inv.Refund(&p, tt.req, now)
			if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("field errors = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(inv, invBefore) || !reflect.DeepEqual(p, pBefore) || !reflect.DeepEqual(r, billing.Refund{}) {
				t.Errorf("refused refund changed invoice %+v or payment %+v, or returned %+v", inv, p, r)
			}
		})
	}
}

// TestRefund proves refunds of a payment add up to at most its amount
// (refund_exceeds_payment beyond, with nothing changed), each is recorded on
// the payment, and a refunded paid invoice is issued again with a balance due.
func TestRefund(t *testing.T) {
	inv := invoiceOf(t, 1000)
	p := pay(t, &inv, 1000)
	if inv.Status != billing.StatusPaid {
		t.Fatalf("status %s after paying off, want paid", inv.Status)
	}
	later := now.Add(time.Hour)

	r, err := inv.Refund(&p, billing.RefundRequest{Amount: 200, Reason: " broken tooth "}, later)
	if err != nil {
		t.Fatal(err)
	}
	want := billing.Refund{ID: r.ID, ClinicID: inv.ClinicID, PaymentID: p.ID, InvoiceID: inv.ID, Amount: 200,
		Currency: "EUR", Reason: "broken tooth", CreatedAt: later}
	if !reflect.DeepEqual(r, want) || r.ID.Version() != 7 {
		t.Errorf("refund = %+v\nwant     %+v", r, want)
	}
	if inv.Status != billing.StatusIssued || inv.BalanceDue != 200 || inv.AmountRefunded != 200 || inv.AmountPaid != 1000 || !inv.UpdatedAt.Equal(later) {
		t.Errorf("after refunding 200 of a paid 1000: %+v; want issued with 200 due", inv)
	}

	if _, err := inv.Refund(&p, billing.RefundRequest{Amount: 300, Reason: "second"}, later); err != nil {
		t.Fatalf("second refund: %v", err)
	}
	invBefore, pBefore := inv, p
	pBefore.Refunds = append([]billing.Refund(nil), p.Refunds...)
	_, err = inv.Refund(&p, billing.RefundRequest{Amount: 501, Reason: "too much"}, later)
	if !fault.HasCode(err, billing.ErrRefundExceedsPayment) {
		t.Fatalf("501 of 500 left: err = %v, want refund_exceeds_payment", err)
	}
	if fault.From(err).Code.Kind() != fault.Unprocessable {
		t.Errorf("refund_exceeds_payment is not unprocessable (422)")
	}
	if !reflect.DeepEqual(inv, invBefore) || !reflect.DeepEqual(p, pBefore) {
		t.Errorf("refused refund changed the invoice or payment")
	}

	if _, err := inv.Refund(&p, billing.RefundRequest{Amount: 500, Reason: "the rest"}, later); err != nil {
		t.Fatalf("refunding the rest: %v", err)
	}
	if p.AmountRefunded != 1000 || len(p.Refunds) != 3 || inv.AmountRefunded != 1000 || inv.BalanceDue != 1000 || inv.Status != billing.StatusIssued {
		t.Errorf("after refunding everything: payment %+v, invoice %+v", p, inv)
	}
	if _, err := inv.Refund(&p, billing.RefundRequest{Amount: 1, Reason: "again"}, later); !fault.HasCode(err, billing.ErrRefundExceedsPayment) {
		t.Errorf("refunding a fully refunded payment: err = %v, want refund_exceeds_payment", err)
	}

	// The invoice can be paid again after a refund.
	pay(t, &inv, 1000)
	if inv.Status != billing.StatusPaid || inv.BalanceDue != 0 {
		t.Errorf("paid again: %+v", inv)
	}
}

// TestRefundIsPerPayment proves a refund is bounded by its own payment, not
// by what the invoice received in all.
func TestRefundIsPerPayment(t *testing.T) {
	inv := invoiceOf(t, 1000)
	small, _ := pay(t, &inv, 300), pay(t, &inv, 700)
	_, err := inv.Refund(&small, billing.RefundRequest{Amount: 400, Reason: "wrong payment"}, now)
	if !fault.HasCode(err, billing.ErrRefundExceedsPayment) {
		t.Errorf("refunding 400 of a 300 payment: err = %v, want refund_exceeds_payment", err)
	}
}

// TestParseInvoiceStatus proves exactly issued and paid parse.
func TestParseInvoiceStatus(t *testing.T) {
	for _, s := range []billing.InvoiceStatus{billing.StatusIssued, billing.StatusPaid} {
		if got, ok := billing.ParseInvoiceStatus(string(s)); !ok || got != s {
			t.Errorf("ParseInvoiceStatus(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "Paid", "draft", "cancelled", fmt.Sprint(billing.StatusPaid, " ")} {
		if got, ok := billing.ParseInvoiceStatus(s); ok {
			t.Errorf("ParseInvoiceStatus(%q) = %q, want not ok", s, got)
		}
	}
}
