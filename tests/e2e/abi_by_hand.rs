//! A UDF module written by hand in WAT from `docs/abi.md` alone, without the SDK: proof that the
//! document is enough to write UDFs in another language.

use sluice::batch::ValueGroups;
use sluice::runtime::UdfError;
use sluice_tests::{batch, runtime};

/// The module: a map (`value_length`), a filter (`non_empty`), a reduce with inverse (`sum`,
/// i64 values), and a map that returns an output location outside memory (`bad_pointer`).
pub const HAND_WRITTEN: &str = r#"
(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "hand-written")

  (func (export "sluice_abi_version") (result i32) i32.const 1)

  ;; The input buffer starts at 64 KiB; the output goes right after the input, so make room
  ;; for the input plus twice its size.
  (func (export "sluice_input") (param $len i32) (result i32)
    (local $pages i32)
    (local.set $pages
      (i32.shr_u
        (i32.add (i32.add (i32.const 66560) (i32.mul (local.get $len) (i32.const 3))) (i32.const 65535))
        (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    i32.const 65536)

  (func $pack (param $out i32) (param $end i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $end) (local.get $out)))))

  ;; Skips a record at $p; returns the address of its value length field via the stack:
  ;; (result next_record value_len)
  (func $skip_record (param $p i32) (result i32 i32)
    (local $klen i32) (local $vlen i32)
    (local.set $klen (i32.load (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (if (i32.ne (local.get $klen) (i32.const -1))
      (then (local.set $p (i32.add (local.get $p) (local.get $klen)))))
    (local.set $vlen (i32.load (local.get $p)))
    (i32.add (local.get $p) (i32.add (i32.const 12) (local.get $vlen)))
    (local.get $vlen))

  ;; map: each record -> no key, value = its value's length as i64, same timestamp.
  (func (export "sluice:map:value_length") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $next i32) (local $vlen i32)
    (local $out i32) (local $o i32)
    (call $log (i32.const 2) (i32.const 16) (i32.const 12))
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $out (i32.add (local.get $ptr) (local.get $len)))
    (i32.store (local.get $out) (local.get $n))
    (local.set $o (i32.add (local.get $out) (i32.const 4)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $skip_record (local.get $p))
        (local.set $vlen)
        (local.set $next)
        (i32.store (local.get $o) (i32.const -1))
        (i32.store offset=4 (local.get $o) (i32.const 8))
        (i64.store offset=8 (local.get $o) (i64.extend_i32_u (local.get $vlen)))
        (i64.store offset=16 (local.get $o) (i64.load (i32.sub (local.get $next) (i32.const 8))))
        (local.set $o (i32.add (local.get $o) (i32.const 24)))
        (local.set $p (local.get $next))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store (local.get $o) (i32.const 0))
    (call $pack (local.get $out) (i32.add (local.get $o) (i32.const 4))))

  ;; filter: keep records whose value is not empty.
  (func (export "sluice:filter:non_empty") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $vlen i32) (local $out i32)
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $out (i32.add (local.get $ptr) (local.get $len)))
    (i32.store (local.get $out) (local.get $n))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $skip_record (local.get $p))
        (local.set $vlen)
        (local.set $p)
        (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i))
          (i32.ne (local.get $vlen) (i32.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $n)) (i32.const 0))
    (call $pack (local.get $out) (i32.add (i32.add (local.get $out) (i32.const 8)) (local.get $n))))

  ;; reduce / inverse over i64 values: fold each group left with + (or -).
  (func $fold (param $ptr i32) (param $len i32) (param $sign i64) (result i64)
    (local $g i32) (local $j i32) (local $m i32) (local $k i32) (local $p i32) (local $acc i64)
    (local $out i32) (local $o i32)
    (local.set $g (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $out (i32.add (local.get $ptr) (local.get $len)))
    (i32.store (local.get $out) (local.get $g))
    (local.set $o (i32.add (local.get $out) (i32.const 4)))
    (block $groups_done
      (loop $group
        (br_if $groups_done (i32.ge_u (local.get $j) (local.get $g)))
        (local.set $m (i32.load (local.get $p)))
        ;; first value: [u32 8][i64]
        (local.set $acc (i64.load offset=8 (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $k (i32.const 1))
        (block $values_done
          (loop $value
            (br_if $values_done (i32.ge_u (local.get $k) (local.get $m)))
            (local.set $acc (i64.add (local.get $acc) (i64.mul (local.get $sign) (i64.load offset=4 (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.const 12)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $value)))
        (i32.store (local.get $o) (i32.const 8))
        (i64.store offset=4 (local.get $o) (local.get $acc))
        (local.set $o (i32.add (local.get $o) (i32.const 12)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $group)))
    (i32.store (local.get $o) (i32.const 0))
    (call $pack (local.get $out) (i32.add (local.get $o) (i32.const 4))))

  (func (export "sluice:reduce:sum") (param i32 i32) (result i64)
    (call $fold (local.get 0) (local.get 1) (i64.const 1)))
  (func (export "sluice:inverse:sum") (param i32 i32) (result i64)
    (call $fold (local.get 0) (local.get 1) (i64.const -1)))

  ;; A broken UDF: claims its output lies far outside memory.
  (func (export "sluice:map:bad_pointer") (param i32 i32) (result i64)
    (call $pack (i32.const 0x7fff0000) (i32.const 0x7fff0100)))
)
"#;

#[test]
fn the_manifest_comes_from_the_export_names() {
    let rt = runtime();
    let m = rt.load("by-hand@1", &wat::parse_str(HAND_WRITTEN).unwrap()).unwrap();
    assert_eq!(
        m.manifest().describe(),
        "bad_pointer (map), non_empty (filter), sum (reduce), value_length (map)"
    );
    assert!(m.manifest().get("sum").unwrap().has_inverse);
}

#[test]
fn a_hand_written_map_filter_and_reduce_follow_the_document() {
    let rt = runtime();
    let m = rt.load("by-hand@1", &wat::parse_str(HAND_WRITTEN).unwrap()).unwrap();
    let mut inst = rt.instantiate(&m, &rt.config().default_limits).unwrap();

    let mut input = batch(&["abc", "", "hello"]);
    input.push(Some(b"key"), b"xy", 77);
    let mapped = inst.map("value_length", &input).unwrap();
    let got: Vec<_> = mapped
        .records
        .iter()
        .map(|r| (r.key, i64::from_le_bytes(r.value.try_into().unwrap()), r.timestamp_ms))
        .collect();
    assert_eq!(got, [(None, 3, 0), (None, 0, 1), (None, 5, 2), (None, 2, 77)]);
    assert_eq!(inst.last_logs()[0].message, "hand-written");

    let kept = inst.filter("non_empty", &input).unwrap();
    let values: Vec<_> = kept.kept.iter().map(|r| r.value).collect();
    assert_eq!(values, [&b"abc"[..], b"hello", b"xy"]);
    assert!(kept.errors.is_empty());

    let mut groups = ValueGroups::new();
    for g in [&[1i64, 2, 3][..], &[10], &[-4, 4]] {
        groups.start_group();
        for v in g {
            groups.push_value(&v.to_le_bytes());
        }
    }
    let sums = inst.reduce("sum", &mut groups).unwrap();
    let sums: Vec<i64> = sums
        .values
        .iter()
        .map(|v| i64::from_le_bytes(v.clone().unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(sums, [6, 10, 0]);
    let diffs = inst.inverse("sum", &mut groups).unwrap();
    let diffs: Vec<i64> = diffs
        .values
        .iter()
        .map(|v| i64::from_le_bytes(v.clone().unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(diffs, [-4, 10, -8]);
}

#[test]
fn output_outside_memory_is_a_bad_output_error() {
    let rt = runtime();
    let m = rt.load("by-hand@1", &wat::parse_str(HAND_WRITTEN).unwrap()).unwrap();
    let mut inst = rt.instantiate(&m, &rt.config().default_limits).unwrap();
    let err = inst.map("bad_pointer", &batch(&["x"])).unwrap_err();
    assert!(matches!(err, UdfError::BadOutput { .. }), "{err:?}");
    assert!(err.to_string().contains("outside the module's memory"), "{err}");
    assert!(inst.is_poisoned());
}

#[test]
fn asking_for_a_udf_the_module_lacks_lists_what_it_has() {
    let rt = runtime();
    let m = rt.load("by-hand@1", &wat::parse_str(HAND_WRITTEN).unwrap()).unwrap();
    let mut inst = rt.instantiate(&m, &rt.config().default_limits).unwrap();
    let err = inst.map("non_empty", &batch(&["x"])).unwrap_err();
    assert!(matches!(err, UdfError::NoSuchUdf { .. }), "{err:?}");
    assert!(err.to_string().contains("non_empty (filter)"), "{err}");
}

#[test]
fn the_example_on_the_abi_page_works() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/abi.md")).unwrap();
    let start = page.find("```wat\n").expect("docs/abi.md has a wat example") + 7;
    let end = start + page[start..].find("```").unwrap();
    let rt = runtime();
    let m = rt.load("doc@1", &wat::parse_str(&page[start..end]).unwrap()).unwrap();
    let mut inst = rt.instantiate(&m, &rt.config().default_limits).unwrap();
    let mut input = batch(&["a", "", "ccc"]);
    input.push(Some(b"k"), b"v", -3);
    let out = inst.map("identity", &input).unwrap();
    assert_eq!(out.records, input);
    assert!(out.errors.is_empty());
}
