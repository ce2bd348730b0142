-- The floor anchor of the sales benchmark (benches/suite, docs/performance.md):
-- the rows stxd writes for a SALES payload, written by the sqlite3 shell
-- into a copy of the manager's store, set-based, with no check at all.
--
-- The suite runs it after `.import` of the payload into the temporary table
-- `staged` (its columns as the file's, `ord` for `order`). What it writes is
-- what a booked file leaves, in the store's own schema (its indexes, unique
-- keys and foreign keys enforced): one order per order reference, one
-- ticket per sale, the refunds' tickets cancelled, one received line per
-- line. What it leaves out is everything stxd decides: no line is looked up
-- before it is written, nothing is priced, no contingent is read, no digest
-- is computed (an integer of the same width stands in), no message is kept.
-- So no importer of this store can be faster than this script; how far stxd
-- is from it is what its checks and its per-line statements cost.

BEGIN;

INSERT INTO run (kind, link, file, started, status)
VALUES ('bench-floor', 'opera-tourism', 'floor', '2026-12-01T00:00:00Z', 'running');

INSERT INTO sales_order (link, reference, channel, point_of_sale, payment_method, contact, created)
SELECT 'opera-tourism', ord,
       (SELECT channel FROM external_sales_interface ORDER BY id LIMIT 1),
       (SELECT id FROM point_of_sale ORDER BY id LIMIT 1),
       (SELECT id FROM payment_method ORDER BY id LIMIT 1),
       (SELECT id FROM contact ORDER BY id LIMIT 1),
       0
  FROM staged WHERE operation = 'SALE' GROUP BY ord ORDER BY min(line);

-- The tickets take the ids after the highest one, in line order.
CREATE TEMP TABLE first_ticket AS SELECT coalesce(max(id), 0) AS id FROM ticket;

INSERT INTO ticket (sales_order, link, line, performance, seat, zone, seat_category,
                    tariff_type, audience_subcategory, amount, currency, vat_code,
                    sold_at, state)
SELECT o.id, 'opera-tourism', s.line, s.performance,
       (SELECT se.id FROM seat_row r JOIN seat se ON se.row = r.id
         WHERE r.block = s.block AND r.code = s.row AND se.number = s.seat),
       nullif(s.zone, ''), s.seat_category, s.tariff_type, s.audience_subcategory,
       s.amount, s.currency, s.vat_code, unixepoch(s.time) * 1000000, 'valid'
  FROM staged s JOIN sales_order o ON o.link = 'opera-tourism' AND o.reference = s.ord
 WHERE s.operation = 'SALE'
 ORDER BY s.line;

CREATE TEMP TABLE sold (line INTEGER PRIMARY KEY, ticket INTEGER NOT NULL);
INSERT INTO sold SELECT line, id FROM ticket WHERE id > (SELECT id FROM first_ticket);

INSERT INTO sales_line (link, line, operation, status, run, position, record, digest, ticket)
SELECT 'opera-tourism', s.line, s.operation, 'booked', (SELECT max(id) FROM run), s.line + 1,
       '', s.line * 7919,
       (SELECT ticket FROM sold WHERE sold.line = coalesce(nullif(s.refund_of, ''), s.line))
  FROM staged s
 ORDER BY s.line;

UPDATE ticket SET state = 'cancelled', refund_line = r.line, cancelled_at = unixepoch(r.time) * 1000000
  FROM (SELECT s.line, s.time, sold.ticket FROM staged s JOIN sold ON sold.line = s.refund_of
         WHERE s.operation = 'REFUND') AS r
 WHERE ticket.id = r.ticket;

UPDATE run SET status = 'ok', ended = '2026-12-01T00:00:01Z' WHERE id = (SELECT max(id) FROM run);

COMMIT;
