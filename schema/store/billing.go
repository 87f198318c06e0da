package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/billing"
)

// NextInvoiceNumber advances the clinic's invoice counter and returns the
// new number. The counter row stays locked until the transaction ends, and a
// rollback takes the number back, so numbers have no gaps and no duplicates.
func (q *Queries) NextInvoiceNumber(ctx context.Context, clinicID uuid.UUID) (int64, error) {
	var n int64
	err := q.db.QueryRow(ctx, `
		INSERT INTO invoice_counters (clinic_id, last_number) VALUES ($1, 1)
		ON CONFLICT (clinic_id) DO UPDATE SET last_number = invoice_counters.last_number + 1
		RETURNING last_number`, clinicID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next invoice number: %w", err)
	}
	return n, nil
}

// InsertInvoice stores an issued invoice and its lines.
func (q *Queries) InsertInvoice(ctx context.Context, inv billing.Invoice) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO invoices (id, clinic_id, number, display_number, patient_id, appointment_id, currency, subtotal, tax, total,
			amount_paid, amount_refunded, status, issued_at, updated_at)
		VALUES ($1, $2, $3, $15, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		inv.ID, inv.ClinicID, inv.Number, inv.PatientID, inv.AppointmentID, inv.Currency, inv.Subtotal, inv.Tax,
		inv.Total, inv.AmountPaid, inv.AmountRefunded, inv.Status, inv.IssuedAt, inv.UpdatedAt, inv.DisplayNumber)
	switch {
	case constraintOf(err, foreignKeyViolation) == "invoices_patient_fk":
		return fieldNotFound("/patient_id", "is not a patient of this clinic")
	case constraintOf(err, foreignKeyViolation) == "invoices_appointment_fk":
		return fieldNotFound("/appointment_id", "is not an appointment of this clinic")
	case err != nil:
		return fmt.Errorf("insert invoice: %w", err)
	}
	n := len(inv.Lines)
	desc, qty, price, rate, sub, tax, total := make([]string, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, l := range inv.Lines {
		desc[i], qty[i], price[i], rate[i], sub[i], tax[i], total[i] = l.Description, l.Quantity, l.UnitPrice, l.TaxRateBP, l.Subtotal, l.Tax, l.Total
	}
	_, err = q.db.Exec(ctx, `
		INSERT INTO invoice_lines (clinic_id, invoice_id, position, description, quantity, unit_price, tax_rate_bp, subtotal, tax, total)
		SELECT $1, $2, l.position, l.description, l.quantity, l.unit_price, l.tax_rate_bp, l.subtotal, l.tax, l.total
		FROM unnest($3::text[], $4::int[], $5::bigint[], $6::int[], $7::bigint[], $8::bigint[], $9::bigint[])
			WITH ORDINALITY AS l(description, quantity, unit_price, tax_rate_bp, subtotal, tax, total, position)`,
		inv.ClinicID, inv.ID, desc, qty, price, rate, sub, tax, total)
	if err != nil {
		return fmt.Errorf("insert invoice lines: %w", err)
	}
	return nil
}

const invoiceColumns = `i.id, i.clinic_id, i.number, i.display_number, i.patient_id, i.appointment_id, i.currency,
	i.subtotal, i.tax, i.total, i.amount_paid, i.amount_refunded, i.status, i.issued_at, i.updated_at`

func scanInvoice(row pgx.Row) (billing.Invoice, error) {
	var inv billing.Invoice
	err := row.Scan(&inv.ID, &inv.ClinicID, &inv.Number, &inv.DisplayNumber, &inv.PatientID, &inv.AppointmentID,
		&inv.Currency, &inv.Subtotal, &inv.Tax, &inv.Total, &inv.AmountPaid, &inv.AmountRefunded, &inv.Status,
		&inv.IssuedAt, &inv.UpdatedAt)
	if err != nil {
		return inv, err
	}
	inv.IssuedAt, inv.UpdatedAt = inv.IssuedAt.UTC(), inv.UpdatedAt.UTC()
	inv.BalanceDue = inv.Total - (inv.AmountPaid - inv.AmountRefunded)
	return inv, nil
}

