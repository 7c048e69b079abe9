//! A module's manifest: the UDFs it exports, read from its `sluice:KIND:NAME` export names.

use serde::Serialize;
use sluice_abi::UdfKind;

/// One UDF of a module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UdfInfo {
    /// The function's name.
    pub name: String,
    /// Its kind: `map`, `flat_map`, `filter` or `reduce`.
    #[serde(serialize_with = "kind_str")]
    #[schema(value_type = String, example = "map")]
    pub kind: UdfKind,
    /// For a reduce: whether the module also exports its inverse (`sluice:inverse:NAME`).
    pub has_inverse: bool,
}

fn kind_str<S: serde::Serializer>(kind: &UdfKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// The UDFs of a module, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The UDFs (inverses appear as `has_inverse` of their reduce, not on their own).
    pub udfs: Vec<UdfInfo>,
}

impl Manifest {
    /// The UDF of this name, if any.
    pub fn get(&self, name: &str) -> Option<&UdfInfo> {
        self.udfs.iter().find(|u| u.name == name)
    }

    /// `name (kind), ...` for error messages.
    pub fn describe(&self) -> String {
        if self.udfs.is_empty() {
            return "no UDFs".to_owned();
        }
        self.udfs
            .iter()
            .map(|u| format!("{} ({})", u.name, u.kind))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
