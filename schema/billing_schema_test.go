package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/schema/dbtest"
)

// clinicRows is a clinic with two practitioners, a receptionist and a
// patient, inserted with SQL, plus (after withSchedule and withInvoice)
// appointments, an invoice and a payment.
type clinicRows struct {
	clinicID, practitionerID, otherPractitionerID, receptionID, patientID uuid.UUID
	// The schedule of practitionerID (see at): booked 10:00–11:00, cancelled
	// 10:30–11:30 (over the booked one) and cancelled 14:00–15:00.
	bookedID, cancelledOverlapID, cancelledID uuid.UUID
	// Invoice number 1: total 1000 (no tax), 500 paid by paymentID.
	invoiceID, paymentID uuid.UUID
}

// at is hh:mm UTC on 2026-12-03, the day of the appointments of these tests.
func at(hhmm string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-12-03T"+hhmm+":00Z")
	if err != nil {
		panic(err)
	}
	return t
}

// newClinicRows inserts a clinic with its staff and patient.
func newClinicRows(t *testing.T) clinicRows {
	t.Helper()
	ctx := testContext(t)
	c := clinicRows{clinicID: uuid.New(), practitionerID: uuid.New(), otherPractitionerID: uuid.New(),
		receptionID: uuid.New(), patientID: uuid.New()}
	exec(t, ctx, `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'EUR', 'Europe/Madrid')`, c.clinicID)
	for user, role := range map[uuid.UUID]string{c.practitionerID: "practitioner", c.otherPractitionerID: "practitioner", c.receptionID: "reception"} {
		exec(t, ctx, `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Staff')`, user, user.String()+"@example.com")
		exec(t, ctx, `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, $3)`, c.clinicID, user, role)
	}
	exec(t, ctx, `INSERT INTO patients (id, clinic_id, first_name, last_name) VALUES ($1, $2, 'Ana', 'López')`, c.patientID, c.clinicID)
	return c
}

// insertAppointment is the SQL of an appointment; its arguments come from
// appointmentArgs.
const insertAppointment = `INSERT INTO appointments (id, clinic_id, patient_id, practitioner_id, starts_at, ends_at,
	status, cancel_reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now())`

// appointmentArgs are the arguments of insertAppointment: an appointment of
// patient with practitioner in the clinic from–to (see at), with
// status and reason (nil for none).
func appointmentArgs(id, clinic, patient, practitioner uuid.UUID, from, to, status string, reason *string) []any {
	return []any{id, clinic, patient, practitioner, at(from), at(to), status, reason}
}

// withSchedule inserts the practitioner's appointments.
func (c *clinicRows) withSchedule(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	c.bookedID, c.cancelledOverlapID, c.cancelledID = uuid.New(), uuid.New(), uuid.New()
	reason := "patient is ill"
	exec(t, ctx, insertAppointment, appointmentArgs(c.bookedID, c.clinicID, c.patientID, c.practitionerID, "10:00", "11:00", "booked", nil)...)
	exec(t, ctx, insertAppointment, appointmentArgs(c.cancelledOverlapID, c.clinicID, c.patientID, c.practitionerID, "10:30", "11:30", "cancelled", &reason)...)
	exec(t, ctx, insertAppointment, appointmentArgs(c.cancelledID, c.clinicID, c.patientID, c.practitionerID, "14:00", "15:00", "cancelled", &reason)...)
}

// insertInvoice is the SQL of an invoice; its arguments come from invoice.args.
const insertInvoice = `INSERT INTO invoices (id, clinic_id, number, display_number, patient_id, appointment_id, currency, subtotal, tax,
	total, amount_paid, amount_refunded, status, issued_at, updated_at)
	VALUES ($1, $2, $3::bigint, '2026-' || lpad($3::bigint::text, 6, '0'), $4, $5, 'EUR', $6, $7, $8, $9, $10, $11, now(), now())`

// invoice describes an invoice row.
type invoice struct {
	id                                   uuid.UUID // a fresh one when uuid.Nil
	number                               int64
	subtotal, tax, total, paid, refunded int64
	status                               string
	appointmentID                        *uuid.UUID
}

