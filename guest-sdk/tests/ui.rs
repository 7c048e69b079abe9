//! Macro misuse fails to compile with a message that says what to write instead; the right
//! shapes compile. Refresh the expected messages with `TRYBUILD=overwrite cargo test -p sluice-guest --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
