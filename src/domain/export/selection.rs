//! The selection shared by both exports: the link's channel, its product,
//! activity and audience profiles, and the products, performances and
//! prices it may sell.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use super::{Audiences, Channel, ExportError, Report, Scope, Selection, label};
use crate::format::catalogue::PerformanceState;

fn channel(conn: &Connection, scope: &Scope<'_>) -> Result<Channel, ExportError> {
    let found: Option<(i64, String, i64)> = conn
        .prepare_cached(
            "SELECT id, distributor, channel FROM external_sales_interface WHERE login = ?1",
        )?
        .query_row([scope.login], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((interface, distributor, channel)) = found else {
        return Err(ExportError::Setup {
            code: "no-interface",
            problem: format!(
                "no external sales interface has the login {:?} of this link",
                scope.login
            ),
            fix: format!(
                "add one for distributor {} on the stx_file channel (setup file, [[external_sales_interface]]), or fix the link's login",
                scope.distributor
            ),
        });
    };
    if distributor != scope.distributor {
        return Err(ExportError::Setup {
            code: "interface-distributor",
            problem: format!(
                "external sales interface {interface} (login {:?}) is for distributor {distributor}, not {}",
                scope.login, scope.distributor
            ),
            fix: "fix the interface's distributor or the link's login".to_owned(),
        });
    }
    let (ccode, kind, in_operation): (String, String, i64) = conn
        .prepare_cached("SELECT code, kind, in_operation FROM sales_channel WHERE id = ?1")?
        .query_row([channel], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let label = format!("sales channel {channel} {ccode}");
    if kind != "stx_file" {
        return Err(ExportError::Setup {
            code: "channel-kind",
            problem: format!(
                "{label} of external sales interface {interface} is of kind {kind}, not stx_file"
            ),
            fix: "point the interface at a channel of kind stx_file".to_owned(),
        });
    }
    if in_operation != 1 {
        return Err(ExportError::Setup {
            code: "channel-not-in-operation",
            problem: format!("{label} is not in operation"),
            fix: "put the channel in operation (setup file, in_operation = true) and export again"
                .to_owned(),
        });
    }
    Ok(Channel { id: channel, label })
}

pub(super) fn id_set(
    conn: &Connection,
    sql: &str,
    param: i64,
) -> Result<BTreeSet<i64>, ExportError> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([param], |r| r.get::<_, i64>(0))?;
    let mut out = BTreeSet::new();
    for r in rows {
        out.insert(r?);
    }
    Ok(out)
}

/// The audience subcategories the channel's profiles allow for a product.
fn product_audiences(
    conn: &Connection,
    channel: i64,
    product: i64,
) -> Result<Audiences, ExportError> {
    let unrestricted: bool = conn
        .prepare_cached(
            "SELECT EXISTS (
                 SELECT 1 FROM product_profile pp
                 JOIN product_profile_product ppp ON ppp.product_profile = pp.id
                 WHERE pp.channel = ?1 AND ppp.product = ?2
                   AND NOT EXISTS (SELECT 1 FROM product_profile_audience a
                                   WHERE a.product_profile = pp.id))",
        )?
        .query_row([channel, product], |r| r.get(0))?;
    if unrestricted {
        return Ok(Audiences::All);
    }
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT a.audience_subcategory FROM product_profile pp
         JOIN product_profile_product ppp ON ppp.product_profile = pp.id
         JOIN product_profile_audience a ON a.product_profile = pp.id
         WHERE pp.channel = ?1 AND ppp.product = ?2",
    )?;
    let rows = st.query_map([channel, product], |r| r.get::<_, i64>(0))?;
    let mut out = BTreeSet::new();
    for r in rows {
        out.insert(r?);
    }
    Ok(Audiences::Only(out))
}

fn audience_list(conn: &Connection, a: &Audiences) -> Result<String, ExportError> {
    match a {
        Audiences::All => Ok("all".to_owned()),
        Audiences::Only(s) if s.is_empty() => Ok("none".to_owned()),
        Audiences::Only(s) => {
            let mut out = Vec::new();
            for v in s {
                out.push(label(conn, "audience_subcategory", *v)?);
            }
            Ok(out.join(", "))
        }
    }
}

