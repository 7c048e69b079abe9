//! Example UDFs: the functions the seed's three scenarios need, written with the guest SDK.
//!
//! The build compiles this crate to `wasm32-unknown-unknown` (see `udfs/artifacts`); the host's
//! tests compare each function run through wasm with the same function called natively here.
//!
//! Counts are numbers in the SDK's encoding (8 bytes, little-endian), so the host's native `sum`
//! and these UDFs can be mixed in one pipeline.

use sluice_guest::{Many, Record, UdfError, filter, flat_map, map, reduce, text};

/// Splits a line on single spaces, keeping empty words, exactly as Python's `line.split(" ")`,
/// and emits `(word, 1)` per word, ready for a sum by key (word count).
#[flat_map]
pub fn split_words(record: Record<'_>) -> Result<Many<impl Iterator<Item = Record<'_>>>, UdfError> {
    let ts = record.timestamp_ms;
    let line = record.value_text()?;
    Ok(Many(text::split(line, b' ').map(move |w| pair(w, ts))))
}

/// Splits a line on any run of whitespace (no empty words, as Python's `line.split()`) and
/// emits `(word, 1)` per word.
#[flat_map]
pub fn split_words_whitespace(record: Record) -> Result<Vec<Record>, UdfError> {
    let ts = record.timestamp_ms;
    let line = record.value_text()?;
    Ok(line.split_whitespace().map(|w| pair(w, ts)).collect())
}

/// Scenario 1: `user_id,timestamp,page` -> key `user_id`, value 1, timestamp from the line
/// (seconds since the epoch, kept as milliseconds).
#[map]
pub fn parse_visit(record: Record) -> Result<Record, UdfError> {
    let line = record.value_text()?;
    let [user, ts, _page] = fields::<3>(line, b',', "user_id,timestamp,page")?;
    let ts = seconds(line, ts)?;
    Ok(pair(user, ts * 1000))
}

/// Scenario 2: keeps `timestamp|level|message` lines whose level is exactly `ERROR`.
#[filter]
pub fn is_error(record: &Record) -> Result<bool, UdfError> {
    let line = record.value_text()?;
    let [_ts, level, _msg] = fields::<3>(line, b'|', "timestamp|level|message")?;
    Ok(level == "ERROR")
}

/// Scenario 2: `timestamp|level|message` -> key `floor(timestamp / 60)` as decimal text (the
/// minute; negative timestamps floor too, as Python's `//`), value 1.
#[map]
pub fn minute_bucket(record: Record) -> Result<Record, UdfError> {
    let line = record.value_text()?;
    let [ts, _level, _msg] = fields::<3>(line, b'|', "timestamp|level|message")?;
    let ts = seconds(line, ts)?;
    let minute = ts.div_euclid(60);
    Ok(Record::keyed(minute.to_string(), 1i64).with_timestamp(ts.saturating_mul(1000)))
}

/// Scenario 3: keeps `user_id,timestamp,action,item_id` lines whose action is `click`.
#[filter]
pub fn is_click(record: &Record) -> Result<bool, UdfError> {
    let line = record.value_text()?;
    let [_user, _ts, action, _item] = fields::<4>(line, b',', "user_id,timestamp,action,item_id")?;
    Ok(action == "click")
}

/// Scenario 3: `user_id,timestamp,action,item_id` -> key `user_id`, value 1, timestamp from the
/// line.
#[map]
pub fn parse_behavior(record: Record) -> Result<Record, UdfError> {
    let line = record.value_text()?;
    let [user, ts, _action, _item] = fields::<4>(line, b',', "user_id,timestamp,action,item_id")?;
    let ts = seconds(line, ts)?;
    Ok(pair(user, ts * 1000))
}

/// Scenario 3, fused: a click line -> `(user_id, 1)`; other actions -> nothing.
#[flat_map]
pub fn clicks_by_user(record: Record) -> Result<Option<Record>, UdfError> {
    let line = record.value_text()?;
    let [user, ts, action, _item] = fields::<4>(line, b',', "user_id,timestamp,action,item_id")?;
    let ts = seconds(line, ts)?;
    Ok((action == "click").then(|| pair(user, ts * 1000)))
}

/// Sum of counts; its inverse subtracts, so sliding windows update incrementally.
#[reduce(inverse = subtract_counts)]
pub fn sum_counts(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

/// The inverse of `sum_counts`: `subtract_counts(sum_counts(a, b), b) == a`.
pub fn subtract_counts(a: i64, b: i64) -> i64 {
    a.wrapping_sub(b)
}

/// Maximum of numbers (no inverse: a maximum cannot be undone).
#[reduce]
pub fn max_value(a: i64, b: i64) -> i64 {
    a.max(b)
}

fn pair(key: &str, timestamp_ms: i64) -> Record<'_> {
    Record::keyed(key, 1i64).with_timestamp(timestamp_ms)
}

/// Splits `line` into exactly `N` fields (the last takes the rest), or says which format it
/// expected.
#[inline(always)]
fn fields<'a, const N: usize>(line: &'a str, sep: u8, format: &str) -> Result<[&'a str; N], UdfError> {
    match text::fields::<N>(line, sep) {
        Some(f) => Ok(f),
        None => Err(too_few_fields(line, sep, N, format)),
    }
}

