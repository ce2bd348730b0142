//! The manager's exports: what one link's `stx_file` channel may sell, as
//! catalogue and seat-plan records.
//!
//! Takes a read connection (the caller's transaction) and the link's
//! [`Scope`]; pushes records one at a time into the caller's `emit` closure,
//! in the document order the formats require, and returns a [`Report`]: what
//! was emitted per record type and every object left out, with its reason.
//! Nothing is written to the store and no file is touched here: the outbound
//! export streams `emit` into a payload writer.
//!
//! The selection (shared by both exports): the external sales interface whose
//! login is the link's names the channel, which must be of kind `stx_file` and
//! in operation. A product is exported when it is in one of the channel's
//! product profiles, in the link's product list (when the link has one), its
//! activity in one of the channel's activity profiles, it and its rate table
//! are active, at least one of its performances is in operation and its rate
//! table has a price for at least one audience subcategory its profiles
//! allow. Only prices of allowed audience subcategories are exported; a
//! profile without audience subcategories allows them all. The reference
//! objects exported are exactly those the exported records name.
//!
//! A selection that leaves no product is refused ([`ExportError::NothingToSell`]):
//! a catalogue is a full snapshot, so an empty one would withdraw every
//! product at the distributor, which is never what a link restricted to the
//! wrong products means.
//!
//! Memory holds id sets (products, performances, configurations, reference
//! ids), never a table's rows: every table is read with a prepared statement
//! in id order while records are emitted.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use crate::format::catalogue::{self, PerformanceState};
use crate::format::{WriteError, seatplan};
use crate::ident::{Code, Name, TechId};
use crate::money::Currency;

/// Which link the export is for, as the manager's store knows it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The distributor's institution code.
    pub distributor: &'a str,
    /// `OPERATOR@DISTRIBUTOR`: the external sales interface's login.
    pub login: &'a str,
    /// The link's product list (manager ids), when it is restricted.
    pub products: Option<&'a [TechId]>,
}

/// An object left out of an export, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exclusion {
    /// `product 1902 CARM-BIL`, `performance 1703 TRAV0120`…
    pub object: String,
    pub reason: String,
}

/// What an export emitted and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Records emitted per type (`products`, `seats`…), in first-emitted order.
    pub included: Vec<(String, u64)>,
    pub excluded: Vec<Exclusion>,
}

impl Report {
    /// One more record of type `label`.
    pub(super) fn count(&mut self, label: &str) {
        match self.included.iter_mut().find(|(l, _)| l == label) {
            Some((_, n)) => *n += 1,
            None => self.included.push((label.to_owned(), 1)),
        }
    }

    fn exclude(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.excluded.push(Exclusion {
            object: object.into(),
            reason: reason.into(),
        });
    }