/// A product of the store, with its activity's and rate table's codes and
/// states, as the selection reads it.
struct ProductRow {
    pid: i64,
    pcode: String,
    activity: i64,
    rate_table: i64,
    state: String,
    acode: String,
    rcode: String,
    rstate: String,
}

impl ProductRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProductRow> {
        Ok(ProductRow {
            pid: row.get(0)?,
            pcode: row.get(1)?,
            activity: row.get(2)?,
            rate_table: row.get(3)?,
            state: row.get(4)?,
            acode: row.get(5)?,
            rcode: row.get(6)?,
            rstate: row.get(7)?,
        })
    }
}

/// What the channel and the link allow a product to be.
struct Allowed<'a> {
    /// The channel, as messages name it.
    channel: &'a str,
    /// The products of the channel's product profiles.
    products: &'a BTreeSet<i64>,
    /// The link's product list, when it has one.
    link: Option<&'a BTreeSet<i64>>,
    /// The activities of the channel's activity profiles.
    activities: &'a BTreeSet<i64>,
}

impl Allowed<'_> {
    /// Why a product is left out, checked in this order: its profiles, the
    /// link's list, its activity, its state, its rate table's state.
    fn refusal(&self, p: &ProductRow) -> Option<String> {
        if !self.products.contains(&p.pid) {
            return Some(format!("not in the product profiles of {}", self.channel));
        }
        if let Some(list) = self.link
            && !list.contains(&p.pid)
        {
            return Some("not in the link's product list (products in the config)".to_owned());
        }
        if !self.activities.contains(&p.activity) {
            return Some(format!(
                "its activity {} {} is not in the activity profiles of {}",
                p.activity, p.acode, self.channel
            ));
        }
        if p.state != "active" {
            return Some(format!("its state is {}, not active", p.state));
        }
        if p.rstate != "active" {
            return Some(format!(
                "its rate table {} {} is {}, not active",
                p.rate_table, p.rcode, p.rstate
            ));
        }
        None
    }
}

/// The product's performances in operation, cancelled or closed (the last
/// two sent with their state, so the distributor stops selling them); a
/// planned one is left out (and remembered as reported, so the catalogue
/// does not report it again).
fn in_operation(
    conn: &Connection,
    pid: i64,
    object: &str,
    report: &mut Report,
    reported: &mut BTreeSet<i64>,
) -> Result<Vec<i64>, ExportError> {
    let mut kept = Vec::new();
    {
        let mut ps = conn.prepare_cached(
            "SELECT f.id, f.code, f.state FROM product_performance pp
             JOIN performance f ON f.id = pp.performance
             WHERE pp.product = ?1 ORDER BY f.id",
        )?;
        let mut perf_rows = ps.query([pid])?;
        while let Some(r) = perf_rows.next()? {
            let fid: i64 = r.get(0)?;
            let fcode: String = r.get(1)?;
            let fstate: String = r.get(2)?;
            if fstate == PerformanceState::InOperation.as_str()
                || fstate == PerformanceState::Cancelled.as_str()
                || fstate == PerformanceState::Closed.as_str()
            {
                kept.push(fid);
            } else {
                reported.insert(fid);
                report.exclude(
                    format!("performance {fid} {fcode} of {object}"),
                    format!("it is {fstate}, not in operation"),
                );
            }
        }
    }
    Ok(kept)
}

/// The audience subcategories the product's profiles allow, when its rate
/// table prices at least one of them (`None`: the product is left out);
/// each allowed one without a price is reported.
fn priced_audiences(
    conn: &Connection,
    channel: i64,
    pid: i64,
    (rate_table, rcode): (i64, &str),
    object: &str,
    report: &mut Report,
) -> Result<Option<Audiences>, ExportError> {
    let allowed = product_audiences(conn, channel, pid)?;
    let priced = id_set(
        conn,
        "SELECT DISTINCT audience_subcategory FROM price WHERE rate_table = ?1",
        rate_table,
    )?;
    if !priced.iter().any(|a| allowed.allows(*a)) {
        report.exclude(
            object,
            format!(
                "its rate table {rate_table} {rcode} has no price for the audience subcategories its profiles allow ({})",
                audience_list(conn, &allowed)?
            ),
        );
        return Ok(None);
    }
    if let Audiences::Only(set) = &allowed {
        for a in set.iter().filter(|a| !priced.contains(a)) {
            report.exclude(
                format!("{} for {object}", label(conn, "audience_subcategory", *a)?),
                format!(
                    "allowed on the channel, but rate table {rate_table} {rcode} has no price for it"
                ),
            );
        }
    }
    Ok(Some(allowed))
}

