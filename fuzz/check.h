/* CHECK(cond) or CHECK(cond, fmt, ...): a harness's invariant.  When it
 * does not hold, print where (the file names the harness), the condition
 * and the message, then what the harness registered with check_on_failure
 * (the input decoded, the outputs compared, ...), and abort, which every
 * engine reports as a crash with its input.  The one CHECK of every
 * harness. */
#ifndef ASYNCUNWIND_FUZZ_CHECK_H
#define ASYNCUNWIND_FUZZ_CHECK_H

#include <stddef.h>

/* Prints the failure and aborts.  fmt may be NULL (no message). */
void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* fn(ud) runs after a failure's message and before the abort, to print
 * the context of the check.  One at a time: NULL removes it. */
typedef void (*check_context_fn)(void *ud);
void check_on_failure(check_context_fn fn, void *ud);

/* With a message or without: the argument count picks the form (up to 19
 * arguments after cond), and the format is checked either way. */
#define CHECK(...)                                                                            \
    CHECK_PICK_(__VA_ARGS__, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,      \
                CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,       \
                CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,       \
                CHECK_MSG_, CHECK_MSG_, CHECK_BARE_, unused)                                  \
    (__VA_ARGS__)
#define CHECK_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16,   \
                    _17, _18, _19, _20, name, ...)                                            \
    name
#define CHECK_BARE_(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond, NULL);                           \
    } while (0)
#define CHECK_MSG_(cond, ...)                                                                 \
    do {                                                                                      \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
    } while (0)

#endif
