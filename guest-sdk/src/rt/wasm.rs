//! The module-level half of the ABI, present only in wasm builds: the `sluice_abi_version` and
//! `sluice_input` exports, the reused input and output buffers, the host imports and the panic
//! hook that sends a panic's message to the host before the module traps.

use std::cell::UnsafeCell;
use std::sync::Once;

use crate::UdfError;

#[link(wasm_import_module = "sluice")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: usize);
    #[link_name = "panic"]
    fn host_panic(ptr: *const u8, len: usize);
}

/// A buffer owned by the module. A wasm32 module runs one call at a time on one thread, and the
/// host never calls in while a call runs, so no two borrows of one buffer ever overlap.
struct Buffer(UnsafeCell<Vec<u8>>);

// SAFETY: wasm32-unknown-unknown modules are single-threaded (see `Buffer`).
unsafe impl Sync for Buffer {}

static INPUT: Buffer = Buffer(UnsafeCell::new(Vec::new()));
static OUTPUT: Buffer = Buffer(UnsafeCell::new(Vec::new()));
static INIT: Once = Once::new();

#[unsafe(no_mangle)]
extern "C" fn sluice_abi_version() -> u32 {
    sluice_abi::ABI_VERSION
}

/// Returns a buffer of at least `len` bytes for the host to write the next batch into.
#[unsafe(no_mangle)]
extern "C" fn sluice_input(len: usize) -> *mut u8 {
    // SAFETY: see `Buffer`; no other borrow of INPUT is live between calls.
    let buf = unsafe { &mut *INPUT.0.get() };
    buf.clear();
    buf.reserve(len);
    buf.as_mut_ptr()
}

/// Sends a log line to the host.
pub fn log(level: i32, msg: &str) {
    // SAFETY: the pointer and length describe `msg`, which lives for the call.
    unsafe { host_log(level, msg.as_ptr(), msg.len()) }
}

fn fail(msg: &str) -> ! {
    // SAFETY: the pointer and length describe `msg`, which lives for the call.
    unsafe { host_panic(msg.as_ptr(), msg.len()) };
    core::arch::wasm32::unreachable()
}

/// Installs the panic hook once; every UDF export calls it first.
pub fn init() {
    INIT.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(panic payload is not text)");
            let text = match info.location() {
                Some(l) => format!("{msg} (at {}:{}:{})", l.file(), l.line(), l.column()),
                None => msg.to_owned(),
            };
            // SAFETY: the pointer and length describe `text`, which lives for the call.
            unsafe { host_panic(text.as_ptr(), text.len()) };
        }));
    });
}

/// The body of every UDF export: views the input the host wrote, runs `body` into the reused
/// output buffer and returns the packed `(ptr << 32) | len` of the output.
#[inline]
pub fn export_batch(ptr: *const u8, len: usize, body: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), UdfError>) -> i64 {
    init();
    // SAFETY: the host wrote `len` bytes at `ptr`, inside the buffer `sluice_input` returned.
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    // SAFETY: see `Buffer`; no other borrow of OUTPUT is live during this call.
    let out = unsafe { &mut *OUTPUT.0.get() };
    out.clear();
    if let Err(e) = body(input, out) {
        fail(e.message());
    }
    sluice_abi::pack(out.as_ptr() as u32, out.len() as u32)
}