pub(super) fn select(conn: &Connection, scope: &Scope<'_>) -> Result<Selection, ExportError> {
    let channel = channel(conn, scope)?;
    let profile_products = id_set(
        conn,
        "SELECT DISTINCT ppp.product FROM product_profile pp
         JOIN product_profile_product ppp ON ppp.product_profile = pp.id
         WHERE pp.channel = ?1",
        channel.id,
    )?;
    let profile_activities = id_set(
        conn,
        "SELECT DISTINCT apa.activity FROM activity_profile ap
         JOIN activity_profile_activity apa ON apa.activity_profile = ap.id
         WHERE ap.channel = ?1",
        channel.id,
    )?;
    let link_products: Option<BTreeSet<i64>> = scope
        .products
        .map(|ps| ps.iter().map(|p| p.get()).collect());

    let mut report = Report::default();
    let mut products = BTreeSet::new();
    let mut product_performances = BTreeMap::new();
    let mut rate_tables: BTreeMap<i64, Audiences> = BTreeMap::new();
    let mut activities = BTreeSet::new();
    let mut allowed_audiences = Audiences::Only(BTreeSet::new());
    let mut reported_performances = BTreeSet::new();
    let rules = Allowed {
        channel: &channel.label,
        products: &profile_products,
        link: link_products.as_ref(),
        activities: &profile_activities,
    };

    let mut st = conn.prepare_cached(
        "SELECT p.id, p.code, p.activity, p.rate_table, p.state, a.code, r.code, r.state
         FROM product p JOIN activity a ON a.id = p.activity
         JOIN rate_table r ON r.id = p.rate_table
         ORDER BY p.id",
    )?;
    let mut rows = st.query([])?;
    while let Some(row) = rows.next()? {
        let p = ProductRow::read(row)?;
        let object = format!("product {} {}", p.pid, p.pcode);
        if let Some(reason) = rules.refusal(&p) {
            report.exclude(object, reason);
            continue;
        }
        let ProductRow {
            pid,
            activity,
            rate_table,
            rcode,
            ..
        } = p;

        // Performances in operation.
        let kept = in_operation(conn, pid, &object, &mut report, &mut reported_performances)?;
        if kept.is_empty() {
            report.exclude(
                object,
                "none of its performances is in operation, cancelled or closed (all planned)",
            );
            continue;
        }

        // Prices for the audience subcategories the profiles allow.
        let Some(allowed) = priced_audiences(
            conn,
            channel.id,
            pid,
            (rate_table, &rcode),
            &object,
            &mut report,
        )?
        else {
            continue;
        };

        products.insert(pid);
        activities.insert(activity);
        allowed_audiences = match (&allowed_audiences, &allowed) {
            (Audiences::All, _) | (_, Audiences::All) => Audiences::All,
            (Audiences::Only(a), Audiences::Only(b)) => {
                Audiences::Only(a.union(b).copied().collect())
            }
        };
        let filter = match rate_tables.get(&rate_table) {
            Some(prev) => prev.intersect(&allowed),
            None => allowed,
        };
        rate_tables.insert(rate_table, filter);
        product_performances.insert(pid, kept);
    }
    drop(rows);

    if products.is_empty() {
        return Err(ExportError::NothingToSell(report));
    }
    let performances = product_performances.values().flatten().copied().collect();
    Ok(Selection {
        channel,
        products,
        product_performances,
        performances,
        activities,
        rate_tables,
        allowed_audiences,
        profile_activities,
        reported_performances,
        report,
    })
}
