//! Attribute macros of the Sluice guest SDK: `#[map]`, `#[flat_map]`, `#[filter]` and
//! `#[reduce(inverse = f)]`. Use them through `sluice_guest`.
//!
//! Each goes parse -> model -> generate: `model.rs` checks the function's signature and reports
//! misuse at the offending span with the signature to write instead; `expand.rs` leaves the
//! function as written and adds, beside it, the batch glue and (in wasm builds only) the
//! `sluice:KIND:NAME` export. The glue is type-checked on every target, so `cargo test` on the
//! host catches a wrong return type too.

mod expand;
mod model;

use proc_macro::TokenStream;

use model::Kind;

fn run(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    match model::Udf::parse(kind, attr.into(), item.into()) {
        Ok(udf) => expand::expand(&udf).into(),
        Err(e) => {
            let mut out = e.to_compile_error();
            // Keep the function itself so that one mistake yields one error, not a cascade of
            // "cannot find function" errors where it is used.
            if syn::parse2::<syn::ItemFn>(item2.clone()).is_ok() {
                out.extend(item2);
            }
            out.into()
        }
    }
}

/// A map UDF: one record in, one record out.
///
/// ```ignore
/// #[map]
/// fn parse(record: Record) -> Result<Record, UdfError> { ... }
/// ```
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Map, attr, item)
}

/// A flat_map UDF: one record in, zero or more out (`Vec<Record>` or `Option<Record>`).
///
/// ```ignore
/// #[flat_map]
/// fn split(record: Record) -> Result<Vec<Record>, UdfError> { ... }
/// ```
#[proc_macro_attribute]
pub fn flat_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::FlatMap, attr, item)
}

/// A filter UDF: borrows a record and says whether it stays.
///
/// ```ignore
/// #[filter]
/// fn is_error(record: &Record) -> bool { ... }
/// ```
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Filter, attr, item)
}

/// A reduce UDF: folds two values of one type into one; associative. With
/// `inverse = other_fn`, `other_fn(reduce(a, b), b) == a`, which lets sliding windows subtract
/// the batches that leave instead of recomputing.
///
/// ```ignore
/// #[reduce(inverse = minus)]
/// fn plus(a: i64, b: i64) -> i64 { a + b }
/// fn minus(a: i64, b: i64) -> i64 { a - b }
/// ```
#[proc_macro_attribute]
pub fn reduce(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Reduce, attr, item)
}