    /// Records emitted of one type (0 when none).
    pub fn included(&self, label: &str) -> u64 {
        self.included
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// Records emitted in all.
    pub fn total(&self) -> u64 {
        self.included.iter().map(|(_, n)| n).sum()
    }
}

/// Why an export was refused. Nothing was emitted when the setup or the
/// selection is refused; a write or data error may come after some records.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The setup does not allow the export: the message says what to fix.
    #[error("{problem}; {fix}")]
    Setup {
        code: &'static str,
        problem: String,
        fix: String,
    },
    /// Every product was left out; the report says why, object by object.
    #[error(
        "nothing to sell: every product was left out ({} exclusion(s), see the run's log); fix the channel's profiles, the performances' states or the link's product list",
        .0.excluded.len()
    )]
    NothingToSell(Report),
    /// A stored value cannot be written (the database was edited by hand?).
    #[error("{object}: {problem}; fix it in the master data and load it again")]
    BadData { object: String, problem: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ExportError {
    /// Stable short code, for run logs.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Setup { code, .. } => code,
            ExportError::NothingToSell(_) => "nothing-to-sell",
            ExportError::BadData { .. } => "bad-data",
            ExportError::Write(_) => "write-failed",
            ExportError::Sql(_) | ExportError::Store(_) => "database",
        }
    }

    /// The exclusions behind a refusal, when there are some.
    pub fn report(&self) -> Option<&Report> {
        match self {
            ExportError::NothingToSell(r) => Some(r),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ helpers

/// A stored value the export cannot write.
pub(super) fn bad(object: impl Into<String>, problem: impl Into<String>) -> ExportError {
    ExportError::BadData {
        object: object.into(),
        problem: problem.into(),
    }
}

fn id(v: i64, object: &str) -> Result<TechId, ExportError> {
    TechId::new(v).map_err(|e| bad(object, e.to_string()))
}

fn code(v: &str, object: &str) -> Result<Code, ExportError> {
    Code::new(v).map_err(|e| bad(object, e.to_string()))
}

fn name(v: &str, object: &str) -> Result<Name, ExportError> {
    Name::new(v).map_err(|e| bad(object, e.to_string()))
}

fn date(v: &str, object: &str) -> Result<time::Date, ExportError> {
    time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(|e| {
        bad(
            object,
            format!("expected a date YYYY-MM-DD, found {v:?}: {e}"),
        )
    })
}

fn emit_with<T>(
    emit: &mut dyn FnMut(&T) -> Result<(), WriteError>,
    report: &mut Report,
    label: &str,
    item: &T,
) -> Result<(), ExportError> {
    emit(item)?;
    report.count(label);
    Ok(())
}

/// The audience subcategories a product (or a rate table) may be sold to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audiences {
    All,
    Only(BTreeSet<i64>),
}

impl Audiences {
    fn allows(&self, a: i64) -> bool {
        match self {
            Audiences::All => true,
            Audiences::Only(s) => s.contains(&a),
        }
    }

    fn intersect(&self, other: &Audiences) -> Audiences {
        match (self, other) {
            (Audiences::All, x) | (x, Audiences::All) => x.clone(),
            (Audiences::Only(a), Audiences::Only(b)) => {
                Audiences::Only(a.intersection(b).copied().collect())
            }
        }
    }
}

/// A `kind id CODE` label for an object of `table`, read from the store.
fn label(conn: &Connection, table: &'static str, v: i64) -> Result<String, ExportError> {
    let what = table.replace('_', " ");
    let sql = format!("SELECT code FROM {table} WHERE id = ?1");
    let c: Option<String> = conn
        .prepare_cached(&sql)?
        .query_row([v], |r| r.get(0))
        .optional()?;
    Ok(match c {
        Some(c) => format!("{what} {v} {c}"),
        None => format!("{what} {v}"),
    })
}

// ---------------------------------------------------------------- selection

/// The link's channel, as found through its external sales interface.
struct Channel {
    id: i64,
    label: String,
}

/// What the channel sells to this link.
struct Selection {
    channel: Channel,
    /// Exported products, in id order.
    products: BTreeSet<i64>,
    /// Exported performances of each exported product.
    product_performances: BTreeMap<i64, Vec<i64>>,
    performances: BTreeSet<i64>,
    activities: BTreeSet<i64>,
    /// Exported rate tables and the audience subcategories their exported
    /// prices may have.
    rate_tables: BTreeMap<i64, Audiences>,
    /// Audience subcategories allowed for at least one exported product.
    allowed_audiences: Audiences,
    /// Activities of the channel's activity profiles.
    profile_activities: BTreeSet<i64>,
    /// Performances already named in the report.
    reported_performances: BTreeSet<i64>,
    report: Report,
}

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

fn id_set(conn: &Connection, sql: &str, param: i64) -> Result<BTreeSet<i64>, ExportError> {
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

/// The product's performances in operation; the others are left out (and
/// remembered as reported, so the catalogue does not report them again).
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
            if fstate == PerformanceState::InOperation.as_str() {
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

fn select(conn: &Connection, scope: &Scope<'_>) -> Result<Selection, ExportError> {
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
            report.exclude(object, "none of its performances is in operation");
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

// ---------------------------------------------------------------- catalogue

/// Streams the catalogue the link's channel may sell into `emit`, in section
/// order. See the module documentation for the selection.
pub fn catalogue(
    conn: &Connection,
    scope: &Scope<'_>,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    let mut sel = select(conn, scope)?;
    let mut report = std::mem::take(&mut sel.report);
    let named = named(conn, &sel)?;
    emit_seasons(conn, &named, emit, &mut report)?;
    emit_vat_codes(conn, &named, emit, &mut report)?;
    emit_references(conn, &sel, &named, emit, &mut report)?;
    emit_activities(conn, &sel, emit, &mut report)?;
    emit_logical_configurations(conn, &named, emit, &mut report)?;
    emit_performances(conn, &sel, emit, &mut report)?;
    emit_rate_tables(conn, &sel, emit, &mut report)?;
    emit_products(conn, &sel, emit, &mut report)?;
    Ok(report)
}

/// What the exported records name beyond the selection: seasons and VAT
/// codes of the activities, logical configurations of the performances,
/// and the seat categories, tariff types and audience subcategories of the
/// prices exported and of those logical configurations.
struct Named {
    seasons: BTreeSet<i64>,
    vat_codes: BTreeSet<i64>,
    logical_configurations: BTreeSet<i64>,
    tariff_types: BTreeSet<i64>,
    audiences: BTreeSet<i64>,
    seat_categories: BTreeSet<i64>,
}

/// Reads what the selected records name.
fn named(conn: &Connection, sel: &Selection) -> Result<Named, ExportError> {
    let mut seasons = BTreeSet::new();
    let mut vat_codes = BTreeSet::new();
    for a in &sel.activities {
        let (s, v): (i64, i64) = conn
            .prepare_cached("SELECT season, vat_code FROM activity WHERE id = ?1")?
            .query_row([a], |r| Ok((r.get(0)?, r.get(1)?)))?;
        seasons.insert(s);
        vat_codes.insert(v);
    }
    let mut logical_configurations = BTreeSet::new();
    for p in &sel.performances {
        let l: i64 = conn
            .prepare_cached("SELECT logical_configuration FROM performance WHERE id = ?1")?
            .query_row([p], |r| r.get(0))?;
        logical_configurations.insert(l);
    }
    let mut tariff_types = BTreeSet::new();
    let mut audiences = BTreeSet::new();
    let mut seat_categories = BTreeSet::new();
    for (rt, allowed) in &sel.rate_tables {
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT seat_category, tariff_type, audience_subcategory
             FROM price WHERE rate_table = ?1",
        )?;
        let mut rows = st.query([rt])?;
        while let Some(r) = rows.next()? {
            let (sc, tt, au): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if allowed.allows(au) {
                seat_categories.insert(sc);
                tariff_types.insert(tt);
                audiences.insert(au);
            }
        }
    }
    for l in &logical_configurations {
        seat_categories.extend(id_set(
            conn,
            "SELECT seat_category FROM logical_seat_category WHERE logical_configuration = ?1",
            *l,
        )?);
    }
    Ok(Named {
        seasons,
        vat_codes,
        logical_configurations,
        tariff_types,
        audiences,
        seat_categories,
    })
}

/// The seasons the exported activities are in; the others left out.
fn emit_seasons(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st =
        conn.prepare_cached("SELECT id, code, name, start_date, end_date FROM season ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (sid, c, n, s, e): (i64, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("season {sid} {c}");
        if !named.seasons.contains(&sid) {
            report.exclude(object, "no exported activity is in this season");
            continue;
        }
        let item = Item::Season(catalogue::Season {
            id: id(sid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            start: date(&s, &object)?,
            end: date(&e, &object)?,
        });
        emit_with(emit, report, "seasons", &item)?;
    }
    Ok(())
}

/// The VAT codes the exported activities use; the others left out.
fn emit_vat_codes(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached("SELECT id, code, name, rate_bp FROM vat_code ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (vid, c, n, rate): (i64, String, String, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let object = format!("VAT code {vid} {c}");
        if !named.vat_codes.contains(&vid) {
            report.exclude(object, "no exported activity uses it");
            continue;
        }
        let item = Item::VatCode(catalogue::VatCode {
            id: id(vid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            rate_bp: u32::try_from(rate)
                .map_err(|_| bad(&object, format!("rate {rate} is out of range")))?,
        });
        emit_with(emit, report, "VAT codes", &item)?;
    }
    Ok(())
}

/// Tariff types, audience subcategories and seat categories (id, code, name) the exported records name; the others left out, with the reason.
fn emit_references(
    conn: &Connection,
    sel: &Selection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let references: [(&str, &str, &str, &BTreeSet<i64>); 3] = [
        (
            "tariff_type",
            "tariff type",
            "tariff types",
            &named.tariff_types,
        ),
        (
            "audience_subcategory",
            "audience subcategory",
            "audience subcategories",
            &named.audiences,
        ),
        (
            "seat_category",
            "seat category",
            "seat categories",
            &named.seat_categories,
        ),
    ];
    for (table, what, plural, used) in references {
        let mut st =
            conn.prepare_cached(&format!("SELECT id, code, name FROM {table} ORDER BY id"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (rid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let object = format!("{what} {rid} {c}");
            if !used.contains(&rid) {
                let reason =
                    if table == "audience_subcategory" && !sel.allowed_audiences.allows(rid) {
                        format!(
                            "not allowed on the product profiles of {}",
                            sel.channel.label
                        )
                    } else if table == "seat_category" {
                        "no exported price or logical seat category uses it".to_owned()
                    } else {
                        "no exported price uses it".to_owned()
                    };
                report.exclude(object, reason);
                continue;
            }
            let reference = catalogue::Reference {
                id: id(rid, &object)?,
                code: code(&c, &object)?,
                name: name(&n, &object)?,
            };
            let item = match table {
                "tariff_type" => Item::TariffType(reference),
                "audience_subcategory" => Item::AudienceSubcategory(reference),
                _ => Item::SeatCategory(reference),
            };
            emit_with(emit, report, plural, &item)?;
        }
    }
    Ok(())
}

/// The activities of the exported products; the others left out.
fn emit_activities(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st =
        conn.prepare_cached("SELECT id, code, name, season, vat_code FROM activity ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (aid, c, n, s, v): (i64, String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("activity {aid} {c}");
        if !sel.activities.contains(&aid) {
            let reason = if sel.profile_activities.contains(&aid) {
                "no exported product is of this activity".to_owned()
            } else {
                format!("not in the activity profiles of {}", sel.channel.label)
            };
            report.exclude(object, reason);
            continue;
        }
        let item = Item::Activity(catalogue::Activity {
            id: id(aid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            season: id(s, &object)?,
            vat_code: id(v, &object)?,
        });
        emit_with(emit, report, "activities", &item)?;
    }
    Ok(())
}

/// The logical configurations of the exported performances, each followed by its logical seat categories; the others left out.
fn emit_logical_configurations(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached(
        "SELECT id, code, name, configuration FROM logical_configuration ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (lid, c, n, conf): (i64, String, String, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let object = format!("logical configuration {lid} {c}");
        if !named.logical_configurations.contains(&lid) {
            report.exclude(object, "no exported performance uses it");
            continue;
        }
        let item = Item::LogicalConfiguration(catalogue::LogicalConfiguration {
            id: id(lid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            configuration: id(conf, &object)?,
        });
        emit_with(emit, report, "logical configurations", &item)?;
        let mut cats = conn.prepare_cached(
            "SELECT id, code, name, seat_category FROM logical_seat_category
             WHERE logical_configuration = ?1 ORDER BY id",
        )?;
        let mut cat_rows = cats.query([lid])?;
        while let Some(cr) = cat_rows.next()? {
            let (cid, cc, cn, sc): (i64, String, String, i64) =
                (cr.get(0)?, cr.get(1)?, cr.get(2)?, cr.get(3)?);
            let object = format!("logical seat category {cid} {cc}");
            let item = Item::LogicalSeatCategory(catalogue::LogicalSeatCategory {
                id: id(cid, &object)?,
                logical_configuration: id(lid, &object)?,
                code: code(&cc, &object)?,
                name: name(&cn, &object)?,
                seat_category: id(sc, &object)?,
            });
            emit_with(emit, report, "logical seat categories", &item)?;
        }
    }
    Ok(())
}

/// The performances the exported products sell; the others left out (unless the selection already said why).
fn emit_performances(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached(
        "SELECT id, code, name, activity, start, configuration, logical_configuration, state
         FROM performance ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let fid: i64 = r.get(0)?;
        let c: String = r.get(1)?;
        let object = format!("performance {fid} {c}");
        if !sel.performances.contains(&fid) {
            if !sel.reported_performances.contains(&fid) {
                report.exclude(object, "no exported product sells it");
            }
            continue;
        }
        let (n, a, start, conf, lc, state): (String, i64, String, i64, i64, String) = (
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        );
        let item = Item::Performance(catalogue::Performance {
            id: id(fid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            activity: id(a, &object)?,
            start: time::OffsetDateTime::parse(
                &start,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| bad(&object, format!("start {start:?} is not RFC 3339: {e}")))?,
            configuration: id(conf, &object)?,
            logical_configuration: id(lc, &object)?,
            state: PerformanceState::parse(&state)
                .ok_or_else(|| bad(&object, format!("unknown state {state:?}")))?,
        });
        emit_with(emit, report, "performances", &item)?;
    }
    Ok(())
}

/// The rate tables of the exported products, each followed by its prices for the audience subcategories allowed; the others left out, and the prices left out counted per audience subcategory.
fn emit_rate_tables(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st =
        conn.prepare_cached("SELECT id, code, name, currency FROM rate_table ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (rid, c, n, cur): (i64, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let object = format!("rate table {rid} {c}");
        let Some(allowed) = sel.rate_tables.get(&rid) else {
            report.exclude(object, "no exported product uses it");
            continue;
        };
        let item = Item::RateTable(catalogue::RateTable {
            id: id(rid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            currency: Currency::new(&cur).map_err(|e| bad(&object, e.to_string()))?,
        });
        emit_with(emit, report, "rate tables", &item)?;
        // Left-out prices, counted per audience subcategory.
        let mut left_out: BTreeMap<i64, u64> = BTreeMap::new();
        let mut prices = conn.prepare_cached(
            "SELECT seat_category, tariff_type, audience_subcategory, amount FROM price
             WHERE rate_table = ?1
             ORDER BY seat_category, tariff_type, audience_subcategory",
        )?;
        let mut price_rows = prices.query([rid])?;
        while let Some(pr) = price_rows.next()? {
            let (sc, tt, au, amount): (i64, i64, i64, i64) =
                (pr.get(0)?, pr.get(1)?, pr.get(2)?, pr.get(3)?);
            if !allowed.allows(au) {
                *left_out.entry(au).or_default() += 1;
                continue;
            }
            let at = format!("price of {object} ({sc}, {tt}, {au})");
            let item = Item::Price(catalogue::Price {
                rate_table: id(rid, &at)?,
                seat_category: id(sc, &at)?,
                tariff_type: id(tt, &at)?,
                audience_subcategory: id(au, &at)?,
                amount,
            });
            emit_with(emit, report, "prices", &item)?;
        }
        for (au, n) in left_out {
            let audience = label(conn, "audience_subcategory", au)?;
            report.exclude(
                format!("{n} price(s) of {object} for {audience}"),
                format!(
                    "{audience} is not allowed on the product profiles of {} for the products using this rate table",
                    sel.channel.label
                ),
            );
        }
    }
    Ok(())
}

/// The exported products, each followed by the performances it sells.
fn emit_products(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    for pid in &sel.products {
        let (c, n, a, rt): (String, String, i64, i64) = conn
            .prepare_cached("SELECT code, name, activity, rate_table FROM product WHERE id = ?1")?
            .query_row([pid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let object = format!("product {pid} {c}");
        let product = id(*pid, &object)?;
        let item = Item::Product(catalogue::Product {
            id: product,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            activity: id(a, &object)?,
            rate_table: id(rt, &object)?,
        });
        emit_with(emit, report, "products", &item)?;
        for f in sel.product_performances.get(pid).into_iter().flatten() {
            let item = Item::PerformanceRef(catalogue::PerformanceRef {
                product,
                performance: id(*f, &object)?,
            });
            emit_with(emit, report, "product performances", &item)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- seat plan

/// Streams the seat plans of the configurations the link's exported
/// performances use (same selection as [`catalogue()`]): their seat
/// categories, then each venue with those configurations, zones, blocks,
/// rows and seats, all in id order.
pub fn seatplan(
    conn: &Connection,
    scope: &Scope<'_>,
    emit: &mut dyn FnMut(&seatplan::Item) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    use seatplan::Item;
    let sel = select(conn, scope)?;
    let mut report = Report::default();

    let mut configurations = BTreeSet::new();
    for p in &sel.performances {
        let c: i64 = conn
            .prepare_cached("SELECT configuration FROM performance WHERE id = ?1")?
            .query_row([p], |r| r.get(0))?;
        configurations.insert(c);
    }
    let mut venues = BTreeSet::new();
    let mut seat_categories = BTreeSet::new();
    for c in &configurations {
        let v: i64 = conn
            .prepare_cached("SELECT venue FROM configuration WHERE id = ?1")?
            .query_row([c], |r| r.get(0))?;
        venues.insert(v);
        seat_categories.extend(id_set(
            conn,
            "SELECT seat_category FROM zone WHERE configuration = ?1 AND capacity > 0
             UNION
             SELECT s.seat_category FROM seat s JOIN seat_row r ON r.id = s.row
             JOIN block b ON b.id = r.block WHERE b.configuration = ?1",
            *c,
        )?);
    }

    {
        let mut st = conn.prepare_cached("SELECT id, code, name FROM seat_category ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (sid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !seat_categories.contains(&sid) {
                continue;
            }
            let object = format!("seat category {sid} {c}");
            let item = Item::SeatCategory(seatplan::SeatCategory {
                id: id(sid, &object)?,
                code: code(&c, &object)?,
                name: name(&n, &object)?,
            });
            emit_with(emit, &mut report, "seat categories", &item)?;
        }
    }

    let mut st = conn.prepare_cached("SELECT id, code, name FROM venue ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (vid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let object = format!("venue {vid} {c}");
        if !venues.contains(&vid) {
            report.exclude(object, "no exported performance takes place in it");
            continue;
        }
        let venue = id(vid, &object)?;
        let item = Item::Venue(seatplan::Venue {
            id: venue,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
        });
        emit_with(emit, &mut report, "venues", &item)?;

        let mut cs = conn.prepare_cached(
            "SELECT id, code, name FROM configuration WHERE venue = ?1 ORDER BY id",
        )?;
        let mut conf_rows = cs.query([vid])?;
        while let Some(cr) = conf_rows.next()? {
            let (cid, cc, cn): (i64, String, String) = (cr.get(0)?, cr.get(1)?, cr.get(2)?);
            let object = format!("configuration {cid} {cc} of venue {vid} {c}");
            if !configurations.contains(&cid) {
                report.exclude(object, "no exported performance uses it");
                continue;
            }
            let configuration = id(cid, &object)?;
            let item = Item::Configuration(seatplan::Configuration {
                id: configuration,
                venue,
                code: code(&cc, &object)?,
                name: name(&cn, &object)?,
            });
            emit_with(emit, &mut report, "configurations", &item)?;
            configuration_contents(conn, configuration, emit, &mut report)?;
        }
    }
    Ok(report)
}

/// Zones, then blocks with their rows and seats, of one configuration.
fn configuration_contents(
    conn: &Connection,
    configuration: TechId,
    emit: &mut dyn FnMut(&seatplan::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use seatplan::Item;
    let mut zs = conn.prepare_cached(
        "SELECT id, code, name, seat_category, capacity FROM zone
         WHERE configuration = ?1 ORDER BY id",
    )?;
    let mut zone_rows = zs.query([configuration.get()])?;
    while let Some(r) = zone_rows.next()? {
        let (zid, c, n, sc, cap): (i64, String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("zone {zid} {c}");
        if cap == 0 {
            report.exclude(object, "its capacity is 0: nothing to sell");
            continue;
        }
        let item = Item::Zone(seatplan::Zone {
            id: id(zid, &object)?,
            configuration,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            seat_category: id(sc, &object)?,
            capacity: u32::try_from(cap)
                .map_err(|_| bad(&object, format!("capacity {cap} is out of range")))?,
        });
        emit_with(emit, report, "zones", &item)?;
    }
    drop(zone_rows);

    let mut bs = conn
        .prepare_cached("SELECT id, code, name FROM block WHERE configuration = ?1 ORDER BY id")?;
    let mut block_rows = bs.query([configuration.get()])?;
    while let Some(r) = block_rows.next()? {
        let (bid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let object = format!("block {bid} {c}");
        let block = id(bid, &object)?;
        let item = Item::Block(seatplan::Block {
            id: block,
            configuration,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
        });
        emit_with(emit, report, "blocks", &item)?;
        let mut rs =
            conn.prepare_cached("SELECT id, code FROM seat_row WHERE block = ?1 ORDER BY id")?;
        let mut row_rows = rs.query([bid])?;
        while let Some(rr) = row_rows.next()? {
            let (rid, rc): (i64, String) = (rr.get(0)?, rr.get(1)?);
            let object = format!("row {rid} {rc} of block {bid} {c}");
            let row = id(rid, &object)?;
            let item = Item::Row(seatplan::Row {
                id: row,
                block,
                code: code(&rc, &object)?,
            });
            emit_with(emit, report, "rows", &item)?;
            let mut ss = conn.prepare_cached(
                "SELECT id, number, seat_category FROM seat WHERE row = ?1 ORDER BY id",
            )?;
            let mut seat_rows = ss.query([rid])?;
            while let Some(sr) = seat_rows.next()? {
                let (sid, num, sc): (i64, String, i64) = (sr.get(0)?, sr.get(1)?, sr.get(2)?);
                let object = format!("seat {sid} {num} of row {rid} {rc}");
                let item = Item::Seat(seatplan::Seat {
                    id: id(sid, &object)?,
                    row,
                    number: code(&num, &object)?,
                    seat_category: id(sc, &object)?,
                });
                emit_with(emit, report, "seats", &item)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::opera as store;
    use crate::store::{Store, StoreError};

    fn sql(store: &mut Store, sql: &str) {
        store
            .write(|tx| -> Result<(), StoreError> { Ok(tx.execute_batch(sql)?) })
            .unwrap();
    }

    const SCOPE: Scope<'static> = Scope {
        distributor: "TOURISM",
        login: "TOURISM_OPE@TOURISM",
        products: None,
    };

    fn catalogue_of(store: &Store) -> Result<(Vec<catalogue::Item>, Report), ExportError> {
        store.read(|c| {
            let mut items = Vec::new();
            let report = catalogue(c, &SCOPE, &mut |i| {
                items.push(i.clone());
                Ok(())
            })?;
            Ok((items, report))
        })
    }

    #[test]
    fn audiences_intersect_and_allow() {
        let only = |v: &[i64]| Audiences::Only(v.iter().copied().collect());
        assert_eq!(Audiences::All.intersect(&only(&[1])), only(&[1]));
        assert_eq!(only(&[1, 2]).intersect(&only(&[2, 3])), only(&[2]));
        assert!(Audiences::All.allows(7));
        assert!(!only(&[1]).allows(2));
    }

    #[test]
    fn report_counts_by_label_in_first_seen_order() {
        let mut r = Report::default();
        for l in ["a", "b", "a"] {
            r.count(l);
        }
        assert_eq!(r.included, [("a".to_owned(), 2), ("b".to_owned(), 1)]);
        assert_eq!((r.included("a"), r.included("z"), r.total()), (2, 0, 3));
    }

    #[test]
    fn a_profile_without_audiences_allows_every_priced_one() {
        let (_dir, mut store) = store();
        sql(
            &mut store,
            "DELETE FROM product_profile_audience WHERE product_profile = 5701",
        );
        let (items, report) = catalogue_of(&store).unwrap();
        let prices = items
            .iter()
            .filter(|i| matches!(i, catalogue::Item::Price(_)))
            .count();
        assert_eq!(prices, 16);
        assert_eq!(report.included("audience subcategories"), 3);
        assert!(
            !report
                .excluded
                .iter()
                .any(|x| x.object.contains("price(s)"))
        );
    }

    #[test]
    fn a_rate_table_with_no_allowed_price_leaves_its_product_out() {
        let (_dir, mut store) = store();
        sql(
            &mut store,
            "DELETE FROM product_profile_audience WHERE product_profile = 5701;
             INSERT INTO product_profile_audience VALUES (5701, 1304);",
        );
        let ExportError::NothingToSell(report) = catalogue_of(&store).unwrap_err() else {
            panic!("expected nothing to sell");
        };
        let reason = &report
            .excluded
            .iter()
            .find(|x| x.object == "product 1901 TRAV-BIL")
            .unwrap()
            .reason;
        assert!(reason.contains("no price"), "{reason}");
        assert!(
            reason.contains("audience subcategory 1304 SENIOR"),
            "{reason}"
        );
    }

    #[test]
    fn an_empty_zone_is_left_out_of_the_seat_plan() {
        let (_dir, mut store) = store();
        sql(&mut store, "UPDATE zone SET capacity = 0 WHERE id = 3201");
        let (zones, report) = store
            .read(|c| -> Result<_, ExportError> {
                let mut zones = 0;
                let report = seatplan(c, &SCOPE, &mut |i| {
                    zones += u32::from(matches!(i, seatplan::Item::Zone(_)));
                    Ok(())
                })?;
                Ok((zones, report))
            })
            .unwrap();
        assert_eq!(zones, 0);
        assert_eq!(report.excluded.len(), 1);
        assert_eq!(report.excluded[0].object, "zone 3201 FOSSE");
        // Its seat category is named by no remaining seat: not exported.
        assert_eq!(report.included("seat categories"), 3);
    }

    #[test]
    fn a_hand_edited_code_is_reported_with_its_object() {
        let (_dir, mut store) = store();
        sql(
            &mut store,
            "UPDATE tariff_type SET code = 'BAD CODE' WHERE id = 1201",
        );
        let e = catalogue_of(&store).unwrap_err();
        assert_eq!(e.code(), "bad-data");
        assert!(
            e.to_string().starts_with("tariff type 1201 BAD CODE:"),
            "{e}"
        );
    }
}
