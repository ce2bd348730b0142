//! The SQLite store: one database per institution.

use std::fmt;

use serde::Deserialize;

/// The side an institution plays on its links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Distributor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Manager => "manager",
            Role::Distributor => "distributor",
        })
    }
}
