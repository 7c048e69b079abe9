use sluice_guest::reduce;

#[reduce(inverted = sub)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
