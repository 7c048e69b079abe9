/*
 * A Sluice UDF in C: the seed's ERROR filter, written against docs/abi.md alone (no SDK, no
 * libc), to show the ABI is language-neutral. It keeps `timestamp|level|message` lines whose
 * level is exactly `ERROR`, and refuses lines without two fields, with a message.
 *
 * Build (Debian's clang and lld):
 *   clang --target=wasm32-unknown-unknown -O2 -nostdlib -ffreestanding \
 *         -Wl,--no-entry -Wl,--strip-all -o is_error.wasm udfs/c/is_error.c
 * Try:
 *   sluice udf test is_error.wasm --function is_error --input examples/jobs/server/errors-per-minute-http.sample.txt
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

#define EXPORT(name) __attribute__((export_name(name)))
#define IMPORT(name) __attribute__((import_module("sluice"), import_name(name)))

/* `sluice.log(level, ptr, len)`: a log line the host keeps with the job (level 3: warn). */
IMPORT("log") void sluice_log(int level, const u8 *ptr, u32 len);

extern u8 __heap_base;

/* Memory after the data and the stack: the input buffer, then each call's output. */
static u8 *input;
static u32 input_cap;

/* Makes sure linear memory reaches `end` (64 KiB pages); 0 if it cannot grow. */
static int reach(u64 end) {
    u64 have = (u64)__builtin_wasm_memory_size(0) * 65536;
    if (end <= have) return 1;
    u64 pages = (end - have + 65535) / 65536;
    return __builtin_wasm_memory_grow(0, (unsigned long)pages) != (unsigned long)-1;
}

static u32 get_u32(const u8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24; }

static void put_u32(u8 *p, u32 v) {
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

EXPORT("sluice_abi_version") int abi_version(void) { return 1; }

/* The host asks for room for the next call's input. */
EXPORT("sluice_input") u8 *sluice_input(u32 len) {
    if (len > input_cap) {
        u8 *base = (u8 *)(((u32)&__heap_base + 15) & ~15u);
        if (!reach((u64)(u32)base + len)) return 0;
        input = base;
        input_cap = len;
    }
    return input;
}

static const char MALFORMED[] = "expected timestamp|level|message";
static const char LOG_LINE[] = "a line without two '|' was refused";

/* filter: input `[u32 n][record x n]`, output `[u32 n][u8 x n][u32 n_err][error x n_err]`. */
EXPORT("sluice:filter:is_error") u64 is_error(const u8 *in, u32 len) {
    u32 n = get_u32(in);
    const u32 msg_len = sizeof(MALFORMED) - 1;
    /* Output after the input: the selection bytes, then at most one error per record. */
    u8 *out = (u8 *)((((u32)in + len) + 15) & ~15u);
    u64 out_max = 4 + (u64)n + 4 + (u64)n * (8 + msg_len);
    if (!reach((u64)(u32)out + out_max)) __builtin_trap();
    put_u32(out, n);
    u8 *errors = out + 4 + n + 4;
    u32 n_err = 0;
    const u8 *p = in + 4;
    for (u32 i = 0; i < n; i++) {
        u32 key_len = get_u32(p);
        p += 4;
        if (key_len != 0xFFFFFFFFu) p += key_len;
        u32 value_len = get_u32(p);
        const u8 *value = p + 4;
        p += 4 + value_len + 8; /* value, then the i64 timestamp */
        /* The level is between the first and second '|'. */
        u32 first = value_len, second = value_len;
        for (u32 j = 0; j < value_len; j++) {
            if (value[j] != '|') continue;
            if (first == value_len) first = j;
            else { second = j; break; }
        }
        u8 keep = 0;
        if (second == value_len) {
            put_u32(errors, i);
            put_u32(errors + 4, msg_len);
            for (u32 k = 0; k < msg_len; k++) errors[8 + k] = MALFORMED[k];
            errors += 8 + msg_len;
            n_err++;
        } else {
            const u8 *level = value + first + 1;
            u32 level_len = second - first - 1;
            keep = level_len == 5 && level[0] == 'E' && level[1] == 'R' && level[2] == 'R' &&
                   level[3] == 'O' && level[4] == 'R';
        }
        out[4 + i] = keep;
    }
    put_u32(out + 4 + n, n_err);
    if (n_err > 0) sluice_log(3, (const u8 *)LOG_LINE, sizeof(LOG_LINE) - 1);
    u32 out_len = (u32)(errors - out);
    return (u64)(u32)out << 32 | out_len;
}
