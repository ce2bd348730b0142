//! The figures of both sides per performance × seat category: the
//! manager's counts and amounts, and the contingents (versions and places)
//! compared between the manager and the distributor.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Recon, Versions, count};
use crate::domain::DomainError;

impl Recon<'_> {
    /// The manager's counts and amounts, straight from its tables.
    pub(super) fn manager_figures(&mut self) -> Result<(), DomainError> {
        let m = self.m;
        let mut st = m.prepare(
            "SELECT a.performance, s.seat_category, a.state, count(*)
             FROM allotment_seat a JOIN seat s ON s.id = a.seat
             WHERE a.link = ?1 GROUP BY 1, 2, 3",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (p, c, state, n) = row?;
            let acc = self.acc(p, c);
            if state == "held" {
                acc.m.awaiting_ack += count(n);
            } else {
                acc.m.allotted += count(n);
            }
        }
        let mut st = m.prepare(
            "SELECT a.performance, z.seat_category, sum(a.quantity), sum(a.held)
             FROM allotment_zone a JOIN zone z ON z.id = a.zone
             WHERE a.link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (p, c, quantity, held) = row?;
            let acc = self.acc(p, c);
            acc.m.allotted += count(quantity);
            acc.m.awaiting_ack += count(held);
        }
        let mut st = m.prepare(
            "SELECT r.performance, coalesce(s.seat_category, z.seat_category), sum(r.quantity)
             FROM allotment_return r
             LEFT JOIN seat s ON s.id = r.seat
             LEFT JOIN zone z ON z.id = r.zone
             WHERE r.link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (p, c, n) = row?;
            self.acc(p, c).m.returned += count(n);
        }
        let mut st = m.prepare(
            "SELECT performance, seat_category, count(*), sum(state = 'cancelled'),
                    sum(state = 'valid' AND amount = 0)
             FROM ticket WHERE link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (p, c, sold, cancelled, free) = row?;
            let acc = self.acc(p, c);
            acc.m.sold += count(sold);
            acc.m.refunded += count(cancelled);
            acc.m.free += count(free);
        }
        let mut st = m.prepare(
            "SELECT performance, seat_category, vat_code, currency, sum(amount)
             FROM ticket WHERE link = ?1 AND state = 'valid' GROUP BY 1, 2, 3, 4",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (p, c, vat, currency, sum) = row?;
            *self.acc(p, c).m_amounts.entry((vat, currency)).or_default() += sum;
        }
        Ok(())
    }
}

