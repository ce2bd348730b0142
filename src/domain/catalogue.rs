//! The distributor's validation and sale set-up of the catalogue it imported.
//!
//! Takes the products the catalogue import created (`to_validate`) and lets
//! ops list them, validate them (a product with its rate table and the
//! logical configurations of its performances) and assign them to a sales
//! profile. Only a product that is validated AND in a sales profile is
//! sellable ([`is_sellable`], which the point of sale checks before every
//! sale, [`super::selling::sell`]). Every change records a run (kinds
//! `catalogue-validate`, `catalogue-assign-profile`) in the same transaction.
//! Reads no file and no config.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::DomainError;
use crate::store::runs::{self, Counts, Level, RunStatus};

/// A product as ops review it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    /// `to_validate`, `validated`, `suspended` (`active` at a manager).
    pub state: String,
    pub rate_table: RateTableRow,
    pub performances: Vec<PerformanceRow>,
    /// Codes of the sales profiles the product is assigned to.
    pub profiles: Vec<String>,
    /// What waits for validation, with its differences from the last
    /// validated version: the product's own, its rate table's and the
    /// logical configurations' of its performances.
    pub changes: Vec<ChangeRow>,
}

/// One difference of an object to validate, from the catalogue that brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRow {
    /// `product`, `rate table` or `logical configuration`, with its code.
    pub object: String,
    /// `new`, or what changed (`price NORMAL/ADULT/PREM 85.00 EUR → 90.00 EUR`).
    pub difference: String,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateTableRow {
    pub id: i64,
    pub code: String,
    pub state: String,
    pub prices: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PerformanceRow {
    pub id: i64,
    pub code: String,
    pub start: String,
    pub state: String,
    pub logical_configuration: String,
    /// `to_validate` or `validated`.
    pub logical_configuration_state: String,
    /// The product's link to it is validated (false: added or changed by
    /// the manager's last catalogues, not sold by this product until
    /// validated).
    pub validated: bool,
}

/// The products, by id; only those to validate when asked.
pub fn list(conn: &Connection, to_validate_only: bool) -> Result<Vec<ProductRow>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT p.id, p.code, p.name, p.state, r.id, r.code, r.state,
             (SELECT count(*) FROM price WHERE rate_table = r.id)
         FROM product p JOIN rate_table r ON r.id = p.rate_table
         WHERE (?1 = 0 OR p.state = 'to_validate' OR (p.state = 'validated' AND (
             r.state = 'to_validate'
             OR EXISTS (SELECT 1 FROM product_performance pp WHERE pp.product = p.id AND pp.validated = 0)
             OR EXISTS (SELECT 1 FROM product_performance pp
                 JOIN performance f ON f.id = pp.performance
                 JOIN logical_configuration l ON l.id = f.logical_configuration
                 WHERE pp.product = p.id AND l.state = 'to_validate'))))
         ORDER BY p.id",
    )?;
    let rows = st.query_map([i64::from(to_validate_only)], |r| {
        Ok(ProductRow {
            id: r.get(0)?,
            code: r.get(1)?,
            name: r.get(2)?,
            state: r.get(3)?,
            rate_table: RateTableRow {
                id: r.get(4)?,
                code: r.get(5)?,
                state: r.get(6)?,
                prices: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
            },
            performances: Vec::new(),
            profiles: Vec::new(),
            changes: Vec::new(),
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let mut p = row?;
        p.performances = performances(conn, p.id)?;
        p.profiles = profiles(conn, p.id)?;
        p.changes = changes(conn, p.id)?;
        out.push(p);
    }
    Ok(out)
}

/// The pending differences of a product, its rate table and the logical
/// configurations of its performances, oldest first.
fn changes(conn: &Connection, product: i64) -> Result<Vec<ChangeRow>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT 'product ' || p.code, c.difference, c.file, c.id FROM catalogue_change c
             JOIN product p ON p.id = c.object WHERE c.kind = 'product' AND c.object = ?1
         UNION ALL
         SELECT 'rate table ' || r.code, c.difference, c.file, c.id FROM catalogue_change c
             JOIN rate_table r ON r.id = c.object
             WHERE c.kind = 'rate_table' AND c.object = (SELECT rate_table FROM product WHERE id = ?1)
         UNION ALL
         SELECT 'logical configuration ' || l.code, c.difference, c.file, c.id FROM catalogue_change c
             JOIN logical_configuration l ON l.id = c.object
             WHERE c.kind = 'logical_configuration' AND c.object IN (
                 SELECT f.logical_configuration FROM product_performance pp
                 JOIN performance f ON f.id = pp.performance WHERE pp.product = ?1)
         ORDER BY 4",
    )?;
    let rows = st.query_map([product], |r| {
        Ok(ChangeRow {
            object: r.get(0)?,
            difference: r.get(1)?,
            file: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn performances(conn: &Connection, product: i64) -> Result<Vec<PerformanceRow>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT f.id, f.code, f.start, f.state, l.code, l.state, pp.validated
         FROM product_performance pp
         JOIN performance f ON f.id = pp.performance
         JOIN logical_configuration l ON l.id = f.logical_configuration
         WHERE pp.product = ?1 ORDER BY f.start, f.id",
    )?;
    let rows = st.query_map([product], |r| {
        Ok(PerformanceRow {
            id: r.get(0)?,
            code: r.get(1)?,
            start: r.get(2)?,
            state: r.get(3)?,
            logical_configuration: r.get(4)?,
            logical_configuration_state: r.get(5)?,
            validated: r.get::<_, i64>(6)? == 1,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn profiles(conn: &Connection, product: i64) -> Result<Vec<String>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT s.code FROM sales_profile_product sp JOIN sales_profile s ON s.id = sp.sales_profile
         WHERE sp.product = ?1 ORDER BY s.id",
    )?;
    let rows = st.query_map([product], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What to validate: each object is validated on its own (the manual's
/// logical configuration, rate table and product), a product with its rate
/// table, the logical configurations of its performances and its links to
/// them.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every object waiting for validation.
    All,
    /// These local product ids.
    Ids(&'a [i64]),
    /// These local rate table ids only.
    RateTables(&'a [i64]),
    /// These local logical configuration ids only.
    LogicalConfigurations(&'a [i64]),
}

/// What a validation did. `refused` non-empty means nothing was validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub run: i64,
    /// (id, code) of the products validated.
    pub validated: Vec<(i64, String)>,
    pub rate_tables: u64,
    pub logical_configurations: u64,
    /// Links of a product to a performance (added or changed) validated.
    pub performances: u64,
    /// The rate tables or logical configurations validated on their own
    /// (`rate table 1 TRAV-RT`).
    pub objects: Vec<String>,
    /// (id, reason) of the objects refused.
    pub refused: Vec<(i64, String)>,
}

/// The (id, code) of the objects a selection names, and the refusals
/// (unknown ids, suspended products).
type Targets = (Vec<(i64, String)>, Vec<(i64, String)>);

fn targets(tx: &Transaction<'_>, selection: Selection<'_>) -> Result<Targets, DomainError> {
    let (table, words, ids) = match selection {
        Selection::All => {
            let mut st = tx.prepare_cached(
                "SELECT id, code FROM product WHERE state = 'to_validate' ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            return Ok((rows.collect::<Result<_, _>>()?, Vec::new()));
        }
        Selection::Ids(ids) => ("product", "product", ids),
        Selection::RateTables(ids) => ("rate_table", "rate table", ids),
        Selection::LogicalConfigurations(ids) => {
            ("logical_configuration", "logical configuration", ids)
        }
    };
    let (mut targets, mut refused) = (Vec::new(), Vec::new());
    let sql = format!("SELECT code, state FROM {table} WHERE id = ?1");
    for &id in ids {
        let found: Option<(String, String)> = tx
            .prepare_cached(&sql)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            None => refused.push((id, format!("{words} {id} does not exist; see stxd catalogue list"))),
            Some((code, state)) if state == "suspended" => refused.push((
                id,
                format!(
                    "{words} {id} {code} is suspended: the manager withdrew it from the catalogue; it can be validated again once a catalogue sends it back"
                ),
            )),
            Some((code, _)) => {
                if !targets.iter().any(|(t, _)| *t == id) {
                    targets.push((id, code));
                }
            }
        }
    }
    Ok((targets, refused))
}

/// Validates the objects selected, all or nothing; each leaves its pending
/// differences behind. A suspended product (withdrawn by the manager) or an
/// unknown id is refused, and then nothing is validated; the run says why.
pub fn validate(tx: &Transaction<'_>, selection: Selection<'_>) -> Result<Validation, DomainError> {
    let run = runs::start(tx, "catalogue-validate", None, None)?;
    let (targets, refused) = targets(tx, selection)?;
    let mut v = Validation {
        run,
        validated: Vec::new(),
        rate_tables: 0,
        logical_configurations: 0,
        performances: 0,
        objects: Vec::new(),
        refused,
    };
    if !v.refused.is_empty() {
        for (id, reason) in &v.refused {
            let at = format!("object {id}");
            runs::message(tx, run, Level::Error, "refused", Some(&at), reason)?;
        }
        let counts = Counts {
            total: (targets.len() + v.refused.len()) as u64,
            ok: 0,
            rejected: v.refused.len() as u64,
        };
        runs::finish(tx, run, RunStatus::Failed, counts)?;
        return Ok(v);
    }
    match selection {
        Selection::RateTables(_) | Selection::LogicalConfigurations(_) => {
            let (table, words) = match selection {
                Selection::RateTables(_) => ("rate_table", "rate table"),
                _ => ("logical_configuration", "logical configuration"),
            };
            for (id, code) in &targets {
                let n = validate_object(tx, table, *id)?;
                if table == "rate_table" {
                    v.rate_tables += n;
                } else {
                    v.logical_configurations += n;
                }
                v.objects.push(format!("{words} {id} {code}"));
                let at = format!("{words} {code}");
                let text = format!("{words} {id} {code} validated");
                runs::message(tx, run, Level::Info, "validated", Some(&at), &text)?;
            }
        }
        Selection::All | Selection::Ids(_) => {
            for (id, code) in &targets {
                validate_product(tx, *id, &mut v)?;
                let text = format!(
                    "product {id} {code} validated with its rate table, logical configurations and performances"
                );
                let at = format!("product {code}");
                runs::message(tx, run, Level::Info, "validated", Some(&at), &text)?;
            }
            v.validated.clone_from(&targets);
            if matches!(selection, Selection::All) {
                validate_the_rest(tx, &mut v)?;
            }
        }
    }
    let n = targets.len() as u64;
    let counts = Counts {
        total: n,
        ok: n,
        rejected: 0,
    };
    runs::finish(tx, run, RunStatus::Ok, counts)?;
    Ok(v)
}

/// Validates one rate table or logical configuration (`table`) and drops its
/// pending differences; 1 when it was not validated yet.
fn validate_object(tx: &Transaction<'_>, table: &str, id: i64) -> Result<u64, DomainError> {
    let n = tx
        .prepare_cached(&format!(
            "UPDATE {table} SET state = 'validated' WHERE id = ?1 AND state <> 'validated'"
        ))?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM catalogue_change WHERE kind = ?1 AND object = ?2")?
        .execute((table, id))?;
    Ok(n as u64)
}

/// A product with its rate table, the logical configurations of its
/// performances and its links to them.
fn validate_product(tx: &Transaction<'_>, id: i64, v: &mut Validation) -> Result<(), DomainError> {
    tx.prepare_cached("UPDATE product SET state = 'validated' WHERE id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM catalogue_change WHERE kind = 'product' AND object = ?1")?
        .execute([id])?;
    let rt: i64 = tx
        .prepare_cached("SELECT rate_table FROM product WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    v.rate_tables += validate_object(tx, "rate_table", rt)?;
    let lcs: Vec<i64> = tx
        .prepare_cached(
            "SELECT DISTINCT f.logical_configuration FROM product_performance pp
             JOIN performance f ON f.id = pp.performance WHERE pp.product = ?1",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for lc in lcs {
        v.logical_configurations += validate_object(tx, "logical_configuration", lc)?;
    }
    v.performances += tx
        .prepare_cached(
            "UPDATE product_performance SET validated = 1 WHERE product = ?1 AND validated = 0",
        )?
        .execute([id])? as u64;
    Ok(())
}

/// `--all`, after the products to validate: the products already validated
/// whose rate table, logical configurations or links wait.
fn validate_the_rest(tx: &Transaction<'_>, v: &mut Validation) -> Result<(), DomainError> {
    let ids: Vec<(i64, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.code FROM product p JOIN rate_table r ON r.id = p.rate_table
             WHERE p.state = 'validated' AND (r.state = 'to_validate'
                 OR EXISTS (SELECT 1 FROM product_performance pp WHERE pp.product = p.id AND pp.validated = 0)
                 OR EXISTS (SELECT 1 FROM product_performance pp
                     JOIN performance f ON f.id = pp.performance
                     JOIN logical_configuration l ON l.id = f.logical_configuration
                     WHERE pp.product = p.id AND l.state = 'to_validate'))
             ORDER BY p.id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for table in ["rate_table", "logical_configuration"] {
        let orphans: Vec<i64> = tx
            .prepare_cached(&format!(
                "SELECT id FROM {table} WHERE state = 'to_validate'"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in orphans {
            let n = validate_object(tx, table, id)?;
            if table == "rate_table" {
                v.rate_tables += n;
            } else {
                v.logical_configurations += n;
            }
        }
    }
    for (id, code) in ids {
        validate_product(tx, id, v)?;
        let text = format!(
            "product {id} {code}: its rate table, logical configurations and performances validated"
        );
        runs::message(
            tx,
            v.run,
            Level::Info,
            "validated",
            Some(&format!("product {code}")),
            &text,
        )?;
    }
    Ok(())
}

/// What an assignment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub run: i64,
    pub product: i64,
    pub product_code: String,
    pub profile: i64,
    pub profile_code: String,
    /// It was already assigned: nothing changed.
    pub already: bool,
    /// Sellable now (validated and assigned).
    pub sellable: bool,
}

/// Assigns a product to a sales profile named by its code or id. A suspended
/// product is refused; a product still to validate is assigned with a
/// warning (it sells once validated).
pub fn assign_profile(
    tx: &Transaction<'_>,
    product: i64,
    profile: &str,
) -> Result<Assignment, DomainError> {
    let found: Option<(String, String)> = tx
        .prepare_cached("SELECT code, state FROM product WHERE id = ?1")?
        .query_row([product], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((product_code, state)) = found else {
        return Err(DomainError::Invalid {
            object: format!("product {product}"),
            problem: "it does not exist; see stxd catalogue list".to_owned(),
        });
    };
    if state == "suspended" {
        return Err(DomainError::Invalid {
            object: format!("product {product} {product_code}"),
            problem: "it is suspended (the manager withdrew it); it cannot be put on sale"
                .to_owned(),
        });
    }
    let (profile_id, profile_code) = sales_profile(tx, profile)?;
    let run = runs::start(tx, "catalogue-assign-profile", None, None)?;
    let n = tx
        .prepare_cached(
            "INSERT INTO sales_profile_product (sales_profile, product) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute((profile_id, product))?;
    let location = format!("product {product_code}");
    runs::message(
        tx,
        run,
        Level::Info,
        if n > 0 {
            "assigned"
        } else {
            "already-assigned"
        },
        Some(&location),
        &format!(
            "product {product} {product_code} {} sales profile {profile_code}",
            if n > 0 {
                "assigned to"
            } else {
                "was already in"
            }
        ),
    )?;
    if state != "validated" {
        runs::message(
            tx,
            run,
            Level::Warning,
            "not-validated",
            Some(&location),
            &format!(
                "product {product_code} is {state}: it sells once validated (stxd catalogue validate {product})"
            ),
        )?;
    }
    runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
    Ok(Assignment {
        run,
        product,
        product_code,
        profile: profile_id,
        profile_code,
        already: n == 0,
        sellable: state == "validated",
    })
}

/// The sales profile ops name, by id, else by code (refused when several
/// profiles share the code, or none has it: the known ones are listed).
fn sales_profile(tx: &Transaction<'_>, profile: &str) -> Result<(i64, String), DomainError> {
    let by_id: Option<(i64, String)> = match profile.parse::<i64>() {
        Ok(id) => tx
            .prepare_cached("SELECT id, code FROM sales_profile WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
        Err(_) => None,
    };
    let found = match by_id {
        Some(p) => Some(p),
        None => {
            let mut st = tx
                .prepare_cached("SELECT id, code FROM sales_profile WHERE code = ?1 ORDER BY id")?;
            let all: Vec<(i64, String)> = st
                .query_map([profile], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if all.len() > 1 {
                let ids: Vec<String> = all.iter().map(|(id, _)| id.to_string()).collect();
                return Err(DomainError::Invalid {
                    object: format!("sales profile {profile:?}"),
                    problem: format!(
                        "several profiles have this code (ids {}); give the id",
                        ids.join(", ")
                    ),
                });
            }
            all.into_iter().next()
        }
    };
    let Some(found) = found else {
        let mut st = tx.prepare_cached("SELECT id, code FROM sales_profile ORDER BY id")?;
        let known: Vec<String> = st
            .query_map([], |r| {
                Ok(format!(
                    "{} {}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?
                ))
            })?
            .collect::<Result<_, _>>()?;
        return Err(DomainError::Invalid {
            object: format!("sales profile {profile:?}"),
            problem: format!(
                "no sales profile has this code or id (known: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        });
    };
    Ok(found)
}

/// What stops a product from selling a performance, if anything: the
/// product's own state (validated, in a sales profile), its link to the
/// performance (validated), then the performance's logical configuration
/// (validated). The rate table is the point of sale's to check (its prices).
pub fn not_sellable(
    conn: &Connection,
    product: i64,
    performance: i64,
) -> Result<Option<String>, DomainError> {
    let found: Option<(String, String, i64, String, String)> = conn
        .prepare_cached(
            "SELECT p.code, p.state, pp.validated, l.code, l.state FROM product p
             JOIN product_performance pp ON pp.product = p.id AND pp.performance = ?2
             JOIN performance f ON f.id = pp.performance
             JOIN logical_configuration l ON l.id = f.logical_configuration
             WHERE p.id = ?1",
        )?
        .query_row((product, performance), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((code, state, link, lc, lc_state)) = found else {
        return Ok(Some(format!("product {product} does not sell it")));
    };
    Ok(if state != "validated" {
        Some(format!(
            "product {code} is {state}, not validated: review it and run stxd catalogue validate"
        ))
    } else if !is_sellable(conn, product)? {
        Some(format!(
            "product {code} is in no sales profile: run stxd catalogue assign-profile {product} <PROFILE>"
        ))
    } else if link == 0 {
        Some(format!(
            "the manager added or changed it in product {code}: review it (stxd catalogue list --to-validate) and run stxd catalogue validate {product}"
        ))
    } else if lc_state != "validated" {
        Some(format!(
            "its logical configuration {lc} is {lc_state}: review it and run stxd catalogue validate --logical-configuration {lc}"
        ))
    } else {
        None
    })
}

/// A product can be sold: validated and in at least one sales profile.
pub fn is_sellable(conn: &Connection, product: i64) -> Result<bool, DomainError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM product p WHERE p.id = ?1 AND p.state = 'validated'
                 AND EXISTS (SELECT 1 FROM sales_profile_product sp WHERE sp.product = p.id)",
        )?
        .exists([product])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::store::Store;

    fn store(dir: &std::path::Path) -> Store {
        let mut s = fixtures::tourism(dir);
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO season VALUES (1, 'S', 'S', '2026-01-01', '2026-12-31');
                 INSERT INTO vat_code VALUES (1, 'V', 'V', 550);
                 INSERT INTO activity VALUES (1, 'A', 'A', 1, 1);
                 INSERT INTO venue VALUES (1, 'V', 'V');
                 INSERT INTO configuration VALUES (1, 1, 'C', 'C');
                 INSERT INTO logical_configuration VALUES (1, 'L', 'L', 1, 'to_validate');
                 INSERT INTO performance VALUES (1, 'P', 'P', 1, '2037-01-15T20:00:00+01:00', 1, 1, 'in_operation');
                 INSERT INTO rate_table VALUES (1, 'R', 'R', 'EUR', 'to_validate', NULL);
                 INSERT INTO product VALUES (1, 'X', 'X', 1, 1, 'to_validate');
                 INSERT INTO product VALUES (2, 'Y', 'Y', 1, 1, 'suspended');
                 INSERT INTO product_performance VALUES (1, 1, 0);
                 INSERT INTO sales_profile VALUES (8201, 'GUICHET', 'Guichet');",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    #[test]
    fn validation_validates_the_rate_table_and_logical_configurations_then_assignment_sells() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let listed = s.read(|c| list(c, true)).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].performances.len(), 1);
        let v = s.write(|tx| validate(tx, Selection::All)).unwrap();
        assert_eq!(v.validated, vec![(1, "X".to_owned())]);
        assert_eq!((v.rate_tables, v.logical_configurations), (1, 1));
        assert_eq!(v.performances, 1);
        assert!(!s.read(|c| is_sellable(c, 1)).unwrap());
        let a = s.write(|tx| assign_profile(tx, 1, "GUICHET")).unwrap();
        assert!(a.sellable && !a.already);
        assert!(s.read(|c| is_sellable(c, 1)).unwrap());
        let again = s.write(|tx| assign_profile(tx, 1, "8201")).unwrap();
        assert!(again.already);
        assert_eq!(
            s.read(|c| list(c, false)).unwrap()[0].profiles,
            vec!["GUICHET"]
        );
    }

    #[test]
    fn a_pending_link_or_logical_configuration_stops_that_performance_only_until_validated() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| validate(tx, Selection::All)).unwrap();
        s.write(|tx| assign_profile(tx, 1, "GUICHET")).unwrap();
        assert_eq!(s.read(|c| not_sellable(c, 1, 1)).unwrap(), None);
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch("UPDATE product_performance SET validated = 0")?;
            Ok(())
        })
        .unwrap();
        let why = s.read(|c| not_sellable(c, 1, 1)).unwrap().unwrap();
        assert!(why.contains("added or changed it in product X"), "{why}");
        assert_eq!(s.read(|c| list(c, true)).unwrap().len(), 1);
        s.write(|tx| validate(tx, Selection::Ids(&[1]))).unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "UPDATE logical_configuration SET state = 'to_validate';
                 INSERT INTO catalogue_change (kind, object, difference, file, at)
                 VALUES ('logical_configuration', 1, 'name \"L\" → \"M\"', 'f', 'now')",
            )?;
            Ok(())
        })
        .unwrap();
        let why = s.read(|c| not_sellable(c, 1, 1)).unwrap().unwrap();
        assert!(
            why.contains("logical configuration L is to_validate"),
            "{why}"
        );
        let listed = s.read(|c| list(c, true)).unwrap();
        assert_eq!(listed[0].changes[0].object, "logical configuration L");
        let v = s
            .write(|tx| validate(tx, Selection::LogicalConfigurations(&[1])))
            .unwrap();
        assert_eq!((v.logical_configurations, v.validated.len()), (1, 0));
        assert_eq!(s.read(|c| not_sellable(c, 1, 1)).unwrap(), None);
        assert!(s.read(|c| list(c, true)).unwrap().is_empty());
    }

    #[test]
    fn a_suspended_or_unknown_product_is_refused_and_nothing_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let v = s
            .write(|tx| validate(tx, Selection::Ids(&[1, 2, 99])))
            .unwrap();
        assert!(v.validated.is_empty());
        assert_eq!(v.refused.len(), 2);
        assert!(v.refused[0].1.contains("withdrew"), "{:?}", v.refused);
        let state: String = s
            .read(|c| -> Result<String, DomainError> {
                Ok(c.query_row("SELECT state FROM product WHERE id = 1", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(state, "to_validate");
        let e = s.write(|tx| assign_profile(tx, 2, "GUICHET")).unwrap_err();
        assert!(e.to_string().contains("suspended"), "{e}");
        let e = s.write(|tx| assign_profile(tx, 1, "NOPE")).unwrap_err();
        assert!(e.to_string().contains("8201 GUICHET"), "{e}");
    }
}
