//! The console's catalogue actions: validate one product, assign one to a
//! sales profile, through the domain's own functions (`stxd catalogue
//! validate|assign-profile`), the domain's run marked in the same
//! transaction with who asked.

use super::{AppError, VIA_CODE, open_side};
use crate::config::Config;
use crate::domain::DomainError;
use crate::domain::catalogue::{self, Assignment, Selection, Validation};
use crate::store::Role;
use crate::store::runs::{self, Level};

/// Validates product `product` of `link`'s distributor (all or nothing, as
/// `stxd catalogue validate ID`); its run says `via`. The inner error is
/// the domain's refusal.
pub fn validate_product(
    config: &Config,
    link: &str,
    product: i64,
    via: &str,
) -> Result<Result<Validation, DomainError>, AppError> {
    validate_object(config, link, Selection::Ids(&[product]), via)
}

/// Validates the objects `selection` names at `link`'s distributor (a
/// product with what it needs, or a rate table or logical configuration on
/// its own), all or nothing, as `stxd catalogue validate`; its run says
/// `via`. The inner error is the domain's refusal.
pub fn validate_object(
    config: &Config,
    link: &str,
    selection: Selection<'_>,
    via: &str,
) -> Result<Result<Validation, DomainError>, AppError> {
    let (_, _, mut store) = open_side(config, link, Role::Distributor)?;
    Ok(store.write(|tx| -> Result<Validation, DomainError> {
        let v = catalogue::validate(tx, selection)?;
        runs::message(tx, v.run, Level::Info, VIA_CODE, None, via)?;
        Ok(v)
    }))
}

/// Assigns product `product` of `link`'s distributor to the sales profile
/// `profile` (code or id), as `stxd catalogue assign-profile`; its run
/// says `via`.
pub fn assign_product(
    config: &Config,
    link: &str,
    product: i64,
    profile: &str,
    via: &str,
) -> Result<Result<Assignment, DomainError>, AppError> {
    let (_, _, mut store) = open_side(config, link, Role::Distributor)?;
    Ok(store.write(|tx| -> Result<Assignment, DomainError> {
        let a = catalogue::assign_profile(tx, product, profile)?;
        runs::message(tx, a.run, Level::Info, VIA_CODE, None, via)?;
        Ok(a)
    }))
}