func (q *Queries) invoice(ctx context.Context, clinicID, id uuid.UUID, lock string) (billing.Invoice, error) {
	inv, err := scanInvoice(q.db.QueryRow(ctx, `SELECT `+invoiceColumns+`
		FROM invoices i
		WHERE i.clinic_id = $1 AND i.id = $2`+lock, clinicID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, billing.ErrInvoiceNotFound.New("The clinic has no invoice with this id.")
	}
	if err != nil {
		return inv, fmt.Errorf("invoice: %w", err)
	}
	return inv, nil
}

// Invoice returns one invoice read whole: lines, payments and refunds.
func (q *Queries) Invoice(ctx context.Context, clinicID, id uuid.UUID) (billing.InvoiceDetail, error) {
	inv, err := q.invoice(ctx, clinicID, id, "")
	if err != nil {
		return billing.InvoiceDetail{}, err
	}
	rows, err := q.db.Query(ctx, `SELECT description, quantity, unit_price, tax_rate_bp, subtotal, tax, total
		FROM invoice_lines WHERE invoice_id = $1 ORDER BY position`, id)
	if err != nil {
		return billing.InvoiceDetail{}, fmt.Errorf("invoice lines: %w", err)
	}
	inv.Lines, err = pgx.CollectRows(rows, pgx.RowToStructByPos[billing.Line])
	if err != nil {
		return billing.InvoiceDetail{}, fmt.Errorf("invoice lines: %w", err)
	}
	payments, err := q.payments(ctx, clinicID, "invoice_id", id)
	if err != nil {
		return billing.InvoiceDetail{}, err
	}
	return billing.InvoiceDetail{Invoice: inv, Payments: payments}, nil
}

// InvoiceFilter narrows an invoice list; zero fields do not filter.
type InvoiceFilter struct {
	PatientID uuid.UUID
	Status    billing.InvoiceStatus
}

// ListInvoices returns a page of the clinic's invoices (without lines), in
// order of issue.
func (q *Queries) ListInvoices(ctx context.Context, clinicID uuid.UUID, f InvoiceFilter, page Page) (List[billing.Invoice], error) {
	rows, err := q.db.Query(ctx, `SELECT `+invoiceColumns+`
		FROM invoices i
		WHERE i.clinic_id = $1 AND i.id > $2
		AND ($4::uuid IS NULL OR i.patient_id = $4)
		AND ($5::text IS NULL OR i.status = $5)
		ORDER BY i.id LIMIT $3`,
		clinicID, page.After, page.Limit+1, nullable(f.PatientID), nullText(string(f.Status)))
	list, err := collectPage(rows, err, page, func(row pgx.CollectableRow) (billing.Invoice, error) { return scanInvoice(row) })
	if err != nil {
		return list, fmt.Errorf("list invoices: %w", err)
	}
	return list, nil
}

// UpdateInvoice locks the invoice, lets update change its balance, and
// writes it back. The invoices_balance constraint is the last guard of
// "paid minus refunded never exceeds the total". Inside a transaction only.
func (q *Queries) UpdateInvoice(ctx context.Context, clinicID, id uuid.UUID, update func(*billing.Invoice) error) (billing.Invoice, error) {
	inv, err := q.invoice(ctx, clinicID, id, " FOR UPDATE")
	if err != nil {
		return inv, err
	}
	if err := update(&inv); err != nil {
		return billing.Invoice{}, err
	}
	_, err = q.db.Exec(ctx, `UPDATE invoices SET amount_paid = $3, amount_refunded = $4, status = $5, updated_at = $6
		WHERE clinic_id = $1 AND id = $2`, clinicID, id, inv.AmountPaid, inv.AmountRefunded, inv.Status, inv.UpdatedAt)
	if constraintOf(err, checkViolation) == "invoices_balance" {
		return billing.Invoice{}, billing.ErrPaymentExceedsBalance.New("The payment would exceed the balance due.")
	}
	if err != nil {
		return billing.Invoice{}, fmt.Errorf("update invoice: %w", err)
	}
	return inv, nil
}

// InsertPayment stores a payment.
func (q *Queries) InsertPayment(ctx context.Context, p billing.Payment) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO payments (id, clinic_id, invoice_id, amount, amount_refunded, method, reference, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		p.ID, p.ClinicID, p.InvoiceID, p.Amount, p.AmountRefunded, p.Method, p.Reference, p.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// PaymentInvoice returns the id of the invoice a payment of the clinic pays.
func (q *Queries) PaymentInvoice(ctx context.Context, clinicID, paymentID uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	err := q.db.QueryRow(ctx, `SELECT invoice_id FROM payments WHERE clinic_id = $1 AND id = $2`, clinicID, paymentID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, billing.ErrPaymentNotFound.New("The clinic has no payment with this id.")
	}
	if err != nil {
		return id, fmt.Errorf("payment invoice: %w", err)
	}
	return id, nil
}

// Payment returns one payment with its refunds.
func (q *Queries) Payment(ctx context.Context, clinicID, id uuid.UUID) (billing.Payment, error) {
	list, err := q.payments(ctx, clinicID, "id", id)
	if err != nil {
		return billing.Payment{}, err
	}
	if len(list) == 0 {
		return billing.Payment{}, billing.ErrPaymentNotFound.New("The clinic has no payment with this id.")
	}
	return list[0], nil
}

// paymentFrom selects a payment with its invoice's currency.
const paymentFrom = `SELECT p.id, p.clinic_id, p.invoice_id, p.amount, p.amount_refunded, i.currency,
	p.method, p.reference, p.created_at
	FROM payments p JOIN invoices i ON i.id = p.invoice_id`

func scanPayment(row pgx.Row) (billing.Payment, error) {
	var p billing.Payment
	err := row.Scan(&p.ID, &p.ClinicID, &p.InvoiceID, &p.Amount, &p.AmountRefunded, &p.Currency, &p.Method, &p.Reference, &p.CreatedAt)
	p.CreatedAt, p.Refunds = p.CreatedAt.UTC(), []billing.Refund{}
	return p, err
}

// payments returns the clinic's payments whose column (id or invoice_id)
// is id, each with its refunds, in order.
func (q *Queries) payments(ctx context.Context, clinicID uuid.UUID, column string, id uuid.UUID) ([]billing.Payment, error) {
	rows, err := q.db.Query(ctx, paymentFrom+`
		WHERE p.clinic_id = $1 AND p.`+column+` = $2 ORDER BY p.id`, clinicID, id)
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	payments, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Payment, error) { return scanPayment(row) })
	if err != nil || len(payments) == 0 {
		return payments, err
	}
	ids := make([]uuid.UUID, len(payments))
	byID := make(map[uuid.UUID]*billing.Payment, len(payments))
	for i := range payments {
		ids[i], byID[payments[i].ID] = payments[i].ID, &payments[i]
	}
	rows, err = q.db.Query(ctx, `SELECT r.id, r.clinic_id, r.payment_id, r.amount, r.reason, r.created_at
		FROM refunds r WHERE r.clinic_id = $1 AND r.payment_id = ANY($2) ORDER BY r.id`, clinicID, ids)
	if err != nil {
		return nil, fmt.Errorf("refunds: %w", err)
	}
	refunds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Refund, error) {
		var r billing.Refund
		err := row.Scan(&r.ID, &r.ClinicID, &r.PaymentID, &r.Amount, &r.Reason, &r.CreatedAt)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("refunds: %w", err)
	}
	for _, r := range refunds {
		p := byID[r.PaymentID]
		r.InvoiceID, r.Currency = p.InvoiceID, p.Currency
		p.Refunds = append(p.Refunds, r)
	}
	return payments, nil
}

