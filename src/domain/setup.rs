//! The setup check: is everything the manual's "first use" requires present in
//! this institution's store, for each link it takes part in?
//!
//! Takes a read connection, the role and the links of the configuration;
//! returns every finding at once, each naming the object (or, when missing,
//! the kind of object and what it must be) and the fix. Nothing is written.
//! A check that depends on a missing object (the point of sale of a channel
//! that does not exist) is not reported separately: the missing object's
//! finding says so, and the next `stxd check` reports what remains.
//!
//! Manager: a sales channel of kind `stx_file` in operation; on it a point of
//! sale in operation with a payment method that allows the pending account; a
//! contact authorised for the pending account; per link, an external sales
//! interface whose login is `OPERATOR@DISTRIBUTOR`, equals the link's login and
//! names the link's distributor; a contingent, an activity profile and a
//! product profile linked to the channel; allowed audience subcategories
//! limited on the product profiles (a warning when not).
//!
//! Distributor: per link, an external manager whose code is the link's manager,
//! and on it a virtual operator whose login is the operator part of the link's
//! login, follows `<DISTRIBUTOR>_<Name>` and has at most 12 characters.

use std::collections::HashSet;
use std::fmt;

use rusqlite::{Connection, OptionalExtension};

use super::DomainError;
use super::load::{store_institution, store_role};
use crate::store::Role;

/// Longest virtual operator identifier SecuTix accepts, in characters.
pub const VIRTUAL_OPERATOR_MAX: usize = 12;

/// What the configuration says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    pub name: String,
    /// The manager institution's code.
    pub manager: String,
    /// The distributor institution's code.
    pub distributor: String,
    /// `OPERATOR@DISTRIBUTOR`.
    pub login: String,
}

impl From<&crate::config::Link> for LinkFacts {
    fn from(link: &crate::config::Link) -> LinkFacts {
        LinkFacts {
            name: link.name.clone(),
            manager: link.manager.to_string(),
            distributor: link.distributor.to_string(),
            login: link.login.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The exchange cannot work until it is fixed.
    Error,
    /// It works, but not as the manual recommends.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem of the setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The object (`sales channel 5001 STXTOUR`), or the missing object's kind
    /// and what it must be (`contingent linked to sales channel 5001 STXTOUR`).
    pub object: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}; fix: {}",
            self.severity, self.object, self.problem, self.fix
        )
    }
}

fn error(object: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        object: object.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn warning(
    object: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity: Severity::Warning,
        ..error(object, problem, fix)
    }
}

/// Checks the setup of the institution whose store `conn` reads, in `role`,
/// for the `links` of the configuration. Returns every finding (errors first);
/// an empty list means ready.
pub fn check(conn: &Connection, role: Role, links: &[LinkFacts]) -> Vec<Finding> {
    let mut findings = match run(conn, role, links) {
        Ok(f) => f,
        Err(e) => vec![error(
            "store",
            format!("cannot be read: {e}"),
            "check the database path and permissions, then run the check again",
        )],
    };
    let mut seen = HashSet::new();
    findings.retain(|f| seen.insert((f.severity, f.object.clone(), f.problem.clone())));
    findings.sort_by_key(|f| f.severity);
    findings
}

/// The precondition of an operation whose failure would otherwise come
/// later, at the peer (allotting places, exporting a contingent or a
/// catalogue): refused with [`DomainError::Unready`], in the words of
/// `stxd check`, while the setup of `link` has an error. Warnings do not
/// refuse.
pub fn require_ready(
    conn: &Connection,
    role: Role,
    link: &LinkFacts,
    operation: &str,
) -> Result<(), DomainError> {
    let errors: Vec<String> = check(conn, role, std::slice::from_ref(link))
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {} (fix: {})", f.object, f.problem, f.fix))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(DomainError::Unready {
        object: format!("{operation} on link {}", link.name),
        problem: format!(
            "refused while the setup has {} error(s), as stxd check reports: {}",
            errors.len(),
            errors.join("; ")
        ),
        fix: "fix the setup, load it again (stxd load), then try again".to_owned(),
    })
}

