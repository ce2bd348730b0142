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
}

/// The products, by id; only those to validate when asked.
pub fn list(conn: &Connection, to_validate_only: bool) -> Result<Vec<ProductRow>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT p.id, p.code, p.name, p.state, r.id, r.code, r.state,
             (SELECT count(*) FROM price WHERE rate_table = r.id)
         FROM product p JOIN rate_table r ON r.id = p.rate_table
         WHERE (?1 = 0 OR p.state = 'to_validate')
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
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let mut p = row?;
        p.performances = performances(conn, p.id)?;
        p.profiles = profiles(conn, p.id)?;
        out.push(p);
    }
    Ok(out)
}

fn performances(conn: &Connection, product: i64) -> Result<Vec<PerformanceRow>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT f.id, f.code, f.start, f.state, l.code
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

/// Which products to validate.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every product to validate.
    All,
    /// These local product ids.
    Ids(&'a [i64]),
}

/// What a validation did. `refused` non-empty means nothing was validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub run: i64,
    /// (id, code) of the products validated.
    pub validated: Vec<(i64, String)>,
    pub rate_tables: u64,
    pub logical_configurations: u64,
    /// (id, reason) of the products refused.
    pub refused: Vec<(i64, String)>,
}

/// Validates products, all or nothing: each with its rate table and the
/// logical configurations of its performances. A suspended product (withdrawn
/// by the manager) or an unknown id is refused, and then nothing is
/// validated; the run says why.
pub fn validate(tx: &Transaction<'_>, selection: Selection<'_>) -> Result<Validation, DomainError> {
    let run = runs::start(tx, "catalogue-validate", None, None)?;
    let mut targets: Vec<(i64, String)> = Vec::new();
    let mut refused: Vec<(i64, String)> = Vec::new();
    match selection {
        Selection::All => {
            let mut st = tx.prepare_cached(
                "SELECT id, code FROM product WHERE state = 'to_validate' ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                targets.push(row?);
            }
        }
        Selection::Ids(ids) => {
            for &id in ids {
                let found: Option<(String, String)> = tx
                    .prepare_cached("SELECT code, state FROM product WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                match found {
                    None => refused.push((id, format!("product {id} does not exist; see stxd catalogue list"))),
                    Some((code, state)) if state == "suspended" => refused.push((
                        id,
                        format!(
                            "product {id} {code} is suspended: the manager withdrew it from the catalogue; it can be validated again once a catalogue sends it back"
                        ),
                    )),
                    Some((code, _)) => {
                        if !targets.iter().any(|(t, _)| *t == id) {
                            targets.push((id, code));
                        }
                    }
                }
            }
        }
    }
    if !refused.is_empty() {
        for (id, reason) in &refused {
            runs::message(
                tx,
                run,
                Level::Error,
                "refused",
                Some(&format!("product {id}")),
                reason,
            )?;
        }
        runs::finish(
            tx,
            run,
            RunStatus::Failed,
            Counts {
                total: (targets.len() + refused.len()) as u64,
                ok: 0,
                rejected: refused.len() as u64,
            },
        )?;
        return Ok(Validation {
            run,
            validated: Vec::new(),
            rate_tables: 0,
            logical_configurations: 0,
            refused,
        });
    }
    let mut rate_tables = 0;
    let mut lcs = 0;
    for (id, code) in &targets {
        tx.prepare_cached("UPDATE product SET state = 'validated' WHERE id = ?1")?
            .execute([id])?;
        rate_tables += tx
            .prepare_cached(
                "UPDATE rate_table SET state = 'validated'
                 WHERE id = (SELECT rate_table FROM product WHERE id = ?1) AND state <> 'validated'",
            )?
            .execute([id])? as u64;
        lcs += tx
            .prepare_cached(
                "UPDATE logical_configuration SET state = 'validated'
                 WHERE state <> 'validated' AND id IN (
                     SELECT f.logical_configuration FROM product_performance pp
                     JOIN performance f ON f.id = pp.performance WHERE pp.product = ?1)",
            )?
            .execute([id])? as u64;
        runs::message(
            tx,
            run,
            Level::Info,
            "validated",
            Some(&format!("product {code}")),
            &format!(
                "product {id} {code} validated with its rate table and logical configurations"
            ),
        )?;
    }
    let n = targets.len() as u64;
    runs::finish(
        tx,
        run,
        RunStatus::Ok,
        Counts {
            total: n,
            ok: n,
            rejected: 0,
        },
    )?;
    Ok(Validation {
        run,
        validated: targets,
        rate_tables,
        logical_configurations: lcs,
        refused,
    })
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
                 INSERT INTO performance VALUES (1, 'P', 'P', 1, '2027-01-15T20:00:00+01:00', 1, 1, 'in_operation');
                 INSERT INTO rate_table VALUES (1, 'R', 'R', 'EUR', 'to_validate');
                 INSERT INTO product VALUES (1, 'X', 'X', 1, 1, 'to_validate');
                 INSERT INTO product VALUES (2, 'Y', 'Y', 1, 1, 'suspended');
                 INSERT INTO product_performance VALUES (1, 1);
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
