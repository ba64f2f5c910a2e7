/* A strict JSON syntax check (RFC 8259) for the harnesses: one value,
 * strings of well-formed UTF-8 (RFC 3629) with every control character
 * escaped, valid escapes and numbers, nesting at most 64 deep.  It checks
 * that the core's JSON writer turns any target bytes into valid JSON,
 * without a JSON library in the fuzz builds. */
#ifndef ASYNCUNWIND_FUZZ_JSON_SYNTAX_H
#define ASYNCUNWIND_FUZZ_JSON_SYNTAX_H

#include <stddef.h>

/* 0 when s[0..n) is one JSON value with optional white space around it,
 * else 1 + the offset of the first byte that is wrong. */
size_t json_syntax_error(const char *s, size_t n);

#endif