fn run(conn: &Connection, role: Role, links: &[LinkFacts]) -> Result<Vec<Finding>, DomainError> {
    let me = store_institution(conn)?;
    let stored = store_role(conn)?;
    if stored != role {
        return Ok(vec![error(
            format!("store of {me}"),
            format!("is a {stored}'s store, but the check was asked for a {role}"),
            "fix the role in the configuration or point it at the right database",
        )]);
    }
    let mut out = Vec::new();
    match role {
        Role::Manager => manager(conn, &me, links, &mut out)?,
        Role::Distributor => distributor(conn, &me, links, &mut out)?,
    }
    // A fix in the setup file says where it goes and how it gets loaded.
    for f in out.iter_mut().filter(|f| f.fix.contains("[[")) {
        f.fix.push_str(&format!(
            " in your setup file, then stxd load {me} setup.toml (stxd template {role} writes a commented one)"
        ));
    }
    Ok(out)
}

// ------------------------------------------------------------------ manager

struct Channel {
    id: i64,
    code: String,
    kind: String,
    in_operation: bool,
}

impl Channel {
    fn label(&self) -> String {
        format!("sales channel {} {}", self.id, self.code)
    }
}

struct Interface {
    id: i64,
    login: String,
    channel: i64,
    distributor: String,
    contact: Option<i64>,
    point_of_sale: Option<i64>,
}

impl Interface {
    fn label(&self) -> String {
        format!("external sales interface {} {}", self.id, self.login)
    }
}

struct PointOfSale {
    id: i64,
    code: String,
    channel: i64,
    in_operation: bool,
    /// (code, allows the pending account) of each payment method.
    methods: Vec<(String, bool)>,
}

impl PointOfSale {
    fn label(&self) -> String {
        format!("point of sale {} {}", self.id, self.code)
    }

    fn ready(&self) -> bool {
        self.in_operation && self.methods.iter().any(|m| m.1)
    }

