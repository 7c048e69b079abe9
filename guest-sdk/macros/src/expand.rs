//! Generates, beside the untouched function, the batch glue (on every target, so the types are
//! checked natively) and the `sluice:KIND:NAME` export (wasm builds only).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::{Kind, Udf};

pub fn expand(udf: &Udf) -> TokenStream {
    let item = &udf.item;
    let f = &udf.item.sig.ident;
    let glue = format_ident!("__sluice_glue_{}", udf.name);
    let export_name = format!("sluice:{}:{}", udf.kind.abi_word(), udf.name);
    let body = match udf.kind {
        Kind::Map => quote! {
            ::sluice_guest::rt::run_map(input, out, |r| ::sluice_guest::MapOutput::into_result(#f(r)))
        },
        Kind::FlatMap => quote! {
            ::sluice_guest::rt::run_flat_map(input, out, |r, e| ::sluice_guest::FlatMapOutput::emit(#f(r), &mut |rec| e.push(&rec)))
        },
        Kind::Filter => quote! {
            ::sluice_guest::rt::run_filter(input, out, |r| ::sluice_guest::FilterOutput::into_result(#f(r)))
        },
        Kind::Reduce => {
            let t = udf.value_type.as_ref().expect("reduce has a value type");
            quote! {
                ::sluice_guest::rt::run_reduce::<#t>(input, out, |a, b| {
                    ::sluice_guest::ReduceOutput::<#t>::into_result(#f(a, b))
                })
            }
        }
    };
    let mut out = export(&glue, &export_name, body);
    if let Some(inv) = &udf.inverse {
        let t = udf.value_type.as_ref().expect("reduce has a value type");
        let inv_glue = format_ident!("__sluice_glue_inverse_{}", udf.name);
        let inv_name = format!("sluice:inverse:{}", udf.name);
        out.extend(export(
            &inv_glue,
            &inv_name,
            quote! {
                ::sluice_guest::rt::run_reduce::<#t>(input, out, |a, b| {
                    ::sluice_guest::ReduceOutput::<#t>::into_result(#inv(a, b))
                })
            },
        ));
    }
    quote! {
        #item
        #out
    }
}

fn export(glue: &proc_macro2::Ident, export_name: &str, body: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, dead_code)]
        fn #glue(input: &[u8], out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), ::sluice_guest::UdfError> {
            #body
        }
        const _: () = {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(export_name = #export_name)]
            extern "C" fn __sluice_export(ptr: *const u8, len: usize) -> i64 {
                ::sluice_guest::rt::export_batch(ptr, len, #glue)
            }
        };
    }
}