// UpdatePayment locks the payment, lets update change what was refunded of
// it, and writes it back. The payments_refunds constraint is the last guard
// of "refunds never exceed the payment". Inside a transaction only.
func (q *Queries) UpdatePayment(ctx context.Context, clinicID, id uuid.UUID, update func(*billing.Payment) error) error {
	p, err := scanPayment(q.db.QueryRow(ctx, paymentFrom+`
		WHERE p.clinic_id = $1 AND p.id = $2 FOR UPDATE OF p`, clinicID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.ErrPaymentNotFound.New("The clinic has no payment with this id.")
	}
	if err != nil {
		return fmt.Errorf("lock payment: %w", err)
	}
	if err := update(&p); err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `UPDATE payments SET amount_refunded = $3 WHERE clinic_id = $1 AND id = $2`, clinicID, id, p.AmountRefunded)
	if constraintOf(err, checkViolation) == "payments_refunds" {
		return billing.ErrRefundExceedsPayment.New("The refund would exceed the payment.")
	}
	if err != nil {
		return fmt.Errorf("update payment: %w", err)
	}
	return nil
}

// InsertRefund stores a refund.
func (q *Queries) InsertRefund(ctx context.Context, r billing.Refund) error {
	_, err := q.db.Exec(ctx, `INSERT INTO refunds (id, clinic_id, payment_id, amount, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.ClinicID, r.PaymentID, r.Amount, r.Reason, r.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert refund: %w", err)
	}
	return nil
}