#[cold]
fn too_few_fields(line: &str, sep: u8, n: usize, format: &str) -> UdfError {
    let found = line.bytes().filter(|&b| b == sep).count() + 1;
    UdfError::malformed(line, format_args!("expected {n} fields `{format}`, found {found}"))
}

#[inline(always)]
fn seconds(line: &str, field: &str) -> Result<i64, UdfError> {
    match text::parse_i64(field.trim_ascii()) {
        Some(v) => Ok(v),
        None => Err(not_seconds(line, field)),
    }
}

#[cold]
fn not_seconds(line: &str, field: &str) -> UdfError {
    UdfError::malformed(
        line,
        format_args!("timestamp {field:?} is not a whole number of seconds"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(Record::new(line))
            .unwrap()
            .0
            .map(|r| r.key_str().unwrap().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn split_words_matches_python_split_on_a_space() {
        assert_eq!(words("a b"), ["a", "b"]);
        assert_eq!(words(" a  b "), ["", "a", "", "b", ""]);
        assert_eq!(words(""), [""]);
        let ws: Vec<_> = split_words_whitespace(Record::new(" a \t b\n"))
            .unwrap()
            .into_iter()
            .map(|r| r.key_str().unwrap().unwrap().to_owned())
            .collect();
        assert_eq!(ws, ["a", "b"]);
    }

    #[test]
    fn parse_visit_keys_by_user_and_keeps_the_line_time() {
        let r = parse_visit(Record::new("u7,1700000000,/home")).unwrap();
        assert_eq!(r.key_str().unwrap(), Some("u7"));
        assert_eq!(r.value_i64().unwrap(), 1);
        assert_eq!(r.timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn malformed_lines_are_errors_that_quote_the_line() {
        let e = parse_visit(Record::new("u7;1700000000")).unwrap_err();
        assert!(e.message().contains("\"u7;1700000000\""), "{e}");
        assert!(e.message().contains("expected 3 fields"), "{e}");
        let e = parse_visit(Record::new("u7,soon,/home")).unwrap_err();
        assert!(e.message().contains("\"soon\" is not a whole number"), "{e}");
        assert!(is_error(&Record::new("12|ERROR")).is_err());
    }

    #[test]
    fn is_error_wants_exactly_error() {
        assert!(is_error(&Record::new("1|ERROR|disk full")).unwrap());
        assert!(!is_error(&Record::new("1|error|disk full")).unwrap());
        assert!(!is_error(&Record::new("1|ERRORS|x")).unwrap());
        assert!(
            is_error(&Record::new("1|ERROR|a|b")).unwrap(),
            "the message may hold the separator"
        );
    }

    #[test]
    fn minute_bucket_floors_negative_timestamps_too() {
        let key = |l: &str| {
            minute_bucket(Record::new(l))
                .unwrap()
                .key_str()
                .unwrap()
                .unwrap()
                .to_owned()
        };
        assert_eq!(key("59|INFO|x"), "0");
        assert_eq!(key("60|INFO|x"), "1");
        assert_eq!(key("-1|INFO|x"), "-1");
        assert_eq!(key("-60|INFO|x"), "-1");
        assert_eq!(key("-61|INFO|x"), "-2");
    }

    #[test]
    fn clicks_by_user_keeps_clicks_only() {
        assert!(clicks_by_user(Record::new("u1,5,view,i9")).unwrap().is_none());
        let r = clicks_by_user(Record::new("u1,5,click,i9")).unwrap().unwrap();
        assert_eq!(r.key_str().unwrap(), Some("u1"));
        assert!(is_click(&Record::new("u1,5,click,i9")).unwrap());
        assert!(is_click(&Record::new("u1,5,click")).is_err());
    }

    #[test]
    fn subtract_undoes_sum() {
        for (a, b) in [(0, 0), (5, -3), (i64::MAX, 1)] {
            assert_eq!(subtract_counts(sum_counts(a, b), b), a);
        }
    }
}
