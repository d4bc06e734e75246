-- Why: finance reports a billing week (or a range of them) from the ledger alone. Each ledger
-- transaction names the week whose invoices or payouts caused it, so a report is one indexed
-- aggregate over that week's postings. Transactions written before this column are attributed
-- from their references.
ALTER TABLE ledger_transactions ADD COLUMN week TEXT;
UPDATE ledger_transactions SET week = reference WHERE kind = 'week.freeze';
UPDATE ledger_transactions SET week = (SELECT i.week FROM invoices i WHERE 'invoice-' || i.id = ledger_transactions.reference)
    WHERE kind IN ('charge', 'write_off');
UPDATE ledger_transactions SET week = (SELECT p.week FROM payouts p WHERE 'payout-' || p.id = ledger_transactions.reference)
    WHERE kind = 'transfer';
UPDATE ledger_transactions SET week = (SELECT i.week FROM refunds r JOIN invoices i ON i.id = r.invoice_id
    WHERE 'refund-' || r.id = ledger_transactions.reference) WHERE kind = 'refund';
CREATE INDEX ledger_transactions_week ON ledger_transactions (week, kind);
