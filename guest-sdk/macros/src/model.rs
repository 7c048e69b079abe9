//! Parses and checks a UDF function; every misuse becomes an error at its span that says what to
//! write instead.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

/// The UDF kinds an attribute declares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Map,
    FlatMap,
    Filter,
    Reduce,
}

impl Kind {
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Map => "#[map]",
            Kind::FlatMap => "#[flat_map]",
            Kind::Filter => "#[filter]",
            Kind::Reduce => "#[reduce]",
        }
    }

    pub fn abi_word(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::FlatMap => "flat_map",
            Kind::Filter => "filter",
            Kind::Reduce => "reduce",
        }
    }

    fn example(self, name: &str) -> String {
        match self {
            Kind::Map => format!("fn {name}(record: Record) -> Result<Record, UdfError>"),
            Kind::FlatMap => format!("fn {name}(record: Record) -> Result<Vec<Record>, UdfError>"),
            Kind::Filter => format!("fn {name}(record: &Record) -> bool"),
            Kind::Reduce => format!("fn {name}(a: i64, b: i64) -> i64"),
        }
    }
}

/// A checked UDF function.
pub struct Udf {
    pub kind: Kind,
    pub item: ItemFn,
    /// The UDF's name in the module's manifest (the function's name).
    pub name: String,
    /// For `reduce`: the value type.
    pub value_type: Option<Type>,
    /// For `reduce(inverse = f)`: the inverse function.
    pub inverse: Option<syn::Path>,
}

fn err(span: Span, msg: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, msg)
}

impl Udf {
    pub fn parse(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<Udf> {
        let item: ItemFn = syn::parse2(item).map_err(|e| {
            err(
                e.span(),
                format!("{} goes on a function, like `{}`", kind.attr(), kind.example("f")),
            )
        })?;
        let inverse = parse_attr(kind, attr)?;
        let ident: &Ident = &item.sig.ident;
        let name = ident.to_string().trim_start_matches("r#").to_owned();
        let example = kind.example(&name);
        let sig = &item.sig;
        if !name.is_ascii() {
            return Err(err(
                ident.span(),
                format!(
                    "a UDF's name must be ASCII (it names the export `sluice:{}:{name}`)",
                    kind.abi_word()
                ),
            ));
        }
        if let Some(a) = &sig.asyncness {
            return Err(err(a.span(), format!("a UDF cannot be async: write `{example}`")));
        }
        if let Some(u) = &sig.unsafety {
            return Err(err(u.span(), format!("a UDF cannot be unsafe: write `{example}`")));
        }
        if let Some(p) = sig.generics.type_params().next() {
            return Err(err(
                p.span(),
                format!("a UDF cannot be generic: name the types, as in `{example}`"),
            ));
        }
        if let Some(c) = sig.generics.const_params().next() {
            return Err(err(
                c.span(),
                format!("a UDF cannot be generic: name the types, as in `{example}`"),
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(err(v.span(), format!("write `{example}`")));
        }
        if let ReturnType::Default = sig.output {
            return Err(err(
                sig.paren_token.span.close(),
                format!("{} needs a return type: write `{example}`", kind.attr()),
            ));
        }
        let mut types = Vec::new();
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(r) => {
                    return Err(err(
                        r.span(),
                        format!("a UDF is a free function, not a method: write `{example}`"),
                    ));
                }
                FnArg::Typed(t) => {
                    if !matches!(*t.pat, Pat::Ident(_) | Pat::Wild(_)) {
                        return Err(err(t.pat.span(), "name the argument (patterns are not supported here)"));
                    }
                    types.push((*t.ty).clone());
                }
            }
        }
        let want = if kind == Kind::Reduce { 2 } else { 1 };
        if types.len() != want {
            let what = if kind == Kind::Reduce {
                "two values of one type"
            } else {
                "one record"
            };
            return Err(err(
                sig.inputs
                    .span()
                    .join(sig.paren_token.span.join())
                    .unwrap_or(sig.paren_token.span.join()),
                format!(
                    "a {} function takes {what}, not {} argument(s): write `{example}`",
                    kind.attr(),
                    types.len()
                ),
            ));
        }
        let value_type = match kind {
            Kind::Map | Kind::FlatMap => {
                check_record(&types[0], false, kind, &example)?;
                None
            }
            Kind::Filter => {
                check_record(&types[0], true, kind, &example)?;
                None
            }
            Kind::Reduce => {
                let (a, b) = (&types[0], &types[1]);
                if quote::quote!(#a).to_string() != quote::quote!(#b).to_string() {
                    return Err(err(
                        b.span(),
                        format!("both values of a #[reduce] function have one type: write `{example}`"),
                    ));
                }
                if matches!(a, Type::Reference(_)) {
                    return Err(err(
                        a.span(),
                        format!("a #[reduce] function takes its values by value: write `{example}`"),
                    ));
                }
                Some(a.clone())
            }
        };
        Ok(Udf {
            kind,
            name,
            value_type,
            inverse,
            item,
        })
    }
}

fn is_record_path(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Record"),
        _ => false,
    }
}

fn check_record(ty: &Type, by_ref: bool, kind: Kind, example: &str) -> syn::Result<()> {
    match (ty, by_ref) {
        (Type::Reference(r), true) if is_record_path(&r.elem) => {
            if r.mutability.is_some() {
                return Err(err(
                    ty.span(),
                    format!("a #[filter] function only reads the record: write `{example}`"),
                ));
            }
            Ok(())
        }
        (t, false) if is_record_path(t) => Ok(()),
        (t, true) if is_record_path(t) => Err(err(
            ty.span(),
            format!(
                "a #[filter] function borrows the record (it keeps or drops it, never changes it): write `{example}`"
            ),
        )),
        (Type::Reference(r), false) if is_record_path(&r.elem) => Err(err(
            ty.span(),
            format!(
                "{} takes the record by value, so it can return it or parts of it without a copy: write `{example}`",
                kind.attr()
            ),
        )),
        _ => Err(err(
            ty.span(),
            format!(
                "{} functions take a `Record` (use `record.value_str()?` for its text): write `{example}`",
                kind.attr()
            ),
        )),
    }
}

/// `#[reduce(inverse = path)]`; other kinds take no arguments.
fn parse_attr(kind: Kind, attr: TokenStream) -> syn::Result<Option<syn::Path>> {
    if attr.is_empty() {
        return Ok(None);
    }
    if kind != Kind::Reduce {
        return Err(err(attr.span(), format!("{} takes no arguments", kind.attr())));
    }
    let mut inverse = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("inverse") {
            if inverse.is_some() {
                return Err(meta.error("`inverse` is given twice"));
            }
            inverse = Some(meta.value()?.parse::<syn::Path>()?);
            Ok(())
        } else {
            Err(meta.error("#[reduce] takes only `inverse = function_name`, as in `#[reduce(inverse = minus)]`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(inverse)
}
