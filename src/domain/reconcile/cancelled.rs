//! Cancelled performances, shown apart: a cancelled performance's tickets
//! are to be refunded, not sold, so the report says, for each one the link
//! allotted or sold, how many of its tickets the manager still holds valid
//! (to refund), how many were refunded, and how many of the distributor's
//! sales of it are still active (a dismissed sale included: the customer is
//! refunded all the same). Tickets still to refund are not a difference:
//! the refunds are ops' work in progress (`stxd sale refund --performance P
//! --all` at the distributor).

use super::report::Cancelled;
use super::{DomainError, Recon, count};

impl Recon<'_> {
    /// The link's cancelled performances (those it allotted or sold), in id
    /// order.
    pub(super) fn cancelled(&self) -> Result<Vec<Cancelled>, DomainError> {
        let found: Vec<(i64, String, Option<String>, i64, i64)> = self
            .m
            .prepare(
                "SELECT p.id, p.code, c.changed,
                        (SELECT count(*) FROM ticket t WHERE t.link = ?1 AND t.performance = p.id
                            AND t.state = 'valid'),
                        (SELECT count(*) FROM ticket t WHERE t.link = ?1 AND t.performance = p.id
                            AND t.state = 'cancelled')
                   FROM performance p
                   LEFT JOIN performance_state_change c
                     ON c.performance = p.id AND c.state = 'cancelled'
                  WHERE p.state = 'cancelled'
                    AND (EXISTS (SELECT 1 FROM allotment a WHERE a.link = ?1 AND a.performance = p.id)
                         OR EXISTS (SELECT 1 FROM ticket t WHERE t.link = ?1 AND t.performance = p.id))
                  ORDER BY p.id",
            )?
            .query_map([self.link], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(found.len());
        for (performance, performance_code, cancelled_at, valid, refunded) in found {
            let active: i64 = self
                .d
                .prepare_cached(
                    "SELECT count(*) FROM sale_line s
                      WHERE s.link = ?1 AND s.operation = 'SALE' AND s.active = 1
                        AND s.performance IN (
                            SELECT local_id FROM mapping WHERE manager = ?2 AND kind = 'performance'
                               AND manager_id = ?3 AND status = 'filled')",
                )?
                .query_row((self.link, self.manager_code, performance), |r| r.get(0))?;
            out.push(Cancelled {
                performance,
                performance_code,
                cancelled_at,
                to_refund: count(valid),
                refunded: count(refunded),
                active_at_distributor: count(active),
            });
        }
        Ok(out)
    }
}
