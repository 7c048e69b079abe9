//! `UdfError`: a record the UDF cannot handle. The host reports it with the record and applies the
//! job's bad-record policy (fail the job, or send the record to the dead-letter output).

use std::fmt;

/// Why a UDF could not handle one record (or one group of values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdfError {
    message: String,
}

impl UdfError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> UdfError {
        UdfError {
            message: message.into(),
        }
    }

    /// A malformed input line: the message quotes the line (cut at 200 bytes) and says why.
    pub fn malformed(line: &str, why: impl fmt::Display) -> UdfError {
        let mut end = line.len().min(200);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let more = if end < line.len() { "..." } else { "" };
        UdfError::new(format!("malformed line {:?}{more}: {why}", &line[..end]))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for UdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UdfError {}

impl From<String> for UdfError {
    fn from(message: String) -> Self {
        UdfError { message }
    }
}

impl From<&str> for UdfError {
    fn from(message: &str) -> Self {
        UdfError::new(message)
    }
}

impl From<std::str::Utf8Error> for UdfError {
    fn from(e: std::str::Utf8Error) -> Self {
        UdfError::new(format!("value is not UTF-8 text: {e}"))
    }
}

impl From<std::num::ParseIntError> for UdfError {
    fn from(e: std::num::ParseIntError) -> Self {
        UdfError::new(format!("not an integer: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_quotes_the_line_and_cuts_long_ones_on_a_char_boundary() {
        let e = UdfError::malformed("a|b", "expected 3 fields");
        assert_eq!(e.message(), r#"malformed line "a|b": expected 3 fields"#);
        let long = "é".repeat(150);
        let e = UdfError::malformed(&long, "x");
        assert!(e.message().ends_with("...: x"), "{}", e.message());
    }
}
