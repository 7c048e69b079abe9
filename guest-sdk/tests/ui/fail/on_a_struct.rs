use sluice_guest::map;

#[map]
struct NotAFunction;

fn main() {}