// args are the arguments of insertInvoice for the invoice in the clinic of
// c, to its patient (or to patient, when not uuid.Nil).
func (inv invoice) args(c clinicRows, patient uuid.UUID) []any {
	if inv.id == uuid.Nil {
		inv.id = uuid.New()
	}
	if patient == uuid.Nil {
		patient = c.patientID
	}
	return []any{inv.id, c.clinicID, inv.number, patient, inv.appointmentID,
		inv.subtotal, inv.tax, inv.total, inv.paid, inv.refunded, inv.status}
}

const (
	insertLine = `INSERT INTO invoice_lines (clinic_id, invoice_id, position, description, quantity, unit_price,
		tax_rate_bp, subtotal, tax, total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	insertPayment = `INSERT INTO payments (id, clinic_id, invoice_id, amount, amount_refunded, method, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())`
	insertRefund = `INSERT INTO refunds (id, clinic_id, payment_id, amount, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, now())`
)

// withInvoice inserts invoice number 1 (total 1000, 500 paid), its line and
// its payment.
func (c *clinicRows) withInvoice(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	c.invoiceID, c.paymentID = uuid.New(), uuid.New()
	exec(t, ctx, insertInvoice, invoice{id: c.invoiceID, number: 1, subtotal: 1000, total: 1000, paid: 500, status: "issued"}.args(*c, uuid.Nil)...)
	exec(t, ctx, insertLine, c.clinicID, c.invoiceID, 1, "Consultation", 2, 500, 0, 1000, 0, 1000)
	exec(t, ctx, insertPayment, c.paymentID, c.clinicID, c.invoiceID, 500, 0, "card")
}

// rowCase is a statement and what PostgreSQL must answer to it.
type rowCase struct {
	name       string
	sql        string
	args       []any
	code       string // SQLSTATE; "" when the statement must succeed
	constraint string
}

// checkRows runs each case in a transaction of its own, rolled back after it
// so the cases do not see each other's rows, and checks PostgreSQL's answer.
func checkRows(t *testing.T, cases []rowCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := tryInRolledBackTx(t, tt.sql, tt.args...)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("valid row refused: %v", err)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("statement succeeded or failed outside PostgreSQL: %v", err)
			}
			if pgErr.Code != tt.code || pgErr.ConstraintName != tt.constraint {
				t.Errorf("SQLSTATE %s, constraint %q (%s); want %s, %q",
					pgErr.Code, pgErr.ConstraintName, pgErr.Message, tt.code, tt.constraint)
			}
		})
	}
}

// tryInRolledBackTx runs one statement in a transaction and rolls it back.
func tryInRolledBackTx(t *testing.T, sql string, args ...any) error {
	t.Helper()
	ctx := testContext(t)
	tx, err := dbtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, sql, args...)
	return err
}

// TestAppointmentConstraints proves PostgreSQL itself refuses what the
// appointment rules forbid, with the SQLSTATE and constraint the store maps:
// double booking (23P01), a practitioner who is not one or a patient of
// another clinic (23503), and rows that break a CHECK (23514); and accepts
// back-to-back slots, overlaps with cancelled appointments and other
// practitioners' appointments.
func TestAppointmentConstraints(t *testing.T) {
	t.Parallel()
	c, other := newClinicRows(t), newClinicRows(t)
	c.withSchedule(t)
	reason := "no longer needed"
	appt := func(practitioner uuid.UUID, from, to, status string, reason *string) []any {
		return appointmentArgs(uuid.New(), c.clinicID, c.patientID, practitioner, from, to, status, reason)
	}
	p := c.practitionerID
	checkRows(t, []rowCase{
		{"overlapping a booked one", insertAppointment, appt(p, "10:30", "11:30", "booked", nil), "23P01", "appointments_no_overlap"},
		{"inside a booked one", insertAppointment, appt(p, "10:15", "10:45", "booked", nil), "23P01", "appointments_no_overlap"},
		{"completed, overlapping a booked one", insertAppointment, appt(p, "09:30", "10:01", "completed", nil), "23P01", "appointments_no_overlap"},
		{"back to back after", insertAppointment, appt(p, "11:00", "12:00", "booked", nil), "", ""},
		{"back to back before", insertAppointment, appt(p, "09:00", "10:00", "booked", nil), "", ""},
		{"overlapping only cancelled ones", insertAppointment, appt(p, "14:00", "15:00", "booked", nil), "", ""},
		{"cancelled, overlapping a booked one", insertAppointment, appt(p, "10:00", "11:00", "cancelled", &reason), "", ""},
		{"other practitioner, same slot", insertAppointment, appt(c.otherPractitionerID, "10:00", "11:00", "booked", nil), "", ""},
		{"rebooking a cancelled slot that is taken", `UPDATE appointments SET status = 'booked', cancel_reason = NULL WHERE id = $1`,
			[]any{c.cancelledOverlapID}, "23P01", "appointments_no_overlap"},
		{"rebooking a free cancelled slot", `UPDATE appointments SET status = 'booked', cancel_reason = NULL WHERE id = $1`,
			[]any{c.cancelledID}, "", ""},

		{"practitioner is a receptionist", insertAppointment, appt(c.receptionID, "16:00", "17:00", "booked", nil),
			"23503", "appointments_practitioner_fk"},
		{"practitioner is no member", insertAppointment, appt(uuid.New(), "16:00", "17:00", "booked", nil),
			"23503", "appointments_practitioner_fk"},
		{"practitioner of another clinic", insertAppointment, appt(other.practitionerID, "16:00", "17:00", "booked", nil),
			"23503", "appointments_practitioner_fk"},
		{"receptionist claimed with her own role", `INSERT INTO appointments (id, clinic_id, patient_id, practitioner_id, practitioner_role,
			starts_at, ends_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'reception', $5, $6, now(), now())`,
			[]any{uuid.New(), c.clinicID, c.patientID, c.receptionID, at("16:00"), at("17:00")}, "23514", "appointments_practitioner_role"},
		{"patient of another clinic", insertAppointment,
			appointmentArgs(uuid.New(), c.clinicID, other.patientID, p, "16:00", "17:00", "booked", nil), "23503", "appointments_patient_fk"},

		{"ends when it starts", insertAppointment, appt(p, "16:00", "16:00", "booked", nil), "23514", "appointments_time_order"},
		{"ends before it starts", insertAppointment, appt(p, "17:00", "16:00", "booked", nil), "23514", "appointments_time_order"},
		{"longer than 24 hours", insertAppointment,
			[]any{uuid.New(), c.clinicID, c.patientID, p, at("16:00"), at("16:00").Add(24*time.Hour + time.Microsecond), "booked", nil},
			"23514", "appointments_max_length"},
		{"cancelled without reason", insertAppointment, appt(p, "16:00", "17:00", "cancelled", nil), "23514", "appointments_cancel_reason"},
		{"booked with a reason", insertAppointment, appt(p, "16:00", "17:00", "booked", &reason), "23514", "appointments_cancel_reason"},
		{"cancelled with an empty reason", insertAppointment, appt(p, "16:00", "17:00", "cancelled", new(string)),
			"23514", "appointments_cancel_reason_length"},
		{"unknown status", insertAppointment, appt(p, "16:00", "17:00", "no_show", nil), "23514", "appointments_status_known"},
		{"notes of 2001", `UPDATE appointments SET notes = $2 WHERE id = $1`, []any{c.bookedID, strings.Repeat("n", 2001)},
			"23514", "appointments_notes_length"},
	})
}

// TestBillingConstraints proves PostgreSQL itself refuses invoices,
// lines, payments and refunds that break a billing rule, with the SQLSTATE
// and constraint the store maps, even when no Go validation runs.
func TestBillingConstraints(t *testing.T) {
	t.Parallel()
	c, other := newClinicRows(t), newClinicRows(t)
	c.withSchedule(t)
	c.withInvoice(t)
	// issued is an untaxed, unpaid invoice numbered number.
	issued := func(number, total int64) invoice {
		return invoice{number: number, subtotal: total, total: total, status: "issued"}
	}
	// second is invoice number 2 with these amounts and status.
	second := func(subtotal, tax, total, paid, refunded int64, status string) invoice {
		return invoice{number: 2, subtotal: subtotal, tax: tax, total: total, paid: paid, refunded: refunded, status: status}
	}
	line := func(position, quantity, unitPrice, rate, subtotal, tax, total int64) []any {
		return []any{c.clinicID, c.invoiceID, position, "Line", quantity, unitPrice, rate, subtotal, tax, total}
	}
	payment := func(amount, refunded int64, method string) []any {
		return []any{uuid.New(), c.clinicID, c.invoiceID, amount, refunded, method}
	}
	forAppointment := invoice{number: 2, subtotal: 10, total: 10, status: "issued", appointmentID: &c.bookedID}
	checkRows(t, []rowCase{
		{"valid invoice", insertInvoice, issued(2, 1000).args(c, uuid.Nil), "", ""},
		{"duplicate number in the clinic", insertInvoice, issued(1, 1000).args(c, uuid.Nil), "23505", "invoices_number_unique"},
		{"same number in another clinic", insertInvoice, issued(1, 1000).args(other, uuid.Nil), "", ""},
		{"number 0", insertInvoice, issued(0, 1000).args(c, uuid.Nil), "23514", "invoices_number_positive"},
		{"total is not subtotal + tax", insertInvoice, second(1000, 210, 1200, 0, 0, "issued").args(c, uuid.Nil),
			"23514", "invoices_amounts"},
		{"negative tax", insertInvoice, second(1000, -10, 990, 0, 0, "issued").args(c, uuid.Nil),
			"23514", "invoices_amounts"},
		{"paid minus refunded over the total", insertInvoice, second(1000, 0, 1000, 1500, 400, "issued").args(c, uuid.Nil),
			"23514", "invoices_balance"},
		{"refunded more than paid", insertInvoice, second(1000, 0, 1000, 100, 200, "issued").args(c, uuid.Nil),
			"23514", "invoices_balance"},
		{"paid while a balance is due", insertInvoice, second(1000, 0, 1000, 999, 0, "paid").args(c, uuid.Nil),
			"23514", "invoices_status"},
		{"issued with nothing due", insertInvoice, second(1000, 0, 1000, 1200, 200, "issued").args(c, uuid.Nil),
			"23514", "invoices_status"},
		{"paid after refunds and payments", insertInvoice, second(1000, 0, 1000, 1200, 200, "paid").args(c, uuid.Nil), "", ""},
		{"free and paid", insertInvoice, second(0, 0, 0, 0, 0, "paid").args(c, uuid.Nil), "", ""},
		{"unknown status", insertInvoice, second(1000, 0, 1000, 0, 0, "draft").args(c, uuid.Nil), "23514", "invoices_status"},
		{"patient of another clinic", insertInvoice, issued(2, 1000).args(c, other.patientID), "23503", "invoices_patient_fk"},
		{"appointment of another clinic", insertInvoice, forAppointment.args(other, uuid.Nil), "23503", "invoices_appointment_fk"},
		{"appointment of the clinic", insertInvoice, forAppointment.args(c, uuid.Nil), "", ""},
		{"paying over the total", `UPDATE invoices SET amount_paid = 1001 WHERE id = $1`, []any{c.invoiceID}, "23514", "invoices_balance"},
		{"paid without its amounts", `UPDATE invoices SET status = 'paid' WHERE id = $1`, []any{c.invoiceID}, "23514", "invoices_status"},

		{"valid line", insertLine, line(2, 3, 333, 1000, 999, 100, 1099), "", ""},
		{"subtotal is not quantity × unit price", insertLine, line(2, 3, 333, 1000, 1000, 100, 1100), "23514", "invoice_lines_amounts"},
		{"line total is not subtotal + tax", insertLine, line(2, 1, 100, 0, 100, 0, 101), "23514", "invoice_lines_amounts"},
		{"negative line tax", insertLine, line(2, 1, 100, 0, 100, -1, 99), "23514", "invoice_lines_amounts"},
		{"quantity 0", insertLine, line(2, 0, 100, 0, 0, 0, 0), "23514", "invoice_lines_quantity"},
		{"quantity 10001", insertLine, line(2, 10001, 0, 0, 0, 0, 0), "23514", "invoice_lines_quantity"},
		{"unit price over 1e10", insertLine, line(2, 1, 10_000_000_001, 0, 10_000_000_001, 0, 10_000_000_001), "23514", "invoice_lines_unit_price"},
		{"tax rate 10001", insertLine, line(2, 1, 0, 10001, 0, 0, 0), "23514", "invoice_lines_tax_rate"},
		{"position 0", insertLine, line(0, 1, 0, 0, 0, 0, 0), "23514", "invoice_lines_position"},
		{"position 101", insertLine, line(101, 1, 0, 0, 0, 0, 0), "23514", "invoice_lines_position"},
		{"largest line", insertLine, line(2, 10000, 10_000_000_000, 10000, 100_000_000_000_000, 100_000_000_000_000, 200_000_000_000_000), "", ""},

		{"valid payment", insertPayment, payment(500, 0, "transfer"), "", ""},
		{"payment refunded over its amount", insertPayment, payment(500, 501, "cash"), "23514", "payments_refunds"},
		{"payment refunded below zero", insertPayment, payment(500, -1, "cash"), "23514", "payments_refunds"},
		{"payment by cheque", insertPayment, payment(500, 0, "cheque"), "23514", "payments_method_known"},
		{"payment of 0", insertPayment, payment(0, 0, "cash"), "23514", "payments_amount_positive"},
		{"payment of another clinic's invoice", insertPayment, []any{uuid.New(), other.clinicID, c.invoiceID, 100, 0, "cash"},
			"23503", "payments_invoice_fk"},
		{"refunding over the payment", `UPDATE payments SET amount_refunded = 501 WHERE id = $1`, []any{c.paymentID}, "23514", "payments_refunds"},

		{"valid refund", insertRefund, []any{uuid.New(), c.clinicID, c.paymentID, 100, "overcharged"}, "", ""},
		{"refund of 0", insertRefund, []any{uuid.New(), c.clinicID, c.paymentID, 0, "overcharged"}, "23514", "refunds_amount_positive"},
		{"refund without reason", insertRefund, []any{uuid.New(), c.clinicID, c.paymentID, 100, ""}, "23514", "refunds_reason_length"},
		{"refund of another clinic's payment", insertRefund, []any{uuid.New(), other.clinicID, c.paymentID, 100, "x"},
			"23503", "refunds_payment_fk"},

		{"counter at 0", `INSERT INTO invoice_counters (clinic_id, last_number) VALUES ($1, 0)`, []any{c.clinicID},
			"23514", "invoice_counters_positive"},
	})
}

// TestDeletingAClinicDeletesItsBilling proves the composite foreign keys do
// not stop a clinic from being deleted: its appointments, invoices, lines,
// payments, refunds and counter go with it.
func TestDeletingAClinicDeletesItsBilling(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newClinicRows(t)
	c.withSchedule(t)
	c.withInvoice(t)
	exec(t, ctx, insertRefund, uuid.New(), c.clinicID, c.paymentID, 100, "overcharged")
	exec(t, ctx, `INSERT INTO invoice_counters (clinic_id, last_number) VALUES ($1, 1)`, c.clinicID)

	exec(t, ctx, `DELETE FROM clinics WHERE id = $1`, c.clinicID)
	var n int
	err := dbtest.Pool(t).QueryRow(ctx, `SELECT
		(SELECT count(*) FROM appointments WHERE clinic_id = $1) + (SELECT count(*) FROM invoices WHERE clinic_id = $1) +
		(SELECT count(*) FROM invoice_lines WHERE clinic_id = $1) + (SELECT count(*) FROM payments WHERE clinic_id = $1) +
		(SELECT count(*) FROM refunds WHERE clinic_id = $1) + (SELECT count(*) FROM invoice_counters WHERE clinic_id = $1)`,
		c.clinicID).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows of a deleted clinic remain", n)
	}
}

// TestBillingTablesExist proves the appointments and billing migration
// created its tables and the btree_gist extension the exclusion needs.
func TestBillingTablesExist(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for _, table := range []string{"appointments", "invoice_counters", "invoices", "invoice_lines", "payments", "refunds"} {
		var reg *string
		if err := dbtest.Pool(t).QueryRow(ctx, "SELECT to_regclass($1)::text", "public."+table).Scan(&reg); err != nil {
			t.Fatal(err)
		}
		if reg == nil {
			t.Errorf("table %s does not exist", table)
		}
	}
	var ext string
	err := dbtest.Pool(t).QueryRow(ctx, `SELECT extname FROM pg_extension WHERE extname = 'btree_gist'`).Scan(&ext)
	if errors.Is(err, pgx.ErrNoRows) {
		t.Error("btree_gist is not installed")
	} else if err != nil {
		t.Fatal(err)
	}
}
