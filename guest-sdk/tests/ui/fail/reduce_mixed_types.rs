use sluice_guest::reduce;

#[reduce]
fn add(a: i64, b: u64) -> i64 {
    a + b as i64
}

fn main() {}
