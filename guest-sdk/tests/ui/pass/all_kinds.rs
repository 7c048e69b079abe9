use sluice_guest::{Record, UdfError, filter, flat_map, map, reduce};

#[map]
fn plain_map(record: Record) -> Record {
    record
}

#[map]
fn fallible_map(record: Record<'_>) -> Result<Record<'_>, UdfError> {
    let text = record.value_text()?;
    Ok(Record::new(text).with_key("k"))
}

#[map]
fn string_error(record: Record) -> Result<Record, String> {
    Ok(record)
}

#[flat_map]
fn many(record: Record) -> Vec<Record> {
    vec![record.clone(), record]
}

#[flat_map]
fn maybe(record: Record) -> Result<Option<Record>, UdfError> {
    Ok(Some(record))
}

#[filter]
fn keep(record: &Record) -> bool {
    !record.value.is_empty()
}

#[filter]
fn keep_or_fail(record: &Record) -> Result<bool, UdfError> {
    Ok(record.value_str()?.starts_with('a'))
}

#[reduce(inverse = minus)]
fn plus(a: i64, b: i64) -> i64 {
    a + b
}

fn minus(a: i64, b: i64) -> i64 {
    a - b
}

#[reduce]
fn longest(a: String, b: String) -> Result<String, UdfError> {
    Ok(if b.len() > a.len() { b } else { a })
}

#[reduce]
fn max_f(a: f64, b: f64) -> f64 {
    a.max(b)
}

fn main() {
    assert_eq!(plus(2, 3), 5);
    assert_eq!(minus(plus(2, 3), 3), 2);
    assert!(keep(&Record::new("x")));
    assert_eq!(many(Record::new("x")).len(), 2);
    let _ = (plain_map, fallible_map, string_error, maybe, keep_or_fail, longest, max_f);
}
