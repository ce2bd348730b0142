//! The setup file as written: one struct per `[[section]]`, read by serde,
//! every unknown key refused. Values are checked afterwards, section by
//! section ([`super::manager`], [`super::distributor`]).

use serde::Deserialize;

use crate::store::Role;

/// The setup file as written (see `samples/README.md`, "Setup file").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSetup {
    pub(super) institution: String,
    pub(super) role: Role,
    #[serde(default)]
    pub(super) sales_channel: Vec<RawSalesChannel>,
    #[serde(default)]
    pub(super) point_of_sale: Vec<RawPointOfSale>,
    #[serde(default)]
    pub(super) payment_method: Vec<RawPaymentMethod>,
    #[serde(default)]
    pub(super) contact: Vec<RawContact>,
    #[serde(default)]
    pub(super) external_sales_interface: Vec<RawExternalSalesInterface>,
    #[serde(default)]
    pub(super) contingent: Vec<RawContingent>,
    #[serde(default)]
    pub(super) activity_profile: Vec<RawActivityProfile>,
    #[serde(default)]
    pub(super) product_profile: Vec<RawProductProfile>,
    #[serde(default)]
    pub(super) external_manager: Vec<RawExternalManager>,
    #[serde(default)]
    pub(super) virtual_operator: Vec<RawVirtualOperator>,
    #[serde(default)]
    pub(super) sales_profile: Vec<RawSalesProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSalesChannel {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) in_operation: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPointOfSale {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) channel: i64,
    pub(super) in_operation: bool,
    pub(super) payment_methods: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaymentMethod {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) allows_pending_account: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContact {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) pending_account_authorised: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExternalSalesInterface {
    pub(super) id: i64,
    pub(super) login: String,
    pub(super) url: String,
    pub(super) channel: i64,
    pub(super) distributor: String,
    pub(super) contact: Option<i64>,
    pub(super) point_of_sale: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContingent {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) channel: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawActivityProfile {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) channel: i64,
    pub(super) activities: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProductProfile {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) channel: i64,
    pub(super) products: Vec<i64>,
    #[serde(default)]
    pub(super) audience_subcategories: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExternalManager {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVirtualOperator {
    pub(super) login: String,
    pub(super) external_manager: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSalesProfile {
    pub(super) id: i64,
    pub(super) code: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) products: Vec<i64>,
}