impl Recon<'_> {
    /// Contingents: the distributor's places per row, the versions of both
    /// sides, and the places compared when both sides are at one version.
    pub(super) fn contingents(&mut self) -> Result<Vec<Versions>, DomainError> {
        // manager performance → (version, exported, acknowledged)
        let mut manager: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
        {
            let mut st = self.m.prepare(
                "SELECT performance, version, exported, acknowledged FROM allotment WHERE link = ?1",
            )?;
            let rows = st.query_map([self.link], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in rows {
                let (p, v) = row?;
                manager.insert(p, v);
            }
        }
        // manager performance → (local performance, applied version)
        let mut applied: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        {
            let snapshots: Vec<(i64, i64)> = self
                .d
                .prepare("SELECT performance, version FROM contingent_snapshot WHERE link = ?1 ORDER BY performance")?
                .query_map([self.link], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (local, version) in snapshots {
                if let Some(p) = self.translate("performance", local, None)? {
                    applied.insert(p, (local, version));
                }
            }
        }
        let performances: BTreeSet<i64> = manager.keys().chain(applied.keys()).copied().collect();
        let mut versions = Vec::new();
        for p in performances {
            let code = self.performance_code(p)?;
            let (version, exported, acknowledged) = manager.get(&p).copied().unwrap_or((0, 0, 0));
            let dist = applied.get(&p).copied();
            versions.push(Versions {
                performance: p,
                performance_code: code.clone(),
                version,
                exported,
                acknowledged,
                applied: dist.map(|(_, v)| v),
            });
            let distributor_seats = match dist {
                Some((local, _)) => Some(self.distributor_places(p, local)?),
                None => None,
            };
            let Some((_, a)) = dist else {
                if version > 0 {
                    let how = if exported < version {
                        format!("version {version} not exported yet (exported: {exported})")
                    } else {
                        format!("version {version} exported, not yet applied at the distributor")
                    };
                    self.fly(
                        "version-not-applied",
                        Some(p),
                        None,
                        format!("performance {p} {code}: contingent {how}"),
                    );
                }
                continue;
            };
            if !manager.contains_key(&p) {
                self.differ(
                    "contingent-unknown-at-manager",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied contingent version {a}, the manager has no allotment for this link"),
                );
                continue;
            }
            if a > exported {
                self.differ(
                    "version-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied contingent version {a}, the manager exported only version {exported} (current {version})"),
                );
                continue;
            }
            if acknowledged > a {
                self.differ(
                    "version-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the manager recorded the acknowledgement of version {acknowledged}, the distributor applied only version {a}"),
                );
            } else if acknowledged < a {
                self.fly(
                    "ack-pending",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied version {a}, its acknowledgement has not reached the manager (acknowledged: {acknowledged}); it travels in the next SALES file"),
                );
            }
            if a < version {
                self.fly(
                    "version-not-applied",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the manager is at contingent version {version} (exported {exported}), the distributor applied version {a}: places compared once it applies it"),
                );
                continue;
            }
            if let Some((seats, zones)) = distributor_seats {
                self.compare_places(p, &code, a, &seats, &zones)?;
            }
        }
        Ok(versions)
    }

    /// The distributor's contingent places of a performance in manager ids,
    /// counted into the rows: (seats, zone → quantity).
    #[allow(clippy::type_complexity)]
    fn distributor_places(
        &mut self,
        performance: i64,
        local_performance: i64,
    ) -> Result<(BTreeSet<i64>, BTreeMap<i64, i64>), DomainError> {
        let locals: Vec<i64> = self
            .d
            .prepare("SELECT seat FROM contingent_seat WHERE performance = ?1 ORDER BY seat")?
            .query_map([local_performance], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut seats = BTreeSet::new();
        for local in locals {
            let Some(seat) = self.translate("seat", local, None)? else {
                continue;
            };
            seats.insert(seat);
            match self.seat_category_of_seat(seat)? {
                Some(c) => self.acc(performance, c).d.in_contingent += 1,
                None => self.differ(
                    "unmapped",
                    Some(performance),
                    None,
                    format!("the distributor's seat {local} maps to manager seat {seat}, which the manager does not have"),
                ),
            }
        }
        let zones_local: Vec<(i64, i64)> = self
            .d
            .prepare(
                "SELECT zone, quantity FROM contingent_zone WHERE performance = ?1 ORDER BY zone",
            )?
            .query_map([local_performance], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut zones = BTreeMap::new();
        for (local, quantity) in zones_local {
            let Some(zone) = self.translate("zone", local, None)? else {
                continue;
            };
            *zones.entry(zone).or_default() += quantity;
            match self.seat_category_of_zone(zone)? {
                Some(c) => self.acc(performance, c).d.in_contingent += count(quantity),
                None => self.differ(
                    "unmapped",
                    Some(performance),
                    None,
                    format!("the distributor's zone {local} maps to manager zone {zone}, which the manager does not have"),
                ),
            }
        }
        Ok((seats, zones))
    }

    /// Both sides at one version: the places must be the same.
    fn compare_places(
        &mut self,
        p: i64,
        code: &str,
        version: i64,
        distributor_seats: &BTreeSet<i64>,
        distributor_zones: &BTreeMap<i64, i64>,
    ) -> Result<(), DomainError> {
        let allotted: BTreeSet<i64> = self
            .m
            .prepare("SELECT seat FROM allotment_seat WHERE link = ?1 AND performance = ?2 AND state = 'allotted' ORDER BY seat")?
            .query_map((self.link, p), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let missing: Vec<i64> = allotted.difference(distributor_seats).copied().collect();
        let extra: Vec<i64> = distributor_seats.difference(&allotted).copied().collect();
        if !missing.is_empty() {
            let labels = self.seat_labels(&missing)?;
            self.differ(
                "seat-missing-at-distributor",
                Some(p),
                None,
                format!("performance {p} {code}: {} seat(s) allotted at the manager are not in the distributor's contingent at version {version}: {labels}", missing.len()),
            );
        }
        if !extra.is_empty() {
            let labels = self.seat_labels(&extra)?;
            self.differ(
                "seat-extra-at-distributor",
                Some(p),
                None,
                format!("performance {p} {code}: {} seat(s) in the distributor's contingent at version {version} are not allotted to the link at the manager: {labels}", extra.len()),
            );
        }
        let zones: BTreeMap<i64, i64> = self
            .m
            .prepare(
                "SELECT zone, quantity FROM allotment_zone WHERE link = ?1 AND performance = ?2",
            )?
            .query_map((self.link, p), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let all: BTreeSet<i64> = zones
            .keys()
            .chain(distributor_zones.keys())
            .copied()
            .collect();
        for z in all {
            let (mq, dq) = (
                zones.get(&z).copied().unwrap_or(0),
                distributor_zones.get(&z).copied().unwrap_or(0),
            );
            if mq != dq {
                self.differ(
                    "zone-quantity-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: zone {z} has {mq} place(s) allotted at the manager, {dq} in the distributor's contingent at version {version}"),
                );
            }
        }
        Ok(())
    }

    fn seat_labels(&self, seats: &[i64]) -> Result<String, DomainError> {
        const SHOWN: usize = 10;
        let mut out = Vec::new();
        for s in seats.iter().take(SHOWN) {
            out.push(self.seat_label(*s)?);
        }
        let mut text = out.join(", ");
        if seats.len() > SHOWN {
            let _ = write!(text, " and {} more", seats.len() - SHOWN);
        }
        Ok(text)
    }
}
