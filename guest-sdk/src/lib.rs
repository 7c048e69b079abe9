//! The Sluice guest SDK: write a UDF as a plain Rust function with an attribute, build the crate
//! to `wasm32-unknown-unknown`, upload the `.wasm`.
//!
//! ```
//! use sluice_guest::{Record, UdfError, filter, map};
//!
//! /// `user_id,timestamp,page` -> key `user_id`, value the whole line.
//! #[map]
//! fn key_by_user(record: Record) -> Result<Record, UdfError> {
//!     let line = record.value_str()?;
//!     let (user, _) = line.split_once(',').ok_or_else(|| UdfError::malformed(line, "no comma"))?;
//!     let user = user.to_owned();
//!     Ok(record.with_key(user))
//! }
//!
//! #[filter]
//! fn non_empty(record: &Record) -> bool {
//!     !record.value.is_empty()
//! }
//!
//! // The functions stay plain Rust: test them natively with `cargo test`.
//! let out = key_by_user(Record::new("7,100,/home")).unwrap();
//! assert_eq!(out.key_str().unwrap(), Some("7"));
//! ```
//!
//! The attributes (`map`, `flat_map`, `filter`, `reduce`) leave the function as written and,
//! when building for wasm, add an export that runs it over a whole batch in one call. The byte
//! layout behind them (the batch ABI) is hidden here and documented in `docs/abi.md`.

mod bytes;
mod error;
pub mod log;
mod outputs;
mod record;
pub mod text;
mod value;

#[doc(hidden)]
pub mod rt;

pub use bytes::Bytes;
pub use error::UdfError;
pub use outputs::{FilterOutput, FlatMapOutput, Many, MapOutput, ReduceOutput};
pub use record::Record;
pub use sluice_guest_macros::{filter, flat_map, map, reduce};
pub use value::ReduceValue;

/// The ABI version this SDK builds modules for.
pub const ABI_VERSION: u32 = sluice_abi::ABI_VERSION;