    /// What is wrong with this point of sale, in the same words wherever it is
    /// reported (so duplicates collapse).
    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if !self.in_operation {
            out.push(error(
                self.label(),
                "is not in operation",
                format!(
                    "set in_operation = true on the [[point_of_sale]] with id = {}",
                    self.id
                ),
            ));
        }
        if !self.methods.iter().any(|m| m.1) {
            let list = if self.methods.is_empty() {
                "none".to_owned()
            } else {
                self.methods
                    .iter()
                    .map(|m| m.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(error(
                format!("payment method allowing the pending account on {}", self.label()),
                format!(
                    "the point of sale has none (its payment methods: {list}); reintegrated sales are paid with the pending account"
                ),
                format!(
                    "add a [[payment_method]] with allows_pending_account = true and list its id in payment_methods of the [[point_of_sale]] with id = {}",
                    self.id
                ),
            ));
        }
        out
    }
}

fn channels(conn: &Connection) -> Result<Vec<Channel>, DomainError> {
    let mut st =
        conn.prepare_cached("SELECT id, code, kind, in_operation FROM sales_channel ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(Channel {
            id: r.get(0)?,
            code: r.get(1)?,
            kind: r.get(2)?,
            in_operation: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn interfaces(conn: &Connection) -> Result<Vec<Interface>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT id, login, channel, distributor, contact, point_of_sale
         FROM external_sales_interface ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Interface {
            id: r.get(0)?,
            login: r.get(1)?,
            channel: r.get(2)?,
            distributor: r.get(3)?,
            contact: r.get(4)?,
            point_of_sale: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn points_of_sale(conn: &Connection) -> Result<Vec<PointOfSale>, DomainError> {
    let mut st = conn
        .prepare_cached("SELECT id, code, channel, in_operation FROM point_of_sale ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(PointOfSale {
            id: r.get(0)?,
            code: r.get(1)?,
            channel: r.get(2)?,
            in_operation: r.get(3)?,
            methods: Vec::new(),
        })
    })?;
    let mut all: Vec<PointOfSale> = rows.collect::<Result<_, _>>()?;
    let mut st = conn.prepare_cached(
        "SELECT pm.code, pm.allows_pending_account
         FROM point_of_sale_payment_method x JOIN payment_method pm ON pm.id = x.payment_method
         WHERE x.point_of_sale = ?1 ORDER BY pm.id",
    )?;
    for pos in &mut all {
        pos.methods = st
            .query_map([pos.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
    }
    Ok(all)
}

/// (id, code) of the objects of `table` linked to a channel.
fn on_channel(
    conn: &Connection,
    table: &'static str,
    channel: i64,
) -> Result<Vec<(i64, String)>, DomainError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, code FROM {table} WHERE channel = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([channel], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn count(conn: &Connection, sql: &str, id: i64) -> Result<i64, DomainError> {
    Ok(conn.prepare_cached(sql)?.query_row([id], |r| r.get(0))?)
}

/// Checks the form of an `OPERATOR@DISTRIBUTOR` login; returns the operator.
fn split_login<'a>(login: &'a str, distributor: &str) -> Result<&'a str, String> {
    match login.split_once('@') {
        Some((op, dist)) if !op.is_empty() && dist == distributor => Ok(op),
        _ => Err(format!(
            "login {login} is not of the form OPERATOR@{distributor}"
        )),
    }
}

/// Problems of a virtual operator identifier against `<DISTRIBUTOR>_<Name>`
/// and the length limit.
fn operator_rule(op: &str, distributor: &str) -> Vec<String> {
    let mut out = Vec::new();
    let named = op
        .strip_prefix(distributor)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|name| !name.is_empty());
    if !named {
        out.push(format!("{op} does not follow {distributor}_<Name>"));
    }
    let n = op.chars().count();
    if n > VIRTUAL_OPERATOR_MAX {
        out.push(format!(
            "{op} is {n} characters long; at most {VIRTUAL_OPERATOR_MAX} are allowed"
        ));
    }
    out
}

fn manager(
    conn: &Connection,
    me: &str,
    links: &[LinkFacts],
    out: &mut Vec<Finding>,
) -> Result<(), DomainError> {
    let my_links: Vec<&LinkFacts> = links.iter().filter(|l| l.manager == me).collect();
    if my_links.is_empty() {
        out.push(warning(
            format!("links of {me}"),
            format!("no link of the configuration names {me} as its manager"),
            format!("add a link with manager = \"{me}\" to the configuration"),
        ));
    }
    let channels = channels(conn)?;
    let interfaces = interfaces(conn)?;
    let poses = points_of_sale(conn)?;
    let stx: Vec<&Channel> = channels.iter().filter(|c| c.kind == "stx_file").collect();

    if stx.is_empty() {
        out.push(no_stx_channel(&channels));
    }

    // Per link: the external sales interface.
    let mut used_channels: Vec<i64> = Vec::new();
    let mut named_contacts: Vec<(i64, String)> = Vec::new();
    for link in &my_links {
        let by_login = interfaces.iter().find(|i| i.login == link.login);
        let by_dist = interfaces
            .iter()
            .find(|i| i.distributor == link.distributor);
        let Some(esi) = by_login.or(by_dist) else {
            out.push(error(
                format!("external sales interface for distributor {}", link.distributor),
                format!("none exists for link {}", link.name),
                format!(
                    "add an [[external_sales_interface]] with login = \"{}\", distributor = \"{}\" and channel = the stx_file channel",
                    link.login, link.distributor
                ),
            ));
            continue;
        };
        let fix_here = format!("in the [[external_sales_interface]] with id = {}", esi.id);
        if esi.distributor != link.distributor {
            out.push(error(
                esi.label(),
                format!(
                    "names distributor {}, but link {} is with {}",
                    esi.distributor, link.name, link.distributor
                ),
                format!("set distributor = \"{}\" {fix_here}", link.distributor),
            ));
        }
        login_checks(esi, link, &fix_here, out);
        match channels.iter().find(|c| c.id == esi.channel) {
            Some(c) if c.kind == "stx_file" => used_channels.push(c.id),
            // With no stx_file channel at all, that finding says it all.
            Some(c) if !stx.is_empty() => out.push(error(
                esi.label(),
                format!(
                    "its channel {} is of kind {}, not stx_file",
                    c.label(),
                    c.kind
                ),
                format!("set channel = the id of the stx_file channel {fix_here}"),
            )),
            _ => {}
        }
        if let Some(pid) = esi.point_of_sale
            && let Some(pos) = poses.iter().find(|p| p.id == pid)
        {
            if pos.channel != esi.channel {
                out.push(error(
                    esi.label(),
                    format!(
                        "its {} is on sales channel {}, not on its channel {}",
                        pos.label(),
                        pos.channel,
                        esi.channel
                    ),
                    format!("name a point of sale of channel {} {fix_here}", esi.channel),
                ));
            }
            out.extend(pos.findings());
        }
        if let Some(cid) = esi.contact {
            named_contacts.push((cid, esi.label()));
        }
    }

    // The channels to check in depth: those of the links' interfaces, or else
    // every stx_file channel.
    let to_check: Vec<&Channel> = if used_channels.is_empty() {
        stx.clone()
    } else {
        stx.iter()
            .copied()
            .filter(|c| used_channels.contains(&c.id))
            .collect()
    };
    for c in to_check {
        channel_checks(conn, c, &poses, out)?;
    }

    // The authorised contact.
    contact_checks(conn, &named_contacts, out)
}

/// The error when the manager has no sales channel of kind `stx_file`,
/// listing the channels it has.
fn no_stx_channel(channels: &[Channel]) -> Finding {
    let others = if channels.is_empty() {
        String::new()
    } else {
        format!(
            " (channels: {})",
            channels
                .iter()
                .map(|c| format!("{} {} of kind {}", c.id, c.code, c.kind))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    error(
        "sales channel of kind stx_file",
        format!("none exists{others}; the checks of what hangs on it wait until it does"),
        "add a [[sales_channel]] with kind = \"stx_file\" and in_operation = true, and link the point of sale, contingent, profiles and external sales interface to it",
    )
}

/// The login of a link's external sales interface: `OPERATOR@DISTRIBUTOR`,
/// the operator following the virtual operators' rule, equal to the link's.
fn login_checks(esi: &Interface, link: &LinkFacts, fix_here: &str, out: &mut Vec<Finding>) {
    match split_login(&esi.login, &esi.distributor) {
        Err(p) => out.push(error(
            esi.label(),
            p,
            format!("set login = \"<OPERATOR>@{}\" {fix_here}", esi.distributor),
        )),
        Ok(op) => {
            for p in operator_rule(op, &esi.distributor) {
                out.push(error(
                    esi.label(),
                    format!("the operator of its login: {p}"),
                    format!(
                        "use the distributor's virtual operator, {}_<Name> in at most {VIRTUAL_OPERATOR_MAX} characters",
                        esi.distributor
                    ),
                ));
            }
        }
    }
    if esi.login != link.login {
        out.push(error(
            esi.label(),
            format!(
                "its login differs from the login {} of link {}",
                link.login, link.name
            ),
            format!(
                "make them equal: login = \"{}\" {fix_here}, or fix the link's login in the configuration",
                link.login
            ),
        ));
    }
}

/// The contacts the interfaces name must be authorised for the pending
/// account, and one such contact must exist.
fn contact_checks(
    conn: &Connection,
    named_contacts: &[(i64, String)],
    out: &mut Vec<Finding>,
) -> Result<(), DomainError> {
    let mut contact_reported = false;
    for (cid, esi) in named_contacts {
        let row: Option<(String, bool)> = conn
            .prepare_cached("SELECT code, pending_account_authorised FROM contact WHERE id = ?1")?
            .query_row([cid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((code, false)) = row {
            contact_reported = true;
            out.push(error(
                format!("contact {cid} {code}"),
                format!("is named by {esi} but is not authorised for the pending account"),
                format!(
                    "set pending_account_authorised = true on the [[contact]] with id = {cid}, or name an authorised contact in the interface"
                ),
            ));
        }
    }
    let authorised: i64 = conn
        .prepare_cached("SELECT count(*) FROM contact WHERE pending_account_authorised = 1")?
        .query_row([], |r| r.get(0))?;
    if authorised == 0 && !contact_reported {
        out.push(error(
            "contact authorised for the pending account",
            "none exists; reintegrated orders are booked to it",
            "add a [[contact]] with pending_account_authorised = true and name it as contact of the external sales interface",
        ));
    }
    Ok(())
}

fn channel_checks(
    conn: &Connection,
    c: &Channel,
    poses: &[PointOfSale],
    out: &mut Vec<Finding>,
) -> Result<(), DomainError> {
    let label = c.label();
    if !c.in_operation {
        out.push(error(
            label.clone(),
            "is not in operation",
            format!(
                "set in_operation = true on the [[sales_channel]] with id = {}",
                c.id
            ),
        ));
    }
    let mine: Vec<&PointOfSale> = poses.iter().filter(|p| p.channel == c.id).collect();
    if mine.is_empty() {
        out.push(error(
            format!("point of sale on {label}"),
            "none exists; reintegrated sales are booked on a point of sale of the channel",
            format!(
                "add a [[point_of_sale]] with channel = {}, in_operation = true and a payment method that allows the pending account",
                c.id
            ),
        ));
    } else if !mine.iter().any(|p| p.ready()) {
        for p in mine {
            out.extend(p.findings());
        }
    }
    if on_channel(conn, "contingent", c.id)?.is_empty() {
        out.push(error(
            format!("contingent linked to {label}"),
            "none exists; the distributor can only sell seats of a contingent",
            format!("add a [[contingent]] with channel = {}", c.id),
        ));
    }
    let activity_profiles = on_channel(conn, "activity_profile", c.id)?;
    if activity_profiles.is_empty() {
        out.push(error(
            format!("activity profile linked to {label}"),
            "none exists; the channel may sell no activity",
            format!(
                "add an [[activity_profile]] with channel = {} listing the activities the distributor sells",
                c.id
            ),
        ));
    }
    for (id, code) in &activity_profiles {
        let n = count(
            conn,
            "SELECT count(*) FROM activity_profile_activity WHERE activity_profile = ?1",
            *id,
        )?;
        if n == 0 {
            out.push(error(
                format!("activity profile {id} {code}"),
                "lists no activity",
                format!("list activities in the [[activity_profile]] with id = {id}"),
            ));
        }
    }
    let product_profiles = on_channel(conn, "product_profile", c.id)?;
    if product_profiles.is_empty() {
        out.push(error(
            format!("product profile linked to {label}"),
            "none exists; the channel may sell no product",
            format!(
                "add a [[product_profile]] with channel = {} listing the products and the allowed audience subcategories",
                c.id
            ),
        ));
    }
    for (id, code) in &product_profiles {
        let n = count(
            conn,
            "SELECT count(*) FROM product_profile_product WHERE product_profile = ?1",
            *id,
        )?;
        if n == 0 {
            out.push(error(
                format!("product profile {id} {code}"),
                "lists no product",
                format!("list products in the [[product_profile]] with id = {id}"),
            ));
        }
        let a = count(
            conn,
            "SELECT count(*) FROM product_profile_audience WHERE product_profile = ?1",
            *id,
        )?;
        if a == 0 {
            out.push(warning(
                format!("product profile {id} {code}"),
                "allows every audience subcategory (none is listed)",
                format!(
                    "list only those the distributor may sell in audience_subcategories of the [[product_profile]] with id = {id}"
                ),
            ));
        }
    }
    Ok(())
}

// -------------------------------------------------------------- distributor

fn distributor(
    conn: &Connection,
    me: &str,
    links: &[LinkFacts],
    out: &mut Vec<Finding>,
) -> Result<(), DomainError> {
    let my_links: Vec<&LinkFacts> = links.iter().filter(|l| l.distributor == me).collect();
    if my_links.is_empty() {
        out.push(warning(
            format!("links of {me}"),
            format!("no link of the configuration names {me} as its distributor"),
            format!("add a link with distributor = \"{me}\" to the configuration"),
        ));
    }
    for link in my_links {
        let op = match split_login(&link.login, me) {
            Ok(op) => Some(op),
            Err(p) => {
                out.push(error(
                    format!("link {}", link.name),
                    p,
                    format!(
                        "set the link's login to \"{me}_<Name>@{me}\", the virtual operator's login followed by @{me}"
                    ),
                ));
                None
            }
        };
        let em: Option<(i64, String)> = conn
            .prepare_cached("SELECT id, code FROM external_manager WHERE code = ?1")?
            .query_row([&link.manager], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((em_id, em_code)) = em else {
            out.push(error(
                format!("external manager {}", link.manager),
                format!(
                    "none exists with code {} (the manager of link {}); its virtual operator is checked once it does",
                    link.manager, link.name
                ),
                format!(
                    "add an [[external_manager]] with code = \"{}\" and a [[virtual_operator]] on it",
                    link.manager
                ),
            ));
            continue;
        };
        let em_label = format!("external manager {em_id} {em_code}");
        let mut st = conn.prepare_cached(
            "SELECT login FROM virtual_operator WHERE external_manager = ?1 ORDER BY login",
        )?;
        let vos: Vec<String> = st
            .query_map([em_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if let Some(op) = op
            && !vos.iter().any(|v| v == op)
        {
            let problem = if vos.is_empty() {
                "none exists".to_owned()
            } else {
                format!(
                    "{em_label} has only {}; the login of link {} names {op}",
                    vos.join(", "),
                    link.name
                )
            };
            out.push(error(
                format!("virtual operator {op} on {em_label}"),
                problem,
                format!(
                    "add a [[virtual_operator]] with login = \"{op}\" and external_manager = {em_id}, or fix the link's login"
                ),
            ));
        }
        for vo in &vos {
            for p in operator_rule(vo, me) {
                out.push(error(
                    format!("virtual operator {vo}"),
                    p,
                    format!(
                        "rename it {me}_<Name> in at most {VIRTUAL_OPERATOR_MAX} characters (and the link's login with it)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_rule_enforces_prefix_and_length() {
        assert!(operator_rule("TOURISM_OPE", "TOURISM").is_empty());
        assert!(operator_rule("TOURISM_OPE1", "TOURISM").is_empty());
        assert_eq!(operator_rule("TOURISM_OPERA", "TOURISM").len(), 1);
        assert_eq!(operator_rule("OPE_TOURISM", "TOURISM").len(), 1);
        assert_eq!(operator_rule("TOURISM_", "TOURISM").len(), 1);
        assert_eq!(operator_rule("TOURISMX_OPERATOR", "TOURISM").len(), 2);
    }

    #[test]
    fn logins_split_on_the_distributor() {
        assert_eq!(
            split_login("TOURISM_OPE@TOURISM", "TOURISM"),
            Ok("TOURISM_OPE")
        );
        assert!(split_login("TOURISM_OPE@OTHER", "TOURISM").is_err());
        assert!(split_login("@TOURISM", "TOURISM").is_err());
        assert!(split_login("TOURISM_OPE", "TOURISM").is_err());
        assert!(split_login("A@B@TOURISM", "TOURISM").is_err());
    }
}
