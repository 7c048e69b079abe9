//! What a UDF function may return, per kind. The attribute macros call these traits, so a wrong
//! return type fails to compile with a message that lists the types that work.

use std::fmt::Display;

use crate::{Record, ReduceValue, UdfError};

/// What a `#[map]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[map] function must return `Record` or `Result<Record, E>`, not `{Self}`",
    note = "for zero or more records per input use #[flat_map]; to keep or drop records use #[filter]"
)]
pub trait MapOutput<'a> {
    /// The record, or the error for this input.
    fn into_result(self) -> Result<Record<'a>, UdfError>;
}

impl<'a> MapOutput<'a> for Record<'a> {
    #[inline]
    fn into_result(self) -> Result<Record<'a>, UdfError> {
        Ok(self)
    }
}

impl<'a, E: Display> MapOutput<'a> for Result<Record<'a>, E> {
    #[inline]
    fn into_result(self) -> Result<Record<'a>, UdfError> {
        self.map_err(|e| UdfError::new(e.to_string()))
    }
}

/// What a `#[flat_map]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[flat_map] function must return `Vec<Record>`, `Option<Record>`, `Many(iterator)` or a `Result` of one, not `{Self}`",
    note = "for exactly one record per input use #[map]"
)]
pub trait FlatMapOutput<'a> {
    /// Hands each record to `sink`, or returns the error for this input (before any record).
    fn emit(self, sink: &mut impl FnMut(Record<'a>)) -> Result<(), UdfError>;
}

impl<'a> FlatMapOutput<'a> for Vec<Record<'a>> {
    #[inline]
    fn emit(self, sink: &mut impl FnMut(Record<'a>)) -> Result<(), UdfError> {
        self.into_iter().for_each(sink);
        Ok(())
    }
}

/// Records from an iterator, emitted as it yields them, without collecting: return
/// `Many(line.split(' ').map(...))` from a `#[flat_map]` to save an allocation per input.
#[derive(Clone, Debug)]
pub struct Many<I>(pub I);

impl<'a, I: Iterator<Item = Record<'a>>> FlatMapOutput<'a> for Many<I> {
    #[inline]
    fn emit(self, sink: &mut impl FnMut(Record<'a>)) -> Result<(), UdfError> {
        self.0.for_each(sink);
        Ok(())
    }
}

impl<'a> FlatMapOutput<'a> for Option<Record<'a>> {
    #[inline]
    fn emit(self, sink: &mut impl FnMut(Record<'a>)) -> Result<(), UdfError> {
        if let Some(r) = self {
            sink(r);
        }
        Ok(())
    }
}

impl<'a, T: FlatMapOutput<'a>, E: Display> FlatMapOutput<'a> for Result<T, E> {
    #[inline]
    fn emit(self, sink: &mut impl FnMut(Record<'a>)) -> Result<(), UdfError> {
        match self {
            Ok(t) => t.emit(sink),
            Err(e) => Err(UdfError::new(e.to_string())),
        }
    }
}

/// What a `#[filter]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[filter] function must return `bool` or `Result<bool, E>`, not `{Self}`",
    note = "return true to keep the record; to change records use #[map]"
)]
pub trait FilterOutput {
    /// Keep (`true`) or drop, or the error for this input.
    fn into_result(self) -> Result<bool, UdfError>;
}

impl FilterOutput for bool {
    #[inline]
    fn into_result(self) -> Result<bool, UdfError> {
        Ok(self)
    }
}

impl<E: Display> FilterOutput for Result<bool, E> {
    #[inline]
    fn into_result(self) -> Result<bool, UdfError> {
        self.map_err(|e| UdfError::new(e.to_string()))
    }
}

/// What a `#[reduce]` function (or its inverse) may return: its value type `T`, or a `Result`.
#[diagnostic::on_unimplemented(
    message = "a #[reduce] function over `{T}` must return `{T}` or `Result<{T}, E>`, not `{Self}`",
    note = "a reduce folds two values of one type into one value of the same type"
)]
pub trait ReduceOutput<T: ReduceValue> {
    /// The folded value, or the error for this group.
    fn into_result(self) -> Result<T, UdfError>;
}

impl<T: ReduceValue> ReduceOutput<T> for T {
    #[inline]
    fn into_result(self) -> Result<T, UdfError> {
        Ok(self)
    }
}

impl<T: ReduceValue, E: Display> ReduceOutput<T> for Result<T, E> {
    #[inline]
    fn into_result(self) -> Result<T, UdfError> {
        self.map_err(|e| UdfError::new(e.to_string()))
    }
}
